package transport

import (
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport/internal/kex"
	"github.com/ferry-sftp/ferry/transport/internal/packet"
)

// Pseudo-algorithms carried in the kex name-list (never negotiated).
const (
	extInfoClient   = "ext-info-c"                   // RFC 8308 §2.1
	extInfoServer   = "ext-info-s"                   // RFC 8308 §2.1
	strictKexClient = "kex-strict-c-v00@openssh.com" // OpenSSH PROTOCOL §1.10
	strictKexServer = "kex-strict-s-v00@openssh.com"
)

func isPseudoKex(name string) bool {
	switch name {
	case extInfoClient, extInfoServer, strictKexClient, strictKexServer:
		return true
	}
	return false
}

// hostKeyAlgorithms lists the configured host key algorithms for which the
// server holds a key, in configured order.
func (c *Conn) hostKeyAlgorithms() []string {
	var out []string
	for _, alg := range c.s.hostKey {
		if c.signerFor(alg) != nil {
			out = append(out, alg)
		}
	}
	return out
}

func (c *Conn) signerFor(alg string) keys.Signer {
	for _, s := range c.hostKeys {
		if slices.Contains(keys.SignatureAlgorithmsFor(s.PublicKey().Type()), alg) {
			return s
		}
	}
	return nil
}

// sendKexInitLocked starts a key exchange from our side (wmu held): from
// now until we send NEWKEYS, WritePacket holds application data back.
func (c *Conn) sendKexInitLocked() error {
	if c.writeErr != nil {
		return c.writeErr
	}
	m := kexInitMsg{
		KexAlgos:                slices.Clone(c.s.kex),
		CiphersClientServer:     c.s.ciphers,
		CiphersServerClient:     c.s.ciphers,
		MACsClientServer:        c.s.macs,
		MACsServerClient:        c.s.macs,
		CompressionClientServer: c.s.compressions,
		CompressionServerClient: c.s.compressions,
	}
	if _, err := io.ReadFull(c.s.rand, m.Cookie[:]); err != nil {
		return err
	}
	if c.isClient {
		m.ServerHostKeyAlgos = c.s.hostKey
		if c.firstKex {
			if !c.disableExtInfo {
				m.KexAlgos = append(m.KexAlgos, extInfoClient)
			}
			if !c.disableStrictKex {
				m.KexAlgos = append(m.KexAlgos, strictKexClient)
			}
		}
	} else {
		m.ServerHostKeyAlgos = c.hostKeyAlgorithms()
		if c.firstKex {
			m.KexAlgos = append(m.KexAlgos, strictKexServer)
		}
	}
	p := m.marshal()
	c.sentKexInit = p
	c.inKex = true
	if err := c.writeLocked(p, nil); err != nil {
		return err
	}
	return c.flushLocked()
}

// Bounds on the key re-exchanges a client starts. Each costs the server
// what a new connection's first one does: measured against ferry serve,
// 0.4 ms of CPU with curve25519-sha256 and an Ed25519 host key, 4 ms with
// mlkem768x25519-sha256 and rsa-sha2-512, 22 ms with
// diffie-hellman-group18-sha512 and rsa-sha2-512. One connection
// re-keying after every packet kept a server core busy (75 to 1,600
// exchanges in 3 s), before authentication too, where MaxStartups
// connections could do it for LoginGraceTime each (CVE-2002-20001,
// "D(HE)ater", done without reconnecting).
const (
	// maxKexBeforeAuth: the first exchange and two re-exchanges. No
	// client needs more: rekey limits are counted in GiB or hours, and
	// authentication ends within LoginGraceTime after a few KiB.
	maxKexBeforeAuth = 3
	// After authentication the peer's re-exchanges are paced, not
	// refused (a client may set a small RekeyLimit): a burst of
	// peerKexBurst, then one per peerKexEvery. One connection then costs
	// at most ~2% of a core (22 ms a second).
	peerKexBurst = 16
	peerKexEvery = time.Second
)

