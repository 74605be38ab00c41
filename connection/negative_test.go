package connection

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

func TestWindowOverrun(t *testing.T) {
	r := newRawPeer(t, &Config{InitialWindow: 1000})
	_, conf := r.openAccepted(1<<20, 32768)
	if conf.InitialWindowSize != 1000 || conf.MaximumPacketSize != DefaultMaxPacket {
		t.Fatalf("confirmation advertises window %d, max packet %d", conf.InitialWindowSize, conf.MaximumPacketSize)
	}
	r.send(dataMsg(conf.SenderChannel, make([]byte, 600)))
	// Nobody reads: 400 bytes of credit left.
	r.send(dataMsg(conf.SenderChannel, make([]byte, 401)))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

func TestWindowOverrunExtendedData(t *testing.T) {
	r := newRawPeer(t, &Config{InitialWindow: 1000})
	_, conf := r.openAccepted(1<<20, 32768)
	r.send(dataMsg(conf.SenderChannel, make([]byte, 500)))
	// Extended data shares the window (RFC 4254 §5.2).
	r.send((&extendedDataMsg{RecipientChannel: conf.SenderChannel, DataTypeCode: 1, Data: make([]byte, 501)}).appendTo(nil))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

func TestMaxPacketExceeded(t *testing.T) {
	r := newRawPeer(t, &Config{MaxPacket: 1000})
	_, conf := r.openAccepted(1<<20, 32768)
	if conf.MaximumPacketSize != 1000 {
		t.Fatalf("max packet %d advertised", conf.MaximumPacketSize)
	}
	r.send(dataMsg(conf.SenderChannel, make([]byte, 1000)))
	r.send(dataMsg(conf.SenderChannel, make([]byte, 1001)))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

func TestDataOnUnknownChannel(t *testing.T) {
	r := newRawPeer(t, nil)
	r.send(dataMsg(7, []byte("x")))
	de := r.expectDisconnect(wire.DisconnectProtocolError)
	if !bytes.Contains([]byte(de.Message), []byte("unknown channel 7")) {
		t.Errorf("message %q", de.Message)
	}
}

func TestDataAfterClose(t *testing.T) {
	r := newRawPeer(t, nil)
	c, conf := r.openAccepted(1<<20, 32768)
	r.send((&channelCloseMsg{RecipientChannel: conf.SenderChannel}).appendTo(nil))
	if p := r.recv(); !bytes.Equal(p, (&channelCloseMsg{RecipientChannel: 0}).appendTo(nil)) {
		t.Fatalf("want CLOSE answer, got % x", p)
	}
	waitDone(t, c)
	r.send(dataMsg(conf.SenderChannel, []byte("x")))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

// TestDataCrossingOurClose: data the peer sent before it saw our CLOSE is
// legal and dropped (RFC 4254 §5.3).
func TestDataCrossingOurClose(t *testing.T) {
	r := newRawPeer(t, nil)
	c, conf := r.openAccepted(1<<20, 32768)
	c.Close()
	if p := r.recv(); p[0] != wire.MsgChannelClose {
		t.Fatalf("want CLOSE, got % x", p)
	}
	r.send(dataMsg(conf.SenderChannel, []byte("in flight")))
	r.send((&channelRequestMsg{RecipientChannel: conf.SenderChannel, RequestType: "x", WantReply: true}).appendTo(nil))
	r.send((&channelCloseMsg{RecipientChannel: conf.SenderChannel}).appendTo(nil))
	waitDone(t, c)
	// Nothing else was sent: no reply after our CLOSE. A global request's
	// reply is the next packet.
	r.send((&globalRequestMsg{RequestName: "x", WantReply: true}).appendTo(nil))
	if p := r.recv(); !bytes.Equal(p, []byte{wire.MsgRequestFailure}) {
		t.Fatalf("got % x after our CLOSE", p)
	}
}

func TestDataAfterEOF(t *testing.T) {
	r := newRawPeer(t, nil)
	_, conf := r.openAccepted(1<<20, 32768)
	r.send((&channelEOFMsg{RecipientChannel: conf.SenderChannel}).appendTo(nil))
	r.send(dataMsg(conf.SenderChannel, []byte("x")))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

func TestWindowAdjustOverflow(t *testing.T) {
	r := newRawPeer(t, nil)
	_, conf := r.openAccepted(0xffffff00, 32768)
	r.send((&windowAdjustMsg{RecipientChannel: conf.SenderChannel, BytesToAdd: 0xff}).appendTo(nil))
	r.send((&windowAdjustMsg{RecipientChannel: conf.SenderChannel, BytesToAdd: 1}).appendTo(nil))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

func TestWriteRespectsPeerWindowAndMaxPacket(t *testing.T) {
	r := newRawPeer(t, nil)
	c, conf := r.openAccepted(1000, 300)
	written := make(chan error, 1)
	go func() { _, err := c.Write(bytes.Repeat([]byte("a"), 1500)); written <- err }()
	var sizes []int
	got := 0
	for got < 1000 {
		var d channelDataMsg
		p := r.recv()
		if !d.unmarshal(p) || d.RecipientChannel != conf.RecipientChannel {
			t.Fatalf("want CHANNEL_DATA, got % x", p)
		}
		sizes = append(sizes, len(d.Data))
		got += len(d.Data)
	}
	if want := []int{300, 300, 300, 100}; !equalInts(sizes, want) {
		t.Fatalf("packet sizes %v, want %v", sizes, want)
	}
	select {
	case err := <-written:
		t.Fatalf("Write returned %v with the peer's window exhausted", err)
	default:
	}
	r.send((&windowAdjustMsg{RecipientChannel: conf.SenderChannel, BytesToAdd: 500}).appendTo(nil))
	var d channelDataMsg
	for _, want := range []int{300, 200} {
		if p := r.recv(); !d.unmarshal(p) || len(d.Data) != want {
			t.Fatalf("want %d bytes of data, got % x", want, p)
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	// Close unblocks a writer waiting for window.
	go func() { _, err := c.Write([]byte("more")); written <- err }()
	c.Close()
	if err := <-written; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Write after Close: %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMalformedMessages(t *testing.T) {
	// Each case runs against a Mux with channel 0 open (peer channel 0).
	cases := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"transport message", []byte{wire.MsgKexInit}},
		{"userauth message", []byte{wire.MsgUserAuthRequest, 0, 0, 0, 0}},
		{"above 100", []byte{101}},
		{"EOF trailing", []byte{wire.MsgChannelEOF, 0, 0, 0, 0, 0}},
		{"EOF short", []byte{wire.MsgChannelEOF, 0, 0, 0}},
		{"CLOSE short", []byte{wire.MsgChannelClose}},
		{"data length mismatch", []byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}},
		{"data trailing", []byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'b'}},
		{"extended data short", []byte{wire.MsgChannelExtendedData, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"window adjust short", []byte{wire.MsgChannelWindowAdjust, 0, 0, 0, 0, 0}},
		{"open truncated", []byte{wire.MsgChannelOpen, 0, 0, 0, 7, 's', 'e'}},
		{"open max packet 0", (&channelOpenMsg{ChannelType: "session", InitialWindowSize: 10}).appendTo(nil)},
		{"open confirmation unknown", (&channelOpenConfirmMsg{RecipientChannel: 5, MaximumPacketSize: 10}).appendTo(nil)},
		{"open confirmation of open channel", (&channelOpenConfirmMsg{RecipientChannel: 0, MaximumPacketSize: 10}).appendTo(nil)},
		{"open failure unknown", (&channelOpenFailureMsg{RecipientChannel: 0}).appendTo(nil)},
		{"open failure trailing", append((&channelOpenFailureMsg{RecipientChannel: 0}).appendTo(nil), 0)},
		{"request truncated", []byte{wire.MsgChannelRequest, 0, 0, 0, 0, 0, 0, 0, 9, 'x'}},
		{"channel success without request", (&channelSuccessMsg{}).appendTo(nil)},
		{"channel failure without request", (&channelFailureMsg{}).appendTo(nil)},
		{"global success without request", []byte{wire.MsgRequestSuccess}},
		{"global failure without request", []byte{wire.MsgRequestFailure}},
		{"global failure trailing", []byte{wire.MsgRequestFailure, 0}},
		{"global request truncated", []byte{wire.MsgGlobalRequest, 0, 0, 0, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawPeer(t, nil)
			r.openAccepted(1<<20, 32768)
			r.send(tc.p)
			r.expectDisconnect(wire.DisconnectProtocolError)
		})
	}
}

func TestHandleMessageHook(t *testing.T) {
	var seen []byte
	r := newRawPeer(t, &Config{HandleMessage: func(p []byte) error {
		seen = append(seen, p[0])
		if p[0] == wire.MsgUserAuthRequest {
			return nil // RFC 4252 §5.1: later auth requests are ignored
		}
		return wire.ProtocolError("nope")
	}})
	r.send([]byte{wire.MsgUserAuthRequest})
	r.send([]byte{wire.MsgKexInit})
	r.expectDisconnect(wire.DisconnectProtocolError)
	if !bytes.Equal(seen, []byte{wire.MsgUserAuthRequest, wire.MsgKexInit}) {
		t.Fatalf("hook saw %v", seen)
	}
}

// TestOpenFlood sends thousands of CHANNEL_OPENs to a server layer that
// accepts slowly: everything beyond the pending queue and MaxChannels is
// refused at once with RESOURCE_SHORTAGE, without goroutines or memory
// growing with the flood.
func TestOpenFlood(t *testing.T) {
	const maxChannels, maxPending, flood = 8, 4, 5000
	r := newRawPeer(t, &Config{MaxChannels: maxChannels, MaxPendingOpens: maxPending})
	runtime.GC()
	goroutinesBefore := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range uint32(flood) {
			r.send((&channelOpenMsg{ChannelType: "session", SenderChannel: i, InitialWindowSize: 1 << 20, MaximumPacketSize: 32768}).appendTo(nil))
		}
	}()
	refused := 0
	for refused < flood-maxPending {
		var f channelOpenFailureMsg
		p := r.recv()
		if !f.unmarshal(p) || f.ReasonCode != wire.OpenResourceShortage {
			t.Fatalf("packet %d: want OPEN_FAILURE RESOURCE_SHORTAGE, got % x", refused, p)
		}
		if f.RecipientChannel < maxPending {
			t.Fatalf("queued open %d refused", f.RecipientChannel)
		}
		refused++
	}
	<-done
	if g := runtime.NumGoroutine(); g > goroutinesBefore+2 {
		t.Errorf("goroutines grew from %d to %d", goroutinesBefore, g)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 4<<20 {
		t.Errorf("heap grew by %d bytes during the flood", grow)
	}

	// The queued four are accepted; then opens fill MaxChannels and no more.
	for range maxPending {
		nc, err := r.mux.Accept(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Accept(); err != nil {
			t.Fatal(err)
		}
		if p := r.recv(); p[0] != wire.MsgChannelOpenConfirmation {
			t.Fatalf("want confirmation, got % x", p)
		}
	}
	for i := range uint32(maxChannels) {
		r.send((&channelOpenMsg{ChannelType: "session", SenderChannel: flood + i, InitialWindowSize: 1 << 20, MaximumPacketSize: 32768}).appendTo(nil))
	}
	for range maxChannels - maxPending {
		nc, err := r.mux.Accept(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		nc.Accept()
	}
	// 4 confirmations and 4 refusals, in whatever order the read loop and
	// the accepting goroutine produced them.
	confirmed, refusedIDs := 0, map[uint32]bool{}
	for range maxChannels {
		p := r.recv()
		var f channelOpenFailureMsg
		switch {
		case p[0] == wire.MsgChannelOpenConfirmation:
			confirmed++
		case f.unmarshal(p) && f.ReasonCode == wire.OpenResourceShortage:
			refusedIDs[f.RecipientChannel] = true
		default:
			t.Fatalf("unexpected % x", p)
		}
	}
	if confirmed != maxChannels-maxPending {
		t.Fatalf("%d confirmations", confirmed)
	}
	for i := uint32(maxChannels - maxPending); i < maxChannels; i++ {
		if !refusedIDs[flood+i] {
			t.Fatalf("open %d beyond MaxChannels not refused (refused %v)", flood+i, refusedIDs)
		}
	}
	// Our own opens are refused locally too.
	if _, err := r.mux.OpenChannel(ctxT(t), "forwarded-tcpip", nil); !errors.Is(err, ErrTooManyChannels) {
		t.Fatalf("OpenChannel beyond MaxChannels: %v", err)
	}
}

func TestRequestFlood(t *testing.T) {
	r := newRawPeer(t, &Config{MaxPendingRequests: 4})
	_, conf := r.openAccepted(1<<20, 32768)
	// Nobody reads requests: 4 queue, the rest get FAILURE, in order,
	// but only after the queued ones are answered; 8 unanswered is the limit.
	for range 8 {
		r.send((&channelRequestMsg{RecipientChannel: conf.SenderChannel, RequestType: "env", WantReply: true}).appendTo(nil))
	}
	r.send((&channelRequestMsg{RecipientChannel: conf.SenderChannel, RequestType: "env", WantReply: true}).appendTo(nil))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

func TestRequestQueueFullRepliesInOrder(t *testing.T) {
	r := newRawPeer(t, &Config{MaxPendingRequests: 2})
	c, conf := r.openAccepted(1<<20, 32768)
	for range 3 {
		r.send((&channelRequestMsg{RecipientChannel: conf.SenderChannel, RequestType: "env", WantReply: true}).appendTo(nil))
	}
	// A global request's reply shows the read loop has handled all three.
	r.send((&globalRequestMsg{RequestName: "sync", WantReply: true}).appendTo(nil))
	if p := r.recv(); !bytes.Equal(p, []byte{wire.MsgRequestFailure}) {
		t.Fatalf("got % x", p)
	}
	// The third was refused by the Mux, but its FAILURE waits for the two
	// queued requests' replies.
	a, b := <-c.Requests(), <-c.Requests()
	b.Reply(true)
	a.Reply(true)
	for i, w := range []byte{wire.MsgChannelSuccess, wire.MsgChannelSuccess, wire.MsgChannelFailure} {
		if p := r.recv(); p[0] != w {
			t.Fatalf("reply %d: % x, want %d", i, p, w)
		}
	}
}

func TestGlobalRequestFlood(t *testing.T) {
	r := newRawPeer(t, &Config{MaxPendingGlobalRequests: 2, GlobalRequestTypes: []string{"x"}})
	for range 2 * unansweredFactor {
		r.send((&globalRequestMsg{RequestName: "x", WantReply: true}).appendTo(nil))
	}
	r.send((&globalRequestMsg{RequestName: "x", WantReply: true}).appendTo(nil))
	r.expectDisconnect(wire.DisconnectProtocolError)
}

// TestUnreadChannelHoldsNoMoreThanWindow fills a window nobody reads, then
// checks the data is dropped on Close and the chunks go back to the pool.
func TestUnreadChannelBuffers(t *testing.T) {
	r := newRawPeer(t, &Config{InitialWindow: 100 << 10})
	c, conf := r.openAccepted(1<<20, 32768)
	for range 4 {
		r.send(dataMsg(conf.SenderChannel, make([]byte, 25<<10)))
	}
	deadline := time.Now().Add(testTimeout)
	for {
		if _, buffered := c.Window(); buffered == 100<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("data not buffered")
		}
		time.Sleep(time.Millisecond)
	}
	c.mu.Lock()
	chunks := len(c.stdout.chunks) - c.stdout.head
	c.mu.Unlock()
	if want := (100<<10 + chunkSize - 1) / chunkSize; chunks != want {
		t.Errorf("%d chunks hold 100 KiB, want %d", chunks, want)
	}
	c.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdout.chunks != nil || c.stdout.Len() != 0 {
		t.Errorf("Close kept %d bytes in %d chunks", c.stdout.Len(), len(c.stdout.chunks))
	}
}

// TestWindowAdjustBatching: no WINDOW_ADJUST until window/adjustFraction has been
// read, then one for everything read.
func TestWindowAdjustBatching(t *testing.T) {
	r := newRawPeer(t, &Config{InitialWindow: 1000, MaxWindow: 1000})
	c, conf := r.openAccepted(1<<20, 32768)
	buf := make([]byte, 1000)
	// Adjusts go out per window/adjustFraction (125 bytes here) consumed.
	r.send(dataMsg(conf.SenderChannel, make([]byte, 100)))
	if n, err := io.ReadFull(c, buf[:100]); n != 100 || err != nil {
		t.Fatal(n, err)
	}
	// Read sends its adjust before returning, so an adjust would come
	// before this global request's reply.
	r.send((&globalRequestMsg{RequestName: "sync", WantReply: true}).appendTo(nil))
	if p := r.recv(); !bytes.Equal(p, []byte{wire.MsgRequestFailure}) {
		t.Fatalf("want no WINDOW_ADJUST below window/%d, got % x", adjustFraction, p)
	}
	r.send(dataMsg(conf.SenderChannel, make([]byte, 50)))
	if n, err := io.ReadFull(c, buf[:50]); n != 50 || err != nil {
		t.Fatal(n, err)
	}
	var adj windowAdjustMsg
	if p := r.recv(); !adj.unmarshal(p) || adj.BytesToAdd != 150 || adj.RecipientChannel != conf.RecipientChannel {
		t.Fatalf("want WINDOW_ADJUST 150, got % x", p)
	}
}

// TestWindowAutotune drives the growth rule directly: the window doubles
// only when a reader waited on an empty buffer and the peer used up its
// credit in the same adjust period.
func TestWindowAutotune(t *testing.T) {
	r := newRawPeer(t, &Config{InitialWindow: 1000, MaxWindow: 3000})
	c, conf := r.openAccepted(1<<20, 32768)
	buf := make([]byte, 4000)
	waitStarved := func() {
		deadline := time.Now().Add(testTimeout)
		for {
			c.mu.Lock()
			starved := c.readerStarved
			c.mu.Unlock()
			if starved {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("reader never waited")
			}
			time.Sleep(time.Millisecond)
		}
	}
	expectAdjust := func(want uint32) {
		t.Helper()
		var adj windowAdjustMsg
		if p := r.recv(); !adj.unmarshal(p) || adj.BytesToAdd != want {
			t.Fatalf("want WINDOW_ADJUST %d, got % x", want, p)
		}
	}
	readAsync := func(n int) chan error {
		ch := make(chan error, 1)
		go func() { _, err := io.ReadFull(c, buf[:n]); ch <- err }()
		return ch
	}

	// Slow reader: the peer fills the window before anyone reads.
	r.send(dataMsg(conf.SenderChannel, make([]byte, 1000)))
	r.send((&globalRequestMsg{RequestName: "sync", WantReply: true}).appendTo(nil))
	r.recv() // the data is buffered
	if err := <-readAsync(1000); err != nil {
		t.Fatal(err)
	}
	expectAdjust(1000)
	if w, _ := c.Window(); w != 1000 {
		t.Fatalf("window %d after a slow reader, want 1000", w)
	}

	// Fast reader, exhausted peer: double to 2000 (adjust = 1000 read +
	// 1000 growth).
	done := readAsync(1000)
	waitStarved()
	r.send(dataMsg(conf.SenderChannel, make([]byte, 1000)))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectAdjust(2000)

	// Again: capped at MaxWindow 3000 (adjust = 2000 read + 1000 growth).
	done = readAsync(2000)
	waitStarved()
	r.send(dataMsg(conf.SenderChannel, make([]byte, 2000)))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectAdjust(3000)
	if w, _ := c.Window(); w != 3000 {
		t.Fatalf("window %d, want MaxWindow 3000", w)
	}

	// Fast reader but a peer that does not use its credit: no growth.
	done = readAsync(1500)
	waitStarved()
	r.send(dataMsg(conf.SenderChannel, make([]byte, 1500)))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectAdjust(1500)
	if w, _ := c.Window(); w != 3000 {
		t.Fatalf("window %d, want 3000", w)
	}
}

// TestWindowAutotuneKeptUp is the long-fat-pipe pattern: the reader drains
// every packet as it arrives, so the adjust for half a window leaves before
// the peer ever comes near the end of its credit (it is blocked on the round
// trip, not on our view of its credit). The window must still double.
func TestWindowAutotuneKeptUp(t *testing.T) {
	r := newRawPeer(t, &Config{InitialWindow: 1000, MaxWindow: 4000})
	c, conf := r.openAccepted(1<<20, 32768)
	buf := make([]byte, 2000)
	for _, step := range []struct {
		send       int
		wantAdjust uint32
		wantWindow uint32
	}{
		{500, 500 + 1000, 2000},   // half of 1000 read, credit still 500
		{1000, 1000 + 2000, 4000}, // half of 2000 read, credit still 1000
		{2000, 2000, 4000},        // at MaxWindow: plain adjust
	} {
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(c, buf[:step.send]); done <- err }()
		deadline := time.Now().Add(testTimeout)
		for {
			c.mu.Lock()
			starved := c.readerStarved
			c.mu.Unlock()
			if starved {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("reader never waited")
			}
			time.Sleep(time.Millisecond)
		}
		r.send(dataMsg(conf.SenderChannel, make([]byte, step.send)))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var adj windowAdjustMsg
		if p := r.recv(); !adj.unmarshal(p) || adj.BytesToAdd != step.wantAdjust {
			t.Fatalf("after %d bytes: want WINDOW_ADJUST %d, got % x", step.send, step.wantAdjust, p)
		}
		if w, _ := c.Window(); w != step.wantWindow {
			t.Fatalf("after %d bytes: window %d, want %d", step.send, w, step.wantWindow)
		}
	}
}

// TestSecondEOFIgnored: a second CHANNEL_EOF is ignored, as OpenSSH does
// (x/crypto/ssh clients send one when closing); the channel still reads
// EOF, answers CLOSE, and data after EOF still ends the connection.
func TestSecondEOFIgnored(t *testing.T) {
	r := newRawPeer(t, nil)
	c, _ := r.openAccepted(1<<20, 32768)
	r.send((&channelEOFMsg{}).appendTo(nil))
	r.send((&channelEOFMsg{}).appendTo(nil))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, EOF", n, err)
	}
	// The mux still serves: CLOSE is answered with CLOSE.
	r.send((&channelCloseMsg{}).appendTo(nil))
	if p := r.recv(); len(p) == 0 || p[0] != wire.MsgChannelClose {
		t.Fatalf("after a second EOF and CLOSE got % x, want CHANNEL_CLOSE", p)
	}
	// A second channel: data after EOF is still a protocol error.
	r2 := newRawPeer(t, nil)
	r2.openAccepted(1<<20, 32768)
	r2.send((&channelEOFMsg{}).appendTo(nil))
	r2.send(dataMsg(0, []byte("x")))
	r2.expectDisconnect(wire.DisconnectProtocolError)
}
