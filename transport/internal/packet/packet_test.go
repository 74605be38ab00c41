package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

type pair struct{ cipher, mac string }

func (p pair) String() string {
	if IsAEAD(p.cipher) {
		return p.cipher
	}
	return p.cipher + "+" + p.mac
}

// allPairs is every cipher with every MAC (AEAD ciphers once, MAC ignored).
func allPairs() []pair {
	var ps []pair
	for _, c := range CipherNames() {
		if IsAEAD(c) {
			ps = append(ps, pair{c, ""})
			continue
		}
		for _, m := range MACNames() {
			ps = append(ps, pair{c, m})
		}
	}
	return ps
}

// testKeys derives deterministic keys of the right sizes; salt makes the
// two directions or two rekeys differ.
func testKeys(t testing.TB, p pair, salt byte) Keys {
	t.Helper()
	iv, key, mk, err := Sizes(p.cipher, p.mac)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(n int, base byte) []byte {
		if n == 0 {
			return nil
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = base + byte(i)*7 + salt
		}
		return b
	}
	return Keys{IV: fill(iv, 1), Key: fill(key, 50), MACKey: fill(mk, 100)}
}

func newPair(t testing.TB, p pair, salt byte, rw io.ReadWriter) (*Writer, *Reader) {
	t.Helper()
	w, r := NewWriter(rw), NewReader(rw)
	k := testKeys(t, p, salt)
	if err := w.SetCipher(p.cipher, p.mac, k); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCipher(p.cipher, p.mac, k); err != nil {
		t.Fatal(err)
	}
	return w, r
}

