package connection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// PacketConn is the transport after authentication. ReadPacket returns the
// next message payload, valid only until the next ReadPacket call (so copy
// what you keep). WritePacket is safe for concurrent use, does not retain
// its argument, and may block (back-pressure during key re-exchange).
type PacketConn interface {
	ReadPacket() ([]byte, error)
	WritePacket(payload []byte) error
}

// BatchPacketConn is a PacketConn that can seal a packet without writing it
// out yet (transport.Conn is one). Channel writes larger than one packet use
// WritePacketMore for all chunks but the last, so a 256 KiB write costs a
// few write(2) calls instead of one per 32 KiB packet. After
// WritePacketMore the caller always follows with WritePacket or Flush.
type BatchPacketConn interface {
	PacketConn
	WritePacketMore(payload []byte) error
	Flush() error
}

// PartsPacketConn is a PacketConn that takes a message as a header and a
// body and copies each once into its sealed output (transport.Conn is
// one), so channel data goes from the caller's slice to the cipher without
// first being joined to its CHANNEL_DATA header. more is as for
// BatchPacketConn.WritePacketMore; a PartsPacketConn must also be a
// BatchPacketConn.
type PartsPacketConn interface {
	BatchPacketConn
	WritePacketParts(hdr, body []byte, more bool) error
	// WritePacketVec is WritePacketParts with the body in several slices.
	WritePacketVec(hdr []byte, body [][]byte, more bool) error
}

// Defaults and limits. See Config for what each governs.
const (
	// DefaultInitialWindow is the receive window a channel starts with.
	// OpenSSH uses 2 MiB for sessions (CHAN_SES_WINDOW_DEFAULT = 64 × 32 KiB).
	DefaultInitialWindow = 2 << 20

	// DefaultMaxWindow caps window autotuning. 16 MiB fills a 1 Gbit/s path
	// with a 130 ms round trip (HPN-SSH's reasoning: window ≥ bandwidth ×
	// delay), while 64 channels at the cap still bound a connection to 1 GiB
	// of buffered data in the worst case of every reader stalled after a
	// grown window.
	DefaultMaxWindow = 16 << 20

	// MaxPacketLimit is the largest CHANNEL_DATA payload that fits one
	// transport packet. RFC 4253 §6.1 packets may be 256 KiB (OpenSSH's
	// PACKET_MAX_SIZE, and ferry's transport limit on packet_length). From
	// the 262144 bytes of packet_length we reserve 1 KiB: 1 padding-length
	// byte, up to 255 bytes of padding, the 13-byte EXTENDED_DATA header and
	// zlib's worst-case expansion of incompressible data (about 5 bytes per
	// 16 KiB block plus 6, so < 100 bytes here). The MAC is outside
	// packet_length.
	MaxPacketLimit = 256*1024 - 1024

	// DefaultMaxPacket is the max CHANNEL_DATA payload we accept and
	// advertise in CHANNEL_OPEN and CHANNEL_OPEN_CONFIRMATION.
	DefaultMaxPacket = MaxPacketLimit

	// DefaultMaxChannels bounds open channels per connection. OpenSSH's
	// MaxSessions defaults to 10 sessions; 64 leaves room for port
	// forwards next to sessions while keeping per-connection state small.
	DefaultMaxChannels = 64

	// DefaultMaxPendingOpens bounds CHANNEL_OPENs waiting for the server
	// layer to Accept or Reject them. Beyond it, opens are refused at once
	// with RESOURCE_SHORTAGE; a real client opens a handful at a time.
	DefaultMaxPendingOpens = 16

	// DefaultMaxPendingRequests bounds channel requests queued for the
	// server layer per channel. An OpenSSH client sends pty-req, a few env,
	// x11-req, auth-agent-req and shell/exec before waiting: under 32.
	DefaultMaxPendingRequests = 32

	// DefaultMaxPendingGlobalRequests bounds global requests queued for the
	// server layer (tcpip-forward and friends, one per -R flag).
	DefaultMaxPendingGlobalRequests = 16

	// unansweredFactor: a peer may have this many times the queue bound of
	// want_reply requests outstanding (queued, in a handler, or refused and
	// waiting for an earlier reply) before we end the connection. Only a
	// peer that never waits for replies gets there.
	unansweredFactor = 2

	// maxSendData bounds the data in one CHANNEL_DATA we send, whatever
	// the peer advertises: the same 256 KiB transport limit applies to our
	// packets.
	maxSendData = MaxPacketLimit

	// smallSendBuf is the size class for outgoing data packets of common
	// writes (io.Copy uses 32 KiB); larger ones use a MaxPacketLimit buffer.
	smallSendBuf = 32*1024 + extendedDataHeaderLen
)

