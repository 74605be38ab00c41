package sftp

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFIFORequestsAnswered: requests on a FIFO in the home (a shell
// account's mkfifo) are answered at once and the session goes on. The
// open(2) under OPEN, OPENDIR and SETSTAT size used to wait for a peer
// that never came, holding the session (it could not even end), a thread
// and one of the account's open-file slots.
func TestFIFORequestsAnswered(t *testing.T) {
	ts := startServer(t, nil)
	fifo := filepath.Join(ts.root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	answered := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		select {
		case <-done:
			return
		case <-time.After(5 * time.Second):
		}
		// Release the blocked open so that the test ends.
		for range 50 {
			for _, flag := range []int{os.O_RDONLY, os.O_WRONLY} {
				if f, err := os.OpenFile(fifo, flag|syscall.O_NONBLOCK, 0); err == nil {
					time.Sleep(10 * time.Millisecond)
					f.Close()
				}
			}
			select {
			case <-done:
				t.Fatalf("%s blocked on the FIFO", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatalf("%s blocked on the FIFO for good", what)
	}

	answered("OPEN for reading", func() {
		rc.send(&openReq{ID: rc.nextID(), Path: "/fifo", PFlags: fxfRead})
		h := rc.handle()
		// pread(2) on a FIFO fails (ESPIPE): no data, no hang.
		rc.send(&readReq{ID: rc.nextID(), Handle: h, Offset: 0, Length: 16})
		if s := rc.status(); s.Code == StatusOK {
			t.Errorf("READ of a FIFO answered OK")
		}
		rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
		rc.expectStatus(StatusOK)
	})
	answered("OPEN for writing", func() {
		rc.send(&openReq{ID: rc.nextID(), Path: "/fifo", PFlags: fxfWrite})
		if s := rc.status(); s.Code == StatusOK {
			t.Errorf("OPEN for writing of a FIFO without a reader answered OK")
		}
	})
	answered("OPENDIR", func() {
		rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: "/fifo"})
		rc.expectStatus(StatusNoSuchFile) // ENOTDIR, as sftp-server answers it
	})
	answered("SETSTAT size", func() {
		rc.send(&setstatReq{ID: rc.nextID(), Path: "/fifo", Attrs: Attrs{Flags: AttrSize, Size: 0}})
		if s := rc.status(); s.Code == StatusOK {
			t.Errorf("SETSTAT size of a FIFO answered OK")
		}
	})
	answered("STAT after", func() {
		rc.send(&pathReq{Type: fxpStat, ID: rc.nextID(), Path: "/fifo"})
		var a attrsMsg
		if p := rc.recv(); !a.unmarshal(p) || a.Attrs.Permissions&modeTypeMask != modeFIFO {
			t.Errorf("STAT of the FIFO: %x", p)
		}
	})
}
