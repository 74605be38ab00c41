package packet

import (
	"compress/flate"
	"compress/zlib"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Compression, RFC 4253 §6.2: one zlib (RFC 1950) stream per direction,
// started afresh at each key exchange, each packet's compressed payload
// ending at a flush point so the peer can decode it without the next one.
//
// We send sync flushes (compress/zlib's Flush). OpenSSH sends Z_PARTIAL_FLUSH
// (packet.c compress_buffer), which ends a packet with an empty fixed-code
// block whose last bits may only arrive with the next packet, so packets are
// not byte-aligned. compress/flate cannot decode that packet by packet: it
// releases a Huffman block's output only when its window fills, at a stored
// block, or on error, and its errors are sticky. The inflater below is
// therefore our own RFC 1951 decoder that suspends at any input boundary
// and resumes with the next packet.

// maxDecompressedPayload bounds one packet's decompressed payload. A peer
// could not send a larger message uncompressed within MaxPacketLength, so
// more is a decompression bomb, not a message.
const maxDecompressedPayload = MaxPacketLength

// windowSize is deflate's history, RFC 1951 §2: distances reach 32768 back.
const windowSize = 32 * 1024

// inflateSlack is output room beyond one maximal packet, so the history is
// slid back (a 32 KiB copy) once per 128 KiB of output rather than once per
// packet, which a peer sending tiny packets would otherwise turn into a
// 32 KiB copy per byte.
const inflateSlack = 128 * 1024

// maxInflateCarry bounds the compressed bytes kept from one packet for the
// next when a packet ends inside a block header or a symbol. The largest
// such unit is a dynamic block header: 14 + 19×3 bits plus at most 316 code
// lengths of 7+7 bits, under 600 bytes.
const maxInflateCarry = 1024

// deflateLevel trades ratio for CPU: a server compressing for many clients
// pays for every level above BestSpeed, while the links that want
// compression gain most from the first level.
const deflateLevel = flate.BestSpeed

// deflater compresses one direction's payloads into the Writer's buffer.
type deflater struct {
	zw   *zlib.Writer
	sink appendWriter
}

// appendWriter lets zlib.Writer write straight into the output buffer.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

func newDeflater() *deflater {
	d := &deflater{}
	zw, err := zlib.NewWriterLevel(&d.sink, deflateLevel)
	if err != nil {
		panic(err) // constant, valid level
	}
	d.zw = zw
	return d
}

func (d *deflater) appendCompressed(dst, hdr, body []byte, more ...[]byte) []byte {
	d.sink.b = dst
	// appendWriter never fails, so neither do Write and Flush.
	d.zw.Write(hdr)
	if len(body) > 0 {
		d.zw.Write(body)
	}
	for _, b := range more {
		d.zw.Write(b)
	}
	d.zw.Flush()
	dst = d.sink.b
	d.sink.b = nil
	return dst
}

type inflateState uint8

const (
	stZlibHeader inflateState = iota
	stBlockHeader
	stStored
	stHuffman
	stTrailer
	stDone
)

// huffman is a canonical Huffman code in the count/symbol form of Mark
// Adler's puff.c description of RFC 1951 §3.2.2 decoding.
//
// fast maps the next fastBits input bits (in stream order) to symbol |
// code length<<9 for every code of at most fastBits bits, so most symbols
// decode with one lookup; longer codes, and symbols at the very end of the
// input, take the bit-at-a-time path.
type huffman struct {
	count  [maxCodeBits + 1]uint16
	symbol [maxLitCodes]uint16
	fast   [1 << fastBits]uint16
}

// fastBits: 9 covers every fixed literal code and nearly all dynamic ones
// zlib emits, with a 1 KiB table (as zlib's inflate uses 9-bit roots).
const fastBits = 9

const (
	maxCodeBits  = 15  // RFC 1951 §3.2.2
	maxLitCodes  = 288 // 286 used + 2 reserved fixed-code symbols
	maxDistCodes = 30
	numCLCodes   = 19
)

// RFC 1951 §3.2.5 length and distance bases and extra bits.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// RFC 1951 §3.2.7: the order code length code lengths are sent in.
	clOrder = [numCLCodes]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// build fills h from code lengths. It returns false for an over-subscribed
// code, or an incomplete one unless incompleteOK allows the single one-bit
// code RFC 1951 permits (puff.c's rule).
func (h *huffman) build(lengths []uint8, incompleteOK bool) bool {
	h.count = [maxCodeBits + 1]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	if int(h.count[0]) == len(lengths) {
		return incompleteOK // no codes: decoding any symbol fails later
	}
	left := 1
	for l := 1; l <= maxCodeBits; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return false
		}
	}
	if left > 0 && !(incompleteOK && len(lengths)-int(h.count[0]) == 1 && h.count[1] == 1) {
		return false
	}
	var offs [maxCodeBits + 1]uint16
	for l := 1; l < maxCodeBits; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(sym)
			offs[l]++
		}
	}
	// Canonical codes, RFC 1951 §3.2.2, bit-reversed because deflate packs
	// Huffman codes starting with their most significant bit.
	h.fast = [1 << fastBits]uint16{}
	var next [maxCodeBits + 2]int
	code := 0
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + int(h.count[l-1])) << 1
		if l == 1 {
			code = 0
		}
		next[l] = code
	}
	for sym, l := range lengths {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		if l > fastBits {
			continue
		}
		rev := 0
		for i := uint8(0); i < l; i++ {
			rev |= (c >> i & 1) << (l - 1 - i)
		}
		for i := rev; i < 1<<fastBits; i += 1 << l {
			h.fast[i] = uint16(sym) | uint16(l)<<9
		}
	}
	return true
}