// admitPeerKex runs on the server when a KEXINIT arrives after the first
// key exchange (readMu held). A KEXINIT answering one we sent is always
// taken; one the client starts counts against maxKexBeforeAuth before
// authentication, and waits for its turn after it.
//
//go:noinline
func (c *Conn) admitPeerKex() error {
	if c.isClient {
		return nil
	}
	if !c.authenticated.Load() {
		if c.kexCount >= maxKexBeforeAuth {
			return protocolError("more than %d key exchanges before authentication", maxKexBeforeAuth)
		}
		return nil
	}
	c.wmu.Lock()
	ours := c.inKex
	c.wmu.Unlock()
	if ours {
		return nil
	}
	now := time.Now()
	if c.peerKexTAT.Before(now) {
		c.peerKexTAT = now
	}
	c.peerKexTAT = c.peerKexTAT.Add(peerKexEvery)
	if wait := c.peerKexTAT.Sub(now) - peerKexBurst*peerKexEvery; wait > 0 {
		// At most peerKexEvery: the connection's reads pause, and
		// whatever closes it is seen on the next read.
		time.Sleep(wait)
	}
	return nil
}

// maybeStartRekey starts a key exchange when a rekey limit is reached
// (readMu held: both directions' counters may be read).
func (c *Conn) maybeStartRekey() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.inKex || c.firstKex || c.holdRekey() {
		return nil
	}
	rp, rb := c.r.Stats()
	if rb >= c.rekeyLimit(c.algs.Load().CipherIn) || rp >= maxPacketsPerKey {
		return c.startRekeyLocked()
	}
	return c.maybeStartRekeyLocked()
}

// maybeStartRekeyLocked checks the write direction and the time limit
// (wmu held). The read direction's counters belong to the reader and are
// checked only from ReadPacket.
func (c *Conn) maybeStartRekeyLocked() error {
	if c.inKex || c.firstKex || c.holdRekey() {
		return nil
	}
	wp, wb := c.w.Stats()
	if wb >= c.rekeyLimit(c.algs.Load().CipherOut) || wp >= maxPacketsPerKey ||
		time.Since(time.Unix(0, c.lastKexAt.Load())) >= c.s.rekeyInterval {
		return c.startRekeyLocked()
	}
	return nil
}

// holdRekey reports whether rekey limits wait: a server acts on them
// only after authentication, as OpenSSH's ssh_packet_need_rekeying does.
// OpenSSH's client refuses a KEXINIT during authentication ("bad message
// during authentication: type 20"), so a rekey_limit interval shorter
// than a login (a password or OTP being typed) failed every such login;
// and USERAUTH_SUCCESS, queued behind our unanswered KEXINIT, went out
// with the rest of that exchange under the delayed compression that
// SetAuthenticated turns on. Authentication moves a few KiB; an overdue
// limit starts the exchange with the first packet after
// USERAUTH_SUCCESS. (Our client, for probes, keeps re-keying on its
// limits before authentication.)
func (c *Conn) holdRekey() bool {
	return !c.isClient && !c.authenticated.Load()
}

func (c *Conn) startRekeyLocked() error {
	c.s.log.Debug("starting key re-exchange")
	c.setKexDeadline()
	return c.sendKexInitLocked()
}

// rekeyLimit is the byte limit for one direction's keys. For 64-bit block
// ciphers RFC 4344 §3.2 says rekey after 2^(L/4) blocks: 512 KiB for
// 3des/blowfish/cast128 (Sweet32 needs ~2^32 blocks).
func (c *Conn) rekeyLimit(cipherName string) uint64 {
	limit := c.s.rekeyBytes
	// chacha20-poly1305 reports OpenSSH's nominal 8-byte block, but it is a
	// stream cipher with a 64-bit block counter per packet: not Sweet32.
	if bs := packet.CipherBlockSize(cipherName); bs == 8 && !packet.IsAEAD(cipherName) {
		const blocks = 1 << (64 / 4)
		if limit > blocks*8 {
			limit = blocks * 8
		}
	}
	return limit
}

