// Package transport implements the SSH transport layer protocol: RFC 4253
// (version exchange §4.2, binary packet protocol §6, key exchange §7-8,
// service messages §10-11), RFC 4344 (rekeying, CTR modes), RFC 4419 and
// RFC 8268 (DH groups), RFC 5656 (ECDH), RFC 8731 (curve25519), RFC 8308
// (extension negotiation), RFC 9142 (key exchange guidance) and OpenSSH's
// PROTOCOL extensions: strict key exchange (kex-strict-*-v00@openssh.com,
// the Terrapin countermeasure), delayed compression (zlib@openssh.com),
// chacha20-poly1305@openssh.com, *-etm@openssh.com MACs and
// ping@openssh.com.
//
// A Conn hands every message of the upper layers (service, authentication,
// connection protocol) to its single reader and accepts writes from any
// goroutine. Key re-exchanges run inside ReadPacket, invisible to callers,
// while WritePacket holds application data back with back-pressure.
package transport

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport/internal/packet"
)

// maxPendingControlBytes bounds the small messages (window adjusts, request
// replies, channel closes) queued while a key exchange we started is in
// progress. Bulk data never queues: its writers block until the exchange
// ends (CVE-2025-22869). A well-behaved peer answers our KEXINIT within one
// round trip, so 256 KiB of control replies means it is flooding us.
const maxPendingControlBytes = 256 * 1024

// Algorithms are the algorithms negotiated by the latest key exchange.
type Algorithms struct {
	Kex            string
	HostKey        string
	CipherIn       string
	CipherOut      string
	MACIn          string
	MACOut         string
	CompressionIn  string
	CompressionOut string
}

// Conn is an SSH transport connection.
type Conn struct {
	nc       net.Conn
	isClient bool
	s        settings

	// Server side.
	hostKeys      []keys.Signer
	serverSigAlgs []string
	clientExtInfo bool // the client sent ext-info-c in its first KEXINIT
	// Client side.
	hostKeyCallback  func(keys.PublicKey) error
	disableStrictKex bool
	disableExtInfo   bool
	serverSigAlgsIn  []string // server-sig-algs received in EXT_INFO

	localVersion, remoteVersion string

	// Read side: owned by the goroutine in ReadPacket (readMu).
	readMu    sync.Mutex
	r         *packet.Reader
	readErr   error
	firstKex  bool // the first key exchange has not completed
	strictKex bool
	pendingIn []byte // our KEXINIT payload when we started the exchange
	// held are connection-layer messages the peer sent during a key
	// re-exchange, which ReadPacket delivers once it is over.
	held      [][]byte
	heldBytes int
	heldData  int // channel data in held (CHANNEL_DATA and EXTENDED_DATA payloads)
	// channelCredit, if set, is the channel data the peer may still send
	// (SetChannelCredit).
	channelCredit func() uint64
	kexCount      int
	lastKexAt     atomic.Int64 // unix nanos of the last completed kex
	// peerKexTAT paces the key exchanges the peer starts after
	// authentication (admitPeerKex): the time the next one is due.
	peerKexTAT time.Time
	readBytes  atomic.Uint64 // payload bytes received, for logs and metrics

	// Write side.
	wmu          sync.Mutex
	wcond        *sync.Cond
	w            *packet.Writer
	writeErr     error
	inKex        bool   // we sent KEXINIT and have not yet sent NEWKEYS
	sentKexInit  []byte // payload of the KEXINIT we sent for the current exchange
	pending      [][]byte
	pendingBytes int
	writers      atomic.Int32  // goroutines waiting to write: the last one flushes
	flushOwed    bool          // a WritePacket left its flush to a waiting writer (wmu)
	writeBytes   atomic.Uint64 // payload bytes sent

	sessionID     []byte
	hostKey       keys.PublicKey
	algs          atomic.Pointer[Algorithms]
	authenticated atomic.Bool
	delayedComp   bool // negotiated zlib@openssh.com not yet enabled (guarded by wmu for writer, readMu for reader)
	delayedCompIn bool

	deadlineMu    sync.Mutex
	outerDeadline time.Time
	// kexDeadline ends the key exchange in progress (zero when none is):
	// SetDeadline keeps it, so a caller clearing its own deadline cannot
	// lift an exchange's timeout.
	kexDeadline time.Time

	sentDisconnect bool // guarded by wmu
	closeOnce      sync.Once
}