// inflater decodes one direction's zlib stream packet by packet.
type inflater struct {
	out  []byte // history (up to windowSize) followed by this packet's output
	hist int

	in    []byte // input carried from the last packet, then this packet
	pos   int
	bits  uint64
	nbits uint

	state      inflateState
	final      bool
	storedLeft int
	trailer    int
	lit, dist  huffman
	err        error
}

func newInflater() *inflater {
	return &inflater{out: make([]byte, 0, windowSize+maxDecompressedPayload+inflateSlack)}
}

func errCompression(msg string) error {
	return wire.Errorf(wire.DisconnectCompressionError, "zlib: %s", msg)
}

// need loads bits until n are available; false means the input ran out.
func (f *inflater) need(n uint) bool {
	for f.nbits < n {
		if f.pos == len(f.in) {
			return false
		}
		f.bits |= uint64(f.in[f.pos]) << f.nbits
		f.pos++
		f.nbits += 8
	}
	return true
}

func (f *inflater) take(n uint) uint32 {
	v := uint32(f.bits & (1<<n - 1))
	f.bits >>= n
	f.nbits -= n
	return v
}

// getBits reads n ≤ 32 bits, LSB first (RFC 1951 §3.1.1).
func (f *inflater) getBits(n uint) (uint32, bool) {
	if !f.need(n) {
		return 0, false
	}
	return f.take(n), true
}

// decodeSym returns the next symbol of h, -1 if the input ran out, or -2
// for a bit string that is no code.
func (f *inflater) decodeSym(h *huffman) int {
	if f.need(fastBits) {
		if e := h.fast[f.bits&(1<<fastBits-1)]; e != 0 {
			f.take(uint(e >> 9))
			return int(e & 0x1ff)
		}
	}
	code, first, index := 0, 0, 0
	for l := 1; l <= maxCodeBits; l++ {
		b, ok := f.getBits(1)
		if !ok {
			return -1
		}
		code |= int(b)
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+code-first])
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return -2
}

type checkpoint struct {
	pos   int
	bits  uint64
	nbits uint
}

// decompress decodes one packet's compressed payload and returns the
// payload, which aliases f.out until the next call.
func (f *inflater) decompress(data []byte) ([]byte, error) {
	p, err := f.inflateChunk(data)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, wire.ProtocolError("packet without message type")
	}
	return p, nil
}