// kexTransport feeds a key exchange method: it returns only kex-method
// messages (30-49) and writes past the application-data gate. Its writes
// stay buffered until it reads or the exchange ends, so the server's
// reply, NEWKEYS and EXT_INFO leave in one write(2) (a login's packets
// each cost a system call and a wakeup at both ends).
type kexTransport struct{ c *Conn }

func (t kexTransport) ReadPacket() ([]byte, error) {
	t.c.wmu.Lock()
	err := t.c.flushLocked()
	t.c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	for {
		p, err := t.c.readKexPacket()
		if err != nil {
			return nil, err
		}
		if p[0] >= 30 && p[0] <= 49 {
			return p, nil
		}
		return nil, protocolError("unexpected message %d during key exchange", p[0])
	}
}

func (t kexTransport) WritePacket(p []byte) error {
	t.c.wmu.Lock()
	defer t.c.wmu.Unlock()
	if t.c.writeErr != nil {
		return t.c.writeErr
	}
	return t.c.writeLocked(p, nil)
}

// readKexPacket reads the next packet during a key exchange, dropping
// IGNORE/DEBUG/UNIMPLEMENTED unless this is the first exchange under strict
// kex, where anything unexpected is fatal (OpenSSH PROTOCOL §1.10).
func (c *Conn) readKexPacket() ([]byte, error) {
	for i := 0; ; i++ {
		p, err := c.readRawLocked()
		if err != nil {
			return nil, err
		}
		switch p[0] {
		case wire.MsgIgnore, wire.MsgDebug, wire.MsgUnimplemented:
			if c.strictKex && c.firstKex {
				return nil, protocolError("strict key exchange: unexpected message %d during initial key exchange", p[0])
			}
			if i > 1024 {
				return nil, protocolError("too many messages during key exchange")
			}
			continue
		case wire.MsgDisconnect:
			return nil, remoteDisconnect(p)
		}
		if p[0] >= wire.MsgUserAuthRequest && !c.firstKex && c.authenticated.Load() {
			if err := c.holdLocked(p); err != nil {
				return nil, err
			}
			continue
		}
		return p, nil
	}
}

// Bounds on what a peer may send during a key re-exchange: a full channel
// window (connection.DefaultMaxWindow) of data in small packets. With
// SetChannelCredit the channel data is bounded by the windows the peer
// was granted, and the rest (window adjusts, requests, EOF and CLOSE, the
// headers of its data packets: 13 bytes each, at most maxHeldPackets) by
// maxHeldControlBytes. Without that bound on data, one authenticated
// client could start an exchange, never finish it and make the server
// hold 16 MiB for the whole kex timeout on each of its connections,
// whatever its windows (measured against ferry serve: 20 MiB of RSS per
// connection, 400 MiB for 20).
const (
	maxHeldPackets      = 4096
	maxHeldBytes        = 16 << 20
	maxHeldControlBytes = 256 << 10
)

// heldDataLen is the channel data a held message carries, counted against
// the peer's windows. The message is parsed for real, and refused if
// malformed, only when the connection layer reads it.
func heldDataLen(p []byte) int {
	switch p[0] {
	case wire.MsgChannelData: // byte, uint32 recipient, string data
		return max(len(p)-9, 0)
	case wire.MsgChannelExtendedData: // byte, uint32 recipient, uint32 type, string data
		return max(len(p)-13, 0)
	}
	return 0
}

