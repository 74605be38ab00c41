// Package packet implements the SSH binary packet protocol: framing,
// padding, encryption, MAC and compression of RFC 4253 §6, the CTR modes of
// RFC 4344, AES-GCM of RFC 5647 as OpenSSH PROTOCOL §1.6 amends it,
// encrypt-then-MAC of OpenSSH PROTOCOL §1.7, chacha20-poly1305 of OpenSSH
// PROTOCOL.chacha20poly1305 and delayed compression of OpenSSH PROTOCOL §1.5.
//
// Reader and Writer each own one direction. Neither allocates per packet in
// steady state without compression: buffers are reused, packets are sealed
// and opened in place, and MAC state is Reset rather than recreated.
// Primitives come from the standard library and golang.org/x/crypto only.
//
// Memory: a Reader waits for each packet in a 512-byte buffer of its own
// and takes a pooled buffer (8 KiB up to one maximal packet plus
// read-ahead) only for a longer packet, giving it back when it drains at a
// packet boundary after a small packet (a transfer keeps it); a Writer seals into a pooled buffer (8 KiB, or
// writeFlushThreshold plus one packet) and gives it back after each
// Flush. An idle connection therefore holds neither. Compression adds one
// zlib writer (compress/zlib) and one inflater with a history-plus-output
// buffer per direction while enabled.
//
// CBC with MAC-then-encrypt hides why a packet failed (see Reader.discard).
// Every other mode fails at once: etm and GCM send the length in the clear,
// chacha20-poly1305 encrypts it under its own key, and in CTR a ciphertext
// block moved to a length position decrypts under a different keystream
// block, so its bogus length tells an attacker nothing about the original
// plaintext.
package packet