// inflateChunk decodes as much of the stream as data completes. Its output
// may be empty when data ends inside a unit.
func (f *inflater) inflateChunk(data []byte) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if n := len(f.out); cap(f.out)-n < maxDecompressedPayload {
		copy(f.out, f.out[n-windowSize:])
		f.out = f.out[:windowSize]
	}
	f.hist = len(f.out)
	carry := copy(f.in, f.in[f.pos:])
	f.in = append(f.in[:carry], data...)
	f.pos = 0
	if err := f.run(); err != nil {
		f.err = err
		return nil, err
	}
	if len(f.in)-f.pos > maxInflateCarry {
		f.err = errCompression("packet ends inside an oversized unit")
		return nil, f.err
	}
	return f.out[f.hist:], nil
}

// run decodes until the input runs out. A unit (block header, stored-block
// header, one literal or length/distance pair) is decoded whole or not at
// all: when the input ends inside one, the position rewinds to its start
// and those bytes wait for the next packet.
func (f *inflater) run() error {
	for {
		cp := checkpoint{f.pos, f.bits, f.nbits}
		ok, err := f.step()
		if err != nil {
			return err
		}
		if !ok {
			f.pos, f.bits, f.nbits = cp.pos, cp.bits, cp.nbits
			return nil
		}
	}
}

// step decodes one unit; false means more input is needed.
func (f *inflater) step() (bool, error) {
	switch f.state {
	case stZlibHeader:
		v, ok := f.getBits(16)
		if !ok {
			return false, nil
		}
		cmf, flg := v&0xff, v>>8
		// RFC 1950 §2.2: deflate, window ≤ 32 KiB, check bits, no preset
		// dictionary (SSH never uses one).
		if cmf&0x0f != 8 || cmf>>4 > 7 || (cmf<<8|flg)%31 != 0 || flg&0x20 != 0 {
			return false, errCompression("bad zlib header")
		}
		f.state = stBlockHeader
	case stBlockHeader:
		v, ok := f.getBits(3)
		if !ok {
			return false, nil
		}
		final := v&1 == 1
		switch v >> 1 {
		case 0:
			f.take(f.nbits % 8) // RFC 1951 §3.2.4: skip to a byte boundary
			lens, ok := f.getBits(32)
			if !ok {
				return false, nil
			}
			if lens&0xffff != ^lens>>16 {
				return false, errCompression("stored block length check failed")
			}
			f.storedLeft = int(lens & 0xffff)
			f.state = stStored
		case 1:
			f.buildFixed()
			f.state = stHuffman
		case 2:
			ok, err := f.readDynamic()
			if !ok || err != nil {
				return false, err
			}
			f.state = stHuffman
		default:
			return false, errCompression("invalid block type")
		}
		f.final = final
		if f.state == stStored && f.storedLeft == 0 {
			f.endBlock()
		}
	case stStored:
		// Stored bytes are committed as they are copied, so running out
		// of input after some progress is not a rewind.
		progressed := false
		for f.storedLeft > 0 {
			var b byte
			if f.nbits >= 8 {
				b = byte(f.take(8))
			} else if f.pos < len(f.in) {
				b = f.in[f.pos]
				f.pos++
			} else {
				return progressed, nil
			}
			progressed = true
			if err := f.emit(b); err != nil {
				return false, err
			}
			f.storedLeft--
		}
		f.endBlock()
	case stHuffman:
		sym := f.decodeSym(&f.lit)
		switch {
		case sym == -1:
			return false, nil
		case sym < 0:
			return false, errCompression("invalid literal/length code")
		case sym < 256:
			return true, f.emit(byte(sym))
		case sym == 256:
			f.endBlock()
			return true, nil
		}
		sym -= 257
		if sym >= len(lengthBase) {
			return false, errCompression("invalid length symbol")
		}
		e, ok := f.getBits(uint(lengthExtra[sym]))
		if !ok {
			return false, nil
		}
		length := int(lengthBase[sym]) + int(e)
		dsym := f.decodeSym(&f.dist)
		switch {
		case dsym == -1:
			return false, nil
		case dsym < 0 || dsym >= maxDistCodes:
			return false, errCompression("invalid distance code")
		}
		e, ok = f.getBits(uint(distExtra[dsym]))
		if !ok {
			return false, nil
		}
		dist := int(distBase[dsym]) + int(e)
		if dist > len(f.out) {
			return false, errCompression("distance too far back")
		}
		if len(f.out)-f.hist+length > maxDecompressedPayload {
			return false, errCompression("decompressed packet too large")
		}
		for i := 0; i < length; i++ {
			f.out = append(f.out, f.out[len(f.out)-dist])
		}
	case stTrailer:
		// RFC 1950 §2.2 ADLER32 after the final block. SSH streams never
		// end, so we only accept its presence; nothing may follow it.
		if _, ok := f.getBits(8); !ok {
			return false, nil
		}
		if f.trailer++; f.trailer == 4 {
			f.state = stDone
		}
	case stDone:
		if f.nbits > 0 || f.pos < len(f.in) {
			return false, errCompression("data after end of stream")
		}
		return false, nil
	}
	return true, nil
}

