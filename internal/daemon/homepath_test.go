package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// mkdirMode makes dir with exactly mode, whatever the umask.
func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// TestCheckHomePath: a home is refused when someone other than root or
// ferry's user could swap a directory of its path (sshd's rule for
// ChrootDirectory), through symbolic links too.
func TestCheckHomePath(t *testing.T) {
	base := t.TempDir()
	mkdirMode(t, base, 0o755)
	mkdirMode(t, filepath.Join(base, "homes", "alice"), 0o700)
	mkdirMode(t, filepath.Join(base, "homes"), 0o755)
	mkdirMode(t, filepath.Join(base, "groupw", "alice"), 0o700)
	mkdirMode(t, filepath.Join(base, "groupw"), 0o775)
	mkdirMode(t, filepath.Join(base, "worldw"), 0o777)
	mkdirMode(t, filepath.Join(base, "sticky", "alice"), 0o700)
	mkdirMode(t, filepath.Join(base, "sticky"), 0o777|os.ModeSticky)
	for _, l := range []struct{ link, target string }{
		{"worldw/carol", filepath.Join(base, "homes", "alice")}, // planted in a world-writable directory
		{"homes/dave", "../groupw/alice"},                       // safe link, unsafe target
		{"homes/erin", "alice"},                                 // safe link, safe target
		{"homes/loop1", "loop2"},
		{"homes/loop2", "loop1"},
	} {
		if err := os.Symlink(l.target, filepath.Join(base, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		home string
		want string // "" for accepted
	}{
		{"homes/alice", ""},
		{"homes/new/deeper", ""}, // not created yet
		{"homes/erin", ""},
		{"sticky/alice", ""}, // sticky /tmp, entry of ferry's own
		{"sticky/new", ""},
		{"groupw/alice", "groupw is writable by group or others"},
		{"groupw/new", "groupw is writable by group or others"},
		{"worldw/carol", "worldw is writable by group or others"},
		{"homes/dave", "groupw is writable by group or others"},
		{"homes/loop1", "too many levels of symbolic links"},
	} {
		err := checkHomePath(filepath.Join(base, tc.home))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", tc.home, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.home, err, tc.want)
		}
	}

	if os.Geteuid() != 0 {
		return // giving files to another uid needs root
	}
	mkdirMode(t, filepath.Join(base, "foreign", "alice"), 0o700)
	if err := os.Chown(filepath.Join(base, "foreign"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "homes", "alice"), filepath.Join(base, "sticky", "planted")); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(base, "sticky", "planted"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for home, want := range map[string]string{
		"foreign/alice":  "foreign belongs to uid 65534",
		"sticky/planted": "planted, in the sticky directory " + filepath.Join(base, "sticky") + ", belongs to uid 65534",
	} {
		if err := checkHomePath(filepath.Join(base, home)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", home, err, want)
		}
	}
}

// TestHomeSwappedByLocalUserRefused: an account's home in a directory
// other local users can write (homes under /srv/www, writable by the web
// server's group) was served wherever a link planted there pointed:
// carol's home, replaced by a link to bob's, served bob's files to carol.
func TestHomeSwappedByLocalUserRefused(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	mkdirMode(t, dir, 0o700)
	www := filepath.Join(base, "www")
	mkdirMode(t, filepath.Join(base, "safe", "bob"), 0o700)
	mkdirMode(t, www, 0o777)
	if err := os.WriteFile(filepath.Join(base, "safe", "bob", "secret.txt"), []byte("bob's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "safe", "bob"), filepath.Join(www, "carol")); err != nil {
		t.Fatal(err)
	}
	st := openSQLiteStore(t, dir)
	h, err := password.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	for name, home := range map[string]string{"bob": filepath.Join(base, "safe", "bob"), "carol": filepath.Join(www, "carol")} {
		if err := st.CreateAccount(context.Background(), &store.Account{Name: name, PasswordHash: h, Enabled: true, Home: home}, nil); err != nil {
			t.Fatal(err)
		}
	}
	addr, logs := startDaemonLogs(t, dir, "", nil)
	list := func(user string) ([]string, error) {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sc, err := sftp.NewClient(c)
		if err != nil {
			return nil, err
		}
		defer sc.Close()
		entries, err := sc.ReadDir("/")
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names, err
	}
	if names, err := list("bob"); err != nil || len(names) != 1 || names[0] != "secret.txt" {
		t.Fatalf("bob's own home: %q, %v", names, err)
	}
	if names, err := list("carol"); err == nil {
		t.Fatalf("carol's home, a link planted in a world-writable directory, served %q", names)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "is writable by group or others") {
		if time.Now().After(deadline) {
			t.Fatalf("no reason logged for carol's refused home:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