// disconnectWriteTimeout bounds how long sending a DISCONNECT may take.
const disconnectWriteTimeout = 5 * time.Second

// Server runs the server side of the version exchange and the first key
// exchange on nc. That exchange is bounded by Config.KexTimeout; key
// exchanges set nc's deadline themselves, so a deadline set on nc before
// the call does not survive them. To bound the whole pre-authentication
// phase set Config.Deadline (package server does for LoginGraceTime).
func Server(nc net.Conn, cfg *Config) (*Conn, error) {
	c := &Conn{nc: nc, hostKeys: cfg.HostKeys, serverSigAlgs: cfg.ServerSigAlgs}
	if !cfg.Deadline.IsZero() {
		c.outerDeadline = cfg.Deadline
		nc.SetDeadline(cfg.Deadline)
	}
	c.s = settings{kex: cfg.KeyExchanges, hostKey: cfg.HostKeyAlgorithms, ciphers: cfg.Ciphers, macs: cfg.MACs,
		compressions: cfg.Compressions, rekeyBytes: cfg.RekeyBytes, rekeyInterval: cfg.RekeyInterval,
		kexTimeout: cfg.KexTimeout, version: cfg.SoftwareVersion, rand: cfg.Rand, log: cfg.Logger, gexMinBits: cfg.GEXMinBits}
	if err := c.s.fill(); err != nil {
		return nil, err
	}
	if c.serverSigAlgs == nil {
		c.serverSigAlgs = defaultServerSigAlgs
	}
	if len(c.hostKeyAlgorithms()) == 0 {
		return nil, errors.New("transport: no host key matches the configured host key algorithms")
	}
	if err := c.handshake(); err != nil {
		c.abort(err)
		if c.remoteVersion != "" {
			in, out := c.BytesTransferred()
			return nil, &HandshakeError{PeerVersion: c.remoteVersion, BytesIn: in, BytesOut: out, Err: err}
		}
		return nil, err
	}
	return c, nil
}

// HandshakeError is Server's error for a handshake that failed after the
// version exchange: what the connection got to, for the log line an
// administrator reads when a customer's client cannot connect (its
// version names the client; no common algorithm is the usual reason).
type HandshakeError struct {
	PeerVersion       string // the client's identification string
	BytesIn, BytesOut uint64 // message payload bytes, as Conn.BytesTransferred
	Err               error
}

