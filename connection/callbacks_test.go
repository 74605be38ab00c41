package connection

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestHandleOpenAndAcceptFunc covers the callback style a server uses to
// save goroutines: opens arrive through Config.HandleOpen, requests go to
// AcceptFunc's function in order (and never to Requests()), and onDone
// runs once when the channel is freed.
func TestHandleOpenAndAcceptFunc(t *testing.T) {
	type accepted struct {
		c   *Channel
		err error
	}
	acc := make(chan accepted, 1)
	reqs := make(chan string, 10)
	done := make(chan struct{}, 2)
	scfg := &Config{}
	scfg.HandleOpen = func(nc *NewChannel) {
		go func() {
			c, err := nc.AcceptFunc(func(r *Request) {
				reqs <- r.Type
				r.Reply(r.Type == "yes")
			}, func() { done <- struct{}{} })
			acc <- accepted{c, err}
		}()
	}
	p := newMuxPair(t, &Config{}, scfg)
	cc, err := p.client.OpenChannel(ctxT(t), ChannelTypeSession, nil)
	if err != nil {
		t.Fatalf("OpenChannel: %v", err)
	}
	a := <-acc
	if a.err != nil {
		t.Fatalf("AcceptFunc: %v", a.err)
	}
	for _, want := range []struct {
		name string
		ok   bool
	}{{"yes", true}, {"no", false}, {"yes", true}} {
		ok, err := cc.SendRequest(want.name, true, nil)
		if err != nil || ok != want.ok {
			t.Fatalf("request %q: ok=%v err=%v, want ok=%v", want.name, ok, err, want.ok)
		}
		if got := <-reqs; got != want.name {
			t.Fatalf("onRequest got %q, want %q", got, want.name)
		}
	}
	// Requests() is closed from the start, so a range over it ends.
	select {
	case r, ok := <-a.c.Requests():
		if ok {
			t.Fatalf("request %q also queued on Requests()", r.Type)
		}
	default:
		t.Fatal("Requests() of an AcceptFunc channel blocks; want it closed")
	}
	cc.Close()
	waitDone(t, a.c)
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("onDone not called after the channel was freed")
	}
	select {
	case <-done:
		t.Fatal("onDone called twice")
	case <-time.After(50 * time.Millisecond):
	}
}

// TestHandleOpenPendingLimit checks opens handed to HandleOpen but not yet
// answered still count against MaxPendingOpens.
func TestHandleOpenPendingLimit(t *testing.T) {
	held := make(chan *NewChannel, 4)
	scfg := &Config{MaxPendingOpens: 2, HandleOpen: func(nc *NewChannel) { held <- nc }}
	p := newMuxPair(t, &Config{}, scfg)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := p.client.OpenChannel(ctxT(t), ChannelTypeSession, nil)
			errs <- err
		}()
	}
	// Two are held unanswered; the third is refused at once.
	select {
	case err := <-errs:
		if _, ok := err.(*OpenError); !ok {
			t.Fatalf("third open: %v, want an *OpenError", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("third open not refused")
	}
	for range 2 {
		nc := <-held
		if err := nc.Reject(1, "no"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatal("rejected open succeeded")
		}
	}
}

// TestCloseWithRequest: EOF, the request without want-reply, then CLOSE,
// in that order, and nothing more after a second call.
func TestCloseWithRequest(t *testing.T) {
	r := newRawPeer(t, &Config{})
	c, conf := r.openAccepted(1<<20, 32*1024)
	if err := c.CloseWithRequest(RequestExitStatus, []byte{0, 0, 0, 3}); err != nil {
		t.Fatal(err)
	}
	var eof channelEOFMsg
	if p := r.recv(); !eof.unmarshal(p) || eof.RecipientChannel != conf.RecipientChannel {
		t.Fatalf("want CHANNEL_EOF first, got % x", p)
	}
	var req channelRequestMsg
	if p := r.recv(); !req.unmarshal(p) || req.RequestType != RequestExitStatus || req.WantReply || string(req.Data) != "\x00\x00\x00\x03" {
		t.Fatalf("want exit-status 3 without reply, got % x", p)
	}
	var cl channelCloseMsg
	if p := r.recv(); !cl.unmarshal(p) {
		t.Fatalf("want CHANNEL_CLOSE, got % x", p)
	}
	if err := c.CloseWithRequest(RequestExitStatus, nil); err != nil {
		t.Fatalf("second call: %v", err)
	}
	r.send((&globalRequestMsg{RequestName: "sync", WantReply: true}).appendTo(nil))
	if p := r.recv(); len(p) != 1 || p[0] != 82 { // REQUEST_FAILURE
		t.Fatalf("after a second CloseWithRequest got % x, want only the sync reply", p)
	}
}

// TestWriteBuffers: buffers are packed into packets of the peer's maximum
// size across buffer boundaries, and the bytes arrive in order.
func TestWriteBuffers(t *testing.T) {
	r := newRawPeer(t, &Config{})
	c, _ := r.openAccepted(1<<20, 1000)
	var want []byte
	var bufs [][]byte
	for i, n := range []int{1013, 1013, 5, 0, 2500, 13} {
		b := bytes.Repeat([]byte{byte('a' + i)}, n)
		want = append(want, b...)
		bufs = append(bufs, b)
	}
	done := make(chan error, 1)
	go func() {
		n, err := c.WriteBuffers(bufs)
		if err == nil && n != len(want) {
			err = fmt.Errorf("wrote %d of %d", n, len(want))
		}
		done <- err
	}()
	var got []byte
	var sizes []int
	for len(got) < len(want) {
		var m channelDataMsg
		p := r.recv()
		if !m.unmarshal(p) {
			t.Fatalf("want CHANNEL_DATA, got % x", p[:min(len(p), 16)])
		}
		sizes = append(sizes, len(m.Data))
		got = append(got, m.Data...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("data reordered or corrupted")
	}
	// 4544 bytes at 1000 per packet: five packets, all full but the last.
	if fmt.Sprint(sizes) != "[1000 1000 1000 1000 544]" {
		t.Fatalf("packet sizes %v, want [1000 1000 1000 1000 544]", sizes)
	}
}
