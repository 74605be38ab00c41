package packet

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

type zlibVector struct{ payload, compressed []byte }

// loadPartialFlush reads packets compressed the way OpenSSH does it
// (deflate with Z_PARTIAL_FLUSH after each packet, so packets need not end
// on a byte boundary), produced by CPython's zlib, i.e. the C zlib OpenSSH
// links.
func loadPartialFlush(t testing.TB) []zlibVector {
	t.Helper()
	f, err := os.Open("testdata/zlib_partial_flush.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []zlibVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		a, b, _ := strings.Cut(line, " ")
		p, err1 := hex.DecodeString(a)
		c, err2 := hex.DecodeString(b)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad vector line: %v %v", err1, err2)
		}
		vs = append(vs, zlibVector{p, c})
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func TestInflatePartialFlush(t *testing.T) {
	vs := loadPartialFlush(t)
	unaligned := 0
	f := newInflater()
	for i, v := range vs {
		got, err := f.decompress(v.compressed)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, v.payload) {
			t.Fatalf("packet %d: got %d bytes, want %d", i, len(got), len(v.payload))
		}
		if f.nbits%8 != 0 || f.pos != len(f.in) {
			unaligned++
		}
	}
	// The vectors are only a good test if some packets really end mid-byte.
	if unaligned == 0 {
		t.Fatal("no packet ended inside a byte; vectors do not exercise carry-over")
	}
}

// TestInflateSplitAnywhere decodes a compressed stream cut at arbitrary
// points: output must not depend on where packets end.
func TestInflateSplitAnywhere(t *testing.T) {
	var all, want []byte
	for _, v := range loadPartialFlush(t) {
		all = append(all, v.compressed...)
		want = append(want, v.payload...)
	}
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		f := newInflater()
		var got []byte
		for rest := all; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(64))
			if seed%2 == 1 {
				n = min(len(rest), 1+rng.IntN(4000))
			}
			out, err := f.inflateChunk(rest[:n])
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			got = append(got, out...)
			rest = rest[n:]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: got %d bytes, want %d", seed, len(got), len(want))
		}
	}
}

// TestDeflaterInterop checks our sent stream is plain zlib: the standard
// library's reader decodes it packet by packet at sync-flush boundaries.
func TestDeflaterInterop(t *testing.T) {
	d := newDeflater()
	var stream []byte
	var want []byte
	for i := 0; i < 50; i++ {
		p := bytes.Repeat([]byte{byte(i), 'x'}, i*100+1)
		stream = d.appendCompressed(stream, p, nil)
		want = append(want, p...)
		// Each packet ends with the sync-flush marker 00 00 ff ff.
		if !bytes.HasSuffix(stream, []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("packet %d does not end at a sync flush", i)
		}
	}
	zr, err := zlib.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := readFull(zr, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("stdlib zlib decoded different bytes")
	}
}

func TestInflateFinalBlock(t *testing.T) {
	// A complete zlib stream (final block + adler32) is accepted once;
	// anything after its end is an error.
	var b bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&b, flate.BestCompression)
	zw.Write([]byte("\x5ehello hello hello"))
	zw.Close()
	f := newInflater()
	got, err := f.decompress(b.Bytes())
	if err != nil || string(got) != "\x5ehello hello hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	_, err = f.decompress([]byte{1})
	wantDisconnect(t, err, wire.DisconnectCompressionError)
}

func TestInflateErrors(t *testing.T) {
	tests := []struct {
		name, msg string
		data      []byte
	}{
		{"bad zlib method", "bad zlib header", []byte{0x79, 0x9c}},
		{"bad zlib check", "bad zlib header", []byte{0x78, 0x9d}},
		{"preset dictionary", "bad zlib header", []byte{0x78, 0xbb}},
		{"reserved block type", "invalid block type", []byte{0x78, 0x9c, 0x07}},
		{"stored length check", "stored block length check failed", []byte{0x78, 0x9c, 0x00, 0x05, 0x00, 0x05, 0x00}},
		{"distance too far", "distance too far back", []byte{0x78, 0x9c, 0x63, 0x00, 0x02, 0x10}},
	}
	for _, tt := range tests {
		f := newInflater()
		_, err := f.inflateChunk(tt.data)
		if err == nil {
			// Some cases only fail once the rest of the unit arrives.
			_, err = f.inflateChunk(bytes.Repeat([]byte{0xff}, 16))
		}
		t.Run(tt.name, func(t *testing.T) {
			wantDisconnect(t, err, wire.DisconnectCompressionError)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
		})
	}
}

