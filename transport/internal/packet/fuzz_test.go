package packet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fuzzMode is one Reader configuration FuzzPacketDecoder can pick.
type fuzzMode struct {
	p    pair
	comp string
}

// fuzzModes covers every framing (MtE stream and CBC, etm, GCM, chacha) and
// the zlib path; keys are fixed by testKeys.
func fuzzModes() []fuzzMode {
	return []fuzzMode{
		{pair{"none", "none"}, "none"},
		{pair{"none", "none"}, "zlib"},
		{pair{"aes128-ctr", "hmac-sha2-256"}, "none"},
		{pair{"aes256-ctr", "hmac-sha2-512-etm@openssh.com"}, "none"},
		{pair{"aes128-cbc", "hmac-sha1"}, "none"},
		{pair{"3des-cbc", "hmac-md5-96-etm@openssh.com"}, "none"},
		{pair{"blowfish-cbc", "none"}, "none"},
		{pair{"aes128-gcm@openssh.com", ""}, "none"},
		{pair{"chacha20-poly1305@openssh.com", ""}, "none"},
		{pair{"chacha20-poly1305@openssh.com", ""}, "zlib@openssh.com"},
		{pair{"aes256-gcm@openssh.com", ""}, "zlib"},
	}
}

// fuzzMaxPackets bounds the packets one input is read as.
const fuzzMaxPackets = 64

// fuzzSeedStream seals a few valid packets in mode m, so mutations start
// from inputs that pass the MAC.
func fuzzSeedStream(t testing.TB, m fuzzMode, payloads ...[]byte) []byte {
	var stream bytes.Buffer
	w := NewWriter(&stream)
	if err := w.SetCipher(m.p.cipher, m.p.mac, testKeys(t, m.p, 0)); err != nil {
		t.Fatal(err)
	}
	w.SetCompression(m.comp)
	for _, p := range payloads {
		w.WritePacket(p)
	}
	w.Flush()
	return stream.Bytes()
}

// reset returns an inflater to the start of a stream, keeping its buffers.
func (f *inflater) reset() {
	*f = inflater{out: f.out[:0], in: f.in[:0]}
}

func fuzzSeedPayloads() [][]byte {
	return [][]byte{{2}, []byte("\x5ehello"), bytes.Repeat([]byte{0x5e, 1, 2}, 300)}
}

func FuzzPacketDecoder(f *testing.F) {
	for i, m := range fuzzModes() {
		f.Add(uint8(i), fuzzSeedStream(f, m, fuzzSeedPayloads()...))
	}
	modes := fuzzModes()
	f.Add(uint8(0), []byte{0, 0, 0, 12, 4, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0})
	f.Add(uint8(1), []byte{0, 0, 0, 12, 7, 0x78, 0x9c, 3, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		m := modes[int(mode)%len(modes)]
		r := NewReader(bytes.NewReader(data))
		if err := r.SetCipher(m.p.cipher, m.p.mac, testKeys(t, m.p, 0)); err != nil {
			t.Fatal(err)
		}
		r.SetCompression(m.comp)
		for i := 0; i < fuzzMaxPackets; i++ {
			p, err := r.ReadPacket()
			if err != nil {
				break
			}
			if len(p) == 0 || len(p) > maxDecompressedPayload {
				t.Fatalf("payload of %d bytes", len(p))
			}
		}
		if cap(r.buf) > readBufferMax {
			t.Fatalf("read buffer grew to %d", cap(r.buf))
		}
	})
}

// FuzzDecompress feeds arbitrary bytes to the inflater in chunks of
// chunk+1 bytes (no panic, bounded output), then checks that data itself
// survives our deflater and the inflater split the same way.
func FuzzDecompress(f *testing.F) {
	d := newDeflater()
	f.Add(d.appendCompressed(nil, []byte("\x5ehello hello hello"), nil), uint8(0))
	f.Add(d.appendCompressed(nil, bytes.Repeat([]byte{0}, 5000), nil), uint8(7))
	for i, v := range loadPartialFlush(f) {
		if len(v.compressed) < 4096 && i < 12 {
			f.Add(v.compressed, uint8(i*13))
		}
	}
	f.Add([]byte{0x78, 0x9c, 0x05, 0xc0, 0x81, 0x00, 0x00, 0x00, 0x00, 0x80, 0x90, 0xfe, 0x5f, 0x00}, uint8(255))
	// One deflater and inflater per fuzz worker, reset per input: creating
	// them costs ~1 MiB of allocation, which would dominate the run.
	in, def := newInflater(), newDeflater()
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		step := int(chunk) + 1
		in.reset()
		for rest := data; len(rest) > 0; {
			n := min(step, len(rest))
			out, err := in.inflateChunk(rest[:n])
			if err != nil {
				break
			}
			if len(out) > maxDecompressedPayload {
				t.Fatalf("%d bytes out of one chunk", len(out))
			}
			rest = rest[n:]
		}

		if len(data) == 0 {
			return
		}
		def.zw.Reset(&def.sink)
		comp := def.appendCompressed(nil, data, nil)
		in.reset()
		var got []byte
		for rest := comp; len(rest) > 0; {
			n := min(step, len(rest))
			out, err := in.inflateChunk(rest[:n])
			if err != nil {
				t.Fatalf("own stream rejected: %v", err)
			}
			got = append(got, out...)
			rest = rest[n:]
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip: got %d bytes, want %d", len(got), len(data))
		}
	})
}

// TestWriteFuzzSeeds regenerates the checked-in seed corpus files when
// FERRY_WRITE_FUZZ_SEEDS=1; otherwise it checks they exist.
func TestWriteFuzzSeeds(t *testing.T) {
	write := os.Getenv("FERRY_WRITE_FUZZ_SEEDS") == "1"
	dir := filepath.Join("testdata", "fuzz", "FuzzPacketDecoder")
	if !write {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
			t.Fatalf("seed corpus %s missing: %v", dir, err)
		}
		return
	}
	os.MkdirAll(dir, 0o755)
	for i, m := range fuzzModes() {
		data := fuzzSeedStream(t, m, []byte("\x5eseed"), bytes.Repeat([]byte{0x5e, byte(i)}, 100))
		body := fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n", i, strconv.Quote(string(data)))
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d-%s", i, m.comp))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzDecompress")
	os.MkdirAll(dir, 0o755)
	for i, v := range loadPartialFlush(t)[:8] {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nuint8(%d)\n", strconv.Quote(string(v.compressed)), i*31)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("partial-flush-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