// holdLocked keeps a connection-layer message that arrived during a key
// re-exchange for ReadPacket (readMu held). RFC 4253 §7.1 forbids sending
// one after KEXINIT, but OpenSSH dispatches them as usual while it
// re-keys, and AsyncSSH 2.10 (Debian 12) sends channel data after its own
// KEXINIT: every transfer past its rekey limit ended in "unexpected message
// 94 during key exchange". Only after authentication and the first
// exchange, where the messages cannot be an injection (strict kex).
func (c *Conn) holdLocked(p []byte) error {
	if len(c.held) >= maxHeldPackets || c.heldBytes+len(p) > maxHeldBytes {
		return protocolError("too many messages during key exchange")
	}
	data := heldDataLen(p)
	if c.channelCredit != nil {
		if control := c.heldBytes - c.heldData + len(p) - data; control > maxHeldControlBytes {
			return protocolError("too many messages during key exchange")
		}
		// The held data has not reached the connection layer yet, so
		// none of it is in the credit's count of what was received.
		if credit := c.channelCredit(); uint64(c.heldData+data) > credit {
			return protocolError("channel data during key exchange exceeds the windows granted (%d bytes held, %d bytes of window left)", c.heldData+data, credit)
		}
	}
	c.held = append(c.held, append([]byte(nil), p...))
	c.heldBytes += len(p)
	c.heldData += data
	return nil
}

// unholdLocked returns the oldest held message (readMu held).
//
//go:noinline
func (c *Conn) unholdLocked() []byte {
	p := c.held[0]
	c.held[0] = nil
	c.held = c.held[1:]
	c.heldBytes -= len(p)
	c.heldData -= heldDataLen(p)
	if len(c.held) == 0 {
		c.held = nil
	}
	return p
}

// hostKeySigner binds a host key to the negotiated algorithm for kex.
type hostKeySigner struct {
	s    keys.Signer
	alg  string
	blob []byte
}

func (h hostKeySigner) PublicKeyBlob() []byte { return h.blob }

func (h hostKeySigner) Sign(rand io.Reader, data []byte) ([]byte, error) {
	sig, err := h.s.Sign(rand, data, h.alg)
	if err != nil {
		return nil, err
	}
	return sig.Marshal(), nil
}

