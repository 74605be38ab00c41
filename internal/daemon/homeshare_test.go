package daemon

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// homeFDs counts this process's open descriptors on dir.
func homeFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == dir {
			n++
		}
	}
	return n
}

// TestSessionsShareAndCloseHome: an account's concurrent sessions hold
// one descriptor on its home between them, and it is closed when the
// last session ends. Before, every session opened its own and none was
// closed: the descriptors stayed until a garbage collection ran os.Root's
// finalizer, so a server with many short sessions and little garbage ran
// out of descriptors ("too many open files"), and 10,000 idle sessions
// needed 20,000.
func TestSessionsShareAndCloseHome(t *testing.T) {
	// Without collections only an explicit Close releases a descriptor.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "alice", "pw", 0)
	addr := startDaemon(t, dir, "")
	home := filepath.Join(dir, "home", "alice")

	open := func() (*ssh.Client, *sftp.Client) {
		t.Helper()
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // a failing test must not leave the daemon waiting for it
		sc, err := sftp.NewClient(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Stat("/"); err != nil {
			t.Fatal(err)
		}
		return c, sc
	}
	waitFDs := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := homeFDs(t, home)
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d descriptors open on the home, want %d", what, n, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var clients []*ssh.Client
	for range 4 {
		c, _ := open()
		clients = append(clients, c)
	}
	waitFDs(1, "4 concurrent sessions")
	for _, c := range clients {
		c.Close()
	}
	waitFDs(0, "after the sessions ended")

	for range 10 {
		c, sc := open()
		sc.Close()
		c.Close()
	}
	waitFDs(0, "after 10 sessions one after another")

	// SCP (an exec session) releases its share too.
	c, _ := open()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.CombinedOutput("scp -f /nonexistent"); err == nil {
		t.Fatalf("scp -f of a missing file succeeded: %q", out)
	}
	waitFDs(1, "sftp session open after an scp session")

	// The admin replaces the home while that session lives: a new session
	// gets the new directory, not the one the first still holds.
	if err := os.Rename(home, home+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "new"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c2, sc2 := open()
	if _, err := sc2.Stat("/new"); err != nil {
		t.Errorf("a session after the home was replaced does not see the new home: %v", err)
	}
	c.Close()
	c2.Close()
	waitFDs(0, "after the scp and sftp sessions ended")
}

// TestDroppedUploadTempRemoved: when a client drops its connection in the
// middle of an atomic upload, the session's end removes the temporary
// file through the home it still holds; the home must not be closed
// under it when the connection's context ends.
func TestDroppedUploadTempRemoved(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "bob", "pw", 0)
	addr := startDaemon(t, dir, "")
	home := filepath.Join(dir, "home", "bob")

	for i := range 5 {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "bob", Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sc, err := sftp.NewClient(c)
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		f, err := sc.Create("part")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		// Drop the connection: the upload is never closed.
		c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			left, err := filepath.Glob(filepath.Join(home, ".ferry-upload-*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("drop %d: temporary uploads left in the home: %v", i, left)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