func randPayload(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func wantDisconnect(t *testing.T, err error, reason uint32) {
	t.Helper()
	var de *wire.DisconnectError
	if !errors.As(err, &de) {
		t.Fatalf("got error %v, want DisconnectError reason %d", err, reason)
	}
	if de.Reason != reason {
		t.Fatalf("got disconnect reason %d (%s), want %d", de.Reason, de.Message, reason)
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		cipher, mac     string
		iv, key, macKey int
	}{
		{"chacha20-poly1305@openssh.com", "hmac-sha2-256", 0, 64, 0},
		{"aes128-gcm@openssh.com", "", 12, 16, 0},
		{"aes256-gcm@openssh.com", "hmac-sha1", 12, 32, 0},
		{"aes128-ctr", "hmac-sha2-256-etm@openssh.com", 16, 16, 32},
		{"aes192-ctr", "hmac-sha2-512", 16, 24, 64},
		{"aes256-cbc", "hmac-sha1-96", 16, 32, 20},
		{"3des-cbc", "hmac-md5", 8, 24, 16},
		{"blowfish-cbc", "hmac-md5-96-etm@openssh.com", 8, 16, 16},
		{"cast128-cbc", "hmac-sha1-etm@openssh.com", 8, 16, 20},
		{"none", "none", 0, 0, 0},
	}
	for _, tt := range tests {
		iv, key, mk, err := Sizes(tt.cipher, tt.mac)
		if err != nil || iv != tt.iv || key != tt.key || mk != tt.macKey {
			t.Errorf("Sizes(%s, %s) = %d, %d, %d, %v; want %d, %d, %d", tt.cipher, tt.mac, iv, key, mk, err, tt.iv, tt.key, tt.macKey)
		}
	}
	if _, _, _, err := Sizes("aes128-ctr", "hmac-sha3"); err == nil {
		t.Error("unknown MAC accepted")
	}
	if _, _, _, err := Sizes("rc4", "none"); err == nil {
		t.Error("unknown cipher accepted")
	}
	for c, bs := range map[string]int{"3des-cbc": 8, "blowfish-cbc": 8, "cast128-cbc": 8, "aes128-ctr": 16,
		"aes256-gcm@openssh.com": 16, "chacha20-poly1305@openssh.com": 8, "none": 8, "rc4": 0} {
		if got := CipherBlockSize(c); got != bs {
			t.Errorf("CipherBlockSize(%s) = %d, want %d", c, got, bs)
		}
	}
	if !IsAEAD("aes128-gcm@openssh.com") || !IsAEAD("chacha20-poly1305@openssh.com") || IsAEAD("aes128-ctr") {
		t.Error("IsAEAD wrong")
	}
	if len(CipherNames()) != 13 || len(MACNames()) != 13 || len(CompressionNames()) != 3 {
		t.Errorf("name lists: %d ciphers, %d MACs, %d compressions", len(CipherNames()), len(MACNames()), len(CompressionNames()))
	}
}

func TestSetCipherRejectsBadKeys(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.SetCipher("aes128-ctr", "hmac-sha2-256", Keys{IV: make([]byte, 16), Key: make([]byte, 15), MACKey: make([]byte, 32)}); err == nil {
		t.Error("short key accepted")
	}
	if err := w.SetCipher("aes128-ctr", "hmac-sha2-256", Keys{IV: make([]byte, 16), Key: make([]byte, 16), MACKey: make([]byte, 31)}); err == nil {
		t.Error("short MAC key accepted")
	}
	if err := w.SetCipher("aes128-gcm@openssh.com", "", Keys{IV: make([]byte, 16), Key: make([]byte, 16)}); err == nil {
		t.Error("16-byte GCM IV accepted")
	}
	if err := w.SetCompression("lz4"); err == nil {
		t.Error("unknown compression accepted")
	}
}

// TestRoundTrip checks Writer→Reader and Writer→reference opener for every
// cipher×MAC pair with and without compression.
func TestRoundTrip(t *testing.T) {
	sizes := []int{1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 100, 1000, 4096, 32768, 35000, MaxPayload}
	count := 24 // the rest are random sizes up to MaxPayload
	if testing.Short() || raceEnabled {
		sizes = []int{1, 17, 35000, MaxPayload}
		count = len(sizes)
	}
	for _, comp := range []string{"none", "zlib"} {
		for _, p := range allPairs() {
			t.Run(comp+"/"+p.String(), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(len(p.cipher)), uint64(len(p.mac))))
				var stream bytes.Buffer
				w, r := newPair(t, p, 0, &stream)
				if err := w.SetCompression(comp); err != nil {
					t.Fatal(err)
				}
				if err := r.SetCompression(comp); err != nil {
					t.Fatal(err)
				}
				var sent [][]byte
				for i := 0; i < count; i++ {
					n := 1 + rng.IntN(MaxPayload)
					if i < len(sizes) {
						n = sizes[i]
					}
					pl := randPayload(rng, n)
					if i%3 == 0 {
						pl = bytes.Repeat([]byte{byte(i)}, n) // compressible
					}
					if err := w.WritePacket(pl); err != nil {
						t.Fatal(err)
					}
					sent = append(sent, pl)
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if comp == "none" {
					checkWithReference(t, p, stream.Bytes(), sent)
				}
				for i, want := range sent {
					got, err := r.ReadPacket()
					if err != nil {
						t.Fatalf("packet %d: %v", i, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("packet %d: payload mismatch (len %d, want %d)", i, len(got), len(want))
					}
				}
				if _, err := r.ReadPacket(); err != io.EOF {
					t.Fatalf("after last packet: %v, want io.EOF", err)
				}
				if r.SeqNum() != uint32(len(sent)) || w.SeqNum() != uint32(len(sent)) {
					t.Fatalf("seq: reader %d writer %d, want %d", r.SeqNum(), w.SeqNum(), len(sent))
				}
				rp, rb := r.Stats()
				wp, wb := w.Stats()
				if rp != uint64(len(sent)) || wp != rp || rb != wb {
					t.Fatalf("stats: reader %d/%d writer %d/%d", rp, rb, wp, wb)
				}
			})
		}
	}
}