// runKexLocked runs one key exchange after the peer's KEXINIT arrived
// (readMu held). skipped counts packets read before the first KEXINIT.
func (c *Conn) runKexLocked(peerInitPayload []byte, skipped int) error {
	start := time.Now()
	peerInit := append([]byte(nil), peerInitPayload...) // the read buffer is reused
	var peer kexInitMsg
	if !peer.unmarshal(peerInit) {
		return protocolError("malformed KEXINIT")
	}

	c.wmu.Lock()
	if !c.inKex {
		c.setKexDeadline()
		if err := c.sendKexInitLocked(); err != nil {
			c.wmu.Unlock()
			return err
		}
	}
	ours := c.sentKexInit
	c.wmu.Unlock()
	var ourInit kexInitMsg
	ourInit.unmarshal(ours)

	clientInit, serverInit := &peer, &ourInit
	clientPayload, serverPayload := peerInit, ours
	if c.isClient {
		clientInit, serverInit = &ourInit, &peer
		clientPayload, serverPayload = ours, peerInit
	}

	if c.firstKex {
		if c.isClient {
			c.strictKex = !c.disableStrictKex && slices.Contains(serverInit.KexAlgos, strictKexServer)
		} else {
			c.strictKex = slices.Contains(clientInit.KexAlgos, strictKexClient)
			c.clientExtInfo = slices.Contains(clientInit.KexAlgos, extInfoClient)
		}
		if c.strictKex && (skipped > 0 || c.r.SeqNum() != 1) {
			return protocolError("strict key exchange: KEXINIT was not the first packet")
		}
	}

	algs, err := negotiateAll(clientInit, serverInit)
	if err != nil {
		return err
	}
	if c.isClient {
		algs.CipherIn, algs.CipherOut = algs.CipherOut, algs.CipherIn
		algs.MACIn, algs.MACOut = algs.MACOut, algs.MACIn
		algs.CompressionIn, algs.CompressionOut = algs.CompressionOut, algs.CompressionIn
	}

	// RFC 4253 §7: the guess is wrong, and the guessed packet is
	// discarded, when the two sides' preferred kex or host key algorithms
	// differ, even if the peer's first choice is what negotiation picked
	// (OpenSSH's proposals_match compares the first names the same way).
	if peer.FirstKexFollows && !guessRight(clientInit, serverInit) {
		if _, err := c.readKexPacket(); err != nil {
			return err
		}
	}

	method, ok := kex.New(algs.Kex, &kex.Options{GEXMinBits: c.s.gexMinBits})
	if !ok {
		return kexError("key exchange %q not implemented", algs.Kex)
	}
	magics := &kex.Magics{
		ClientVersion: []byte(c.ClientVersion()),
		ServerVersion: []byte(c.ServerVersion()),
		ClientKexInit: clientPayload,
		ServerKexInit: serverPayload,
	}
	var res *kex.Result
	if c.isClient {
		res, err = method.Client(kexTransport{c}, magics, c.s.rand)
		if err == nil {
			err = c.verifyServerKex(algs.HostKey, res)
		}
	} else {
		signer := c.signerFor(algs.HostKey)
		hk := hostKeySigner{s: signer, alg: algs.HostKey, blob: signer.PublicKey().Marshal()}
		res, err = method.Server(kexTransport{c}, magics, hk, c.s.rand)
		if err == nil && c.firstKex {
			c.hostKey = signer.PublicKey()
		}
	}
	if err != nil {
		return err
	}
	if c.firstKex {
		c.sessionID = res.H
	}

	outKeys, inKeys, err := c.deriveKeys(res, algs)
	if err != nil {
		return err
	}
	if c.strictKex && c.firstKex && (c.r.SeqWrapped() || c.w.SeqWrapped()) {
		return protocolError("strict key exchange: sequence number wrapped during initial key exchange")
	}

	// Our NEWKEYS, then the new keys for everything we send after it.
	c.wmu.Lock()
	err = c.finishOutgoingKexLocked(algs, outKeys)
	c.wmu.Unlock()
	if err != nil {
		return err
	}

	// The peer's NEWKEYS; anything but IGNORE/DEBUG first is an error.
	p, err := c.readKexPacket()
	if err != nil {
		return err
	}
	var nk newKeysMsg
	if !nk.unmarshal(p) {
		return protocolError("expected NEWKEYS, got message %d", p[0])
	}
	if err := c.r.SetCipher(algs.CipherIn, algs.MACIn, inKeys); err != nil {
		return err
	}
	if c.strictKex {
		c.r.ResetSeqNum()
	}
	if err := c.setReadCompression(algs.CompressionIn); err != nil {
		return err
	}

	c.algs.Store(&algs)
	c.kexCount++
	// Writers read firstKex under wmu (rekey checks, KEXINIT contents).
	c.wmu.Lock()
	c.firstKex = false
	c.wmu.Unlock()
	c.s.log.Debug("key exchange complete", "kex", algs.Kex, "hostkey", algs.HostKey,
		"cipher_in", algs.CipherIn, "cipher_out", algs.CipherOut, "mac_in", algs.MACIn, "mac_out", algs.MACOut,
		"compression", algs.CompressionIn, "strict", c.strictKex, "n", c.kexCount, "duration", time.Since(start))
	return nil
}