// Config configures a Mux. The zero value uses the defaults above.
type Config struct {
	// InitialWindow is the receive window of each new channel.
	InitialWindow uint32
	// MaxWindow is the largest window autotuning grows a channel to. Set it
	// equal to InitialWindow to turn autotuning off.
	MaxWindow uint32
	// MaxPacket is the max CHANNEL_DATA payload we accept (≤ MaxPacketLimit).
	MaxPacket uint32
	// MaxChannels bounds channels per connection, open or being opened.
	MaxChannels int
	// MaxPendingOpens bounds incoming opens not yet Accepted or Rejected.
	MaxPendingOpens int
	// MaxPendingRequests bounds queued incoming requests per channel.
	MaxPendingRequests int
	// MaxPendingGlobalRequests bounds queued incoming global requests.
	MaxPendingGlobalRequests int
	// GlobalRequestTypes lists the global requests delivered by
	// GlobalRequests. Every other one, and always keepalive@openssh.com, is
	// answered with REQUEST_FAILURE at once, which is what OpenSSH's
	// client expects from a keepalive.
	GlobalRequestTypes []string
	// DiscardExtendedData drops EXTENDED_DATA the peer sends instead of
	// buffering it for ReadStderr (crediting the window at once). A server
	// sets it: no client sends meaningful stderr, and buffering it would let
	// a client stall its own channel's window with data nobody reads.
	DiscardExtendedData bool
	// HandleOpen, if set, receives each incoming channel open on the read
	// goroutine instead of queueing it for Accept, so a server needs no
	// goroutine waiting in Accept per connection. It must not block (start
	// a goroutine to answer); opens not yet answered still count against
	// MaxPendingOpens and MaxChannels.
	HandleOpen func(*NewChannel)
	// HandleMessage, if set, receives messages outside 80-100 (valid until
	// it returns); its error ends the read loop. If nil they are a
	// PROTOCOL_ERROR.
	HandleMessage func(payload []byte) error
	// Inspect, if set, sees each GLOBAL_REQUEST and CHANNEL_OPEN on the
	// read goroutine, in message order, before the mux handles it
	// (payload valid until it returns). If it reports handled the mux
	// drops the message; its error ends the read loop. A server enforces
	// no-more-sessions@openssh.com with it.
	Inspect func(payload []byte) (handled bool, err error)
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Errors returned to local callers.
var (
	// ErrClosed: the channel was closed locally (or its write side, for
	// writes after CloseWrite).
	ErrClosed = errors.New("connection: channel closed")
	// ErrPeerClosed: the peer closed the channel; nothing more can be sent.
	ErrPeerClosed = errors.New("connection: channel closed by peer")
	// ErrTooManyChannels: OpenChannel beyond Config.MaxChannels.
	ErrTooManyChannels = errors.New("connection: too many channels")
	// ErrAlreadyAnswered: a second Accept/Reject/Reply.
	ErrAlreadyAnswered = errors.New("connection: already answered")
	// ErrMuxClosed wraps the reason the read loop ended.
	ErrMuxClosed = errors.New("connection: connection closed")
)

// Reason codes of a CHANNEL_OPEN_FAILURE (RFC 4254 §5.1), for
// NewChannel.Reject and OpenError.Reason.
const (
	OpenAdministrativelyProhibited = wire.OpenAdministrativelyProhibited
	OpenConnectFailed              = wire.OpenConnectFailed
	OpenUnknownChannelType         = wire.OpenUnknownChannelType
	OpenResourceShortage           = wire.OpenResourceShortage
)

// OpenError is the peer's CHANNEL_OPEN_FAILURE for a channel we opened.
type OpenError struct {
	Reason  uint32
	Message string
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("connection: channel open refused (reason %d): %q", e.Reason, e.Message)
}

// Mux multiplexes channels over one PacketConn (RFC 4254).
type Mux struct {
	conn  PacketConn
	batch BatchPacketConn // conn, if it batches; else nil
	parts PartsPacketConn // conn, if it takes header and body apart; else nil
	cfg   Config
	log   *slog.Logger

	globalTypes map[string]bool // immutable after New

	mu           sync.Mutex
	chans        []*Channel // index is the local channel number; nil is free
	nChans       int
	pendingOpens int // incoming opens not yet answered
	globalWaits  []chan globalReply
	closed       bool
	err          error

	incoming   chan *NewChannel
	globalReqs chan *GlobalRequest
	globalRepl replySeq
	globalReq  sync.Mutex // orders outgoing global requests with their waiters
	done       chan struct{}

	rbuf []byte // reply buffer owned by the read loop
}

type globalReply struct {
	ok   bool
	data []byte
}

// New returns a Mux over conn. Call Run to start its read loop.
func New(conn PacketConn, cfg *Config) (*Mux, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.InitialWindow == 0 {
		c.InitialWindow = DefaultInitialWindow
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = max(DefaultMaxWindow, c.InitialWindow)
	}
	if c.MaxWindow < c.InitialWindow {
		return nil, fmt.Errorf("connection: MaxWindow %d < InitialWindow %d", c.MaxWindow, c.InitialWindow)
	}
	if c.MaxPacket == 0 {
		c.MaxPacket = DefaultMaxPacket
	}
	if c.MaxPacket > MaxPacketLimit {
		return nil, fmt.Errorf("connection: MaxPacket %d > %d", c.MaxPacket, MaxPacketLimit)
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	if c.MaxPendingOpens <= 0 {
		c.MaxPendingOpens = DefaultMaxPendingOpens
	}
	if c.MaxPendingRequests <= 0 {
		c.MaxPendingRequests = DefaultMaxPendingRequests
	}
	if c.MaxPendingGlobalRequests <= 0 {
		c.MaxPendingGlobalRequests = DefaultMaxPendingGlobalRequests
	}
	m := &Mux{
		conn:        conn,
		cfg:         c,
		log:         c.Logger,
		globalTypes: make(map[string]bool, len(c.GlobalRequestTypes)),
		globalReqs:  make(chan *GlobalRequest, c.MaxPendingGlobalRequests),
		done:        make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if c.HandleOpen == nil {
		// With HandleOpen, opens never queue for Accept.
		m.incoming = make(chan *NewChannel, c.MaxPendingOpens)
	}
	m.batch, _ = conn.(BatchPacketConn)
	m.parts, _ = conn.(PartsPacketConn)
	for _, t := range c.GlobalRequestTypes {
		if t != GlobalKeepalive {
			m.globalTypes[t] = true
		}
	}
	m.globalRepl.limit = c.MaxPendingGlobalRequests * unansweredFactor
	return m, nil
}

// Done is closed when the read loop has ended.
func (m *Mux) Done() <-chan struct{} { return m.done }

// Err returns why the read loop ended (nil while it runs).
func (m *Mux) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Run reads and dispatches messages until the PacketConn fails or the peer
// breaks the protocol, and returns that error: a *wire.DisconnectError for
// protocol violations (the caller sends the DISCONNECT), otherwise the
// PacketConn's error. Every channel is then ended. Call it once.
//
// A panic in a callback the read loop runs (Config.Inspect,
// Config.HandleOpen, a NotifyReadable function) ends
// the connection like a protocol error would: Run returns a *PanicError
// and every channel is ended, so no handler waits forever on a loop that
// is gone.
func (m *Mux) Run() (err error) {
	defer m.recoverRun(&err)
	for {
		var p []byte
		if p, err = m.conn.ReadPacket(); err != nil {
			break
		}
		if err = m.dispatch(p); err != nil {
			break
		}
	}
	m.finish(err)
	return err
}

// recoverRun turns a panic on the read loop into Run's error.
func (m *Mux) recoverRun(err *error) {
	r := recover()
	if r == nil {
		return
	}
	pe := &PanicError{Value: r, Stack: debug.Stack()}
	*err = pe
	m.mu.Lock()
	finished := m.closed
	m.mu.Unlock()
	if !finished { // else the panic came from finish itself
		m.finish(pe)
	}
}

// PanicError is Run's error after a callback on the read loop panicked.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("connection: panic on the read loop: %v", e.Value)
}

// inspect hands p to Config.Inspect, if set.
func (m *Mux) inspect(p []byte) (handled bool, err error) {
	if m.cfg.Inspect == nil {
		return false, nil
	}
	return m.cfg.Inspect(p)
}

func (m *Mux) dispatch(p []byte) error {
	if len(p) == 0 {
		return wire.ProtocolError("empty message")
	}
	switch p[0] {
	case wire.MsgChannelData:
		var msg channelDataMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_DATA")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_DATA")
		if err != nil {
			return err
		}
		return c.handleData(false, 0, msg.Data)
	case wire.MsgChannelExtendedData:
		var msg extendedDataMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_EXTENDED_DATA")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_EXTENDED_DATA")
		if err != nil {
			return err
		}
		return c.handleData(true, msg.DataTypeCode, msg.Data)
	case wire.MsgChannelWindowAdjust:
		var msg windowAdjustMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_WINDOW_ADJUST")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_WINDOW_ADJUST")
		if err != nil {
			return err
		}
		return c.handleWindowAdjust(msg.BytesToAdd)
	case wire.MsgGlobalRequest:
		if handled, err := m.inspect(p); handled || err != nil {
			return err
		}
		var msg globalRequestMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed GLOBAL_REQUEST")
		}
		return m.handleGlobalRequest(&msg)
	case wire.MsgRequestSuccess:
		var msg requestSuccessMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed REQUEST_SUCCESS")
		}
		return m.handleGlobalReply(true, msg.Data)
	case wire.MsgRequestFailure:
		var msg requestFailureMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed REQUEST_FAILURE")
		}
		return m.handleGlobalReply(false, nil)
	case wire.MsgChannelOpen:
		if handled, err := m.inspect(p); handled || err != nil {
			return err
		}
		var msg channelOpenMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_OPEN")
		}
		return m.handleOpen(&msg)
	case wire.MsgChannelOpenConfirmation:
		var msg channelOpenConfirmMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_OPEN_CONFIRMATION")
		}
		return m.handleOpenConfirm(&msg)
	case wire.MsgChannelOpenFailure:
		var msg channelOpenFailureMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_OPEN_FAILURE")
		}
		return m.handleOpenFailure(&msg)
	case wire.MsgChannelEOF:
		var msg channelEOFMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_EOF")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_EOF")
		if err != nil {
			return err
		}
		return c.handleEOF()
	case wire.MsgChannelClose:
		var msg channelCloseMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_CLOSE")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_CLOSE")
		if err != nil {
			return err
		}
		return c.handleClose()
	case wire.MsgChannelRequest:
		var msg channelRequestMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_REQUEST")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_REQUEST")
		if err != nil {
			return err
		}
		return c.handleRequest(&msg)
	case wire.MsgChannelSuccess:
		var msg channelSuccessMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_SUCCESS")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_SUCCESS")
		if err != nil {
			return err
		}
		return c.handleReply(true)
	case wire.MsgChannelFailure:
		var msg channelFailureMsg
		if !msg.unmarshal(p) {
			return wire.ProtocolError("malformed CHANNEL_FAILURE")
		}
		c, err := m.channelFor(msg.RecipientChannel, "CHANNEL_FAILURE")
		if err != nil {
			return err
		}
		return c.handleReply(false)
	}
	if m.cfg.HandleMessage != nil {
		return m.cfg.HandleMessage(p)
	}
	return wire.ProtocolError("unexpected message %d in the connection protocol", p[0])
}

