package server

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first Accepts with err, then hands out conns.
type flakyListener struct {
	fails int
	err   error
	conns chan net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, l.err
	}
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *flakyListener) Close() error   { return nil }
func (l *flakyListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestForwardAcceptRetries: a remote forward's accept loop (ssh -R)
// returned on any error, so one EMFILE (the process out of descriptors
// for a moment) ended the forward for the rest of the connection while
// the client believed it was listening. Such errors are waited out; the
// listener's close still ends the loop.
func TestForwardAcceptRetries(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	l := &flakyListener{fails: 3, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}, conns: make(chan net.Conn, 1)}
	l.conns <- a
	nc, err := acceptRetrying(context.Background(), l)
	if err != nil || nc != a {
		t.Fatalf("acceptRetrying after EMFILE = %v, %v", nc, err)
	}
	close(l.conns)
	if _, err := acceptRetrying(context.Background(), l); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("acceptRetrying on a closed listener = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l = &flakyListener{fails: 1 << 30, err: syscall.EMFILE}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := acceptRetrying(ctx, l); !errors.Is(err, context.Canceled) {
		t.Fatalf("acceptRetrying with its context done = %v", err)
	}
}
