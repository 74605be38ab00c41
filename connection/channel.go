package connection

import (
	"io"
	"math"
	"sync"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Channel is an open channel (RFC 4254 §5). Read/Write carry CHANNEL_DATA;
// Stderr and ReadStderr carry EXTENDED_DATA type 1.
type Channel struct {
	mux         *Mux
	channelType string
	extraData   []byte
	localID     uint32
	remoteID    uint32

	// Set before the channel is published or by the read loop only.
	opening    bool           // we sent CHANNEL_OPEN, no answer yet
	openResult chan error     // answer to our CHANNEL_OPEN
	onRequest  func(*Request) // AcceptFunc: requests bypass reqs
	onDone     func()         // AcceptFunc: called after done closes

	mu       sync.Mutex
	readable sync.Cond // data, EOF, close
	writable sync.Cond // window adjust, close

	// Receive side, guarded by mu. Invariant while open:
	// stdout.Len() + stderr.Len() + credit + consumed == window.
	stdout, stderr chunkBuffer
	window         uint32 // receive window size we maintain (grows to MaxWindow)
	credit         uint32 // bytes the peer may still send
	consumed       uint32 // bytes read since our last WINDOW_ADJUST
	readerStarved  bool   // a reader waited on an empty buffer since the last adjust
	eofReceived    bool
	closeReceived  bool
	abandoned      bool // OpenChannel gave up waiting

	// Send side, guarded by mu.
	remoteCredit    uint32 // bytes we may still send (the peer's window)
	remoteMaxPacket uint32
	localClosed     bool  // Close called
	writeClosed     bool  // CloseWrite or Close called
	deadErr         error // the connection ended
	waiters         []chan bool

	writerMu sync.Mutex // one Write/Stderr write at a time, so chunks do not interleave
	// dataHdr holds the header sendData passes to a PartsPacketConn; a
	// field (guarded by writerMu) because a stack array passed through
	// the interface would escape, one allocation per packet.
	dataHdr [extendedDataHeaderLen]byte
	// one and vec are writeVecLocked's scratch (guarded by writerMu): a
	// Write's single buffer, and the slices making up one packet.
	one [1][]byte
	vec [][]byte

	// directDst, guarded by mu, is the unfilled rest of the slice a
	// reader blocked on empty stdout has lent to handleData; nil when no
	// reader waits.
	directDst []byte

	// onReadable, guarded by mu, is the one-shot callback NotifyReadable
	// left: called, outside mu, when stdout becomes readable.
	onReadable func()

	// sendMu orders everything this channel sends: nothing may follow our
	// CLOSE, and no data our EOF (RFC 4254 §5.3). It is held only while a
	// message is written, never while waiting for window.
	sendMu    sync.Mutex
	eofSent   bool
	closeSent bool
	ctl       [16]byte // control messages, under sendMu

	reqMu   sync.Mutex // orders outgoing requests with their waiters
	reqs    chan *Request
	replies replySeq
	done    chan struct{}
}

// ChannelType is the channel type, e.g. "session".
func (c *Channel) ChannelType() string { return c.channelType }

// ExtraData is the type-specific data of the CHANNEL_OPEN.
func (c *Channel) ExtraData() []byte { return c.extraData }

// LocalID is our channel number (the peer's "recipient channel").
func (c *Channel) LocalID() uint32 { return c.localID }

// RemoteID is the peer's channel number.
func (c *Channel) RemoteID() uint32 { return c.remoteID }

// RemoteMaxPacket is the largest data payload we send in one packet: the
// peer's maximum packet size, capped at MaxPacketLimit.
func (c *Channel) RemoteMaxPacket() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteMaxPacket
}

// Window returns the channel's current receive window size (grown by
// autotuning) and the bytes buffered for readers.
func (c *Channel) Window() (window uint32, buffered int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.window, c.stdout.Len() + c.stderr.Len()
}

// Requests delivers the peer's channel requests; it is closed when the
// channel is freed or the connection ends. A channel accepted with
// AcceptFunc hands its requests to that function, and its Requests is
// closed from the start, so ranging over it ends instead of blocking. Each
// request with WantReply must get exactly one Reply.
func (c *Channel) Requests() <-chan *Request {
	if c.reqs == nil {
		return noRequests
	}
	return c.reqs
}

// noRequests is the closed channel Requests returns for AcceptFunc
// channels; nothing sends on it.
var noRequests = func() chan *Request {
	ch := make(chan *Request)
	close(ch)
	return ch
}()