// channelFor returns the open channel with local number id. Every message
// but OPEN_CONFIRMATION/FAILURE needs an open channel: a number we never
// gave out, or one already freed after both CLOSEs (RFC 4254 §5.3), is a
// PROTOCOL_ERROR, as is traffic on a channel the peer has not confirmed.
func (m *Mux) channelFor(id uint32, what string) (*Channel, error) {
	m.mu.Lock()
	var c *Channel
	if uint64(id) < uint64(len(m.chans)) {
		c = m.chans[id]
	}
	m.mu.Unlock()
	if c == nil {
		return nil, wire.ProtocolError("%s for unknown channel %d", what, id)
	}
	if c.opening {
		return nil, wire.ProtocolError("%s for unconfirmed channel %d", what, id)
	}
	return c, nil
}

// allocLocked gives c the lowest free local channel number.
func (m *Mux) allocLocked(c *Channel) {
	for i, x := range m.chans {
		if x == nil {
			m.chans[i] = c
			c.localID = uint32(i)
			m.nChans++
			return
		}
	}
	c.localID = uint32(len(m.chans))
	m.chans = append(m.chans, c)
	m.nChans++
}

// free releases a local channel number; called by the read loop only after
// both sides' CLOSE (RFC 4254 §5.3) or a refused open.
func (m *Mux) free(c *Channel) {
	m.mu.Lock()
	if uint64(c.localID) < uint64(len(m.chans)) && m.chans[c.localID] == c {
		m.chans[c.localID] = nil
		m.nChans--
	}
	m.mu.Unlock()
}