import (
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// MaxPacketLength is the largest inbound packet_length accepted. RFC 4253
// §6.1 requires at least 35000; OpenSSH uses 256 KiB (PACKET_MAX_SIZE), so
// no mainstream peer sends more.
const MaxPacketLength = 256 * 1024

// MaxPayload is the largest payload WritePacket accepts. It keeps the
// packet_length we send within a peer's MaxPacketLength-sized limit (such as
// OpenSSH's) after adding padding_length (1), padding (at most block size +
// 3 = 19) and, with compression on, deflate's worst case growth for
// incompressible data (5 bytes per 64 KiB stored block plus the 2-byte zlib
// header and the 5-byte sync-flush marker: under 40 bytes at this size).
// 256 bytes of headroom covers all of that with margin, so a connection layer
// can still send 256 KiB-class channel data packets.
const MaxPayload = MaxPacketLength - 256

// readBufferInitial is the smallest pooled read buffer: big enough for
// every handshake packet and an interactive session's traffic.
const readBufferInitial = 8 * 1024

// readSmall is the read buffer inside every Reader, used whenever nothing
// is buffered: an idle connection waits for its next packet in it and
// holds no pooled buffer (issue 8: 32 KiB per idle session), and small
// packets (keepalives, SFTP requests, window adjusts) are opened in it
// without taking one. A pooled buffer is taken only when a packet is
// longer, and given back whenever the Reader drains at a packet boundary.
const readSmall = 512

// readBufferMax bounds the Reader's buffer: one maximal packet (4-byte
// length, MaxPacketLength, longest tag) plus 16 KiB of read-ahead so that
// the next packet's start usually arrives with the same read(2).
const readBufferMax = 4 + MaxPacketLength + maxTagLen + 16*1024

// writeFlushThreshold is how much sealed output the Writer accumulates
// before writing it out without an explicit Flush. 256 KiB holds a whole
// 255 KiB SFTP READ reply (OpenSSH sftp -B 261120) cut into 32 KiB channel
// packets (OpenSSH's CHAN_SES_PACKET_DEFAULT), so the connection layer's
// batched channel writes cost one write(2) instead of four (at 64 KiB) or
// eight (unbatched): about 20% less CPU for both ends of an aes128-gcm
// loopback transfer (transport's BenchmarkMuxOverTCP). The buffer only
// grows this large on connections that move bulk data.
const writeFlushThreshold = 256 * 1024

// randPoolSize is the padding random pool refilled from crypto/rand: a
// packet takes at most 19 bytes of padding, so one 512-byte read serves 25+
// packets (crypto/rand reads through the vDSO's getrandom here, no system
// call) and costs no allocation, while every Writer carries the pool.
const randPoolSize = 512

// writeSlack is room reserved beyond a payload for the packet header,
// padding, tag and compression overhead when sizing the output buffer.
const writeSlack = 5 + 2*aes.BlockSize + maxTagLen + 64

// writeBufSmall and writeBufLarge are the pooled output buffer classes: an
// interactive packet fits the small one; the large one holds
// writeFlushThreshold bytes plus one maximal packet, so bulk writes never
// grow it.
const (
	writeBufSmall = 8 << 10
	writeBufLarge = writeFlushThreshold + MaxPacketLength + writeSlack
)

// maxZeroReads bounds consecutive (0, nil) reads from a misbehaving
// io.Reader, as bufio does.
const maxZeroReads = 100

// Reader reads and opens packets from one direction of a connection.
type Reader struct {
	rd     io.Reader
	buf    []byte  // small[:] or *pooled
	pooled *[]byte // the buffer from getReadBuf in use, or nil
	r0, r1 int     // buffered, unconsumed bytes are buf[r0:r1]
	small  [readSmall]byte
	// lastLen is the wire length of the last packet read: after a large
	// one the pooled buffer is kept through a drain.
	lastLen int

	s       *suite
	seq     uint32
	wrapped bool
	packets uint64
	bytes   uint64

	// pendingLen is the packet_length of a MAC-then-encrypt packet whose
	// first block is already decrypted in place, so a read interrupted by an
	// I/O error (a deadline) resumes without decrypting it twice; -1 when no
	// packet is in progress.
	pendingLen int

	inflate *inflater
	err     error // sticky: a DisconnectError ends the connection
}

// NewReader returns a Reader over r with cipher, MAC and compression "none".
func NewReader(r io.Reader) *Reader {
	s, _ := newSuite("none", "none", Keys{}, false)
	rd := &Reader{rd: r, s: s, pendingLen: -1}
	rd.buf = rd.small[:]
	return rd
}

// SetCipher installs new keys; they apply from the next packet read. It
// resets Stats and SeqWrapped but not the sequence number (RFC 4253 §6.4).
func (r *Reader) SetCipher(cipherName, macName string, k Keys) error {
	s, err := newSuite(cipherName, macName, k, false)
	if err != nil {
		return err
	}
	r.s = s
	r.packets, r.bytes, r.wrapped = 0, 0, false
	return nil
}

// SetCompression switches decompression for the packets read next. "zlib"
// and "zlib@openssh.com" share one stream format. Each call with a zlib
// name starts a new stream: RFC 4253 §6.2 initializes the compression
// context after each key exchange, and OpenSSH's peer starts a fresh
// stream at every NEWKEYS (packet.c, start_compression_in/out).
func (r *Reader) SetCompression(name string) error {
	switch name {
	case "none":
		r.inflate = nil
	case "zlib", "zlib@openssh.com":
		r.inflate = newInflater()
	default:
		return fmt.Errorf("packet: unknown compression %q", name)
	}
	return nil
}

// SeqNum returns the sequence number of the next packet to be read.
func (r *Reader) SeqNum() uint32 { return r.seq }

// ResetSeqNum sets the sequence number to 0, as strict key exchange
// (OpenSSH PROTOCOL §1.10) requires after each NEWKEYS.
func (r *Reader) ResetSeqNum() { r.seq = 0 }

// Stats returns the packets and wire bytes (length field, body and tag)
// read since the last SetCipher, for RFC 4253 §9 / RFC 4344 §3 rekey limits.
func (r *Reader) Stats() (packets, bytes uint64) { return r.packets, r.bytes }

// SeqWrapped reports whether the sequence number wrapped past 2^32-1 since
// the last SetCipher (or NewReader); strict kex forbids that during the
// initial key exchange.
func (r *Reader) SeqWrapped() bool { return r.wrapped }

// Prefill puts p, bytes already read from the stream (those after the
// peer's version line), before what NewReader's reader returns next. It
// is for a fresh Reader; an io.MultiReader would do the same but stay a
// frame deeper under every idle connection's read for its lifetime.
func (r *Reader) Prefill(p []byte) {
	if len(p) > len(r.buf)-r.r1 {
		r.usePooled(r.r1 - r.r0 + len(p))
	}
	r.r1 += copy(r.buf[r.r1:], p)
}

// Release gives a pooled read buffer back if it holds no data. ReadPacket
// does so itself at every packet boundary where the buffer is drained, so
// only a caller done with the Reader needs it. It invalidates the last
// payload returned.
func (r *Reader) Release() {
	if r.r0 == r.r1 && r.pendingLen < 0 {
		r.useSmall()
	}
}

// useSmall switches to the inline buffer, returning a pooled one. Only
// when nothing is buffered.
func (r *Reader) useSmall() {
	if r.pooled != nil {
		putReadBuf(r.pooled)
		r.pooled = nil
		r.buf = r.small[:]
	}
	r.r0, r.r1 = 0, 0
}

// usePooled moves the buffered bytes to a pooled buffer of at least n
// bytes, giving back the one in use.
func (r *Reader) usePooled(n int) {
	p := getReadBuf(n)
	m := copy(*p, r.buf[r.r0:r.r1])
	if r.pooled != nil {
		putReadBuf(r.pooled)
	}
	r.pooled, r.buf = p, *p
	r.r0, r.r1 = 0, m
}

// ReadPacket returns the next packet's payload, decrypted, verified and
// decompressed. It aliases an internal buffer that is valid until the next
// call. Errors that end the connection are *wire.DisconnectError and are
// sticky; I/O errors are returned as is and a later call resumes the
// interrupted packet.
func (r *Reader) ReadPacket() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.r0 == r.r1 && r.pendingLen < 0 {
		if r.lastLen <= readSmall {
			// Drained at a packet boundary after a small packet: wait for
			// the next packet in the inline buffer. After a large one a
			// transfer is under way and keeps its buffer: else each of
			// its packets would cost a 512-byte read(2) before the rest.
			// The payload returned last is invalid from here, as
			// ReadPacket documents.
			r.useSmall()
		}
		// Wait here, not in readPacket: an idle connection's goroutine
		// sits in this call for hours, and readPacket's frame is large
		// (issue 8's idle budget: a stack under 2 KiB in use shrinks to
		// 4 KiB).
		if err := r.fill(1); err != nil {
			return nil, err
		}
	}
	p, err := r.readPacket()
	if err != nil {
		if _, ok := err.(*wire.DisconnectError); ok {
			r.err = err
		}
		return nil, err
	}
	return p, nil
}

