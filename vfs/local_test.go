package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// newJail makes outside/secret and a root dir "home" holding a file.
func newJail(t *testing.T) (FS, string, string) {
	t.Helper()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	home := filepath.Join(base, "home")
	for _, d := range []string{outside, home, filepath.Join(home, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "file"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Local(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, home, outside
}

func TestLocalEscapes(t *testing.T) {
	l, home, outside := newJail(t)
	mustLink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(home, name)); err != nil {
			t.Fatal(err)
		}
	}
	mustLink(outside, "abs")                    // absolute to outside
	mustLink("/etc", "etc")                     // absolute to /etc
	mustLink("../outside", "up")                // relative, one level out
	mustLink("../../outside/secret", "sub/up2") // relative from sub
	mustLink("up", "chain")                     // chain ending outside
	mustLink("loop1", "loop2")
	mustLink("loop2", "loop1")

	denied := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("escape succeeded")
		}
		if !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.ELOOP) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	}
	for _, name := range []string{"/abs/secret", "/etc/passwd", "/up/secret", "/sub/up2", "/chain/secret", "/up/", "/abs/secret/", "/loop1"} {
		t.Run("open"+name, func(t *testing.T) {
			f, err := l.OpenFile(name, os.O_RDONLY, 0)
			if err == nil {
				f.Close()
			}
			denied(t, err)
		})
		t.Run("stat"+name, func(t *testing.T) {
			_, err := l.Stat(name)
			denied(t, err)
		})
	}
	t.Run("dotdot is lexical", func(t *testing.T) {
		fi, err := l.Stat("/../../../file")
		if err != nil || fi.Size() != 5 {
			t.Fatalf("Stat(/../../../file) = %v, %v; want the root's file", fi, err)
		}
		if _, err := l.Stat("/../outside/secret"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat(/../outside/secret) = %v, want not-exist", err)
		}
	})
	t.Run("lstat of outside link is the link", func(t *testing.T) {
		fi, err := l.Lstat("/abs")
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("Lstat(/abs) = %v, %v", fi, err)
		}
		s, err := l.Readlink("/abs")
		if err != nil || s != outside {
			t.Fatalf("Readlink(/abs) = %q, %v", s, err)
		}
	})
	t.Run("loop", func(t *testing.T) {
		_, err := l.Stat("/loop1")
		if !errors.Is(err, syscall.ELOOP) {
			t.Fatalf("Stat(loop) = %v, want ELOOP", err)
		}
		_, err = l.RealPath("/loop1/x")
		if !errors.Is(err, syscall.ELOOP) {
			t.Fatalf("RealPath(loop) = %v, want ELOOP", err)
		}
	})
	t.Run("hardlink target outside", func(t *testing.T) {
		denied(t, l.Link("/abs/secret", "/stolen"))
		denied(t, l.Link("/file", "/abs/planted"))
		if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
			t.Fatal("file planted outside")
		}
	})
	t.Run("rename target outside", func(t *testing.T) {
		denied(t, l.Rename("/file", "/abs/moved"))
		denied(t, l.PosixRename("/file", "/up/moved"))
		denied(t, l.Rename("/abs/secret", "/mine"))
		if _, err := os.Stat(filepath.Join(outside, "moved")); err == nil {
			t.Fatal("file moved outside")
		}
	})
	t.Run("realpath", func(t *testing.T) {
		for _, name := range []string{"/abs", "/abs/secret", "/up/x", "/chain", "/etc/passwd", "/sub/up2"} {
			p, err := l.RealPath(name)
			if err == nil {
				t.Errorf("RealPath(%q) = %q, want error", name, p)
			} else if !errors.Is(err, fs.ErrPermission) {
				t.Errorf("RealPath(%q) error %v, want permission", name, err)
			}
		}
		mustLink("sub", "insub")
		for in, want := range map[string]string{".": "/", "/": "/", "/../..": "/", "/insub/../file": "/file", "/insub": "/sub", "/sub/new": "/sub/new", "sub/./x": "/sub/x"} {
			got, err := l.RealPath(in)
			if err != nil || got != want {
				t.Errorf("RealPath(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
		if _, err := l.RealPath("/nope/x"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("RealPath(/nope/x) = %v, want not-exist", err)
		}
	})
	t.Run("directory swapped for symlink", func(t *testing.T) {
		if err := os.Mkdir(filepath.Join(home, "swap"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := l.Mkdir("/swap/d", 0o755); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(home, "swap"))
		mustLink(outside, "swap")
		f, err := l.OpenFile("/swap/secret", os.O_RDONLY, 0)
		if err == nil {
			f.Close()
		}
		denied(t, err)
		f, err = l.OpenFile("/swap/new", os.O_WRONLY|os.O_CREATE, 0o644)
		if err == nil {
			f.Close()
		}
		denied(t, err)
		if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
			t.Fatal("file created outside through swapped directory")
		}
	})
}

func TestLocalSymlinkCreation(t *testing.T) {
	l, home, _ := newJail(t)
	if err := l.Symlink("/file", "/abs"); err != nil {
		t.Fatal(err)
	}
	s, _ := os.Readlink(filepath.Join(home, "abs"))
	if s != "file" {
		t.Errorf("absolute target stored as %q, want file", s)
	}
	f, err := l.OpenFile("/abs", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "hello" {
		t.Errorf("read through link = %q", b)
	}
	for _, target := range []string{"../x", "../../etc/passwd", "a/../../x"} {
		if err := l.Symlink(target, "/bad"); !errors.Is(err, ErrEscape) {
			t.Errorf("Symlink(%q) = %v, want ErrEscape", target, err)
		}
	}
	if err := l.Symlink("./sub/../sub", "/ok"); !errors.Is(err, ErrEscape) {
		t.Errorf("Symlink(./sub/../sub) = %v, want ErrEscape (any \"..\" is refused)", err)
	}
	for target, link := range map[string]string{"file": "/ok1", "./sub/x": "/ok2", ".": "/sub/ok3", "/sub/y": "/ok4"} {
		if err := l.Symlink(target, link); err != nil {
			t.Errorf("Symlink(%q, %q) = %v", target, link, err)
		}
	}
}

// TestLocalSymlinkNeverClimbs: a link may not lead above its own
// directory at all. Counting ".." against the link's depth was not
// enough: a link component earlier in the target climbs further than it
// looks, and renaming the link's directory to a shallower place (or
// swapping a component of its path) changes the depth after the check.
func TestLocalSymlinkNeverClimbs(t *testing.T) {
	l, home, _ := newJail(t)
	if err := os.MkdirAll(filepath.Join(home, "a/b/c/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Links planted by other means (a shell account), deep enough that
	// their own ".." stays inside.
	if err := os.Symlink("../../..", filepath.Join(home, "a/b/c/z")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(home, "s")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ target, link string }{
		{"z/../../../../../etc/passwd", "/a/b/c/evil"}, // z climbs three levels itself
		{"s/../outside/secret", "/evil2"},
		{"../../x", "/a/b/c/d/rel"}, // fine here, escapes once a/b/c/d is renamed to /d
		{"/file", "/sub/up"},        // stored as "../file"
	} {
		if err := l.Symlink(tc.target, tc.link); !errors.Is(err, ErrEscape) {
			t.Errorf("Symlink(%q, %q) = %v, want ErrEscape", tc.target, tc.link, err)
		}
		if _, err := os.Lstat(filepath.Join(home, tc.link)); err == nil {
			t.Errorf("link %s was created", tc.link)
		}
	}
}

func TestLocalRemoveRmdirRename(t *testing.T) {
	l, _, _ := newJail(t)
	if err := l.Remove("/sub"); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Remove(dir) = %v", err)
	}
	if err := l.Rmdir("/file"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Rmdir(file) = %v", err)
	}
	if err := l.Rmdir("/"); err == nil {
		t.Error("Rmdir(/) succeeded")
	}
	if err := l.Mkdir("/d2", 0o755); err != nil {
		t.Fatal(err)
	}
	f, _ := l.OpenFile("/f2", os.O_CREATE|os.O_WRONLY, 0o644)
	f.Close()
	if err := l.Rename("/file", "/f2"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Rename onto file = %v, want exist", err)
	}
	if err := l.Rename("/sub", "/d2"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Rename onto dir = %v, want exist", err)
	}
	if err := l.Rename("/file", "/f3"); err != nil {
		t.Errorf("Rename = %v", err)
	}
	if err := l.PosixRename("/f3", "/f2"); err != nil {
		t.Errorf("PosixRename = %v", err)
	}
	if fi, err := l.Stat("/f2"); err != nil || fi.Size() != 5 {
		t.Errorf("after PosixRename: %v %v", fi, err)
	}
	if err := l.Rmdir("/d2"); err != nil {
		t.Errorf("Rmdir = %v", err)
	}
	if err := l.Truncate("/f2", 2); err != nil {
		t.Error(err)
	}
	if st, err := l.StatVFS("/"); err != nil || st.BlockSize == 0 {
		t.Errorf("StatVFS = %+v, %v", st, err)
	}
}

func TestLocalSymlinkDepthThroughLinks(t *testing.T) {
	l, home, _ := newJail(t)
	// "/here" is the root itself, so "/here/x" lives at depth 0 and
	// "../x" from there leaves the root although it looks one level deep.
	if err := os.Symlink(".", filepath.Join(home, "here")); err != nil {
		t.Fatal(err)
	}
	if err := l.Symlink("../outside/secret", "/here/evil"); !errors.Is(err, ErrEscape) {
		t.Fatalf("Symlink through a link to the root = %v, want ErrEscape", err)
	}
	// An absolute target is made relative to the link's real directory.
	if err := l.Symlink("/sub/x", "/here/abs"); err != nil {
		t.Fatal(err)
	}
	if s, _ := os.Readlink(filepath.Join(home, "abs")); s != "sub/x" {
		t.Fatalf("stored %q, want sub/x", s)
	}
}

func TestOS(t *testing.T) {
	dir := t.TempDir()
	o, err := OS(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := o.OpenFile("a", os.O_CREATE|os.O_WRONLY, 0o644) // relative to startDir
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("a"))
	f.Close()
	if _, err := os.Stat(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := o.Mkdir(dir+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := o.Remove(dir + "/d"); err == nil {
		t.Error("Remove(dir) succeeded")
	}
	if err := o.Rmdir(dir + "/a"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Rmdir(file) = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "b"), []byte("b"), 0o644)
	if err := o.Rename(dir+"/a", dir+"/b"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Rename onto existing = %v", err)
	}
	if err := o.Rename(dir+"/d", dir+"/b"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Rename dir onto existing = %v", err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if p, err := o.RealPath(dir + "/d/../missing"); err != nil || p != real+"/missing" {
		t.Errorf("RealPath = %q %v", p, err)
	}
	if _, err := o.RealPath(dir + "/nope/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RealPath(missing dir) = %v", err)
	}
	if err := o.Symlink("/etc", dir+"/l"); err != nil {
		t.Fatal(err)
	}
	if s, _ := o.Readlink(dir + "/l"); s != "/etc" {
		t.Errorf("OS symlink target stored as %q", s)
	}
}

func TestLocalCreateThroughDanglingLink(t *testing.T) {
	l, home, outside := newJail(t)
	for name, target := range map[string]string{
		"dangle-abs": filepath.Join(outside, "created"),
		"dangle-rel": "../outside/created",
	} {
		if err := os.Symlink(target, filepath.Join(home, name)); err != nil {
			t.Fatal(err)
		}
		f, err := l.OpenFile("/"+name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err == nil {
			f.Close()
			t.Errorf("%s: created through a dangling link", name)
		} else if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want a permission error", name, err)
		}
		if _, err := os.Lstat(filepath.Join(outside, "created")); err == nil {
			t.Fatalf("%s: file created outside", name)
		}
	}
	// A dangling link inside is followed, as open(2) would.
	os.Symlink("sub/new", filepath.Join(home, "dangle-in"))
	f, err := l.OpenFile("/dangle-in", os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(home, "sub/new")); err != nil {
		t.Fatal(err)
	}
}

// TestLocalLchtimes: a link's own times are set, not its target's, and a
// link's directory is looked up inside the root like any other path.
func TestLocalLchtimes(t *testing.T) {
	l, home, outside := newJail(t)
	if err := os.Symlink("file", filepath.Join(home, "sub", "l")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(home, "out")); err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1600000000, 0)
	if err := l.Lchtimes("/sub/l", when, when); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(home, "sub", "l")); err != nil || !fi.ModTime().Equal(when) {
		t.Fatalf("link's mtime %v (%v), want %v", fi.ModTime(), err, when)
	}
	if fi, _ := os.Stat(filepath.Join(home, "file")); fi.ModTime().Equal(when) {
		t.Fatal("the link's target was changed")
	}
	before, _ := os.Lstat(filepath.Join(outside, "secret"))
	if err := l.Lchtimes("/out/secret", when, when); !errors.Is(err, ErrEscape) {
		t.Fatalf("Lchtimes through a link out of the root: %v, want ErrEscape", err)
	}
	if after, _ := os.Lstat(filepath.Join(outside, "secret")); !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("a file outside the root was changed")
	}
}

// TestLocalPosixRenameOverDirectory: as rename(2), a directory replaces
// an empty one and not a full one, and neither name may lead out of the
// root.
func TestLocalPosixRenameOverDirectory(t *testing.T) {
	l, home, outside := newJail(t)
	for _, d := range []string{"a", "empty", "full"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "full", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outside, "victim"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(home, "out")); err != nil {
		t.Fatal(err)
	}
	if err := l.PosixRename("/a", "/full"); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("rename over a full directory: %v, want ENOTEMPTY", err)
	}
	if err := l.PosixRename("/a", "/out/victim"); !errors.Is(err, ErrEscape) {
		t.Fatalf("rename over a directory outside: %v, want ErrEscape", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Fatalf("the directory outside is gone: %v", err)
	}
	if err := l.PosixRename("/a", "/empty"); err != nil {
		t.Fatalf("rename over an empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "a")); !os.IsNotExist(err) {
		t.Fatalf("old name still there: %v", err)
	}
}