// ReceiveCredit is the channel data the peer may still send before it must
// wait for a WINDOW_ADJUST: the sum of every channel's remaining receive
// window (RFC 4254 §5.2). More than that from the peer is a protocol
// violation, which lets a transport bound what it holds back for the mux
// (messages that arrive during a key re-exchange) by what the peer may
// legitimately send. Safe to call from any goroutine, the read loop's
// included.
func (m *Mux) ReceiveCredit() uint64 {
	m.mu.Lock()
	chans := make([]*Channel, 0, m.nChans)
	for _, c := range m.chans {
		if c != nil {
			chans = append(chans, c)
		}
	}
	m.mu.Unlock()
	var sum uint64
	for _, c := range chans {
		c.mu.Lock()
		sum += uint64(c.credit)
		c.mu.Unlock()
	}
	return sum
}

// writeReadLoop writes a reply built by the read loop into its own buffer.
func (m *Mux) writeReadLoop(build func(b []byte) []byte) error {
	m.rbuf = build(m.rbuf[:0])
	return m.conn.WritePacket(m.rbuf)
}

func (m *Mux) handleOpen(msg *channelOpenMsg) error {
	if msg.MaximumPacketSize == 0 {
		return wire.ProtocolError("CHANNEL_OPEN with maximum packet size 0")
	}
	refuse := func(why string) error {
		m.log.Debug("refusing channel open", "type", msg.ChannelType, "reason", why)
		return m.writeReadLoop(func(b []byte) []byte {
			f := channelOpenFailureMsg{RecipientChannel: msg.SenderChannel, ReasonCode: wire.OpenResourceShortage, Description: why}
			return f.appendTo(b)
		})
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	if m.nChans+m.pendingOpens >= m.cfg.MaxChannels {
		m.mu.Unlock()
		return refuse("too many channels")
	}
	nc := &NewChannel{
		mux:          m,
		channelType:  msg.ChannelType,
		extraData:    append([]byte(nil), msg.TypeSpecificData...),
		remoteID:     msg.SenderChannel,
		remoteWindow: msg.InitialWindowSize,
		remoteMax:    msg.MaximumPacketSize,
	}
	if h := m.cfg.HandleOpen; h != nil {
		if m.pendingOpens >= m.cfg.MaxPendingOpens {
			m.mu.Unlock()
			return refuse("too many pending channel opens")
		}
		m.pendingOpens++
		m.mu.Unlock()
		h(nc)
		return nil
	}
	select {
	case m.incoming <- nc:
		m.pendingOpens++
		m.mu.Unlock()
		return nil
	default:
		m.mu.Unlock()
		return refuse("too many pending channel opens")
	}
}

func (m *Mux) handleOpenConfirm(msg *channelOpenConfirmMsg) error {
	m.mu.Lock()
	var c *Channel
	if uint64(msg.RecipientChannel) < uint64(len(m.chans)) {
		c = m.chans[msg.RecipientChannel]
	}
	m.mu.Unlock()
	if c == nil || !c.opening {
		return wire.ProtocolError("CHANNEL_OPEN_CONFIRMATION for channel %d, which is not being opened", msg.RecipientChannel)
	}
	if msg.MaximumPacketSize == 0 {
		return wire.ProtocolError("CHANNEL_OPEN_CONFIRMATION with maximum packet size 0")
	}
	c.mu.Lock()
	c.remoteID = msg.SenderChannel
	c.remoteCredit = msg.InitialWindowSize
	c.remoteMaxPacket = min(msg.MaximumPacketSize, maxSendData)
	c.opening = false
	abandoned := c.abandoned
	if !abandoned {
		c.openResult <- nil // buffered; sent under c.mu so OpenChannel's give-up path sees it
	}
	c.mu.Unlock()
	if abandoned {
		// OpenChannel's caller gave up; the channel is freed when the
		// peer answers our CLOSE.
		return c.Close()
	}
	return nil
}

func (m *Mux) handleOpenFailure(msg *channelOpenFailureMsg) error {
	m.mu.Lock()
	var c *Channel
	if uint64(msg.RecipientChannel) < uint64(len(m.chans)) {
		c = m.chans[msg.RecipientChannel]
	}
	m.mu.Unlock()
	if c == nil || !c.opening {
		return wire.ProtocolError("CHANNEL_OPEN_FAILURE for channel %d, which is not being opened", msg.RecipientChannel)
	}
	m.free(c)
	c.openResult <- &OpenError{Reason: msg.ReasonCode, Message: msg.Description}
	return nil
}

func (m *Mux) handleGlobalRequest(msg *globalRequestMsg) error {
	deliver := m.globalTypes[msg.RequestName]
	var seq uint64
	if msg.WantReply {
		var ok bool
		if seq, ok = m.globalRepl.add(); !ok {
			return wire.ProtocolError("more than %d unanswered global requests", m.globalRepl.limit)
		}
	}
	if deliver {
		r := &GlobalRequest{
			Type:      msg.RequestName,
			WantReply: msg.WantReply,
			Payload:   append([]byte(nil), msg.Data...),
			mux:       m,
			seq:       seq,
		}
		select {
		case m.globalReqs <- r:
			return nil
		default:
			m.log.Debug("global request queue full", "type", msg.RequestName)
		}
	}
	if !msg.WantReply {
		return nil
	}
	m.globalRepl.answer(seq, false, nil)
	return m.flushGlobalReplies()
}

func (m *Mux) flushGlobalReplies() error {
	return m.globalRepl.flush(func(ok bool, payload []byte) error {
		var b []byte
		if ok {
			b = (&requestSuccessMsg{Data: payload}).appendTo(make([]byte, 0, 1+len(payload)))
		} else {
			b = []byte{wire.MsgRequestFailure}
		}
		return m.conn.WritePacket(b)
	})
}

func (m *Mux) handleGlobalReply(ok bool, data []byte) error {
	m.mu.Lock()
	if len(m.globalWaits) == 0 {
		m.mu.Unlock()
		return wire.ProtocolError("global request reply without a request")
	}
	w := m.globalWaits[0]
	n := copy(m.globalWaits, m.globalWaits[1:])
	m.globalWaits[n] = nil
	m.globalWaits = m.globalWaits[:n]
	m.mu.Unlock()
	w <- globalReply{ok: ok, data: append([]byte(nil), data...)}
	return nil
}

// finish ends every channel and queue after the read loop stops.
func (m *Mux) finish(err error) {
	if err == nil {
		err = errors.New("read loop ended")
	}
	m.mu.Lock()
	m.closed = true
	m.err = err
	chans := m.chans
	m.chans = nil
	m.nChans = 0
	waits := m.globalWaits
	m.globalWaits = nil
	m.mu.Unlock()
	muxErr := fmt.Errorf("%w: %w", ErrMuxClosed, err)
	for _, c := range chans {
		if c != nil {
			c.kill(muxErr)
		}
	}
	for _, w := range waits {
		close(w)
	}
	m.globalRepl.abandon()
	if m.incoming != nil {
		close(m.incoming)
	}
	close(m.globalReqs)
	close(m.done)
}

func (m *Mux) closedErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Errorf("%w: %w", ErrMuxClosed, m.err)
}

