package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// runAsTempDir is a temporary directory nobody can reach (for the data
// directory and configuration of a ferry serve with run_as = "nobody")
// and nobody's uid; it skips unless the test runs as root.
func runAsTempDir(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("run_as needs ferry serve started as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tmp, uid
}

// runAsServer starts ferry serve as root with run_as = "nobody" and extra
// configuration, its data directory and configuration reachable by
// nobody; it skips unless the test runs as root.
func runAsServer(t *testing.T, config string) (*server, int) {
	t.Helper()
	tmp, uid := runAsTempDir(t)
	dataDir := filepath.Join(tmp, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyHostKeys(t, dataDir) // root-owned, as a first start as root makes them
	conf := filepath.Join(tmp, "ferry.toml")
	writeFile(t, conf, []byte("run_as = \"nobody\"\n"+config))
	s := &server{t: t, dataDir: dataDir, config: conf}
	s.start()
	return s, uid
}

// TestRunAsRestart: ferry serve with run_as starts again. The first start
// gave nobody the data directory's host keys, and every later start, as
// root, refused them as foreign ("owned by uid 65534, not by uid 0
// (ferry) or root"): with Restart=on-failure, systemd looped on it.
func TestRunAsRestart(t *testing.T) {
	s, uid := runAsServer(t, "")
	fi, err := os.Stat(filepath.Join(s.dataDir, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Sys().(*syscall.Stat_t).Uid; got != uint32(uid) {
		t.Fatalf("host key owned by uid %d after a start with run_as, want %d", got, uid)
	}
	s.restart()
}

// TestRunAsReload: started as root with run_as, ferry serves as that user
// (uploads belong to it) and a SIGHUP still reloads when host_keys names
// a root-owned key outside the data directory (sshd's /etc/ssh keys, kept
// so that customers see no host key change), keeping the key it read at
// start. Every reload failed with "permission denied" before, so no
// setting could change without a restart.
func TestRunAsReload(t *testing.T) {
	tmp, uid := runAsTempDir(t)
	etc := filepath.Join(tmp, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	copyHostKeys(t, etc) // root-owned, 0600
	hostKey := filepath.Join(etc, "ssh_host_ed25519_key")
	config := filepath.Join(etc, "ferry.toml")
	writeFile(t, config, []byte("run_as = \"nobody\"\nhost_keys = [\""+hostKey+"\"]\n"))
	dataDir := filepath.Join(tmp, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dataDir: dataDir, config: config}
	s.start()
	s.addUser("alice", "pw-alice-1")

	wantKey, _, _, _, err := ssh.ParseAuthorizedKey(readFile(t, hostKey+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	login := func() {
		t.Helper()
		c, err := ssh.Dial("tcp", s.addr(), &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw-alice-1")},
			HostKeyCallback: ssh.FixedHostKey(wantKey), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		defer c.Close()
		sc, err := sftp.NewClient(c)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		f, err := sc.Create("up.txt")
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	login()
	fi, err := os.Stat(filepath.Join(s.home("alice"), "up.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Sys().(*syscall.Stat_t).Uid; got != uint32(uid) {
		t.Errorf("upload owned by uid %d, want %d (run_as nobody)", got, uid)
	}

	writeFile(t, config, []byte("run_as = \"nobody\"\nhost_keys = [\""+hostKey+"\"]\nmax_sessions = 5\n"))
	s.cmd.Process.Signal(syscall.SIGHUP)
	if !s.waitLog(func(l string) bool {
		return strings.Contains(l, "configuration reloaded") || strings.Contains(l, "reload failed")
	}) {
		t.Fatal("no reload logged")
	}
	if l := s.stderr.String(); strings.Contains(l, "reload failed") {
		t.Fatalf("reload failed after run_as:\n%s", l)
	}
	login()
}

// TestRunAsCommandCredentials: after run_as, ferry cannot switch to an
// account's uid or shell_uid, so it refuses the command rather than run
// it as its own user. It ran it as nobody, silently: an account meant to
// be confined to uid 1234 got commands (a shell, with --shell) that read
// the host keys and the database of every password hash.
func TestRunAsCommandCredentials(t *testing.T) {
	for _, tc := range []struct{ name, config, flags string }{
		{"account uid", "", "--uid 1234 --gid 1234"},
		{"shell_uid", "shell_uid = 1234\nshell_gid = 1234\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := runAsServer(t, "allowed_commands = [\"id\"]\n"+tc.config)
			s.addUser("carol", "pw-carol-1", strings.Fields(tc.flags)...)
			c, err := ssh.Dial("tcp", s.addr(), &ssh.ClientConfig{User: "carol", Auth: []ssh.AuthMethod{ssh.Password("pw-carol-1")},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			out, err := sess.CombinedOutput("id")
			var ee *ssh.ExitError
			if !errors.As(err, &ee) || ee.ExitStatus() != 1 || strings.Contains(string(out), "uid=") {
				t.Errorf("id as an account with uid 1234 after run_as: %v, output %q; want exit 1 and no output of id", err, out)
			}
			if !s.waitLog(func(l string) bool { return strings.Contains(l, "command refused") }) {
				t.Error("no 'command refused' in the log")
			}
		})
	}
}

// TestRunAsWithoutChown: started as root without CAP_CHOWN (a unit whose
// CapabilityBoundingSet lacks it), ferry with run_as cannot give the data
// directory to that user and says so at start. It ignored the failure and
// ran as nobody with a root-owned database, host keys and home root,
// failing later at every login.
func TestRunAsWithoutChown(t *testing.T) {
	tmp, _ := runAsTempDir(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	dataDir := filepath.Join(tmp, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyHostKeys(t, dataDir)
	conf := filepath.Join(tmp, "ferry.toml")
	writeFile(t, conf, []byte("run_as = \"nobody\"\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--bounding-set", "-chown", "--", ferryBin, "--data-dir", dataDir,
		"serve", "--config", conf, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ferry serve started without the right to give nobody its data directory:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "run_as: giving the data directory to nobody") {
		t.Errorf("ferry serve: %v\n%s", err, out)
	}
}
