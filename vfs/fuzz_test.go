package vfs

import (
	"io"
	"os"
	"path"
	"path/filepath"
	"testing"
)

// FuzzLocalPaths resolves arbitrary names in a root holding links that
// lead out (absolute, relative, chained, looping) and checks that no name
// reads the outside file and that RealPath stays clean, absolute and
// consistent with Stat.
func FuzzLocalPaths(f *testing.F) {
	for _, s := range []string{"/", ".", "..", "/abs/secret", "up/secret", "sub/up2", "chain/secret",
		"/loop1", "sub/../../outside/secret", "in/../file", "in/", "//x//y/", "abs/", "sub/in2/file"} {
		f.Add(s)
	}
	base := f.TempDir()
	home, outside := filepath.Join(base, "home"), filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(home, "sub"), 0o755)
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644)
	os.WriteFile(filepath.Join(home, "file"), []byte("inside"), 0o644)
	for name, target := range map[string]string{
		"abs": outside, "up": "../outside", "sub/up2": "../../outside/secret", "chain": "up",
		"loop1": "loop2", "loop2": "loop1", "in": "sub", "sub/in2": "..",
	} {
		os.Symlink(target, filepath.Join(home, name))
	}
	l, err := Local(home)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if fh, err := l.OpenFile(name, os.O_RDONLY, 0); err == nil {
			b, _ := io.ReadAll(io.LimitReader(fh, 16))
			fh.Close()
			if string(b) == "SECRET" {
				t.Fatalf("OpenFile(%q) read the outside file", name)
			}
		}
		r, err := l.RealPath(name)
		if err != nil {
			return
		}
		if r != path.Clean(r) || !path.IsAbs(r) {
			t.Fatalf("RealPath(%q) = %q, not clean and absolute", name, r)
		}
		fi1, err1 := l.Stat(name)
		fi2, err2 := l.Stat(r)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && !os.SameFile(fi1, fi2)) {
			t.Fatalf("Stat(%q) = %v and Stat(RealPath = %q) = %v disagree", name, err1, r, err2)
		}
	})
}
