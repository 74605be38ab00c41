package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestConfigCheck: "ferry serve --check" names the file, line and key of a
// mistake and exits non-zero, and says "configuration OK" for a good file.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, config string
		wantCode     int
		want         string // on stderr (errors) or stdout (OK)
	}{
		{"unknown key", "ciphers = \"aes256-ctr\"\n\nmax_sesions = 3\n", 1, `bad.toml:3: max_sesions: unknown key (did you mean "max_sessions"?)`},
		{"bad algorithm", "# comment\nciphers = \"aes256-ctr,rot13@example.com\"\n", 1, `bad.toml:2: ciphers: cipher: unknown algorithm "rot13@example.com"`},
		{"bad duration", "login_grace_time = \"2 fortnights\"\n", 1, `bad.toml:1: login_grace_time: bad duration "2 fortnights"`},
		{"bad umask", "[sftp]\numask = \"999\"\n", 1, `bad.toml:2: sftp.umask: bad octal umask "999"`},
		{"good", "ciphers = \"aes256-ctr\"\nlogin_grace_time = \"2s\"\n[sftp]\numask = \"027\"\n", 0, "configuration OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "bad.toml")
			writeFile(t, cfg, []byte(tt.config))
			cmd := exec.Command(ferryBin, "--data-dir", filepath.Join(dir, "data"), "serve", "--check", "--config", cfg)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, &stdout, &stderr)
			}
			out := stderr.String()
			if tt.wantCode == 0 {
				out = stdout.String()
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output %q lacks %q", out, tt.want)
			}
		})
	}
}

// TestLoginGraceTime: a client that sends its version and then nothing is
// disconnected once login_grace_time has passed, not before. Not parallel:
// it is the one test with a timing bound, so it runs before the others
// load the machine.
func TestLoginGraceTime(t *testing.T) {
	s := startServer(t, serverOpts{config: "login_grace_time = \"2s\"\n"})
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte("SSH-2.0-x\r\n")); err != nil {
		t.Fatal(err)
	}
	// The bound on the test itself: well past the grace time.
	c.SetReadDeadline(start.Add(10 * time.Second))
	got, err := io.ReadAll(c)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("after %v: %v (the server did not close the connection)", elapsed, err)
	}
	if !bytes.HasPrefix(got, []byte("SSH-2.0-")) {
		t.Errorf("server sent %q, want its version first", got[:min(len(got), 40)])
	}
	if elapsed < 1500*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("closed after %v, want about 2s (1.5s-5s)", elapsed)
	}
}

// sparseBigFile makes a 200 MiB file in a home cheaply: a hole with random
// blocks at a few offsets, so a transfer that loses or reorders data is
// caught by the hash. It returns the SHA-256 of the contents.
func sparseBigFile(t *testing.T, path string, size int64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, size / 3, size / 2, size - 4096} {
		if _, err := f.WriteAt(randomBytes(t, 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return [32]byte(h.Sum(nil))
}

// TestReloadOnSIGHUP: a SIGHUP applies a new cipher list to new connections
// while a transfer that started before it goes on to the end intact.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "sftp")
	s := startServer(t, serverOpts{config: "# defaults\n"})
	s.addUser("alice", "pw-alice")
	const size = 200 << 20
	want := sparseBigFile(t, filepath.Join(s.mkHome(t, "alice"), "big"), size)
	local := t.TempDir()

	// The transfer is "long" by construction rather than by timing: the
	// client reads the first MiB, and the rest only after the reload.
	c := s.dialSFTP(t, "alice", "pw-alice")
	f, err := c.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, 1<<20); err != nil {
		t.Fatal(err)
	}

	withCipher := func(cipher string) result {
		return s.sftpBatch(t, local, "alice", "pw-alice", "pwd\n", "-o", "Ciphers="+cipher, "-o", "LogLevel=INFO")
	}
	mustSucceed(t, withCipher("chacha20-poly1305@openssh.com"), "chacha20-poly1305 before the reload")

	writeFile(t, s.config, []byte("ciphers = \"aes256-ctr\"\n"))
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(s.stderr.String(), "configuration reloaded") {
		if strings.Contains(s.stderr.String(), "reload failed") {
			t.Fatalf("SIGHUP reload failed")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}

	r := withCipher("chacha20-poly1305@openssh.com")
	if r.code != 255 || !strings.Contains(r.out, "no matching cipher found") {
		t.Errorf("chacha20-poly1305 after the reload: exit %d, want 255 and no matching cipher:\n%s", r.code, r.out)
	}
	mustSucceed(t, withCipher("aes256-ctr"), "aes256-ctr after the reload")

	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatalf("transfer started before the reload failed after %d more bytes: %v", n, err)
	}
	if n+1<<20 != size || [32]byte(h.Sum(nil)) != want {
		t.Fatalf("transfer across the reload: %d bytes, hash mismatch=%v", n+1<<20, [32]byte(h.Sum(nil)) != want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDrainOnSIGTERM: SIGTERM closes the listener at once but lets an
// active transfer finish, then the process exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	const size = 64 << 20
	want := sparseBigFile(t, filepath.Join(s.mkHome(t, "alice"), "big"), size)
	c, conn := s.dialSSH(t, "alice", "pw-alice")
	f, err := c.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, 1<<20); err != nil {
		t.Fatal(err)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err != nil {
			// A dial that reached the backlog just before the listener
			// closed is reset rather than refused: not accepted either.
			if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("dial after SIGTERM: %v, want connection refused", err)
			}
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("still accepting connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-s.exited:
		t.Fatalf("ferry exited with a transfer in progress: %v\n%s", s.waitErr, s.stderr.String())
	default:
	}

	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatalf("transfer during the drain failed after %d more bytes: %v", n, err)
	}
	if n+1<<20 != size || [32]byte(h.Sum(nil)) != want {
		t.Fatalf("transfer during the drain: %d bytes, hash mismatch=%v", n+1<<20, [32]byte(h.Sum(nil)) != want)
	}
	f.Close()
	c.Close()
	conn.Close()

	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("ferry did not exit %v after its last connection closed", stopTimeout)
	}
	if s.waitErr != nil {
		t.Fatalf("ferry exit after SIGTERM: %v, want status 0\n%s", s.waitErr, s.stderr.String())
	}
}