func (r *Reader) readPacket() ([]byte, error) {
	s := r.s
	tagLen := s.tagLen
	var plen int
	var pkt []byte
	switch {
	case s.mode == modeChaCha:
		if err := r.fill(4); err != nil {
			return nil, err
		}
		lc, mc := s.chachaCiphers(r.seq)
		var l [4]byte
		lc.XORKeyStream(l[:], r.buf[r.r0:r.r0+4])
		n := binary.BigEndian.Uint32(l[:])
		if err := checkLength(n, s.blockSize); err != nil {
			return nil, err
		}
		plen = int(n)
		if err := r.fill(4 + plen + tagLen); err != nil {
			return nil, err
		}
		pkt = r.buf[r.r0 : r.r0+4+plen+tagLen]
		var polyKey [64]byte
		mc.XORKeyStream(polyKey[:], polyKey[:])
		if !chachaVerify(pkt[:4+plen], pkt[4+plen:], &polyKey) {
			return nil, errMAC()
		}
		// Verified: the tag space may now be overwritten by chachaXOR.
		s.chachaXOR(r.seq, pkt[4:4+plen])
	case s.mode == modeGCM || s.etm:
		// The length is in the clear (authenticated as GCM's AAD or under
		// the etm MAC), so checking it reveals nothing an observer lacks.
		if err := r.fill(4); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(r.buf[r.r0:])
		if err := checkLength(n, s.blockSize); err != nil {
			return nil, err
		}
		plen = int(n)
		if err := r.fill(4 + plen + tagLen); err != nil {
			return nil, err
		}
		pkt = r.buf[r.r0 : r.r0+4+plen+tagLen]
		if s.mode == modeGCM {
			_, err := s.aead.Open(pkt[4:4], s.nonce[:], pkt[4:4+plen+tagLen], pkt[:4])
			s.incNonce()
			if err != nil {
				return nil, errMAC()
			}
		} else {
			// OpenSSH PROTOCOL §1.7: verify before decrypting anything.
			if !macEqual(s.computeMAC(r.seq, pkt[:4+plen]), pkt[4+plen:]) {
				return nil, errMAC()
			}
			s.decrypt(pkt[4 : 4+plen])
		}
	default:
		bs := s.blockSize
		if r.pendingLen < 0 {
			if err := r.fill(bs); err != nil {
				return nil, err
			}
			s.decrypt(r.buf[r.r0 : r.r0+bs])
			n := binary.BigEndian.Uint32(r.buf[r.r0:])
			if n > MaxPacketLength || n < 5 || (n+4)%uint32(bs) != 0 {
				if s.cbc {
					return nil, r.discard()
				}
				return nil, wire.ProtocolError("bad packet length %d", n)
			}
			r.pendingLen = int(n)
		}
		plen = r.pendingLen
		if err := r.fill(4 + plen + tagLen); err != nil {
			return nil, err
		}
		r.pendingLen = -1
		pkt = r.buf[r.r0 : r.r0+4+plen+tagLen]
		s.decrypt(pkt[bs : 4+plen])
		if s.mac != nil && !macEqual(s.computeMAC(r.seq, pkt[:4+plen]), pkt[4+plen:]) {
			if s.cbc {
				return nil, r.discard()
			}
			return nil, errMAC()
		}
	}
	padLen := int(pkt[4])
	payloadLen := plen - 1 - padLen
	if padLen < 4 || payloadLen < 0 {
		return nil, wire.ProtocolError("bad padding length %d for packet length %d", padLen, plen)
	}
	if payloadLen == 0 {
		return nil, wire.ProtocolError("packet without message type")
	}
	r.r0 += len(pkt)
	r.seq++
	if r.seq == 0 {
		r.wrapped = true
	}
	r.packets++
	r.lastLen = len(pkt)
	r.bytes += uint64(len(pkt))
	payload := pkt[5 : 5+payloadLen]
	if r.inflate != nil {
		return r.inflate.decompress(payload)
	}
	return payload, nil
}