// Accept returns the next channel the peer asked to open. Each must be
// answered with Accept or Reject; until then it counts against
// MaxChannels and MaxPendingOpens. With Config.HandleOpen set, opens go
// there and Accept returns an error.
func (m *Mux) Accept(ctx context.Context) (*NewChannel, error) {
	if m.incoming == nil {
		return nil, errors.New("connection: Accept on a Mux with Config.HandleOpen")
	}
	select {
	case nc, ok := <-m.incoming:
		if !ok {
			return nil, m.closedErr()
		}
		return nc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// GlobalRequests delivers incoming global requests of the types listed in
// Config.GlobalRequestTypes. It is closed when the read loop ends.
func (m *Mux) GlobalRequests() <-chan *GlobalRequest { return m.globalReqs }

// SendGlobalRequest sends a GLOBAL_REQUEST (RFC 4254 §4). With wantReply it
// waits for the reply and returns its request-specific data; replies are
// matched to requests in order.
func (m *Mux) SendGlobalRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	msg := globalRequestMsg{RequestName: name, WantReply: wantReply, Data: payload}
	b := msg.appendTo(make([]byte, 0, 1+4+len(name)+1+len(payload)))
	m.globalReq.Lock()
	var w chan globalReply
	if wantReply {
		w = make(chan globalReply, 1)
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			m.globalReq.Unlock()
			return false, nil, m.closedErr()
		}
		m.globalWaits = append(m.globalWaits, w)
		m.mu.Unlock()
	}
	err := m.conn.WritePacket(b)
	if err != nil && wantReply {
		m.mu.Lock()
		if n := len(m.globalWaits); n > 0 && m.globalWaits[n-1] == w {
			m.globalWaits = m.globalWaits[:n-1]
		}
		m.mu.Unlock()
	}
	m.globalReq.Unlock()
	if err != nil || !wantReply {
		return false, nil, err
	}
	r, ok := <-w
	if !ok {
		return false, nil, m.closedErr()
	}
	return r.ok, r.data, nil
}

