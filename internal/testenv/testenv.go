// Package testenv lets tests find the external programs they drive (real SSH
// clients, servers and tools). A missing tool skips the test locally, but
// under CI=true it fails: CI installs every tool, so a skip there would hide
// a test that silently stopped running.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// NeedTool returns the path of the named program, or skips the test (fails
// it under CI) when it is not installed.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	Missing(t, name+" is not installed")
	return ""
}

// SystemPython returns Debian's /usr/bin/python3, where python3-paramiko is
// installed (a pyenv python3 earlier on PATH does not have it), after
// checking that it can import the given modules.
func SystemPython(t testing.TB, modules ...string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		Missing(t, "/usr/bin/python3 is not installed")
		return ""
	}
	for _, m := range modules {
		if err := exec.Command(py, "-c", "import "+m).Run(); err != nil {
			Missing(t, "python module "+m+" is not installed for /usr/bin/python3")
			return ""
		}
	}
	return py
}

// Missing skips the test, or fails it under CI, for a missing prerequisite.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and %s", why)
	}
	t.Skip(why)
}

// LockedBuffer collects a subprocess's or server's output while a test
// reads it from another goroutine.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