// checkLength validates a packet_length that is in the clear or decrypted
// on its own (etm, GCM, chacha): then packet_length itself is a multiple of
// the block size (OpenSSH packet.c: aadlen excluded).
func checkLength(n uint32, bs int) error {
	if n > MaxPacketLength || n < uint32(bs) || n%uint32(bs) != 0 {
		return wire.ProtocolError("bad packet length %d", n)
	}
	return nil
}

// discard answers a corrupt CBC MAC-then-encrypt packet. The length field
// is encrypted there, so failing as soon as a decrypted length looks wrong
// would tell an attacker who injects a block how many bytes it took to fail,
// which recovers plaintext bits (CVE-2008-5161, Albrecht, Paterson and
// Watson 2009). Like OpenSSH (ssh_packet_start_discard) we keep reading
// until MaxPacketLength bytes of the packet have arrived, whatever went
// wrong, and then fail with the same MAC error either way.
func (r *Reader) discard() error {
	r.pendingLen = -1
	have := r.r1 - r.r0
	if r.pooled == nil {
		r.usePooled(readBufferInitial)
	}
	zero := 0
	for have < MaxPacketLength {
		want := min(len(r.buf), MaxPacketLength-have)
		n, err := r.rd.Read(r.buf[:want])
		have += n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			r.err = errMAC()
			return err
		}
		if n == 0 {
			if zero++; zero >= maxZeroReads {
				return io.ErrNoProgress
			}
		}
	}
	r.r0, r.r1 = 0, 0
	return errMAC()
}