func (e *HandshakeError) Error() string { return e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// Client runs the client side of the version exchange and first key
// exchange on nc.
func Client(nc net.Conn, cfg *ClientConfig) (*Conn, error) {
	c := &Conn{nc: nc, isClient: true, hostKeyCallback: cfg.HostKeyCallback,
		disableStrictKex: cfg.DisableStrictKex, disableExtInfo: cfg.DisableExtInfo}
	c.s = settings{kex: cfg.KeyExchanges, hostKey: cfg.HostKeyAlgorithms, ciphers: cfg.Ciphers, macs: cfg.MACs,
		compressions: cfg.Compressions, rekeyBytes: cfg.RekeyBytes, rekeyInterval: cfg.RekeyInterval,
		kexTimeout: cfg.KexTimeout, version: cfg.SoftwareVersion, rand: cfg.Rand, log: cfg.Logger}
	if err := c.s.fill(); err != nil {
		return nil, err
	}
	if err := c.handshake(); err != nil {
		c.abort(err)
		return nil, err
	}
	return c, nil
}

// handshake exchanges identification strings and runs the first key
// exchange, RFC 4253 §4.2 and §7.
func (c *Conn) handshake() error {
	c.wcond = sync.NewCond(&c.wmu)
	c.firstKex = true
	c.localVersion = "SSH-2.0-" + c.s.version
	c.w = packet.NewWriter(c.nc)

	c.setKexDeadline()
	// Our identification string and KEXINIT go out in one write without
	// waiting for the peer's: it saves a round trip (OpenSSH does the same).
	c.wmu.Lock()
	c.w.WriteRaw([]byte(c.localVersion + "\r\n"))
	err := c.sendKexInitLocked()
	c.wmu.Unlock()
	if err != nil {
		return err
	}

	remote, rest, err := readVersion(c.nc, c.isClient)
	if err != nil {
		if err == errSSH1 && !c.isClient {
			// An SSH-1 client cannot parse a binary DISCONNECT.
			io.WriteString(c.nc, "Protocol major versions differ.\r\n")
		}
		return err
	}
	c.remoteVersion = remote
	c.r = packet.NewReader(c.nc)
	c.r.Prefill(rest)

	// The peer's KEXINIT must come first. Without strict kex, IGNORE and
	// DEBUG may precede it; with strict kex (known only once it arrives)
	// it must be packet 0, which defeats prefix truncation (CVE-2023-48795).
	c.readMu.Lock()
	defer c.readMu.Unlock()
	skipped := 0
	for {
		p, err := c.readRawLocked()
		if err != nil {
			return err
		}
		switch p[0] {
		case wire.MsgKexInit:
			if err := c.runKexLocked(p, skipped); err != nil {
				return err
			}
			c.clearKexDeadline()
			return nil
		case wire.MsgIgnore, wire.MsgDebug, wire.MsgUnimplemented:
			skipped++
			if skipped > 64 {
				return protocolError("too many messages before KEXINIT")
			}
		case wire.MsgDisconnect:
			return remoteDisconnect(p)
		default:
			return protocolError("unexpected message %d before KEXINIT", p[0])
		}
	}
}

// ReadPacket returns the payload of the next message for the layers above
// the transport. Transport messages (IGNORE, DEBUG, UNIMPLEMENTED, PING,
// key re-exchange) are handled here. The returned slice is valid until the
// next call. ReadPacket must be called by one goroutine at a time, and
// someone must keep calling it for as long as the connection is used: key
// re-exchanges (started by either side) complete inside ReadPacket, and
// data writers wait for them.
func (c *Conn) ReadPacket() ([]byte, error) {
	// No defer: this frame stays under every idle connection's read, and
	// a deferred unlock makes it larger (issue 8's idle budget). Besides
	// the reading goroutine only Unimplemented takes readMu, and upper
	// layers call that from the reading goroutine, so a panic leaving it
	// locked strands nobody else.
	c.readMu.Lock()
	for c.readErr == nil {
		var p []byte
		var err error
		if c.held != nil {
			p = c.unholdLocked()
		} else {
			p, err = c.readRawLocked()
		}
		if err == nil {
			var deliver bool
			if deliver, err = c.handleReadLocked(p); err == nil && !deliver {
				continue
			}
		}
		if err != nil {
			err = c.failRead(err)
			c.readMu.Unlock()
			return nil, err
		}
		c.readMu.Unlock()
		return p, nil
	}
	err := c.readErr
	c.readMu.Unlock()
	return nil, err
}

// handleReadLocked handles a transport-layer message itself and reports
// whether p is for the caller. It is not inlined so that ReadPacket's
// frame, which stays on every idle connection's stack while it waits for
// the next packet, is small (issue 8's idle budget).
//
//go:noinline
func (c *Conn) handleReadLocked(p []byte) (deliver bool, err error) {
	switch t := p[0]; {
	case t == wire.MsgKexInit:
		if err := c.admitPeerKex(); err != nil {
			return false, err
		}
		if err := c.runKexLocked(p, 0); err != nil {
			return false, err
		}
		c.clearKexDeadline()
	case t == wire.MsgDisconnect:
		return false, remoteDisconnect(p)
	case t == wire.MsgIgnore, t == wire.MsgDebug, t == wire.MsgUnimplemented, t == wire.MsgPong:
		// Nothing to do. IGNORE is a traffic-analysis countermeasure;
		// we never send PING, so a PONG is stray but harmless.
	case t == wire.MsgPing:
		if err := c.answerPing(p); err != nil {
			return false, err
		}
	case t == wire.MsgNewKeys || (t >= 30 && t <= 49):
		return false, protocolError("key exchange message %d outside a key exchange", t)
	case t == wire.MsgExtInfo:
		if !c.isClient {
			// RFC 8308 §2.1: only if the server offered ext-info-s,
			// which ferry does not.
			return false, protocolError("unexpected EXT_INFO from client")
		}
		c.handleExtInfo(p)
	case t < wire.MsgServiceRequest || (t > wire.MsgExtInfo && t < wire.MsgUserAuthRequest):
		// Unknown transport-range message: RFC 4253 §11.4.
		if err := c.sendUnimplemented(); err != nil {
			return false, err
		}
	default:
		if !c.isClient && t >= wire.MsgGlobalRequest && !c.authenticated.Load() {
			// Defence in depth for CVE-2025-32433 / CVE-2018-10933:
			// no connection-protocol message reaches the upper layers
			// before USERAUTH_SUCCESS, whatever they do.
			return false, protocolError("message %d before authentication", t)
		}
		if c.isClient && t == wire.MsgUserAuthSuccess {
			c.markAuthenticatedRead()
		}
		if err := c.maybeStartRekey(); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// readRawLocked reads one packet, enabling delayed compression first if
// authentication just completed. Small enough to inline, so that the
// frames under an idle connection's read are few (issue 8's idle budget).
func (c *Conn) readRawLocked() ([]byte, error) {
	if c.delayedCompIn || !c.authenticated.Load() {
		if err := c.prepareReadLocked(); err != nil {
			return nil, err
		}
	}
	p, err := c.r.ReadPacket()
	if err != nil || len(p) == 0 {
		return nil, emptyOr(err)
	}
	c.readBytes.Add(uint64(len(p)))
	return p, nil
}

// emptyOr is err, or the error for an empty packet when err is nil.
//
//go:noinline
func emptyOr(err error) error {
	if err == nil {
		return protocolError("empty packet")
	}
	return err
}

// prepareReadLocked is readRawLocked's rare part.
//
//go:noinline
func (c *Conn) prepareReadLocked() error {
	if c.delayedCompIn && c.authenticated.Load() {
		c.delayedCompIn = false
		if err := c.r.SetCompression(c.algs.Load().CompressionIn); err != nil {
			return err
		}
	}
	if !c.authenticated.Load() {
		// Before authentication nobody has earned a buffer: a client that
		// sent one large packet and then trickles (slowloris) would
		// otherwise keep a pooled buffer of up to ~280 KiB while it waits.
		c.r.Release()
	}
	return nil
}

// WritePacket sends one message. It is safe for concurrent use and does
// not retain p. While a key exchange we started is running, connection
// data (CHANNEL_DATA, CHANNEL_EXTENDED_DATA) blocks until it ends, and
// other messages are queued up to maxPendingControlBytes.
func (c *Conn) WritePacket(p []byte) error { return c.writePacket(p, true) }

// WritePacketMore is WritePacket for a caller that will send another packet
// right away (like MSG_MORE on a socket): the sealed packet stays in the
// output buffer, which is written out once it holds writeFlushThreshold
// bytes, by the next WritePacket, by Flush, or by any key exchange message.
// A 256 KiB channel write is eight 32 KiB packets; sealing them with
// WritePacketMore and the last with WritePacket costs a few write(2) calls
// instead of eight, and as many fewer scheduler wakeups on both ends. The
// caller must follow up with WritePacket or Flush, or the data may wait.
func (c *Conn) WritePacketMore(p []byte) error { return c.writePacket(p, false) }

// Flush writes out anything WritePacketMore left buffered.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	return c.flushLocked()
}

// WritePacketParts sends the message hdr followed by body, like
// WritePacket(append(hdr, body...)) without joining them first: the
// connection layer passes a CHANNEL_DATA header and the caller's bytes,
// which are then copied once, into the sealed output. more is as for
// WritePacketMore. Neither slice is retained.
func (c *Conn) WritePacketParts(hdr, body []byte, more bool) error {
	if len(hdr) == 0 {
		return errors.New("transport: empty message header")
	}
	return c.writePacketParts(hdr, body, !more)
}

// WritePacketVec is WritePacketParts with the body in several slices,
// each copied once into the sealed output (several SFTP replies packed
// into one CHANNEL_DATA). Neither hdr nor body is retained.
func (c *Conn) WritePacketVec(hdr []byte, body [][]byte, more bool) error {
	if len(hdr) == 0 {
		return errors.New("transport: empty message header")
	}
	return c.writePacketBody(hdr, nil, body, !more)
}

func (c *Conn) writePacket(p []byte, flush bool) error {
	return c.writePacketBody(p, nil, nil, flush)
}

func (c *Conn) writePacketParts(p, body []byte, flush bool) error {
	return c.writePacketBody(p, body, nil, flush)
}

// writePacketBody writes the message p || body || bodies... (body or
// bodies, not both).
func (c *Conn) writePacketBody(p, body []byte, bodies [][]byte, flush bool) error {
	if len(p) == 0 {
		return errors.New("transport: empty payload")
	}
	c.writers.Add(1)
	c.wmu.Lock()
	c.writers.Add(-1)
	defer c.wmu.Unlock()
	for c.inKex && c.writeErr == nil {
		if p[0] == wire.MsgChannelData || p[0] == wire.MsgChannelExtendedData {
			c.wcond.Wait()
			continue
		}
		n := len(p) + len(body)
		for _, b := range bodies {
			n += len(b)
		}
		if c.pendingBytes+n > maxPendingControlBytes {
			c.writeErr = protocolError("peer did not complete key exchange while %d bytes of replies queued", c.pendingBytes)
			c.wcond.Broadcast()
			return c.writeErr
		}
		q := append(append(make([]byte, 0, n), p...), body...)
		for _, b := range bodies {
			q = append(q, b...)
		}
		c.pending = append(c.pending, q)
		c.pendingBytes += n
		return nil
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	var err error
	if bodies != nil {
		err = c.writeVecLocked(p, bodies)
	} else {
		err = c.writeLocked(p, body)
	}
	if err != nil {
		return err
	}
	if !c.isClient && p[0] == wire.MsgUserAuthSuccess {
		c.markAuthenticatedWriteLocked()
	}
	if flush || c.flushOwed {
		// No other writer is waiting: flush now. Otherwise the last of
		// them flushes, coalescing a burst into one write system call;
		// flushOwed makes that so even when the next writer is a
		// WritePacketMore, which would not flush for itself.
		if c.writers.Load() == 0 {
			c.flushOwed = false
			if err := c.flushLocked(); err != nil {
				return err
			}
		} else {
			c.flushOwed = true
		}
	}
	return c.maybeStartRekeyLocked()
}

func (c *Conn) writeVecLocked(p []byte, bodies [][]byte) error {
	if err := c.w.WritePacketVec(p, bodies); err != nil {
		return c.failWriteLocked(err)
	}
	n := len(p)
	for _, b := range bodies {
		n += len(b)
	}
	c.writeBytes.Add(uint64(n))
	return nil
}

func (c *Conn) writeLocked(p, body []byte) error {
	if err := c.w.WritePacketParts(p, body); err != nil {
		return c.failWriteLocked(err)
	}
	c.writeBytes.Add(uint64(len(p) + len(body)))
	return nil
}

// BytesTransferred returns the message payload bytes received and sent so
// far (before compression and encryption).
func (c *Conn) BytesTransferred() (in, out uint64) {
	return c.readBytes.Load(), c.writeBytes.Load()
}

func (c *Conn) flushLocked() error {
	if err := c.w.Flush(); err != nil {
		return c.failWriteLocked(err)
	}
	return nil
}

func (c *Conn) failWriteLocked(err error) error {
	if c.writeErr == nil {
		c.writeErr = err
	}
	c.wcond.Broadcast()
	return c.writeErr
}

// failRead ends the connection after a read-side error. A protocol error
// we detected (bad MAC, bad length, unexpected message) is answered with
// DISCONNECT carrying its reason before the connection closes, as RFC 4253
// §11.1 asks, so the peer learns why.
func (c *Conn) failRead(err error) error {
	if c.readErr == nil {
		c.readErr = err
	}
	var d *DisconnectError
	if errors.As(err, &d) && !d.Remote {
		c.Disconnect(d.Reason, d.Message)
		return c.readErr
	}
	c.wmu.Lock()
	c.failWriteLocked(err)
	c.wmu.Unlock()
	return c.readErr
}

// markAuthenticatedWriteLocked runs right after the server wrote
// USERAUTH_SUCCESS: delayed compression starts with the next packet in
// each direction (OpenSSH PROTOCOL §1.3 zlib@openssh.com).
func (c *Conn) markAuthenticatedWriteLocked() {
	c.authenticated.Store(true)
	if c.delayedComp {
		c.delayedComp = false
		c.w.SetCompression(c.algs.Load().CompressionOut)
	}
}

// markAuthenticatedRead runs on the client when USERAUTH_SUCCESS arrives.
func (c *Conn) markAuthenticatedRead() {
	c.authenticated.Store(true)
	c.wmu.Lock()
	if c.delayedComp {
		c.delayedComp = false
		c.w.SetCompression(c.algs.Load().CompressionOut)
	}
	c.wmu.Unlock()
}

// SetAuthenticated records that user authentication completed. The server
// side also detects this itself when it writes USERAUTH_SUCCESS.
func (c *Conn) SetAuthenticated() {
	c.wmu.Lock()
	c.markAuthenticatedWriteLocked()
	c.wmu.Unlock()
}

// SetChannelCredit gives the transport the connection layer's receive
// windows: credit reports the channel data the peer may still send
// (connection.Mux.ReceiveCredit). Messages the peer sends during a key
// re-exchange are then held only up to that much channel data plus a
// small allowance for the rest; a peer that sends more has overrun a
// window (RFC 4254 §5.2) and the connection ends. Call it before the
// first ReadPacket after authentication.
func (c *Conn) SetChannelCredit(credit func() uint64) {
	c.readMu.Lock()
	c.channelCredit = credit
	c.readMu.Unlock()
}

// answerPing replies to ping@openssh.com, only after authentication and
// never during a key exchange (OpenSSH PROTOCOL §1.9). Unauthenticated
// pings are dropped: answering them would let anyone make us write.
func (c *Conn) answerPing(p []byte) error {
	var m pingMsg
	if !m.unmarshal(p) {
		return protocolError("malformed PING")
	}
	if !c.authenticated.Load() {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.inKex || c.writeErr != nil {
		return c.writeErr
	}
	reply := pongMsg{Data: m.Data}
	if err := c.writeLocked(reply.marshal(), nil); err != nil {
		return err
	}
	return c.flushLocked()
}

func (c *Conn) sendUnimplemented() error {
	m := unimplementedMsg{SeqNum: c.r.SeqNum() - 1}
	return c.WritePacket(m.marshal())
}

// Unimplemented sends SSH_MSG_UNIMPLEMENTED for the message ReadPacket
// returned last (RFC 4253 §11.4), for upper layers that do not recognise it.
func (c *Conn) Unimplemented() error {
	c.readMu.Lock()
	seq := c.r.SeqNum() - 1
	c.readMu.Unlock()
	m := unimplementedMsg{SeqNum: seq}
	return c.WritePacket(m.marshal())
}

func (c *Conn) handleExtInfo(p []byte) {
	var m extInfoMsg
	if !m.unmarshal(p) {
		return
	}
	for i, n := range m.Names {
		if n == "server-sig-algs" {
			if l, ok := wire.ParseNameList(m.Values[i]); ok {
				c.serverSigAlgsIn = l
			}
		}
	}
}

// Disconnect sends SSH_MSG_DISCONNECT and closes the connection. It does
// not wait for any queued message.
func (c *Conn) Disconnect(reason uint32, message string) error {
	m := disconnectMsg{Reason: reason, Message: message}
	// A peer that stopped reading must not hold us here, nor past the
	// outer deadline. The deadline is set before taking wmu: a writer
	// blocked on that peer's full socket holds wmu, and a deadline also
	// ends I/O already pending, so that writer fails and lets go.
	// Otherwise nothing could end such a connection while the peer kept
	// its socket open: not ClientAliveInterval, not a protocol error
	// (the read loop waits for wmu too), not a panic's clean-up.
	d := time.Now().Add(disconnectWriteTimeout)
	c.deadlineMu.Lock()
	if !c.outerDeadline.IsZero() && c.outerDeadline.Before(d) {
		d = c.outerDeadline
	}
	c.deadlineMu.Unlock()
	c.nc.SetWriteDeadline(d)
	c.wmu.Lock()
	if !c.sentDisconnect && (c.writeErr == nil || isLocalDisconnect(c.writeErr)) {
		c.sentDisconnect = true
		c.nc.SetWriteDeadline(d)
		if c.w.WritePacket(m.marshal()) == nil {
			c.w.Flush()
		}
	}
	if c.writeErr == nil {
		c.writeErr = &DisconnectError{Reason: reason, Message: message}
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
	return c.Close()
}

func isLocalDisconnect(err error) bool {
	var d *DisconnectError
	return errors.As(err, &d) && !d.Remote
}

// abort ends a connection whose handshake failed, sending DISCONNECT when
// the error carries a reason and the packet layer is up.
func (c *Conn) abort(err error) {
	var d *DisconnectError
	if errors.As(err, &d) && !d.Remote && c.w != nil && d.Reason != wire.DisconnectProtocolVersionNotSupport {
		c.Disconnect(d.Reason, d.Message)
		return
	}
	c.Close()
}

// Close closes the underlying network connection.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.nc.Close()
		c.wmu.Lock()
		if c.writeErr == nil {
			c.writeErr = net.ErrClosed
		}
		c.wcond.Broadcast()
		c.wmu.Unlock()
	})
	return err
}

// SessionID returns the exchange hash of the first key exchange.
func (c *Conn) SessionID() []byte { return c.sessionID }

// HostKey returns the host key that signed the first key exchange.
func (c *Conn) HostKey() keys.PublicKey { return c.hostKey }

// ClientVersion and ServerVersion return the identification strings.
func (c *Conn) ClientVersion() string {
	if c.isClient {
		return c.localVersion
	}
	return c.remoteVersion
}

func (c *Conn) ServerVersion() string {
	if c.isClient {
		return c.remoteVersion
	}
	return c.localVersion
}

// Algorithms returns the algorithms negotiated by the latest key exchange.
func (c *Conn) Algorithms() Algorithms { return *c.algs.Load() }

// ServerSigAlgs returns the server-sig-algs the server announced (client
// side only).
func (c *Conn) ServerSigAlgs() []string { return c.serverSigAlgsIn }

// StrictKex reports whether strict key exchange was negotiated.
func (c *Conn) StrictKex() bool { return c.strictKex }

// RemoteAddr and LocalAddr return the network addresses.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
func (c *Conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }

// SetDeadline sets a deadline for all I/O on the connection (for example
// the pre-authentication LoginGraceTime). Key exchanges tighten it
// temporarily to their own timeout and restore it afterwards; set during
// an exchange, it takes effect as the exchange's timeout allows. The zero
// time removes it.
func (c *Conn) SetDeadline(t time.Time) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.outerDeadline = t
	return c.nc.SetDeadline(earliest(t, c.kexDeadline))
}

func (c *Conn) setKexDeadline() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.kexDeadline = time.Now().Add(c.s.kexTimeout)
	c.nc.SetDeadline(earliest(c.outerDeadline, c.kexDeadline))
}

func (c *Conn) clearKexDeadline() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.kexDeadline = time.Time{}
	c.nc.SetDeadline(c.outerDeadline)
}

// earliest is the earlier of two deadlines, where zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func remoteDisconnect(p []byte) error {
	var m disconnectMsg
	if !m.unmarshal(p) {
		return protocolError("malformed DISCONNECT")
	}
	return &DisconnectError{Reason: m.Reason, Message: clipPeerText(m.Message, maxPeerDisconnectText), Remote: true}
}
