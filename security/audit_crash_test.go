package security

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	_ "modernc.org/sqlite"
)

// TestSSHAudit runs Debian's ssh-audit against the default configuration:
// no [fail] line is acceptable; every [warn] line is logged with the
// reason it is accepted (or flagged as new).
func TestSSHAudit(t *testing.T) {
	tool := testenv.NeedTool(t, "ssh-audit")
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	host, port, _ := strings.Cut(s.addr, ":")
	cmd := exec.Command(tool, "-n", "-p", port, host)
	out, err := cmd.CombinedOutput()
	// ssh-audit exits non-zero whenever it prints a warning.
	t.Logf("ssh-audit exit: %v", err)
	if !bytes.Contains(out, []byte("(gen) banner")) {
		t.Fatalf("ssh-audit did not audit the server:\n%s", out)
	}
	// Checked in order: the specific reasons before the generic one.
	accepted := [][2]string{
		{"mlkem768x25519-sha256", "post-quantum hybrid ML-KEM kex (OpenSSH 10's default); Debian's ssh-audit predates it"},
		{"sntrup761x25519-sha512", "post-quantum hybrid kex in OpenSSH's default list"},
		{"kex-strict-s-v00@openssh.com", "strict kex pseudo-algorithm (the Terrapin fix); this ssh-audit does not know the name"},
		{"using encrypt-and-MAC mode", "hmac-sha2-256/512 (non-EtM) kept for clients without EtM; OpenSSH offers them by default and no practical attack on CTR/GCM+E&M is known"},
	}
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	var fails []string
	for _, line := range strings.Split(ansi.ReplaceAllString(string(out), ""), "\n") {
		switch {
		case strings.Contains(line, "[fail]"):
			fails = append(fails, line)
		case strings.Contains(line, "[warn]"):
			reason := "NOT YET ACCEPTED: review"
			for _, a := range accepted {
				if strings.Contains(line, a[0]) {
					reason = a[1]
					break
				}
			}
			t.Logf("warn: %s\n      accepted because: %s", strings.TrimSpace(line), reason)
		}
	}
	if len(fails) > 0 {
		t.Fatalf("ssh-audit [fail] lines:\n%s", strings.Join(fails, "\n"))
	}
}

// TestCrashDuringUploads kills the server with SIGKILL while 20 clients
// upload. Atomic uploads (the default) write to a temporary name and
// rename on CLOSE, so after a restart every upload acknowledged before
// the crash is intact, no partial file carries a final name, and the
// SQLite database is consistent.
func TestCrashDuringUploads(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	const (
		uploads  = 20
		fileSize = 6 << 20
		chunk    = 32 << 10
	)
	contents := make([][]byte, uploads)
	sums := make([][32]byte, uploads)
	for i := range contents {
		contents[i] = make([]byte, fileSize)
		rand.Read(contents[i])
		sums[i] = sha256.Sum256(contents[i])
	}

	// Files completed well before the crash.
	sc, closeFn := s.sftpClient("alice", alicePassword)
	for i := range 5 {
		f, err := sc.Create(fmt.Sprintf("/done-%d", i))
		must(t, err)
		_, err = f.Write(contents[i])
		must(t, err)
		must(t, f.Close())
	}
	closeFn()

	var mu sync.Mutex
	acknowledged := map[int]bool{}
	var started, wg sync.WaitGroup
	// The real uploads: each client writes its file in chunks; half are
	// small enough to finish before the kill.
	started.Add(uploads)
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			signal := func() { once.Do(started.Done) }
			defer signal()
			sc, closeFn, err := s.trySFTP("alice", alicePassword)
			if err != nil {
				return
			}
			defer closeFn()
			f, err := sc.Create(fmt.Sprintf("/up-%d", i))
			if err != nil {
				return
			}
			data := contents[i]
			if i%2 == 0 {
				data = data[:256<<10]
			}
			for off := 0; off < len(data); off += chunk {
				if _, err := f.Write(data[off:min(off+chunk, len(data))]); err != nil {
					return
				}
				if off >= 512<<10 {
					signal()
				}
			}
			if f.Close() == nil {
				mu.Lock()
				acknowledged[i] = true
				mu.Unlock()
			}
			signal()
		}()
	}
	started.Wait()
	s.kill()
	wg.Wait()
	t.Logf("%d of %d uploads acknowledged before SIGKILL", len(acknowledged), uploads)

	s.start()
	home := s.home("alice")
	for i := range 5 {
		got, err := os.ReadFile(filepath.Join(home, fmt.Sprintf("done-%d", i)))
		if err != nil || sha256.Sum256(got) != sums[i] {
			t.Errorf("done-%d lost or corrupted by the crash (err %v)", i, err)
		}
	}
	for i := range uploads {
		want := contents[i]
		if i%2 == 0 {
			want = want[:256<<10]
		}
		got, err := os.ReadFile(filepath.Join(home, fmt.Sprintf("up-%d", i)))
		switch {
		case err != nil && acknowledged[i]:
			t.Errorf("up-%d was acknowledged but is gone: %v", i, err)
		case err == nil && !bytes.Equal(got, want):
			t.Errorf("up-%d is visible under its final name with %d of %d bytes", i, len(got), len(want))
		}
	}
	entries, _ := os.ReadDir(home)
	var temps []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".ferry-upload-") {
			temps = append(temps, e.Name())
		}
	}
	t.Logf("temporary upload files left after the crash: %d %v", len(temps), temps)
	s.assertServing("alice", alicePassword)
	s.stop()

	db, err := sql.Open("sqlite", filepath.Join(s.dataDir, "ferry.db"))
	must(t, err)
	defer db.Close()
	var result string
	must(t, db.QueryRow("PRAGMA integrity_check").Scan(&result))
	if result != "ok" {
		t.Fatalf("PRAGMA integrity_check: %s", result)
	}
}

// trySFTP is sftpClient without failing the test (for goroutines).
func (s *ferryServer) trySFTP(user, password string) (*sftp.Client, func(), error) {
	c, err := s.sshClient(user, ssh.Password(password))
	if err != nil {
		return nil, nil, err
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return sc, func() { sc.Close(); c.Close() }, nil
}