// fill ensures at least n unconsumed bytes are buffered, reading as much as
// the buffer holds per read so small packets arrive in batches and a large
// packet's remainder usually arrives in one read.
func (r *Reader) fill(n int) error {
	if r.r1-r.r0 >= n {
		return nil
	}
	if len(r.buf)-r.r0 < n {
		// Keep room for two packets of this size: with read-ahead the next
		// packet's start is usually buffered behind this one, and with room
		// for only one it would be copied down on every packet.
		if 2*n <= len(r.buf) || len(r.buf) == readBufferMax {
			copy(r.buf, r.buf[r.r0:r.r1])
		} else {
			if n > readBufferMax {
				return errShortBuffer
			}
			r.usePooled(2 * n)
		}
		r.r0, r.r1 = 0, r.r1-r.r0
	}
	zero := 0
	for r.r1-r.r0 < n {
		m, err := r.rd.Read(r.buf[r.r1:])
		r.r1 += m
		if r.r1-r.r0 >= n {
			return nil
		}
		if err != nil {
			if err == io.EOF && r.r1 > r.r0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if m == 0 {
			if zero++; zero >= maxZeroReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// Writer seals packets for one direction of a connection. It is not safe
// for concurrent use.
type Writer struct {
	wr   io.Writer
	out  []byte  // sealed packets not yet written; *outp's memory or nil
	outp *[]byte // the pooled buffer out uses, given back after Flush

	s       *suite
	seq     uint32
	wrapped bool
	packets uint64
	bytes   uint64

	pool    [randPoolSize]byte
	poolPos int

	deflate *deflater
	err     error // sticky: after a failed write the stream is torn
}

// NewWriter returns a Writer over w with cipher, MAC and compression "none".
func NewWriter(w io.Writer) *Writer {
	s, _ := newSuite("none", "none", Keys{}, true)
	return &Writer{wr: w, s: s, poolPos: randPoolSize}
}

// SetCipher installs new keys for the packets written next and resets Stats
// and SeqWrapped.
func (w *Writer) SetCipher(cipherName, macName string, k Keys) error {
	s, err := newSuite(cipherName, macName, k, true)
	if err != nil {
		return err
	}
	w.s = s
	w.packets, w.bytes, w.wrapped = 0, 0, false
	return nil
}

// SetCompression switches compression for the packets written next; like
// Reader.SetCompression, each call with a zlib name starts a new stream.
func (w *Writer) SetCompression(name string) error {
	switch name {
	case "none":
		w.deflate = nil
	case "zlib", "zlib@openssh.com":
		w.deflate = newDeflater()
	default:
		return fmt.Errorf("packet: unknown compression %q", name)
	}
	return nil
}

// SeqNum returns the sequence number of the next packet to be written.
func (w *Writer) SeqNum() uint32 { return w.seq }

// ResetSeqNum sets the sequence number to 0 (strict kex, OpenSSH PROTOCOL
// §1.10).
func (w *Writer) ResetSeqNum() { w.seq = 0 }

// Stats returns the packets and wire bytes written since the last SetCipher.
func (w *Writer) Stats() (packets, bytes uint64) { return w.packets, w.bytes }

// SeqWrapped reports whether the sequence number wrapped since the last
// SetCipher (or NewWriter).
func (w *Writer) SeqWrapped() bool { return w.wrapped }

// Buffered returns the number of sealed bytes not yet written out.
func (w *Writer) Buffered() int { return len(w.out) }

// Release gives the output buffer back if it is empty. Flush already
// does, so only a caller done with the Writer needs it.
func (w *Writer) Release() {
	if len(w.out) == 0 && w.outp != nil {
		putWriteBuf(w.outp)
		w.outp, w.out = nil, nil
	}
}

// reserve makes room for n more bytes in out, moving what it holds to a
// pooled buffer of the class that fits.
func (w *Writer) reserve(n int) {
	if cap(w.out)-len(w.out) >= n {
		return
	}
	p := getWriteBuf(len(w.out) + n)
	*p = append((*p)[:0], w.out...)
	if w.outp != nil {
		putWriteBuf(w.outp)
	}
	w.outp, w.out = p, *p
}

var errEmptyPayload = errors.New("packet: empty payload")

// WritePacket seals payload into the output buffer, compressing it first
// if enabled, and writes the buffer out once it passes writeFlushThreshold.
// payload is not retained.
func (w *Writer) WritePacket(payload []byte) error {
	return w.WritePacketParts(payload, nil)
}

// WritePacketVec is WritePacketParts with a body in several slices, each
// copied once into the output: a connection layer packs several
// application writes (consecutive SFTP replies) into one packet.
func (w *Writer) WritePacketVec(hdr []byte, body [][]byte) error {
	switch len(body) {
	case 0:
		return w.WritePacketParts(hdr, nil)
	case 1:
		return w.WritePacketParts(hdr, body[0])
	}
	if w.err != nil {
		return w.err
	}
	n := len(hdr)
	for _, b := range body {
		n += len(b)
	}
	if n == 0 {
		return errEmptyPayload
	}
	if n > MaxPayload {
		return fmt.Errorf("packet: payload of %d bytes exceeds %d", n, MaxPayload)
	}
	w.reserve(n + writeSlack)
	start := len(w.out)
	w.out = append(w.out, 0, 0, 0, 0, 0)
	if w.deflate != nil {
		w.out = w.deflate.appendCompressed(w.out, hdr, nil, body...)
	} else {
		w.out = append(w.out, hdr...)
		for _, b := range body {
			w.out = append(w.out, b...)
		}
	}
	return w.finishPacket(start)
}

// WritePacketParts is WritePacket for the payload hdr followed by body,
// which it copies straight into the output buffer: a connection layer
// sends channel data as a small header plus the caller's bytes without
// first joining them (one copy of every data byte fewer).
func (w *Writer) WritePacketParts(hdr, body []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(hdr)+len(body) == 0 {
		return errEmptyPayload
	}
	if len(hdr)+len(body) > MaxPayload {
		return fmt.Errorf("packet: payload of %d bytes exceeds %d", len(hdr)+len(body), MaxPayload)
	}
	w.reserve(len(hdr) + len(body) + writeSlack)
	start := len(w.out)
	w.out = append(w.out, 0, 0, 0, 0, 0)
	if w.deflate != nil {
		w.out = w.deflate.appendCompressed(w.out, hdr, body)
	} else {
		w.out = append(w.out, hdr...)
		w.out = append(w.out, body...)
	}
	return w.finishPacket(start)
}

// finishPacket pads, seals and counts the packet whose payload was
// appended to out after five placeholder bytes at start.
func (w *Writer) finishPacket(start int) error {
	s := w.s
	payloadLen := len(w.out) - start - 5
	bs := s.blockSize
	unpadded := 5 + payloadLen
	if s.lengthInClear() {
		unpadded -= 4
	}
	padLen := bs - unpadded%bs
	if padLen < 4 {
		padLen += bs
	}
	plen := 1 + payloadLen + padLen
	if plen > MaxPacketLength {
		w.out = w.out[:start]
		return fmt.Errorf("packet: packet length %d after compression exceeds %d", plen, MaxPacketLength)
	}
	if w.poolPos+padLen > len(w.pool) {
		rand.Read(w.pool[:])
		w.poolPos = 0
	}
	w.out = append(w.out, w.pool[w.poolPos:w.poolPos+padLen]...)
	w.poolPos += padLen
	binary.BigEndian.PutUint32(w.out[start:], uint32(plen))
	w.out[start+4] = byte(padLen)
	w.out = append(w.out, make([]byte, s.tagLen)...)
	pkt := w.out[start:]
	s.seal(w.seq, pkt)
	w.seq++
	if w.seq == 0 {
		w.wrapped = true
	}
	w.packets++
	w.bytes += uint64(len(pkt))
	if len(w.out) >= writeFlushThreshold {
		return w.Flush()
	}
	return nil
}

// WriteRaw buffers b as is, outside the packet framing, to go out with the
// next Flush: the identification string (RFC 4253 §4.2), which precedes
// the first packet, then leaves in the same write(2) as our KEXINIT.
func (w *Writer) WriteRaw(b []byte) {
	w.reserve(len(b))
	w.out = append(w.out, b...)
}

// Flush writes all buffered packets to the underlying io.Writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.out) == 0 {
		return nil
	}
	_, err := w.wr.Write(w.out)
	w.out = w.out[:0]
	if err != nil {
		w.err = err
	}
	// Written out: the buffer goes back, so a connection holds one only
	// while it has output pending.
	w.Release()
	return err
}
