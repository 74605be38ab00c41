package shell

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stallingWriter is a client whose window closes once: the first Write
// after the drain deadline was set waits past that deadline.
type stallingWriter struct {
	d *outputDrain

	mu      sync.Mutex
	stalled bool
	got     int
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	armed := w.d.armed
	w.d.mu.Unlock()
	w.mu.Lock()
	stall := armed && !w.stalled
	w.stalled = w.stalled || stall
	w.mu.Unlock()
	if stall {
		time.Sleep(drainTimeout + 500*time.Millisecond)
	}
	w.mu.Lock()
	w.got += len(p)
	w.mu.Unlock()
	return len(p), nil
}

// TestDrainDeliversTerminalBacklog: what a command wrote to its terminal
// before it exited reaches the client even when the client's window
// closes for longer than drainTimeout after the drain deadline was set.
// TIOCINQ counts only the line discipline's 4 KiB while the tty's flip
// buffers hold the rest, so the deadline was set too early and the rest
// was dropped (TestSlowReaderGetsAllOutput lost 5 KB so, under -race).
func TestDrainDeliversTerminalBacklog(t *testing.T) {
	ptmx, tty, err := openPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	// Up to 12 KiB, as much as the terminal takes unread without blocking
	// (usually about 15 KiB; less while the kernel's flip-buffer work
	// lags, under -race: a blocking write then hung the test). NULs pass
	// a terminal unchanged.
	fd := int(tty.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	size := 0
	for chunk := make([]byte, 1024); size < 12<<10; {
		n, err := syscall.Write(fd, chunk)
		if n > 0 {
			size += n
		}
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			t.Fatal(err)
		}
	}
	if size <= 6<<10 {
		// TIOCINQ counts the line discipline's 4 KiB: the test needs
		// output beyond it, in the flip buffers.
		t.Skipf("the terminal took only %d bytes unread", size)
	}
	tty.Close() // the command exited; nothing else holds the terminal

	w := &stallingWriter{}
	d := &outputDrain{f: ptmx, w: w, done: make(chan struct{}), owed: -1}
	w.d = d
	d.exited()
	go d.run()
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.stop()
		t.Fatal("the drain did not end")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stalled {
		t.Fatal("the drain deadline was never set while output was written: the test did not stall the client")
	}
	if w.got != size {
		t.Errorf("client got %d bytes of the %d the command wrote", w.got, size)
	}
}