// finishOutgoingKexLocked sends NEWKEYS, switches our keys, sends EXT_INFO
// after the first exchange and releases the messages held back (wmu held).
func (c *Conn) finishOutgoingKexLocked(algs Algorithms, k packet.Keys) error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if err := c.writeLocked((&newKeysMsg{}).marshal(), nil); err != nil {
		return err
	}
	if err := c.w.SetCipher(algs.CipherOut, algs.MACOut, k); err != nil {
		return c.failWriteLocked(err)
	}
	if c.strictKex {
		c.w.ResetSeqNum()
	}
	// The rekey interval runs from here, where the writers resume: were it
	// stamped only once the peer's NEWKEYS is read, a write in between
	// would find the interval still spent and start another exchange.
	c.lastKexAt.Store(time.Now().UnixNano())
	switch algs.CompressionOut {
	case "zlib@openssh.com":
		if c.authenticated.Load() {
			c.w.SetCompression(algs.CompressionOut)
		} else {
			c.delayedComp = true
		}
	default:
		c.delayedComp = false
		if err := c.w.SetCompression(algs.CompressionOut); err != nil {
			return c.failWriteLocked(err)
		}
	}
	if c.firstKex && !c.isClient && c.clientExtInfo {
		// RFC 8308 §2.4: the first message after our first NEWKEYS.
		if err := c.writeLocked(c.extInfo().marshal(), nil); err != nil {
			return err
		}
	}
	c.inKex = false
	c.sentKexInit = nil
	for _, p := range c.pending {
		if err := c.writeLocked(p, nil); err != nil {
			return err
		}
	}
	c.pending, c.pendingBytes = nil, 0
	c.wcond.Broadcast()
	return c.flushLocked()
}

func (c *Conn) setReadCompression(name string) error {
	if name == "zlib@openssh.com" && !c.authenticated.Load() {
		c.delayedCompIn = true
		return nil
	}
	c.delayedCompIn = false
	return c.r.SetCompression(name)
}

// extInfo is the server's EXT_INFO (RFC 8308 §3, OpenSSH PROTOCOL §1.9,
// §2.5).
func (c *Conn) extInfo() *extInfoMsg {
	return &extInfoMsg{
		Names: []string{"server-sig-algs", "publickey-hostbound@openssh.com", "ping@openssh.com"},
		Values: [][]byte{
			[]byte(strings.Join(c.serverSigAlgs, ",")),
			[]byte("0"),
			[]byte("0"),
		},
	}
}

// verifyServerKex checks the server's signature over the exchange hash and
// asks the HostKeyCallback about the key (client side).
func (c *Conn) verifyServerKex(alg string, res *kex.Result) error {
	pub, err := keys.ParsePublicKey(res.HostKeyBlob)
	if err != nil {
		return kexError("bad host key: %v", err)
	}
	if keys.KeyTypeOfAlgorithm(alg) != pub.Type() {
		return kexError("host key type %s does not match algorithm %s", pub.Type(), alg)
	}
	sig, err := keys.ParseSignature(res.Signature)
	if err != nil {
		return kexError("bad host signature: %v", err)
	}
	if sig.Format != alg {
		return kexError("host signature algorithm %s, negotiated %s", sig.Format, alg)
	}
	if err := pub.Verify(res.H, sig); err != nil {
		return kexError("host key signature verification failed: %v", err)
	}
	if c.firstKex {
		if c.hostKeyCallback != nil {
			if err := c.hostKeyCallback(pub); err != nil {
				return &DisconnectError{Reason: wire.DisconnectHostKeyNotVerifiable, Message: err.Error()}
			}
		}
		c.hostKey = pub
	} else if string(pub.Marshal()) != string(c.hostKey.Marshal()) {
		return kexError("host key changed during re-exchange")
	}
	return nil
}

// deriveKeys derives both directions' keys, RFC 4253 §7.2.
func (c *Conn) deriveKeys(res *kex.Result, algs Algorithms) (out, in packet.Keys, err error) {
	derive := func(cipherName, macName string, ivTag, keyTag, macTag byte) (packet.Keys, error) {
		ivLen, keyLen, macLen, err := packet.Sizes(cipherName, macName)
		if err != nil {
			return packet.Keys{}, kexError("%v", err)
		}
		return packet.Keys{
			IV:     kex.Derive(res.Hash, res.K, res.H, ivTag, c.sessionID, ivLen),
			Key:    kex.Derive(res.Hash, res.K, res.H, keyTag, c.sessionID, keyLen),
			MACKey: kex.Derive(res.Hash, res.K, res.H, macTag, c.sessionID, macLen),
		}, nil
	}
	// Client to server uses A, C, E; server to client B, D, F.
	cs, err := derive(map[bool]string{true: algs.CipherOut, false: algs.CipherIn}[c.isClient],
		map[bool]string{true: algs.MACOut, false: algs.MACIn}[c.isClient], 'A', 'C', 'E')
	if err != nil {
		return out, in, err
	}
	sc, err := derive(map[bool]string{true: algs.CipherIn, false: algs.CipherOut}[c.isClient],
		map[bool]string{true: algs.MACIn, false: algs.MACOut}[c.isClient], 'B', 'D', 'F')
	if err != nil {
		return out, in, err
	}
	if c.isClient {
		return cs, sc, nil
	}
	return sc, cs, nil
}