// OpenChannel opens a channel to the peer (e.g. forwarded-tcpip, RFC 4254
// §7.2) and waits for its answer; a refusal is an *OpenError. If ctx ends
// first, the channel is closed as soon as the peer confirms it.
func (m *Mux) OpenChannel(ctx context.Context, chanType string, extra []byte) (*Channel, error) {
	c := m.newChannel(chanType, extra, nil)
	c.opening = true
	c.openResult = make(chan error, 1)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, m.closedErr()
	}
	if m.nChans+m.pendingOpens >= m.cfg.MaxChannels {
		m.mu.Unlock()
		return nil, ErrTooManyChannels
	}
	m.allocLocked(c)
	m.mu.Unlock()
	msg := channelOpenMsg{
		ChannelType:       chanType,
		SenderChannel:     c.localID,
		InitialWindowSize: c.window,
		MaximumPacketSize: m.cfg.MaxPacket,
		TypeSpecificData:  extra,
	}
	if err := m.conn.WritePacket(msg.appendTo(nil)); err != nil {
		// The peer may or may not have seen the open; the connection is
		// broken either way, so the number is never reused.
		return nil, err
	}
	select {
	case err := <-c.openResult:
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.mu.Lock()
		c.abandoned = true
		var confirmed bool
		select {
		case err := <-c.openResult:
			confirmed = err == nil
		default:
		}
		c.mu.Unlock()
		if confirmed {
			c.Close()
		}
		return nil, ctx.Err()
	}
}

