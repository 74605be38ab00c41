package vfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// unblockFIFO runs op, which must not block on the FIFO at host path
// fifo. Should it still be running after a few seconds, the FIFO is given
// a peer of each kind (a non-blocking reader and writer, which release a
// blocked open) so that the test ends instead of hanging, and the test
// fails.
func unblockFIFO(t *testing.T, fifo, what string, op func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		op()
	}()
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	t.Errorf("%s blocked on a FIFO without a peer", what)
	for range 50 {
		r, _ := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		w, _ := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		select {
		case <-done:
		case <-time.After(100 * time.Millisecond):
		}
		for _, f := range []*os.File{r, w} {
			if f != nil {
				f.Close()
			}
		}
		select {
		case <-done:
			return
		default:
		}
	}
	t.Fatalf("%s still blocked", what)
}

// TestFIFONeverBlocks: a FIFO in a home (made by a shell account or
// another service) must not block a request: open(2) of a FIFO waits for
// a peer, and a blocked open held a thread, the session and an open-file
// slot for good. Every FS call that opens a file returns at once: a
// reader opens (and reads EOF), a writer fails with ENXIO, truncating
// fails, statvfs works.
func TestFIFONeverBlocks(t *testing.T) {
	l, home, _ := newJail(t)
	osfs, err := OS(home)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(home, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fsys FS
		p    string
	}{{"Local", l, "/fifo"}, {"OS", osfs, fifo}} {
		t.Run(c.name, func(t *testing.T) {
			unblockFIFO(t, fifo, "OpenFile for reading", func() {
				f, err := c.fsys.OpenFile(c.p, os.O_RDONLY, 0)
				if err != nil {
					t.Errorf("OpenFile for reading: %v", err)
					return
				}
				defer f.Close()
				if n, err := f.Read(make([]byte, 8)); n != 0 || err == nil {
					t.Errorf("Read with no writer = %d, %v; want 0, EOF", n, err)
				}
			})
			unblockFIFO(t, fifo, "OpenFile for writing", func() {
				f, err := c.fsys.OpenFile(c.p, os.O_WRONLY, 0)
				if err == nil {
					f.Close()
					t.Errorf("OpenFile for writing with no reader succeeded")
				}
			})
			unblockFIFO(t, fifo, "Truncate", func() {
				if err := c.fsys.Truncate(c.p, 0); err == nil {
					t.Errorf("Truncate of a FIFO succeeded")
				}
			})
			unblockFIFO(t, fifo, "StatVFS", func() {
				if _, err := c.fsys.StatVFS(c.p); err != nil {
					t.Errorf("StatVFS: %v", err)
				}
			})
		})
	}
}

// TestOpenRegularFileBlocking: the O_NONBLOCK that keeps FIFOs from
// blocking is taken off regular files again, so they are opened as
// before.
func TestOpenRegularFileBlocking(t *testing.T) {
	l, _, _ := newJail(t)
	f, err := l.OpenFile("/file", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := f.(*osFile).f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		flags, ferr = int(r), nil
		if e != 0 {
			ferr = e
		}
	})
	if ferr != nil {
		t.Fatal(ferr)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		t.Errorf("regular file left O_NONBLOCK (flags %#x)", flags)
	}
}
