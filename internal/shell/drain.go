package shell

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// outputCopyBuf is the size of each read from a process's output, as
// io.Copy's.
const outputCopyBuf = 32 * 1024

// maxLateOutput bounds what is still read once the drain deadline has
// passed while the stream kept output: more than a terminal's buffers
// (its 4 KiB line discipline and 64 KiB of flip buffers) or a pipe's
// (64 KiB) hold, so a background child writing on cannot hold the session.
const maxLateOutput = 256 * 1024

// outputDrain copies one output stream of a process (a pipe, or a pty's
// master, both in non-blocking mode so that a read deadline works) to the
// client. Output the process had written when it exited is always
// delivered, however long a slow client takes to open its window for it:
// a drain deadline that also ran while the copy waited for the client
// cut the end off "ssh host 'cat file' | slow-reader" once the reader
// stalled for drainTimeout, with exit status 0. Only what background
// children write after that (into a pipe or terminal they inherited) is
// bounded, by drainTimeout of waiting on the stream.
type outputDrain struct {
	f    *os.File
	w    io.Writer
	done chan struct{}

	mu      sync.Mutex
	read    int64 // bytes read from f
	owed    int64 // read must reach this before the deadline is set; -1 while the process runs
	writing bool  // a chunk read is being written to the client
	armed   bool  // the deadline is set
	stopped bool  // the session ended: nothing more is read
	late    int64 // bytes read after the deadline had passed once
}

func startDrain(f *os.File, w io.Writer) *outputDrain {
	d := &outputDrain{f: f, w: w, done: make(chan struct{}), owed: -1}
	go d.run()
	return d
}

func (d *outputDrain) run() {
	defer close(d.done)
	buf := make([]byte, outputCopyBuf)
	for {
		n, err := d.f.Read(buf)
		if n > 0 {
			d.mu.Lock()
			d.read += int64(n)
			if d.late > 0 {
				d.late += int64(n)
			}
			d.writing = true
			d.mu.Unlock()
			_, werr := d.w.Write(buf[:n])
			d.mu.Lock()
			d.writing = false
			d.armLocked()
			d.mu.Unlock()
			if werr != nil {
				// The session is gone, or the client can no longer
				// write this output (server.ErrOutputClosed): as sshd,
				// close the stream, so that the process gets SIGPIPE
				// (or, on a terminal, the hangup) rather than running
				// on, blocked or writing for nobody.
				d.f.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && d.stillHolds() {
				continue
			}
			return // EOF, or EIO on a pty whose last holder left, or the deadline
		}
	}
}

// stillHolds reports, once the drain deadline has passed, whether the
// stream still holds output, and if so sets the deadline again. On a
// terminal what exited counted is at most the line discipline's 4 KiB
// (TIOCINQ) while the tty's flip buffers hold more, pushed on as it is
// read: the deadline, set once that much was read, could pass while the
// next chunk waited for a slow client's window, and the rest of what the
// command wrote before it exited was dropped (5 KB of 2 MB under -race).
func (d *outputDrain) stillHolds() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.late > maxLateOutput {
		return false
	}
	pending := 0
	if sc, err := d.f.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { pending = readableBytes(int(fd)) })
	}
	if pending == 0 {
		return false
	}
	d.late = max(d.late, 1)
	d.f.SetReadDeadline(time.Now().Add(drainTimeout))
	return true
}

// exited records that the process ended: what the stream holds now, and
// what was read before, is owed to the client; past it the stream is
// read for drainTimeout more at most.
func (d *outputDrain) exited() {
	pending := 0
	if sc, err := d.f.SyscallConn(); err == nil {
		// Through SyscallConn, not Fd, which would switch the
		// descriptor to blocking mode.
		sc.Control(func(fd uintptr) { pending = readableBytes(int(fd)) })
	}
	d.mu.Lock()
	d.owed = d.read + int64(pending)
	d.armLocked()
	d.mu.Unlock()
}

// armLocked sets the drain deadline once the owed output has been read
// and is not still waiting for the client's window.
func (d *outputDrain) armLocked() {
	if d.armed || d.owed < 0 || d.writing || d.read < d.owed {
		return
	}
	d.armed = true
	d.f.SetReadDeadline(time.Now().Add(drainTimeout))
}

// stop ends the copy at once: the session ended and nobody is left to
// read what the stream still holds.
func (d *outputDrain) stop() {
	d.mu.Lock()
	d.armed = true // armLocked must not move the deadline out again
	d.stopped = true
	d.mu.Unlock()
	d.f.SetReadDeadline(time.Now())
}

// wait waits for the copy to end, or stops it when the session ends.
func (d *outputDrain) wait(sessionDone <-chan struct{}) {
	select {
	case <-d.done:
	case <-sessionDone:
		d.stop()
		<-d.done
	}
}