// Done is closed when the channel is freed (both CLOSEs) or the connection
// ended.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Read reads CHANNEL_DATA. It returns io.EOF after the peer's EOF or CLOSE
// once the buffered data is consumed.
func (c *Channel) Read(p []byte) (int, error) { return c.read(&c.stdout, p) }

// NotifyReadable arranges for f to be called once, when a Read would no
// longer block: data arrived, or EOF, CLOSE, a local Close or the end of
// the connection. It reports false, and drops f, when a Read would not
// block now. f runs on the connection's read goroutine (or the goroutine
// closing the channel) and must not block; it typically starts a
// goroutine. A handler with nothing to do can so give back its goroutine:
// an idle session then holds no stack (issue 8's idle budget).
func (c *Channel) NotifyReadable(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdout.Len() > 0 || c.localClosed || c.eofReceived || c.closeReceived || c.deadErr != nil {
		return false
	}
	c.onReadable = f
	return true
}

// takeReadableLocked returns the NotifyReadable callback to call once mu
// is released, or nil.
func (c *Channel) takeReadableLocked() func() {
	f := c.onReadable
	c.onReadable = nil
	return f
}

// ReadStderr reads EXTENDED_DATA of type stderr (nothing arrives when
// Config.DiscardExtendedData is set).
func (c *Channel) ReadStderr(p []byte) (int, error) { return c.read(&c.stderr, p) }

func (c *Channel) read(buf *chunkBuffer, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	n := 0
	for buf.Len() == 0 {
		switch {
		case c.localClosed:
			c.mu.Unlock()
			return 0, ErrClosed
		case c.eofReceived || c.closeReceived:
			c.mu.Unlock()
			return 0, io.EOF
		case c.deadErr != nil:
			err := c.deadErr
			c.mu.Unlock()
			return 0, err
		}
		c.readerStarved = true
		// A reader waiting on empty stdout lends p to handleData, which
		// then copies arriving data straight into it instead of into the
		// buffer and out again (one copy of every received byte fewer
		// for a reader that keeps up, such as an SFTP upload). One reader
		// at a time: a concurrent second one waits on the buffer.
		direct := buf == &c.stdout && c.directDst == nil
		if direct {
			c.directDst = p
		}
		c.readable.Wait()
		if direct {
			n = len(p) - len(c.directDst)
			c.directDst = nil
			if n > 0 {
				break
			}
		}
	}
	n += buf.read(p[n:])
	adj := c.consumeLocked(uint32(n))
	c.mu.Unlock()
	if adj > 0 {
		if err := c.sendWindowAdjust(adj); err != nil {
			return n, err
		}
	}
	return n, nil
}

// adjustFraction sets how often a WINDOW_ADJUST goes out: after every
// window/adjustFraction bytes consumed. OpenSSH uses a half; then, on a long
// path, the sender idles on up to half the window while the adjust travels,
// and throughput is about window/2 per round trip. An eighth keeps 7/8 of
// the window in flight at one 9-byte message per window/8 (256 KiB at the
// initial 2 MiB window).
const adjustFraction = 8

// consumeLocked accounts n bytes handed to a reader and returns the
// WINDOW_ADJUST to send, if any.
//
// Adjusts are batched: one per window/adjustFraction consumed, not one per
// packet (OpenSSH channel_check_window batches per half window), so the peer
// never stalls on an exhausted window while a reader keeps up, at one small
// message per window/adjustFraction bytes.
//
// Autotuning (in the spirit of HPN-SSH's dynamic window): the window is the
// bottleneck when a reader waited on an empty buffer within one adjust
// period, i.e. we drained everything the peer could send faster than it
// arrived, yet a full adjust period was consumed. Then the window doubles, up
// to MaxWindow. A slow reader never waits on an empty buffer, so it never
// grows the window.
//
// An earlier rule also required the peer to have nearly exhausted its
// credit (below window/16) in the same period. On a long fat pipe that
// never happens with a reader that keeps up: we grant more credit as soon
// as an adjust period is consumed, so our view of the peer's credit stays
// high while the adjust is still in flight and the peer is in fact
// blocked. A 50 ms RTT upload stayed at 2 MiB per round trip (≈ 40 MB/s).
// Growing for a fast reader with a slow sender costs nothing: the window is
// credit, not memory; buffers hold only what the reader has not yet taken,
// at most MaxWindow per channel. We use this event instead of measuring the
// round-trip time, which keeps the rule free of clocks and deterministic
// to test.
func (c *Channel) consumeLocked(n uint32) uint32 {
	c.consumed += n
	if c.consumed < c.window/adjustFraction || c.eofReceived || c.closeReceived || c.localClosed || c.deadErr != nil {
		return 0
	}
	var grow uint32
	if c.readerStarved && c.window < c.mux.cfg.MaxWindow {
		newWindow := uint32(min(uint64(c.window)*2, uint64(c.mux.cfg.MaxWindow)))
		grow = newWindow - c.window
		c.window = newWindow
	}
	c.readerStarved = false
	adj := c.consumed + grow
	c.consumed = 0
	c.credit += adj
	return adj
}