func checkWithReference(t *testing.T, p pair, stream []byte, sent [][]byte) {
	t.Helper()
	o, err := newRefOpener(p.cipher, p.mac, testKeys(t, p, 0))
	if err != nil {
		t.Fatal(err)
	}
	rest := append([]byte(nil), stream...)
	for i, want := range sent {
		var got []byte
		got, rest, err = o.open(rest)
		if err != nil {
			t.Fatalf("reference opener, packet %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("reference opener, packet %d: payload mismatch", i)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("reference opener: %d trailing bytes", len(rest))
	}
}

// TestRekey switches keys mid-stream, as NEWKEYS does, and resets sequence
// numbers as strict kex does.
func TestRekey(t *testing.T) {
	var stream bytes.Buffer
	w, r := NewWriter(&stream), NewReader(&stream)
	steps := []pair{{"none", "none"}, {"aes128-ctr", "hmac-sha2-256-etm@openssh.com"},
		{"chacha20-poly1305@openssh.com", ""}, {"aes256-gcm@openssh.com", ""}, {"3des-cbc", "hmac-md5-96"}}
	for i := range steps {
		for j := 0; j < 3; j++ {
			msg := []byte(fmt.Sprintf("\x5estep %d packet %d", i, j))
			if err := w.WritePacket(msg); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			got, err := r.ReadPacket()
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("step %d packet %d: %q, %v", i, j, got, err)
			}
		}
		if i+1 == len(steps) {
			break
		}
		next := steps[i+1]
		k := testKeys(t, next, byte(i))
		if err := w.SetCipher(next.cipher, next.mac, k); err != nil {
			t.Fatal(err)
		}
		if err := r.SetCipher(next.cipher, next.mac, k); err != nil {
			t.Fatal(err)
		}
		if p, _ := w.Stats(); p != 0 {
			t.Fatalf("Stats not reset by SetCipher: %d", p)
		}
		if i%2 == 0 {
			w.ResetSeqNum()
			r.ResetSeqNum()
			if w.SeqNum() != 0 || r.SeqNum() != 0 {
				t.Fatal("ResetSeqNum did not reset")
			}
		}
	}
}

// TestRekeyMismatchedSeq shows the sequence number is bound into the MAC:
// a reader that did not reset fails.
func TestRekeyMismatchedSeq(t *testing.T) {
	var stream bytes.Buffer
	p := pair{"aes128-ctr", "hmac-sha2-256"}
	w, r := newPair(t, p, 0, &stream)
	w.WritePacket([]byte{1})
	w.Flush()
	if _, err := r.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	w.ResetSeqNum()
	w.WritePacket([]byte{2})
	w.Flush()
	_, err := r.ReadPacket()
	wantDisconnect(t, err, wire.DisconnectMACError)
}

func TestSeqWrap(t *testing.T) {
	var stream bytes.Buffer
	w, r := NewWriter(&stream), NewReader(&stream)
	w.seq, r.seq = 0xffffffff, 0xffffffff
	for i := 0; i < 2; i++ {
		w.WritePacket([]byte{1})
		w.Flush()
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	if !w.SeqWrapped() || !r.SeqWrapped() || w.SeqNum() != 1 || r.SeqNum() != 1 {
		t.Fatalf("wrapped %v/%v seq %d/%d", w.SeqWrapped(), r.SeqWrapped(), w.SeqNum(), r.SeqNum())
	}
	if err := w.SetCipher("none", "none", Keys{}); err != nil {
		t.Fatal(err)
	}
	if w.SeqWrapped() {
		t.Fatal("SetCipher did not clear SeqWrapped")
	}
}

func TestWriterBuffering(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.WritePacket([]byte{5, 1, 2, 3})
	if out.Len() != 0 || w.Buffered() != 16 {
		t.Fatalf("written %d buffered %d before Flush; want 0 and 16", out.Len(), w.Buffered())
	}
	if err := w.Flush(); err != nil || out.Len() != 16 || w.Buffered() != 0 {
		t.Fatalf("after Flush: written %d buffered %d err %v", out.Len(), w.Buffered(), err)
	}
	// none cipher: packet_length 12, padding_length 7, payload, padding.
	if got := out.Bytes()[:9]; !bytes.Equal(got, []byte{0, 0, 0, 12, 7, 5, 1, 2, 3}) {
		t.Fatalf("framing % x", got)
	}
	big := make([]byte, 32<<10)
	big[0] = 94
	for w.Buffered()+len(big) < writeFlushThreshold {
		if err := w.WritePacket(big); err != nil {
			t.Fatal(err)
		}
		if out.Len() != 16 {
			t.Fatalf("wrote %d bytes below the threshold (%d buffered)", out.Len(), w.Buffered())
		}
	}
	w.WritePacket(big)
	if w.Buffered() != 0 || out.Len() <= writeFlushThreshold {
		t.Fatalf("threshold flush: buffered %d written %d", w.Buffered(), out.Len())
	}
	if err := w.WritePacket(nil); err == nil {
		t.Fatal("empty payload accepted")
	}
	if err := w.WritePacket(make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("oversized payload accepted")
	}
	w.Release()
	if w.out != nil {
		t.Fatal("Release kept the buffer")
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriterStickyError(t *testing.T) {
	w := NewWriter(failWriter{})
	w.WritePacket([]byte{1})
	if err := w.Flush(); err != io.ErrClosedPipe {
		t.Fatalf("Flush: %v", err)
	}
	if err := w.WritePacket([]byte{1}); err != io.ErrClosedPipe {
		t.Fatalf("WritePacket after failure: %v", err)
	}
}

// TestPaddingRules checks the sealed layout per mode: padding ≥ 4 and the
// right span a multiple of the block size.
func TestPaddingRules(t *testing.T) {
	for _, p := range allPairs() {
		s, err := newSuite(p.cipher, p.mac, testKeys(t, p, 0), true)
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n < 70; n++ {
			var out bytes.Buffer
			w := NewWriter(&out)
			w.SetCipher(p.cipher, p.mac, testKeys(t, p, 0))
			w.WritePacket(make([]byte, n))
			// Look at the plaintext before sealing by sealing with "none"
			// rules: re-derive from the sealed length instead.
			total := w.Buffered() - s.tagLen
			span := total
			if s.lengthInClear() {
				span -= 4
			}
			if span%s.blockSize != 0 {
				t.Fatalf("%s payload %d: span %d not a multiple of %d", p, n, span, s.blockSize)
			}
			padLen := total - 5 - n
			if padLen < 4 || padLen >= 4+s.blockSize {
				t.Fatalf("%s payload %d: padding %d", p, n, padLen)
			}
		}
	}
}

// TestReaderSmallReads feeds the stream one byte per Read and checks
// interrupted reads resume (the MtE first block is decrypted only once).
func TestReaderSmallReads(t *testing.T) {
	for _, p := range []pair{{"aes128-cbc", "hmac-sha1"}, {"aes256-ctr", "hmac-sha2-512"}, {"chacha20-poly1305@openssh.com", ""}, {"aes128-gcm@openssh.com", ""}, {"3des-cbc", "hmac-md5-etm@openssh.com"}} {
		var stream bytes.Buffer
		w, _ := newPair(t, p, 0, &stream)
		var sent [][]byte
		for i := 1; i < 40; i++ {
			pl := bytes.Repeat([]byte{byte(i)}, i*37)
			w.WritePacket(pl)
			sent = append(sent, pl)
		}
		w.Flush()
		tr := &trickleReader{data: stream.Bytes()}
		_, r := newPair(t, p, 0, tr)
		for i, want := range sent {
			var got []byte
			var err error
			for tries := 0; ; tries++ {
				got, err = r.ReadPacket()
				if err != errAgain {
					break
				}
				if tries > 1e6 {
					t.Fatal("no progress")
				}
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s packet %d: %v", p, i, err)
			}
		}
	}
}

var errAgain = errors.New("again (like a read deadline)")

// trickleReader returns one byte per Read and an error every other call,
// like a connection hitting read deadlines.
type trickleReader struct {
	data []byte
	n    int
}

func (t *trickleReader) Read(p []byte) (int, error) {
	t.n++
	if t.n%2 == 0 {
		return 0, errAgain
	}
	if len(t.data) == 0 {
		return 0, io.EOF
	}
	p[0] = t.data[0]
	t.data = t.data[1:]
	return 1, nil
}
func (t *trickleReader) Write(p []byte) (int, error) { return 0, io.ErrClosedPipe }

func TestReaderRelease(t *testing.T) {
	var stream bytes.Buffer
	w, r := NewWriter(&stream), NewReader(&stream)
	w.WritePacket(make([]byte, 100000))
	w.Flush()
	if _, err := r.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if r.pooled == nil || cap(r.buf) < 100000 {
		t.Fatalf("buffer %d did not grow into a pooled one", cap(r.buf))
	}
	r.Release()
	if r.pooled != nil || len(r.buf) != readSmall {
		t.Fatal("Release kept the pooled buffer")
	}
	w.WritePacket([]byte{9, 9})
	w.Flush()
	if got, err := r.ReadPacket(); err != nil || !bytes.Equal(got, []byte{9, 9}) {
		t.Fatalf("after Release: %v %v", got, err)
	}
	if r.pooled != nil {
		t.Fatalf("a small packet took a pooled buffer of %d bytes", cap(r.buf))
	}
	// A large packet after a small one: the small buffer's bytes move to a
	// pooled buffer, which goes back once the Reader drains at the next
	// packet boundary.
	w.WritePacket([]byte{1, 2, 3})
	w.WritePacket(bytes.Repeat([]byte{7}, 3000))
	w.Flush()
	if got, err := r.ReadPacket(); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("small packet: %v %v", got, err)
	}
	if got, err := r.ReadPacket(); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{7}, 3000)) {
		t.Fatalf("large packet after a small one: %d bytes, %v", len(got), err)
	}
	if r.pooled == nil {
		t.Fatal("a 3000-byte packet did not take a pooled buffer")
	}
	// Drained after a large packet, the Reader keeps the buffer (a
	// transfer is under way); drained after a small one, it gives it back
	// before waiting for the next packet.
	w.WritePacket([]byte{5})
	w.Flush()
	if got, err := r.ReadPacket(); err != nil || !bytes.Equal(got, []byte{5}) {
		t.Fatalf("after drain: %v %v", got, err)
	}
	if r.pooled == nil {
		t.Fatal("Reader gave its buffer back right after a large packet")
	}
	w.WritePacket([]byte{6})
	w.Flush()
	if got, err := r.ReadPacket(); err != nil || !bytes.Equal(got, []byte{6}) {
		t.Fatalf("after drain: %v %v", got, err)
	}
	if r.pooled != nil {
		t.Fatal("Reader drained after a small packet kept its pooled buffer")
	}
}

// seal builds one packet with explicit fields (possibly invalid) and seals
// it with p's keys at sequence number 0.
func seal(t *testing.T, p pair, plen uint32, padLen byte, body []byte) []byte {
	t.Helper()
	s, err := newSuite(p.cipher, p.mac, testKeys(t, p, 0), true)
	if err != nil {
		t.Fatal(err)
	}
	pkt := binary.BigEndian.AppendUint32(nil, plen)
	pkt = append(pkt, padLen)
	pkt = append(pkt, body...)
	pkt = append(pkt, make([]byte, s.tagLen)...)
	s.seal(0, pkt)
	return pkt
}

func readOne(t *testing.T, p pair, stream []byte) ([]byte, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(stream))
	if err := r.SetCipher(p.cipher, p.mac, testKeys(t, p, 0)); err != nil {
		t.Fatal(err)
	}
	return r.ReadPacket()
}

