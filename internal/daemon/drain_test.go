package daemon

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// TestDrainEndsIdleSessions: the drain (SIGTERM, or Run's context) ends
// at once a connection with no session and an SFTP session with no file
// open, and lets a session with a file open go on until it closes it.
// It waited for every connection: one idle client (FileZilla keeps its
// connection between transfers) held each restart for the whole drain
// timeout, with no listener.
func TestDrainEndsIdleSessions(t *testing.T) {
	const drain = 60 * time.Second
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "alice", "pw", 0)
	home := filepath.Join(dir, "home", "alice")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	content := make([]byte, 4<<20)
	rand.Read(content)
	if err := os.WriteFile(filepath.Join(home, "big"), content, 0o600); err != nil {
		t.Fatal(err)
	}

	addr, _, stop := runTestDaemon(t, dir, "", nil, drain)
	dial := func() *ssh.Client {
		t.Helper()
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	bare := dial() // authenticated, no session
	idle := dial()
	idleSFTP, err := sftp.NewClient(idle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idleSFTP.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	busy := dial()
	busySFTP, err := sftp.NewClient(busy)
	if err != nil {
		t.Fatal(err)
	}
	f, err := busySFTP.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- stop() }() // as SIGTERM does
	ended := func(c *ssh.Client) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- c.Wait() }()
		return ch
	}
	for name, c := range map[string]*ssh.Client{"no session": bare, "idle sftp": idle} {
		select {
		case <-ended(c):
		case <-time.After(10 * time.Second):
			t.Fatalf("connection with %s still open 10 s into a %v drain", name, drain)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a download in progress", err)
	default:
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("download during the drain: %v", err)
	}
	if got := append(head, rest...); string(got) != string(content) {
		t.Fatalf("download during the drain: %d bytes, want %d", len(got), len(content))
	}
	f.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run still draining 10 s after the last file was closed (drain timeout %v)", drain)
	}
}