func (c *Channel) sendWindowAdjust(n uint32) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.closeSent {
		return nil
	}
	msg := windowAdjustMsg{RecipientChannel: c.remoteID, BytesToAdd: n}
	return c.mux.conn.WritePacket(msg.appendTo(c.ctl[:0]))
}

// Write sends CHANNEL_DATA, blocking while the peer's window is exhausted,
// in packets no larger than the peer's maximum packet size.
func (c *Channel) Write(p []byte) (int, error) { return c.write(false, p) }

type stderrWriter struct{ c *Channel }

func (w stderrWriter) Write(p []byte) (int, error) { return w.c.write(true, p) }

// Stderr returns a writer of EXTENDED_DATA type 1 (stderr), RFC 4254 §5.2.
// It shares the window and ordering with Write.
func (c *Channel) Stderr() io.Writer { return stderrWriter{c} }

func (c *Channel) write(ext bool, p []byte) (int, error) {
	c.writerMu.Lock()
	defer c.writerMu.Unlock()
	c.one[0] = p
	n, err := c.writeVecLocked(ext, c.one[:])
	c.one[0] = nil
	return n, err
}

// WriteBuffers sends the concatenation of bufs as CHANNEL_DATA, like
// Write(bytes.Join(bufs, nil)) without joining: packets are filled to the
// peer's maximum packet size across buffer boundaries, each byte copied
// once into the sealed output. An SFTP server writes a run of queued
// replies this way; each 32 KiB READ reply (32 KiB of data plus a 13-byte
// header) alone would take two packets, one of them 13 bytes. Like
// net.Buffers, it may change the slice headers in bufs, not the bytes.
func (c *Channel) WriteBuffers(bufs [][]byte) (int, error) {
	c.writerMu.Lock()
	defer c.writerMu.Unlock()
	return c.writeVecLocked(false, bufs)
}

func (c *Channel) writeVecLocked(ext bool, bufs [][]byte) (int, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	written := 0
	unflushed := false // a chunk went out with WritePacketMore
	defer func() {
		if unflushed {
			// Only on an error path: the loop's last chunk flushes.
			c.mux.batch.Flush()
		}
	}()
	for total > 0 {
		c.mu.Lock()
		for c.remoteCredit == 0 && !c.writeClosed && !c.closeReceived && c.deadErr == nil {
			c.writable.Wait()
		}
		switch {
		case c.writeClosed:
			c.mu.Unlock()
			return written, ErrClosed
		case c.closeReceived:
			c.mu.Unlock()
			return written, ErrPeerClosed
		case c.deadErr != nil:
			err := c.deadErr
			c.mu.Unlock()
			return written, err
		}
		n := uint32(min(uint64(total), uint64(c.remoteCredit), uint64(c.remoteMaxPacket)))
		c.remoteCredit -= n
		// More follows at once only if the next chunk will not wait for
		// window: data must never sit unflushed while we block.
		more := c.mux.batch != nil && uint64(total) > uint64(n) && c.remoteCredit > 0
		c.mu.Unlock()
		// The next n bytes, as slices of bufs.
		c.vec = c.vec[:0]
		for need := int(n); need > 0; {
			b := bufs[0]
			k := min(len(b), need)
			if k > 0 {
				c.vec = append(c.vec, b[:k])
			}
			need -= k
			if k == len(b) {
				bufs = bufs[1:]
			} else {
				bufs[0] = b[k:]
			}
		}
		err := c.sendData(ext, c.vec, int(n), more)
		clear(c.vec)
		if err != nil {
			return written, err
		}
		unflushed = more
		written += int(n)
		total -= int(n)
	}
	return written, nil
}