func TestNegative(t *testing.T) {
	junk := make([]byte, MaxPacketLength+1024) // lets the CBC discard finish
	tests := []struct {
		name   string
		p      pair
		plen   uint32
		padLen byte
		body   int // bytes after padding_length
		junk   bool
		reason uint32
	}{
		{"none: oversized length", pair{"none", "none"}, MaxPacketLength + 4, 4, 12, false, wire.DisconnectProtocolError},
		{"none: length not a block multiple", pair{"none", "none"}, 13, 4, 12, false, wire.DisconnectProtocolError},
		{"none: padding < 4", pair{"none", "none"}, 12, 3, 11, false, wire.DisconnectProtocolError},
		{"none: padding >= length", pair{"none", "none"}, 12, 12, 11, false, wire.DisconnectProtocolError},
		{"none: empty payload", pair{"none", "none"}, 12, 11, 11, false, wire.DisconnectProtocolError},
		{"ctr: padding < 4 under a valid MAC", pair{"aes128-ctr", "hmac-sha2-256"}, 28, 3, 27, false, wire.DisconnectProtocolError},
		{"ctr: oversized length", pair{"aes128-ctr", "hmac-sha2-256"}, MaxPacketLength + 12, 4, 27, false, wire.DisconnectProtocolError},
		{"ctr: length not a block multiple", pair{"aes128-ctr", "hmac-sha2-256"}, 20, 4, 27, false, wire.DisconnectProtocolError},
		{"etm: length not a block multiple", pair{"aes128-ctr", "hmac-sha2-256-etm@openssh.com"}, 17, 4, 16, false, wire.DisconnectProtocolError},
		{"etm: oversized length", pair{"aes128-ctr", "hmac-sha2-256-etm@openssh.com"}, MaxPacketLength + 16, 4, 15, false, wire.DisconnectProtocolError},
		{"gcm: length not a block multiple", pair{"aes128-gcm@openssh.com", ""}, 24, 4, 23, false, wire.DisconnectProtocolError},
		{"gcm: empty payload", pair{"aes128-gcm@openssh.com", ""}, 16, 15, 15, false, wire.DisconnectProtocolError},
		{"gcm: oversized length", pair{"aes256-gcm@openssh.com", ""}, MaxPacketLength + 16, 4, 15, false, wire.DisconnectProtocolError},
		{"chacha: empty payload", pair{"chacha20-poly1305@openssh.com", ""}, 8, 7, 7, false, wire.DisconnectProtocolError},
		{"chacha: padding < 4", pair{"chacha20-poly1305@openssh.com", ""}, 8, 2, 7, false, wire.DisconnectProtocolError},
		{"chacha: length not a multiple of 8", pair{"chacha20-poly1305@openssh.com", ""}, 12, 4, 11, false, wire.DisconnectProtocolError},
		{"chacha: oversized length", pair{"chacha20-poly1305@openssh.com", ""}, MaxPacketLength + 8, 4, 7, false, wire.DisconnectProtocolError},
		// CBC MAC-then-encrypt hides which check failed (CVE-2008-5161).
		{"cbc: oversized length", pair{"aes128-cbc", "hmac-sha1"}, MaxPacketLength + 12, 4, 27, true, wire.DisconnectMACError},
		{"cbc: length not a block multiple", pair{"aes128-cbc", "hmac-sha1"}, 20, 4, 27, true, wire.DisconnectMACError},
		{"cbc: padding < 4", pair{"3des-cbc", "hmac-sha1"}, 12, 3, 11, false, wire.DisconnectProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := seal(t, tt.p, tt.plen, tt.padLen, make([]byte, tt.body))
			if tt.junk {
				stream = append(stream, junk...)
			}
			_, err := readOne(t, tt.p, stream)
			wantDisconnect(t, err, tt.reason)
		})
	}
}