// TestInflateBomb checks a packet that decompresses past
// maxDecompressedPayload ends the connection with COMPRESSION_ERROR.
func TestInflateBomb(t *testing.T) {
	d := newDeflater()
	bomb := d.appendCompressed(nil, make([]byte, maxDecompressedPayload+1), nil)
	if len(bomb) > 2048 {
		t.Fatalf("bomb is %d bytes; expected tiny", len(bomb))
	}
	f := newInflater()
	_, err := f.decompress(bomb)
	wantDisconnect(t, err, wire.DisconnectCompressionError)

	// Exactly the limit is fine.
	d, f = newDeflater(), newInflater()
	p, err := f.decompress(d.appendCompressed(nil, make([]byte, maxDecompressedPayload), nil))
	if err != nil || len(p) != maxDecompressedPayload {
		t.Fatalf("limit-sized payload: %d, %v", len(p), err)
	}
}

// TestReaderCompressionError: a corrupt compressed payload under a valid
// MAC reaches the Reader's caller as COMPRESSION_ERROR.
func TestReaderCompressionError(t *testing.T) {
	var stream bytes.Buffer
	w, r := NewWriter(&stream), NewReader(&stream)
	r.SetCompression("zlib@openssh.com")
	w.WritePacket([]byte{0x78, 0x9c, 0x07, 0, 0})
	w.Flush()
	_, err := r.ReadPacket()
	wantDisconnect(t, err, wire.DisconnectCompressionError)
}

// TestSetCompressionRestartsStream: re-announcing compression at a key
// exchange starts a new zlib stream on both sides (RFC 4253 §6.2; OpenSSH
// restarts its streams at every NEWKEYS), so the first packet after it
// decodes with a fresh decoder and references no earlier history.
func TestSetCompressionRestartsStream(t *testing.T) {
	var stream bytes.Buffer
	w, r := NewWriter(&stream), NewReader(&stream)
	w.SetCompression("zlib")
	r.SetCompression("zlib")
	msg := bytes.Repeat([]byte("\x5erepeated text "), 20)
	roundTrip := func(r *Reader, i int) {
		t.Helper()
		w.WritePacket(msg)
		w.Flush()
		got, err := r.ReadPacket()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	for i := range 5 {
		roundTrip(r, i)
	}
	// The rekey: both sides re-announce compression.
	w.SetCompression("zlib@openssh.com")
	r.SetCompression("zlib@openssh.com")
	roundTrip(r, 5)
	// A decoder that never saw the first five packets decodes the next
	// one too: the writer's stream started over.
	w.SetCompression("zlib")
	fresh := NewReader(&stream)
	fresh.SetCompression("zlib")
	roundTrip(fresh, 6)
	roundTrip(fresh, 7)
}

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// bitWriter packs fields LSB first, as RFC 1951 §3.1.1 orders them.
type bitWriter struct {
	b     []byte
	nbits uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	for i := uint(0); i < n; i++ {
		if w.nbits%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (w.nbits % 8)
		w.nbits++
	}
}

// dynamicHeader starts a zlib stream with a dynamic block whose code length
// code gives the listed symbols (16, 17, 18, 0 in RFC 1951 §3.2.7 order)
// the listed lengths.
func dynamicHeader(nlen, ndist int, cl16, cl17, cl18, cl0 uint32) *bitWriter {
	w := &bitWriter{b: []byte{0x78, 0x9c}, nbits: 16}
	w.bits(0, 1) // BFINAL
	w.bits(2, 2) // BTYPE dynamic
	w.bits(uint32(nlen-257), 5)
	w.bits(uint32(ndist-1), 5)
	w.bits(0, 4) // HCLEN: 4 code length codes
	for _, l := range []uint32{cl16, cl17, cl18, cl0} {
		w.bits(l, 3)
	}
	return w
}

func TestInflateDynamicHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		w    *bitWriter
		body func(w *bitWriter)
	}{
		{"too many literal/length codes", "bad dynamic block counts", dynamicHeader(288, 1, 1, 0, 0, 1), func(w *bitWriter) {}},
		{"over-subscribed code length code", "bad code length code", dynamicHeader(257, 1, 1, 1, 1, 0), func(w *bitWriter) {}},
		{"repeat with no previous length", "repeat with no previous length", dynamicHeader(257, 1, 1, 0, 0, 1), func(w *bitWriter) {
			w.bits(1, 1) // symbol 16 (code 1; symbol 0 has code 0)
			w.bits(0, 2)
		}},
		{"too many code lengths", "too many code lengths", dynamicHeader(257, 1, 0, 0, 1, 1), func(w *bitWriter) {
			for i := 0; i < 2; i++ {
				w.bits(1, 1)   // symbol 18
				w.bits(127, 7) // 138 zeros
			}
		}},
		{"no end-of-block code", "no end-of-block code", dynamicHeader(257, 1, 0, 0, 1, 1), func(w *bitWriter) {
			w.bits(1, 1)
			w.bits(127, 7) // 138 zeros
			w.bits(1, 1)
			w.bits(109, 7) // 120 zeros: all 258 lengths zero
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body(tt.w)
			tt.w.bits(0, 16) // enough input that nothing waits for more
			_, err := newInflater().inflateChunk(tt.w.b)
			wantDisconnect(t, err, wire.DisconnectCompressionError)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
		})
	}
}
