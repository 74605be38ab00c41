package packet

import (
	"bytes"
	"encoding/hex"
	"io"
	"testing"
)

// TestChaCha20Poly1305KnownAnswer checks the construction against a vector
// computed independently with OpenSSL (Python cryptography's 128-bit-nonce
// ChaCha20 = 64-bit little-endian block counter || 64-bit nonce, the original
// ChaCha20 that OpenSSH uses, and its Poly1305):
//
//	key = 00 01 .. 3f; K_2 = key[:32], K_1 = key[32:]; seq = 0x01020304
//	length  = ChaCha20(K_1, nonce=seq, counter=0) ^ packet_length
//	polyKey = ChaCha20(K_2, nonce=seq, counter=0)[:32]
//	body    = ChaCha20(K_2, nonce=seq, counter=1) ^ (padding_length || payload || padding)
//	tag     = Poly1305(polyKey, length || body)
func TestChaCha20Poly1305KnownAnswer(t *testing.T) {
	const seq = 0x01020304
	payload := []byte("\x5eHello, chacha20-poly1305@openssh.com!")
	want, _ := hex.DecodeString("bc79804b9f9c54d7b77d4985f40e4c9dcb283b46310064b85fc05cedbd470cc5513f41ab13b50e224a1dd8e467a78e3ede4d7baa4e86ef34e3dfceb9063642fb1825fe55")
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i)
	}
	const padLen = 9
	pkt := []byte{0, 0, 0, 48, padLen}
	pkt = append(pkt, payload...)
	pkt = append(pkt, bytes.Repeat([]byte{0xa5}, padLen)...)
	pkt = append(pkt, make([]byte, 16)...)

	s, err := newSuite("chacha20-poly1305@openssh.com", "", Keys{Key: key}, true)
	if err != nil {
		t.Fatal(err)
	}
	s.seal(seq, pkt)
	if !bytes.Equal(pkt, want) {
		t.Fatalf("seal:\n got %x\nwant %x", pkt, want)
	}

	r := NewReader(bytes.NewReader(want))
	if err := r.SetCipher("chacha20-poly1305@openssh.com", "", Keys{Key: key}); err != nil {
		t.Fatal(err)
	}
	r.seq = seq
	got, err := r.ReadPacket()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("open: %q, %v", got, err)
	}
}

// loopback is an allocation-free in-memory pipe for steady-state tests.
type loopback struct {
	buf  []byte
	r, w int
}

func (l *loopback) Write(p []byte) (int, error) {
	if l.r == l.w {
		l.r, l.w = 0, 0
	}
	if len(l.buf)-l.w < len(p) {
		nb := make([]byte, 2*(l.w+len(p)))
		copy(nb, l.buf[:l.w])
		l.buf = nb
	}
	l.w += copy(l.buf[l.w:], p)
	return len(p), nil
}

func (l *loopback) Read(p []byte) (int, error) {
	if l.r == l.w {
		return 0, io.EOF
	}
	n := copy(p, l.buf[l.r:l.w])
	l.r += n
	return n, nil
}

// TestZeroAllocs proves WritePacket+Flush+ReadPacket allocate nothing in
// steady state for every cipher×MAC pair without compression.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, p := range allPairs() {
		for _, size := range []int{1, 32 * 1024} {
			l := &loopback{}
			w, r := newPair(t, p, 0, l)
			payload := bytes.Repeat([]byte{0x5e}, size)
			step := func() {
				if err := w.WritePacket(payload); err != nil {
					t.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if _, err := r.ReadPacket(); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 5; i++ {
				step() // grow buffers
			}
			if n := testing.AllocsPerRun(50, step); n != 0 {
				t.Errorf("%s, %d-byte payload: %.1f allocs per packet", p, size, n)
			}
		}
	}
}

// benchPairs are the pairs worth a benchmark line: every cipher with its
// usual MACs.
func benchPairs() []pair {
	var ps []pair
	for _, c := range CipherNames() {
		if IsAEAD(c) {
			ps = append(ps, pair{c, ""})
			continue
		}
		for _, m := range []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha1", "hmac-md5", "none"} {
			if c == "none" && m != "none" {
				continue
			}
			ps = append(ps, pair{c, m})
		}
	}
	return ps
}

const benchPayload = 32 * 1024

func BenchmarkSeal(b *testing.B) {
	for _, p := range benchPairs() {
		b.Run(p.String(), func(b *testing.B) {
			w, _ := newPair(b, p, 0, discard{})
			payload := make([]byte, benchPayload)
			payload[0] = 94
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.WritePacket(payload); err != nil {
					b.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Read([]byte) (int, error)    { return 0, io.EOF }
func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkOpen reads pre-sealed packets; the Reader is rebuilt (timer
// stopped) every benchOpenBatch packets since cipher state only moves
// forward.
func BenchmarkOpen(b *testing.B) {
	const benchOpenBatch = 128
	for _, p := range benchPairs() {
		b.Run(p.String(), func(b *testing.B) {
			var stream bytes.Buffer
			w, _ := newPair(b, p, 0, &stream)
			payload := make([]byte, benchPayload)
			payload[0] = 94
			for i := 0; i < benchOpenBatch; i++ {
				w.WritePacket(payload)
			}
			w.Flush()
			sealed := stream.Bytes()
			src := bytes.NewReader(sealed)
			k := testKeys(b, p, 0)
			r := NewReader(src)
			r.SetCipher(p.cipher, p.mac, k)
			n := 0
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n == benchOpenBatch {
					b.StopTimer()
					src.Reset(sealed)
					r.SetCipher(p.cipher, p.mac, k)
					r.seq = 0
					n = 0
					b.StartTimer()
				}
				if _, err := r.ReadPacket(); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}

func BenchmarkCompressedRoundTrip(b *testing.B) {
	l := &loopback{}
	w, r := NewWriter(l), NewReader(l)
	w.SetCompression("zlib")
	r.SetCompression("zlib")
	payload := bytes.Repeat([]byte("\x5eSSH_FXP_DATA some fairly repetitive file content 0123456789\n"), benchPayload/62)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		w.WritePacket(payload)
		w.Flush()
		if _, err := r.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}