func (m *Mux) newChannel(chanType string, extra []byte, onRequest func(*Request)) *Channel {
	c := &Channel{
		mux:         m,
		channelType: chanType,
		extraData:   extra,
		window:      m.cfg.InitialWindow,
		credit:      m.cfg.InitialWindow,
		onRequest:   onRequest,
		done:        make(chan struct{}),
	}
	if onRequest == nil {
		// AcceptFunc's channels hand requests to onRequest: no queue.
		c.reqs = make(chan *Request, m.cfg.MaxPendingRequests)
	}
	c.readable.L = &c.mu
	c.writable.L = &c.mu
	c.stdout.pool = &chunkPool
	c.stderr.pool = &chunkPool
	c.replies.limit = m.cfg.MaxPendingRequests * unansweredFactor
	return c
}

// NewChannel is a CHANNEL_OPEN from the peer (RFC 4254 §5.1) waiting for the
// server layer's answer.
type NewChannel struct {
	mux          *Mux
	channelType  string
	extraData    []byte
	remoteID     uint32
	remoteWindow uint32
	remoteMax    uint32
	answered     bool // guarded by mux.mu
}

// ChannelType is the requested channel type, e.g. "session".
func (nc *NewChannel) ChannelType() string { return nc.channelType }

// ExtraData is the channel-type-specific data (e.g. DirectTCPIP).
func (nc *NewChannel) ExtraData() []byte { return nc.extraData }

