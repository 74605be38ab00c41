package sftp

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEscapes drives each way out of the root through the protocol.
func TestEscapes(t *testing.T) {
	ts := startServer(t, nil)
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(ts.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(ts.root, "sub"), 0o755)
	link("/etc", "etc")
	link(ts.outside, "abs")
	link("../outside", "up")
	link("../../outside/secret", "sub/up2")
	link("up", "chain")
	link("loop1", "loop2")
	link("loop2", "loop1")
	c := ts.client(t)
	defer c.Close()

	denied := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("escape succeeded")
		}
		if code := statusCode(err); code != StatusPermissionDenied && code != StatusNoSuchFile {
			t.Fatalf("error %v (status %d), want PERMISSION_DENIED or NO_SUCH_FILE", err, code)
		}
	}
	readable := func(name string) error {
		f, err := c.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.ReadAll(f)
		return err
	}
	for _, tc := range []struct{ name, path string }{
		{"dotdot", "/../outside/secret"},
		{"dotdot relative", "../../outside/secret"},
		{"absolute symlink to /etc", "/etc/passwd"},
		{"absolute symlink outside", "/abs/secret"},
		{"relative symlink ../", "/up/secret"},
		{"relative symlink ../../", "/sub/up2"},
		{"symlink chain", "/chain/secret"},
		{"trailing slash", "/abs/"},
		{"trailing slash on chain", "/chain/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readable(tc.path)
			if tc.name == "dotdot" || tc.name == "dotdot relative" {
				// ".." is lexical and stops at "/": /outside does not exist inside.
				if statusCode(err) != StatusNoSuchFile {
					t.Fatalf("open %s = %v, want NO_SUCH_FILE", tc.path, err)
				}
				return
			}
			denied(t, err)
			_, err = c.Stat(tc.path)
			denied(t, err)
			_, err = c.ReadDir(tc.path)
			denied(t, err)
		})
	}
	t.Run("symlink loop", func(t *testing.T) {
		_, err := c.Stat("/loop1")
		if statusCode(err) != StatusNoSuchFile { // ELOOP maps to NO_SUCH_FILE as in OpenSSH
			t.Fatalf("Stat(loop) = %v", err)
		}
		_, err = c.RealPath("/loop1")
		if statusCode(err) != StatusNoSuchFile {
			t.Fatalf("RealPath(loop) = %v", err)
		}
	})
	t.Run("create through symlink", func(t *testing.T) {
		_, err := c.Create("/abs/planted")
		denied(t, err)
		if _, err := os.Stat(filepath.Join(ts.outside, "planted")); err == nil {
			t.Fatal("file planted outside")
		}
	})
	t.Run("create through dangling link to outside", func(t *testing.T) {
		link(filepath.Join(ts.outside, "created"), "dangle-abs")
		link("../outside/created", "dangle-rel")
		for _, name := range []string{"/dangle-abs", "/dangle-rel"} {
			_, err := c.Create(name)
			denied(t, err)
			f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
			if err == nil {
				f.Close()
			}
			denied(t, err)
		}
		if _, err := os.Lstat(filepath.Join(ts.outside, "created")); err == nil {
			t.Fatal("file created outside")
		}
	})
	t.Run("hardlink target outside", func(t *testing.T) {
		denied(t, c.Link("/abs/secret", "/stolen"))
		ts.write(t, "mine", "x")
		denied(t, c.Link("/mine", "/up/planted"))
	})
	t.Run("rename target outside", func(t *testing.T) {
		ts.write(t, "mine2", "x")
		denied(t, c.Rename("/mine2", "/abs/moved"))
		denied(t, c.PosixRename("/mine2", "/up/moved"))
		denied(t, c.Rename("/abs/secret", "/got"))
		if _, err := os.Stat(filepath.Join(ts.outside, "moved")); err == nil {
			t.Fatal("file moved outside")
		}
	})
	t.Run("symlink creation leaving root", func(t *testing.T) {
		denied(t, c.Symlink("../outside/secret", "/evil"))
		// An absolute target is taken inside the root.
		if err := c.Symlink("/outside/secret", "/inside"); err != nil {
			t.Fatal(err)
		}
		if s, _ := os.Readlink(filepath.Join(ts.root, "inside")); s != "outside/secret" {
			t.Fatalf("stored target %q", s)
		}
		if err := readable("/inside"); statusCode(err) != StatusNoSuchFile {
			t.Fatalf("reading /inside = %v", err)
		}
	})
	t.Run("readdir lists outside links with lstat", func(t *testing.T) {
		fis, err := c.ReadDir("/")
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range fis {
			if fi.Name() == "abs" || fi.Name() == "etc" {
				if fi.Mode()&os.ModeSymlink == 0 || fi.IsDir() {
					t.Fatalf("%s listed as %v: target's attributes leaked", fi.Name(), fi.Mode())
				}
			}
		}
		fi, err := c.Lstat("/abs")
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("Lstat(/abs) = %v %v", fi, err)
		}
	})
	t.Run("realpath through outside link", func(t *testing.T) {
		for _, p := range []string{"/abs", "/abs/secret", "/up", "/chain/x", "/etc", "sub/up2"} {
			r, err := c.RealPath(p)
			if err == nil {
				t.Errorf("RealPath(%s) = %q, want an error", p, r)
				continue
			}
			if strings.Contains(err.Error(), ts.outside) {
				t.Errorf("RealPath(%s) error reveals the host path: %v", p, err)
			}
			denied(t, err)
		}
		if r, err := c.RealPath("/../../.."); err != nil || r != "/" {
			t.Errorf("RealPath(/../../..) = %q %v", r, err)
		}
	})
	t.Run("readlink shows text only", func(t *testing.T) {
		s, err := c.ReadLink("/abs")
		if err != nil || s != ts.outside {
			t.Fatalf("ReadLink = %q %v", s, err)
		}
	})
	t.Run("directory swapped for symlink between requests", func(t *testing.T) {
		if err := c.Mkdir("/swap"); err != nil {
			t.Fatal(err)
		}
		f, err := c.Create("/swap/a")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		os.RemoveAll(filepath.Join(ts.root, "swap"))
		link(ts.outside, "swap")
		_, err = c.Create("/swap/b")
		denied(t, err)
		err = readable("/swap/secret")
		denied(t, err)
		if _, err := os.Stat(filepath.Join(ts.outside, "b")); err == nil {
			t.Fatal("created outside through swapped directory")
		}
	})
	if b, _ := os.ReadFile(filepath.Join(ts.outside, "secret")); string(b) != "top secret" {
		t.Fatalf("outside file changed: %q", b)
	}
}
