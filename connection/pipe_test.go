package connection

import (
	"errors"
	"sync"
)

// pipeDepth is how many packets one direction of a test pipe holds before
// WritePacket blocks, like a socket buffer. Windows bound the data really
// in flight, so tests never fill it.
const pipeDepth = 8192

var errPipeClosed = errors.New("pipe closed")

// pipeHalf is one direction of an in-memory PacketConn pair. Packets are
// copied into recycled buffers, and a buffer returned by ReadPacket is
// recycled on the next ReadPacket call, so the pipe itself allocates nothing
// in steady state and allocation tests measure the Mux alone.
type pipeHalf struct {
	q    chan *[]byte
	free chan *[]byte
	done chan struct{}
	once sync.Once
}

func newPipeHalf() *pipeHalf {
	return &pipeHalf{
		q:    make(chan *[]byte, pipeDepth),
		free: make(chan *[]byte, pipeDepth+2),
		done: make(chan struct{}),
	}
}

func (h *pipeHalf) close() { h.once.Do(func() { close(h.done) }) }

// pipeConn is one end: it reads from in and writes to out.
type pipeConn struct {
	in, out *pipeHalf
	last    *[]byte
	hookMu  sync.Mutex
	// onWrite, if set, sees every packet written (tests that inspect
	// what a Mux sends). It must not retain p.
	onWrite func(p []byte)
}

func (c *pipeConn) setOnWrite(f func(p []byte)) {
	c.hookMu.Lock()
	c.onWrite = f
	c.hookMu.Unlock()
}

func (c *pipeConn) ReadPacket() ([]byte, error) {
	if c.last != nil {
		select {
		case c.in.free <- c.last:
		default:
		}
		c.last = nil
	}
	select {
	case b := <-c.in.q:
		c.last = b
		return *b, nil
	case <-c.in.done:
		// Deliver what was queued before the close, like TCP.
		select {
		case b := <-c.in.q:
			c.last = b
			return *b, nil
		default:
			return nil, errPipeClosed
		}
	}
}

func (c *pipeConn) WritePacket(p []byte) error {
	select {
	case <-c.out.done:
		return errPipeClosed
	default:
	}
	c.hookMu.Lock()
	if c.onWrite != nil {
		c.onWrite(p)
	}
	c.hookMu.Unlock()
	var b *[]byte
	select {
	case b = <-c.out.free:
	default:
		nb := make([]byte, 0, len(p))
		b = &nb
	}
	*b = append((*b)[:0], p...)
	select {
	case c.out.q <- b:
		return nil
	case <-c.out.done:
		return errPipeClosed
	}
}

// Close ends both directions.
func (c *pipeConn) Close() error {
	c.in.close()
	c.out.close()
	return nil
}

func newPipe() (*pipeConn, *pipeConn) {
	a2b, b2a := newPipeHalf(), newPipeHalf()
	return &pipeConn{in: b2a, out: a2b}, &pipeConn{in: a2b, out: b2a}
}
