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