func TestCBCDiscardNeedsFullLength(t *testing.T) {
	// Without MaxPacketLength bytes the CBC discard runs out of input: the
	// peer sees the same end-of-stream it would for a long valid packet.
	p := pair{"aes128-cbc", "hmac-sha1"}
	stream := seal(t, p, 20, 4, make([]byte, 27))
	if _, err := readOne(t, p, stream); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestBadMAC flips a bit in every byte past the length field of a sealed packet and
// expects MAC_ERROR for every pair that has integrity.
func TestBadMAC(t *testing.T) {
	junk := make([]byte, MaxPacketLength)
	for _, p := range allPairs() {
		if p.mac == "none" {
			continue
		}
		t.Run(p.String(), func(t *testing.T) {
			var stream bytes.Buffer
			w, _ := newPair(t, p, 0, &stream)
			w.WritePacket([]byte("\x5ethe quick brown fox jumps"))
			w.Flush()
			good := stream.Bytes()
			s, _ := newSuite(p.cipher, p.mac, testKeys(t, p, 0), false)
			from := 4
			if !s.lengthInClear() {
				from = s.blockSize // the first block holds the encrypted length
			}
			// One bit per byte, a different bit in consecutive bytes.
			for i := from; i < len(good); i++ {
				bad := append([]byte(nil), good...)
				bad[i] ^= 1 << (i % 8)
				if s.cbc {
					bad = append(bad, junk...)
				}
				_, err := readOne(t, p, bad)
				wantDisconnect(t, err, wire.DisconnectMACError)
			}
			// Flips inside the length must not be accepted either.
			for i := 0; i < from*8; i++ {
				bad := append([]byte(nil), good...)
				bad[i/8] ^= 1 << (i % 8)
				if _, err := readOne(t, p, bad); err == nil {
					t.Fatalf("bit %d flipped in the length region accepted", i)
				}
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	for _, p := range []pair{{"none", "none"}, {"aes128-ctr", "hmac-sha2-256"}, {"chacha20-poly1305@openssh.com", ""}, {"aes128-gcm@openssh.com", ""}, {"aes256-cbc", "hmac-sha2-512-etm@openssh.com"}} {
		var stream bytes.Buffer
		w, _ := newPair(t, p, 0, &stream)
		w.WritePacket(bytes.Repeat([]byte{0x5e}, 100))
		w.Flush()
		full := stream.Bytes()
		for cut := 1; cut < len(full); cut++ {
			if _, err := readOne(t, p, full[:cut]); err != io.ErrUnexpectedEOF {
				t.Fatalf("%s cut at %d of %d: %v, want io.ErrUnexpectedEOF", p, cut, len(full), err)
			}
		}
		if _, err := readOne(t, p, nil); err != io.EOF {
			t.Fatalf("%s empty stream: %v, want io.EOF", p, err)
		}
	}
}

func TestStickyDisconnect(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte{0, 0, 0, 13, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}))
	_, err1 := r.ReadPacket()
	_, err2 := r.ReadPacket()
	wantDisconnect(t, err1, wire.DisconnectProtocolError)
	if err1 != err2 {
		t.Fatalf("second call: %v", err2)
	}
}

// TestPrefill checks that bytes given to Prefill (read past the version
// line) come before the stream's, both when they fit the inline buffer
// and when they need a pooled one.
func TestPrefill(t *testing.T) {
	for _, split := range []int{0, 1, 100, readSmall, 3 * readSmall} {
		var stream bytes.Buffer
		w := NewWriter(&stream)
		var want [][]byte
		for i := range 8 {
			p := bytes.Repeat([]byte{byte(i + 1)}, 200+i*100)
			want = append(want, p)
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		all := stream.Bytes()
		if split > len(all) {
			t.Fatalf("split %d beyond %d bytes", split, len(all))
		}
		r := NewReader(bytes.NewReader(all[split:]))
		r.Prefill(all[:split])
		for i, p := range want {
			got, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("split %d: packet %d: %v", split, i, err)
			}
			if !bytes.Equal(got, p) {
				t.Fatalf("split %d: packet %d differs", split, i)
			}
		}
		if _, err := r.ReadPacket(); err != io.EOF {
			t.Fatalf("split %d: after the last packet: %v, want EOF", split, err)
		}
	}
}
