package connection

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// delayDepth bounds the packets in flight on one direction of a delayConn;
// the channel windows bound data far below it (16 MiB / 32 KiB = 512).
const delayDepth = 1 << 14

type delayed struct {
	due time.Time
	b   []byte
}

// delayConn is one end of an in-memory PacketConn pair whose packets arrive
// a fixed delay after they were written, like a long fat pipe with unlimited
// bandwidth: the window alone limits throughput.
type delayConn struct {
	in, out chan delayed
	delay   time.Duration
	done    chan struct{}
	once    *sync.Once
}

func newDelayPipe(oneWay time.Duration) (*delayConn, *delayConn) {
	a2b, b2a := make(chan delayed, delayDepth), make(chan delayed, delayDepth)
	done, once := make(chan struct{}), new(sync.Once)
	return &delayConn{in: b2a, out: a2b, delay: oneWay, done: done, once: once},
		&delayConn{in: a2b, out: b2a, delay: oneWay, done: done, once: once}
}

func (c *delayConn) ReadPacket() ([]byte, error) {
	select {
	case d := <-c.in:
		if w := time.Until(d.due); w > 0 {
			select {
			case <-time.After(w):
			case <-c.done:
				return nil, errPipeClosed
			}
		}
		return d.b, nil
	case <-c.done:
		return nil, errPipeClosed
	}
}

func (c *delayConn) WritePacket(p []byte) error {
	select {
	case c.out <- delayed{time.Now().Add(c.delay), append([]byte(nil), p...)}:
		return nil
	case <-c.done:
		return errPipeClosed
	}
}

func (c *delayConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// TestWindowGrowthLongFatPipe: an upload over a 50 ms round trip is limited
// by the window (window / RTT), so with a reader that keeps up the receive
// window must grow to MaxWindow. The throughput is logged, not asserted.
func TestWindowGrowthLongFatPipe(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB over a simulated 50 ms round trip")
	}
	const oneWay = 25 * time.Millisecond
	const total = 64 << 20
	cc, sc := newDelayPipe(oneWay)
	client, err := New(cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &muxPair{client: client, server: server, clientErr: make(chan error, 1), serverErr: make(chan error, 1)}
	go func() { p.clientErr <- client.Run() }()
	go func() { p.serverErr <- server.Run() }()
	t.Cleanup(func() {
		cc.Close()
		waitErr(t, p.clientErr)
		waitErr(t, p.serverErr)
	})
	c, s := p.openPair(t, "session", nil)
	start := time.Now()
	go func() {
		buf := make([]byte, 256<<10)
		for range total / len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		c.CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	n := 0
	for {
		m, err := s.Read(buf)
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if n != total {
		t.Fatalf("read %d bytes, want %d", n, total)
	}
	w, _ := s.Window()
	t.Logf("%d MiB at 50 ms RTT in %v: %.1f MB/s, window %d -> %d", total>>20, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds()/1e6, DefaultInitialWindow, w)
	if w != DefaultMaxWindow {
		t.Errorf("window %d, want it grown to MaxWindow %d on a window-limited path", w, DefaultMaxWindow)
	}
}