// guessRight reports whether a first_kex_packet_follows guess holds: both
// sides prefer the same kex and host key algorithm.
func guessRight(client, server *kexInitMsg) bool {
	first := func(l []string) string {
		for _, n := range l {
			if !isPseudoKex(n) {
				return n
			}
		}
		return ""
	}
	ck, sk := first(client.KexAlgos), first(server.KexAlgos)
	return ck != "" && ck == sk && len(client.ServerHostKeyAlgos) > 0 && len(server.ServerHostKeyAlgos) > 0 &&
		client.ServerHostKeyAlgos[0] == server.ServerHostKeyAlgos[0]
}

// negotiateAll picks every algorithm from the client's and server's
// KEXINIT (RFC 4253 §7.1), from the server's point of view: "In" is client
// to server.
func negotiateAll(client, server *kexInitMsg) (Algorithms, error) {
	var a Algorithms
	var ok bool
	real := func(l []string) []string {
		return slices.DeleteFunc(slices.Clone(l), isPseudoKex)
	}
	fail := func(what string, c, s []string) error {
		return kexError("no matching %s algorithm (client offered %s; server offers %s)",
			what, clipPeerText(strings.Join(c, ","), maxPeerNameListText), strings.Join(s, ","))
	}
	if a.Kex, ok = negotiate(real(client.KexAlgos), real(server.KexAlgos)); !ok {
		return a, fail("key exchange", real(client.KexAlgos), real(server.KexAlgos))
	}
	if a.HostKey, ok = negotiate(client.ServerHostKeyAlgos, server.ServerHostKeyAlgos); !ok {
		return a, fail("host key", client.ServerHostKeyAlgos, server.ServerHostKeyAlgos)
	}
	if a.CipherIn, ok = negotiate(client.CiphersClientServer, server.CiphersClientServer); !ok {
		return a, fail("client to server cipher", client.CiphersClientServer, server.CiphersClientServer)
	}
	if a.CipherOut, ok = negotiate(client.CiphersServerClient, server.CiphersServerClient); !ok {
		return a, fail("server to client cipher", client.CiphersServerClient, server.CiphersServerClient)
	}
	// AEAD ciphers have an implicit MAC: the MAC lists are not negotiated
	// (RFC 5647 §5.1 as OpenSSH applies it, PROTOCOL.chacha20poly1305).
	if packet.IsAEAD(a.CipherIn) {
		a.MACIn = "<implicit>"
	} else if a.MACIn, ok = negotiate(client.MACsClientServer, server.MACsClientServer); !ok {
		return a, fail("client to server MAC", client.MACsClientServer, server.MACsClientServer)
	}
	if packet.IsAEAD(a.CipherOut) {
		a.MACOut = "<implicit>"
	} else if a.MACOut, ok = negotiate(client.MACsServerClient, server.MACsServerClient); !ok {
		return a, fail("server to client MAC", client.MACsServerClient, server.MACsServerClient)
	}
	if a.CompressionIn, ok = negotiate(client.CompressionClientServer, server.CompressionClientServer); !ok {
		return a, fail("client to server compression", client.CompressionClientServer, server.CompressionClientServer)
	}
	if a.CompressionOut, ok = negotiate(client.CompressionServerClient, server.CompressionServerClient); !ok {
		return a, fail("server to client compression", client.CompressionServerClient, server.CompressionServerClient)
	}
	return a, nil
}