func (f *inflater) emit(b byte) error {
	if len(f.out)-f.hist >= maxDecompressedPayload {
		return errCompression("decompressed packet too large")
	}
	f.out = append(f.out, b)
	return nil
}

func (f *inflater) endBlock() {
	if f.final {
		f.take(f.nbits % 8)
		f.state = stTrailer
	} else {
		f.state = stBlockHeader
	}
}

// buildFixed installs the fixed codes of RFC 1951 §3.2.6.
func (f *inflater) buildFixed() {
	var l [maxLitCodes]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	f.lit.build(l[:], false)
	// All 32 five-bit codes, so the code is complete; symbols 30 and 31
	// never occur in valid data and are rejected when decoded.
	var d [32]uint8
	for i := range d {
		d[i] = 5
	}
	f.dist.build(d[:], false)
}

// readDynamic reads a dynamic block's code definitions, RFC 1951 §3.2.7.
func (f *inflater) readDynamic() (bool, error) {
	v, ok := f.getBits(14)
	if !ok {
		return false, nil
	}
	nlen := int(v&0x1f) + 257
	ndist := int(v>>5&0x1f) + 1
	ncode := int(v>>10) + 4
	if nlen > 286 || ndist > maxDistCodes {
		return false, errCompression("bad dynamic block counts")
	}
	var cl [numCLCodes]uint8
	for i := 0; i < ncode; i++ {
		b, ok := f.getBits(3)
		if !ok {
			return false, nil
		}
		cl[clOrder[i]] = uint8(b)
	}
	var clCode huffman
	if !clCode.build(cl[:], false) {
		return false, errCompression("bad code length code")
	}
	var lengths [286 + maxDistCodes]uint8
	for i := 0; i < nlen+ndist; {
		sym := f.decodeSym(&clCode)
		if sym == -1 {
			return false, nil
		}
		if sym < 0 {
			return false, errCompression("bad code length symbol")
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var prev uint8
		var rep uint32
		switch sym {
		case 16:
			if i == 0 {
				return false, errCompression("repeat with no previous length")
			}
			prev = lengths[i-1]
			rep, ok = f.getBits(2)
			rep += 3
		case 17:
			rep, ok = f.getBits(3)
			rep += 3
		default:
			rep, ok = f.getBits(7)
			rep += 11
		}
		if !ok {
			return false, nil
		}
		if i+int(rep) > nlen+ndist {
			return false, errCompression("too many code lengths")
		}
		for ; rep > 0; rep-- {
			lengths[i] = prev
			i++
		}
	}
	if lengths[256] == 0 {
		return false, errCompression("no end-of-block code")
	}
	if !f.lit.build(lengths[:nlen], true) || !f.dist.build(lengths[nlen:nlen+ndist], true) {
		return false, errCompression("bad literal/length or distance code")
	}
	return true, nil
}
