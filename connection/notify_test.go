package connection

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// notified returns a NotifyReadable callback and a channel that receives
// one value per call.
func notified() (func(), chan struct{}) {
	ch := make(chan struct{}, 4)
	return func() { ch <- struct{}{} }, ch
}

func expectNotified(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("%s: NotifyReadable callback not called", what)
	}
}

func expectNotNotified(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: callback called", what)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestNotifyReadable: the callback fires once, when data, EOF, CLOSE, a
// local Close or the connection's end makes Read not block; NotifyReadable
// reports false when Read would not block now.
func TestNotifyReadable(t *testing.T) {
	t.Run("data", func(t *testing.T) {
		p := newMuxPair(t, nil, nil)
		c, s := p.openPair(t, "session", nil)
		f, ch := notified()
		if !s.NotifyReadable(f) {
			t.Fatal("NotifyReadable on an empty channel reported readable")
		}
		expectNotNotified(t, ch, "before data")
		// Extended data is not stdout: no call.
		if _, err := c.Stderr().Write([]byte("err")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		expectNotified(t, ch, "data")
		if s.NotifyReadable(f) {
			t.Fatal("NotifyReadable with buffered data kept the callback")
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read %q %v", buf, err)
		}
		// One call per registration: more data without a new one calls nothing.
		c.Write([]byte("x"))
		expectNotNotified(t, ch, "second data")
	})
	t.Run("EOF", func(t *testing.T) {
		p := newMuxPair(t, nil, nil)
		c, s := p.openPair(t, "session", nil)
		f, ch := notified()
		s.NotifyReadable(f)
		c.CloseWrite()
		expectNotified(t, ch, "EOF")
		if _, err := s.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read after EOF: %v", err)
		}
		if s.NotifyReadable(f) {
			t.Fatal("NotifyReadable after EOF kept the callback")
		}
	})
	t.Run("peer close", func(t *testing.T) {
		p := newMuxPair(t, nil, nil)
		c, s := p.openPair(t, "session", nil)
		f, ch := notified()
		s.NotifyReadable(f)
		c.Close()
		expectNotified(t, ch, "CLOSE")
	})
	t.Run("local close", func(t *testing.T) {
		p := newMuxPair(t, nil, nil)
		_, s := p.openPair(t, "session", nil)
		f, ch := notified()
		s.NotifyReadable(f)
		s.Close()
		expectNotified(t, ch, "Close")
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	})
	t.Run("connection end", func(t *testing.T) {
		p := newMuxPair(t, nil, nil)
		_, s := p.openPair(t, "session", nil)
		f, ch := notified()
		s.NotifyReadable(f)
		p.clientConn.Close()
		expectNotified(t, ch, "connection end")
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Fatal("Read after the connection ended succeeded")
		}
	})
}

// TestNotifyReadableRaw: with a raw peer, data on another channel or a
// window adjust does not call the callback; data on its own channel does.
func TestNotifyReadableRaw(t *testing.T) {
	r := newRawPeer(t, nil)
	ch, confirm := r.openAccepted(1<<20, 32768)
	f, calls := notified()
	if !ch.NotifyReadable(f) {
		t.Fatal("empty channel reported readable")
	}
	r.send(wire.AppendUint32(wire.AppendUint32([]byte{wire.MsgChannelWindowAdjust}, confirm.SenderChannel), 100))
	expectNotNotified(t, calls, "window adjust")
	r.send(dataMsg(confirm.SenderChannel, []byte("abc")))
	expectNotified(t, calls, "data")
}

// TestNotifyReadableEmptyData: an empty CHANNEL_DATA leaves Read blocking,
// so it must not use up the callback.
func TestNotifyReadableEmptyData(t *testing.T) {
	r := newRawPeer(t, &Config{})
	c, conf := r.openAccepted(1<<20, 32*1024)
	f, ch := notified()
	if !c.NotifyReadable(f) {
		t.Fatal("NotifyReadable on an empty channel reported readable")
	}
	r.send(dataMsg(conf.SenderChannel, nil))
	// A round trip through the read loop: the empty data was handled.
	r.send((&globalRequestMsg{RequestName: "sync", WantReply: true}).appendTo(nil))
	r.recv()
	expectNotNotified(t, ch, "empty data")
	r.send(dataMsg(conf.SenderChannel, []byte("x")))
	expectNotified(t, ch, "data after empty data")
}

// TestReadLoopPanic: a callback panicking on the read loop ends Run with a
// *PanicError, and every channel ends, so a handler blocked in Read wakes
// up instead of waiting for a loop that is gone.
func TestReadLoopPanic(t *testing.T) {
	r := newRawPeer(t, &Config{})
	c, conf := r.openAccepted(1<<20, 32*1024)
	other, _ := r.openAccepted(1<<20, 32*1024)
	if !c.NotifyReadable(func() { panic("callback broke") }) {
		t.Fatal("NotifyReadable on an empty channel reported readable")
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := other.Read(make([]byte, 1))
		readErr <- err
	}()
	r.send(dataMsg(conf.SenderChannel, []byte("x")))
	select {
	case err := <-r.err:
		r.err <- err
		var pe *PanicError
		if !errors.As(err, &pe) || pe.Value != "callback broke" || len(pe.Stack) == 0 {
			t.Fatalf("Run returned %v, want a *PanicError with the value and a stack", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not end after the panic")
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrMuxClosed) {
			t.Fatalf("blocked Read returned %v, want ErrMuxClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("a Read on another channel still blocks after the read loop panicked")
	}
	select {
	case <-other.Done():
	case <-time.After(testTimeout):
		t.Fatal("channel not done after the read loop panicked")
	}
}
