package vfs

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestRealPathDeepLinear: RealPath looks each component up once, in the
// directory the components before it named. It looked every prefix up
// from the root again, 1+2+...+n components for a path n directories
// deep: 6 s of CPU for one REALPATH of a 2,000-deep path (4,000 bytes)
// that a client made with MKDIR. Counted in allocations, which grow with
// the components walked, so the test needs no clock: 400 deep took
// about 85,000 allocations and now takes about 3,200.
func TestRealPathDeepLinear(t *testing.T) {
	const depth = 400
	home := t.TempDir()
	r, err := os.OpenRoot(home)
	if err != nil {
		t.Fatal(err)
	}
	p := ""
	for range depth {
		p += "d/"
		if err := r.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	// A link halfway down, so that the walk also restarts.
	mid := strings.Repeat("d/", depth/2)
	if err := os.Symlink("d", home+"/"+mid+"link"); err != nil {
		t.Fatal(err)
	}
	l, err := Local(home)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	name := "/" + mid + "link/" + strings.Repeat("d/", depth/2-1) + "new"
	want := "/" + strings.Repeat("d/", depth) + "new"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := l.RealPath(name)
	runtime.ReadMemStats(&after)
	if err != nil || got != want {
		t.Fatalf("RealPath = %q, %v; want %q", got, err, want)
	}
	if n := after.Mallocs - before.Mallocs; n > 20*depth {
		t.Errorf("RealPath of a path %d deep made %d allocations, want at most %d: it walks more than each component once", depth, n, 20*depth)
	} else {
		t.Logf("%d allocations", n)
	}
}
