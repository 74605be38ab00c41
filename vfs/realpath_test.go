package vfs

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
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
	home := deepDirs(t, depth)
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

// TestRealPathHoldsFewDescriptors: RealPath of a deep path keeps one
// directory open at a time. Holding every directory on the way (as the
// walk first did) took a descriptor per component, outside MaxOpenFiles:
// a few concurrent REALPATHs of 2,000-deep paths could use up the
// process's descriptors and fail every other customer's accept and open.
// Run under a descriptor limit a little above what is open now.
func TestRealPathHoldsFewDescriptors(t *testing.T) {
	const depth = 300
	home := deepDirs(t, depth)
	// A ".." from a link target makes the walk go back up.
	if err := os.Symlink("../d", home+"/"+strings.Repeat("d/", depth-1)+"up"); err != nil {
		t.Fatal(err)
	}
	l, err := Local(home)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	tight := lim
	tight.Cur = uint64(len(ents) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &tight); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	got, err := l.RealPath("/" + strings.Repeat("d/", depth-1) + "up/x")
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	want := "/" + strings.Repeat("d/", depth-1) + "x"
	if err != nil || got != want {
		t.Fatalf("RealPath under %d descriptors = %q, %v; want %q", tight.Cur, got, err, want)
	}
}

// TestPathTooLong: a path over MaxPathLen fails with ENAMETOOLONG, as
// the kernel fails one over PATH_MAX, before os.Root walks it.
func TestPathTooLong(t *testing.T) {
	l, err := Local(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	long := "/" + strings.Repeat("a/", MaxPathLen/2) + "f"
	checks := map[string]error{}
	_, checks["open"] = l.OpenFile(long, os.O_RDONLY, 0)
	_, checks["stat"] = l.Stat(long)
	_, checks["lstat"] = l.Lstat(long)
	checks["mkdir"] = l.Mkdir(long, 0o755)
	checks["remove"] = l.Remove(long)
	checks["rename"] = l.Rename("/f", long)
	checks["posix-rename"] = l.PosixRename(long, "/f")
	checks["symlink"] = l.Symlink("f", long)
	_, checks["readlink"] = l.Readlink(long)
	_, checks["realpath"] = l.RealPath(long)
	checks["chmod"] = l.Chmod(long, 0o644)
	checks["chtimes"] = l.Chtimes(long, time.Now(), time.Now())
	checks["truncate"] = l.Truncate(long, 0)
	_, checks["statvfs"] = l.StatVFS(long)
	for op, err := range checks {
		if !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s of a %d-byte path: %v, want ENAMETOOLONG", op, len(long), err)
		}
	}
	// One of MaxPathLen is taken.
	ok := ("/" + strings.Repeat("b/", MaxPathLen))[:MaxPathLen-1] + "c"
	if _, err := l.Stat(ok); errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("stat of a %d-byte path: %v", len(ok), err)
	}
}

// deepDirs makes a temporary home holding d/d/d/... depth levels deep.
func deepDirs(t *testing.T, depth int) string {
	t.Helper()
	home := t.TempDir()
	r, err := os.OpenRoot(home)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := ""
	for range depth {
		p += "d/"
		if err := r.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return home
}
