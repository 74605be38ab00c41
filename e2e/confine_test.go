package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestConfinement: a session sees only its own home, through ".." in any
// form, absolute paths, and symbolic links planted on disk that point out.
func TestConfinement(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	s.addUser("bob", "pw-bob")
	home := s.mkHome(t, "alice")
	writeFile(t, filepath.Join(home, "mine.txt"), []byte("mine"))
	writeFile(t, filepath.Join(s.mkHome(t, "bob"), "secret.txt"), []byte("bob's secret"))
	// Links an administrator (or a restored backup) left in the home.
	if err := os.Symlink("/etc", filepath.Join(home, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../bob/secret.txt", filepath.Join(home, "tobob")); err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()

	t.Run("openssh", func(t *testing.T) {
		r := s.sftpBatch(t, local, "alice", "pw-alice", "cd ..\npwd\ncd ../..\npwd\nls -1 /..\nls -1 ../../..\n")
		mustSucceed(t, r, "cd/ls above the root")
		if strings.Count(r.out, "Remote working directory: /\n") != 2 {
			t.Errorf("pwd after cd .. is not /:\n%s", r.out)
		}
		for _, leak := range []string{"alice", "secret.txt", "ferry.db", "ssh_host"} {
			if strings.Contains(r.out, leak) {
				t.Errorf("listing above the root shows %q:\n%s", leak, r.out)
			}
		}
		if !strings.Contains(r.out, "mine.txt") {
			t.Errorf("listing of /.. is not the home:\n%s", r.out)
		}
		for _, cmd := range []string{
			"get /etc/passwd p1", "get ../../../../etc/passwd p2", "get etc/passwd p3",
			"get /../bob/secret.txt p4", "get tobob p5",
		} {
			if r := s.sftpBatch(t, local, "alice", "pw-alice", cmd+"\n"); r.code != 1 {
				t.Errorf("%q: exit %d, want 1:\n%s", cmd, r.code, r.out)
			}
		}
		// sftp's ls prints a name it cannot open as a directory and may
		// exit 0; what matters is that no entry from outside shows.
		for _, cmd := range []string{"ls -1 etc/", "ls -1 /../bob", "ls -1 tobob"} {
			r := s.sftpBatch(t, local, "alice", "pw-alice", cmd+"\n")
			for _, leak := range []string{"passwd", "hostname", "secret.txt"} {
				if strings.Contains(r.out, leak) {
					t.Errorf("%q shows %s:\n%s", cmd, leak, r.out)
				}
			}
		}
		ents, _ := os.ReadDir(local)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "p") {
				t.Errorf("a denied get wrote %s", e.Name())
			}
		}
	})

	t.Run("pkg-sftp", func(t *testing.T) {
		c := s.dialSFTP(t, "alice", "pw-alice")
		for _, p := range []string{"..", "/..", "../..", "/../../.."} {
			rp, err := c.RealPath(p)
			if err != nil || rp != "/" {
				t.Errorf("RealPath(%q) = %q, %v; want /", p, rp, err)
			}
			fis, err := c.ReadDir(p)
			if err != nil {
				t.Errorf("ReadDir(%q): %v", p, err)
				continue
			}
			var names []string
			for _, fi := range fis {
				names = append(names, fi.Name())
			}
			slices.Sort(names)
			if strings.Join(names, ",") != "etc,mine.txt,tobob" {
				t.Errorf("ReadDir(%q) = %v, want the home's entries", p, names)
			}
		}
		for _, p := range []string{"/etc/passwd", "../../../etc/passwd", "etc/passwd", "tobob", "/../bob/secret.txt"} {
			if b, err := getFile(c, p); err == nil {
				t.Errorf("Open(%q) succeeded (%d bytes)", p, len(b))
			}
		}
		if _, err := c.ReadDir("etc"); err == nil {
			t.Errorf("ReadDir through a link to /etc succeeded")
		}
		// Writing through the link must not create anything outside.
		if err := putFile(c, "etc/ferry-e2e-escape", []byte("x")); err == nil {
			t.Errorf("writing through a link to /etc succeeded")
		}
		if _, err := os.Lstat("/etc/ferry-e2e-escape"); err == nil {
			os.Remove("/etc/ferry-e2e-escape")
			t.Errorf("a file was created in /etc")
		}
		if err := c.Mkdir("../escaped"); err != nil {
			t.Errorf("Mkdir(../escaped) should create /escaped inside the home: %v", err)
		}
		if _, err := os.Stat(filepath.Join(home, "escaped")); err != nil {
			t.Errorf("../escaped was not created inside the home: %v", err)
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "home", "escaped")); err == nil {
			t.Errorf("../escaped was created next to the homes")
		}
	})
}