// appendDataHeader appends the CHANNEL_DATA (or stderr EXTENDED_DATA)
// header for n bytes of data, RFC 4254 §5.2.
func (c *Channel) appendDataHeader(b []byte, ext bool, n int) []byte {
	if ext {
		b = append(b, wire.MsgChannelExtendedData)
		b = wire.AppendUint32(b, c.remoteID)
		b = wire.AppendUint32(b, wire.ExtendedDataStderr)
	} else {
		b = append(b, wire.MsgChannelData)
		b = wire.AppendUint32(b, c.remoteID)
	}
	return wire.AppendUint32(b, uint32(n))
}

// sendData sends one data packet of n bytes, the concatenation of parts;
// the caller holds writerMu. Over a PartsPacketConn the header is built
// in the Channel and the parts are copied once, into the sealed output;
// otherwise the packet is built in a pooled buffer (WritePacket does not
// retain it), so steady-state writes allocate nothing either way.
func (c *Channel) sendData(ext bool, parts [][]byte, n int, more bool) error {
	m := c.mux
	if m.parts != nil {
		b := c.appendDataHeader(c.dataHdr[:0], ext, n)
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		if c.closeSent || c.eofSent {
			return ErrClosed
		}
		if len(parts) == 1 {
			return m.parts.WritePacketParts(b, parts[0], more)
		}
		return m.parts.WritePacketVec(b, parts, more)
	}
	pool := &smallSendPool
	if n+extendedDataHeaderLen > smallSendBuf {
		pool = &largeSendPool
	}
	bp := pool.Get().(*[]byte)
	b := c.appendDataHeader((*bp)[:0], ext, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	c.sendMu.Lock()
	var err error
	switch {
	case c.closeSent:
		err = ErrClosed
	case c.eofSent:
		err = ErrClosed
	case more:
		err = m.batch.WritePacketMore(b)
	default:
		err = m.conn.WritePacket(b)
	}
	c.sendMu.Unlock()
	*bp = b[:0]
	pool.Put(bp)
	return err
}

// CloseWrite sends EOF (RFC 4254 §5.3): no more data from us; the channel
// stays open for reading and requests (e.g. exit-status).
func (c *Channel) CloseWrite() error {
	c.mu.Lock()
	c.writeClosed = true
	c.writable.Broadcast()
	c.mu.Unlock()
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.eofSent || c.closeSent {
		return nil
	}
	c.eofSent = true
	msg := channelEOFMsg{RecipientChannel: c.remoteID}
	return c.mux.conn.WritePacket(msg.appendTo(c.ctl[:0]))
}

// Close sends CLOSE (RFC 4254 §5.3) and drops buffered input. The channel
// number is freed when the peer's CLOSE arrives; Done is closed then.
func (c *Channel) Close() error {
	c.closeLocally()
	return c.sendClose()
}

// closeLocally marks the channel closed on our side: reads and writes
// end and buffered input is dropped.
func (c *Channel) closeLocally() {
	c.mu.Lock()
	c.localClosed = true
	c.writeClosed = true
	c.stdout.release()
	c.stderr.release()
	c.readable.Broadcast()
	c.writable.Broadcast()
	notify := c.takeReadableLocked()
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// CloseWithRequest ends the channel the way a session ends (RFC 4254
// §6.10): EOF unless sent already, then the request name (without reply:
// "exit-status" or "exit-signal") with payload, then CLOSE, as Close does.
// Over a batching transport the three leave in one write(2).
func (c *Channel) CloseWithRequest(name string, payload []byte) error {
	c.closeLocally()
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.closeSent {
		return nil
	}
	write := c.mux.conn.WritePacket
	more := write
	if c.mux.batch != nil {
		more = c.mux.batch.WritePacketMore
	}
	var err error
	if !c.eofSent {
		c.eofSent = true
		err = more((&channelEOFMsg{RecipientChannel: c.remoteID}).appendTo(c.ctl[:0]))
	}
	if err == nil {
		req := channelRequestMsg{RecipientChannel: c.remoteID, RequestType: name, Data: payload}
		err = more(req.appendTo(make([]byte, 0, 1+4+4+len(name)+1+len(payload))))
	}
	c.closeSent = true
	if cerr := write((&channelCloseMsg{RecipientChannel: c.remoteID}).appendTo(c.ctl[:0])); err == nil {
		err = cerr
	}
	return err
}

func (c *Channel) sendClose() error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	msg := channelCloseMsg{RecipientChannel: c.remoteID}
	return c.mux.conn.WritePacket(msg.appendTo(c.ctl[:0]))
}

// SendRequest sends a CHANNEL_REQUEST (RFC 4254 §5.4). With wantReply it
// waits for CHANNEL_SUCCESS (true) or CHANNEL_FAILURE (false); replies are
// matched to requests in order.
func (c *Channel) SendRequest(name string, wantReply bool, payload []byte) (bool, error) {
	msg := channelRequestMsg{RecipientChannel: c.remoteID, RequestType: name, WantReply: wantReply, Data: payload}
	b := msg.appendTo(make([]byte, 0, 1+4+4+len(name)+1+len(payload)))
	c.reqMu.Lock()
	var w chan bool
	if wantReply {
		w = make(chan bool, 1)
		c.mu.Lock()
		switch {
		case c.closeReceived:
			c.mu.Unlock()
			c.reqMu.Unlock()
			return false, ErrPeerClosed
		case c.deadErr != nil:
			err := c.deadErr
			c.mu.Unlock()
			c.reqMu.Unlock()
			return false, err
		}
		c.waiters = append(c.waiters, w)
		c.mu.Unlock()
	}
	c.sendMu.Lock()
	var err error
	if c.closeSent {
		err = ErrClosed
	} else {
		err = c.mux.conn.WritePacket(b)
	}
	c.sendMu.Unlock()
	if err != nil && wantReply {
		c.mu.Lock()
		if n := len(c.waiters); n > 0 && c.waiters[n-1] == w {
			c.waiters = c.waiters[:n-1]
		}
		c.mu.Unlock()
	}
	c.reqMu.Unlock()
	if err != nil || !wantReply {
		return false, err
	}
	ok, open := <-w
	if !open {
		c.mu.Lock()
		err := c.deadErr
		c.mu.Unlock()
		if err == nil {
			err = ErrPeerClosed
		}
		return false, err
	}
	return ok, nil
}

// Request is an incoming CHANNEL_REQUEST (RFC 4254 §5.4).
type Request struct {
	Type      string
	WantReply bool
	Payload   []byte
	ch        *Channel
	seq       uint64
	replyMu   sync.Mutex
	replied   bool
}

// Reply answers the request with CHANNEL_SUCCESS or CHANNEL_FAILURE.
// Replies leave in request order (RFC 4254 §5.4), whatever order Reply is
// called in. Requests without WantReply need none (Reply is a no-op). A
// second Reply returns ErrAlreadyAnswered, so `defer req.Reply(false)` is a
// safe default for handlers.
func (r *Request) Reply(ok bool) error {
	r.replyMu.Lock()
	if r.replied {
		r.replyMu.Unlock()
		return ErrAlreadyAnswered
	}
	r.replied = true
	r.replyMu.Unlock()
	if !r.WantReply {
		return nil
	}
	r.ch.replies.answer(r.seq, ok, nil)
	return r.ch.flushReplies()
}

func (c *Channel) flushReplies() error {
	return c.replies.flush(func(ok bool, _ []byte) error {
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		if c.closeSent {
			return nil // RFC 4254 §5.3: nothing after our CLOSE
		}
		var b []byte
		if ok {
			b = (&channelSuccessMsg{RecipientChannel: c.remoteID}).appendTo(c.ctl[:0])
		} else {
			b = (&channelFailureMsg{RecipientChannel: c.remoteID}).appendTo(c.ctl[:0])
		}
		return c.mux.conn.WritePacket(b)
	})
}

// The handlers below run on the read loop.

func (c *Channel) handleData(ext bool, code uint32, data []byte) error {
	n := uint32(len(data))
	c.mu.Lock()
	if c.eofReceived {
		c.mu.Unlock()
		return wire.ProtocolError("data on channel %d after EOF", c.localID)
	}
	if n > c.mux.cfg.MaxPacket {
		c.mu.Unlock()
		return wire.ProtocolError("data packet of %d bytes on channel %d exceeds maximum packet size %d", n, c.localID, c.mux.cfg.MaxPacket)
	}
	if n > c.credit {
		c.mu.Unlock()
		return wire.ProtocolError("data on channel %d exceeds window (%d bytes, %d left)", c.localID, n, c.credit)
	}
	c.credit -= n
	switch {
	case c.localClosed:
		// Data crossing our CLOSE is legal (RFC 4254 §5.3); drop it.
		c.mu.Unlock()
		return nil
	case !ext:
		if c.directDst != nil && c.stdout.Len() == 0 {
			k := copy(c.directDst, data)
			c.directDst = c.directDst[k:]
			data = data[k:]
		}
		if len(data) > 0 {
			c.stdout.write(data)
		}
	case code == wire.ExtendedDataStderr && !c.mux.cfg.DiscardExtendedData:
		c.stderr.write(data)
	default:
		// Unknown data type codes and discarded stderr are consumed at once
		// so they cannot pin the window.
		adj := c.consumeLocked(n)
		c.mu.Unlock()
		if adj > 0 {
			return c.sendWindowAdjust(adj)
		}
		return nil
	}
	c.readable.Broadcast()
	var notify func()
	if !ext && n > 0 {
		// An empty CHANNEL_DATA leaves a Read blocking: not a reason
		// to wake a parked reader.
		notify = c.takeReadableLocked()
	}
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
	return nil
}

func (c *Channel) handleWindowAdjust(n uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if uint64(c.remoteCredit)+uint64(n) > math.MaxUint32 {
		// RFC 4254 §5.2: the window MUST NOT exceed 2^32 - 1 bytes.
		return wire.ProtocolError("window adjust on channel %d overflows the window", c.localID)
	}
	c.remoteCredit += n
	c.writable.Broadcast()
	return nil
}

func (c *Channel) handleEOF() error {
	c.mu.Lock()
	if c.eofReceived {
		// Ignored, as OpenSSH's chan_rcvd_ieof does: some clients
		// (golang.org/x/crypto/ssh under pkg/sftp, so rclone) send a
		// second EOF when they close, and cutting the connection there
		// ended every other channel on it. Data after EOF still ends it.
		c.mu.Unlock()
		return nil
	}
	c.eofReceived = true
	c.readable.Broadcast()
	notify := c.takeReadableLocked()
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
	return nil
}

// handleClose frees the channel: after the peer's CLOSE we answer with ours
// (if not sent yet) and both sides are done (RFC 4254 §5.3).
func (c *Channel) handleClose() error {
	c.mu.Lock()
	c.closeReceived = true
	waiters := c.waiters
	c.waiters = nil
	c.readable.Broadcast()
	c.writable.Broadcast()
	notify := c.takeReadableLocked()
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
	for _, w := range waiters {
		close(w)
	}
	err := c.sendClose()
	c.replies.abandon()
	c.mux.free(c)
	if c.reqs != nil {
		close(c.reqs)
	}
	close(c.done)
	if c.onDone != nil {
		c.onDone()
	}
	return err
}

func (c *Channel) handleRequest(msg *channelRequestMsg) error {
	c.mu.Lock()
	closing := c.localClosed
	c.mu.Unlock()
	if closing {
		return nil // we sent CLOSE and may not reply any more
	}
	var seq uint64
	if msg.WantReply {
		var ok bool
		if seq, ok = c.replies.add(); !ok {
			return wire.ProtocolError("more than %d unanswered requests on channel %d", c.replies.limit, c.localID)
		}
	}
	if msg.RequestType != RequestKeepaliveChan {
		r := &Request{
			Type:      msg.RequestType,
			WantReply: msg.WantReply,
			Payload:   append([]byte(nil), msg.Data...),
			ch:        c,
			seq:       seq,
		}
		if c.onRequest != nil {
			c.onRequest(r)
			return nil
		}
		select {
		case c.reqs <- r:
			return nil
		default:
			c.mux.log.Debug("channel request queue full", "channel", c.localID, "type", msg.RequestType)
		}
	}
	if !msg.WantReply {
		return nil
	}
	c.replies.answer(seq, false, nil)
	return c.flushReplies()
}

func (c *Channel) handleReply(ok bool) error {
	c.mu.Lock()
	if len(c.waiters) == 0 {
		c.mu.Unlock()
		return wire.ProtocolError("channel request reply on channel %d without a request", c.localID)
	}
	w := c.waiters[0]
	n := copy(c.waiters, c.waiters[1:])
	c.waiters[n] = nil
	c.waiters = c.waiters[:n]
	c.mu.Unlock()
	w <- ok
	return nil
}

// kill ends the channel because the connection ended.
func (c *Channel) kill(err error) {
	c.mu.Lock()
	c.deadErr = err
	waiters := c.waiters
	c.waiters = nil
	c.readable.Broadcast()
	c.writable.Broadcast()
	if c.opening {
		select {
		case c.openResult <- err:
		default:
		}
	}
	notify := c.takeReadableLocked()
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
	for _, w := range waiters {
		close(w)
	}
	c.replies.abandon()
	if c.reqs != nil {
		close(c.reqs)
	}
	close(c.done)
	if c.onDone != nil {
		c.onDone()
	}
}