// answerLocked marks nc answered and releases its pending-open slot.
func (nc *NewChannel) answerLocked() error {
	m := nc.mux
	if nc.answered {
		return ErrAlreadyAnswered
	}
	nc.answered = true
	if m.closed {
		return fmt.Errorf("%w: %w", ErrMuxClosed, m.err)
	}
	m.pendingOpens--
	return nil
}

// Accept confirms the channel (CHANNEL_OPEN_CONFIRMATION).
func (nc *NewChannel) Accept() (*Channel, error) {
	return nc.accept(nil, nil)
}

// AcceptFunc confirms the channel like Accept, but the channel's requests
// go to onRequest, called on the mux's read goroutine in arrival order,
// instead of to Requests(); and onDone, if not nil, is called once the
// channel is freed or the connection ends (when Done is closed); its
// Requests() is nil. Neither
// may block: they hold up the whole connection's input. A session server
// answers its requests this way without a goroutine per channel.
func (nc *NewChannel) AcceptFunc(onRequest func(*Request), onDone func()) (*Channel, error) {
	if onRequest == nil {
		return nil, errors.New("connection: AcceptFunc needs a request function")
	}
	return nc.accept(onRequest, onDone)
}

func (nc *NewChannel) accept(onRequest func(*Request), onDone func()) (*Channel, error) {
	m := nc.mux
	c := m.newChannel(nc.channelType, nc.extraData, onRequest)
	// Before allocLocked publishes the channel to the read loop.
	c.onDone = onDone
	c.remoteID = nc.remoteID
	c.remoteCredit = nc.remoteWindow
	c.remoteMaxPacket = min(nc.remoteMax, maxSendData)
	m.mu.Lock()
	if err := nc.answerLocked(); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	// Under the same lock as releasing the pending slot, so the read loop
	// never sees the slot free before the channel is counted.
	m.allocLocked(c)
	m.mu.Unlock()
	msg := channelOpenConfirmMsg{
		RecipientChannel:  c.remoteID,
		SenderChannel:     c.localID,
		InitialWindowSize: c.window,
		MaximumPacketSize: m.cfg.MaxPacket,
	}
	if err := m.conn.WritePacket(msg.appendTo(nil)); err != nil {
		return nil, err
	}
	return c, nil
}

// Reject refuses the channel with an RFC 4254 §5.1 reason code
// (OpenAdministrativelyProhibited, OpenConnectFailed, ...).
func (nc *NewChannel) Reject(reason uint32, message string) error {
	nc.mux.mu.Lock()
	err := nc.answerLocked()
	nc.mux.mu.Unlock()
	if err != nil {
		return err
	}
	msg := channelOpenFailureMsg{RecipientChannel: nc.remoteID, ReasonCode: reason, Description: message}
	return nc.mux.conn.WritePacket(msg.appendTo(nil))
}

// GlobalRequest is an incoming GLOBAL_REQUEST (RFC 4254 §4).
type GlobalRequest struct {
	Type      string
	WantReply bool
	Payload   []byte
	mux       *Mux
	seq       uint64
	replyMu   sync.Mutex
	replied   bool
}

// Reply answers the request; payload is the REQUEST_SUCCESS data (e.g.
// TCPIPForwardReply). Requests without WantReply need no reply (Reply is
// then a no-op). A second Reply returns ErrAlreadyAnswered, so
// `defer req.Reply(false, nil)` is a safe default.
func (r *GlobalRequest) Reply(ok bool, payload []byte) error {
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
	if !ok {
		payload = nil
	}
	r.mux.globalRepl.answer(r.seq, ok, append([]byte(nil), payload...))
	return r.mux.flushGlobalReplies()
}
