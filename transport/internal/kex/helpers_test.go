package kex

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// pipeEnd is one side of an in-memory Transport pair. Writes are copied
// (a Method must not rely on the transport retaining its buffer), and a
// side that finishes closes its outgoing channel so the peer's ReadPacket
// returns io.EOF instead of blocking.
type pipeEnd struct {
	in      <-chan []byte
	out     chan<- []byte
	once    sync.Once
	written [][]byte // every payload written, for transcript checks
}

// pipeDepth is more than any kex method writes in one direction (GEX: 2).
const pipeDepth = 4

func newPipe() (client, server *pipeEnd) {
	c2s := make(chan []byte, pipeDepth)
	s2c := make(chan []byte, pipeDepth)
	return &pipeEnd{in: s2c, out: c2s}, &pipeEnd{in: c2s, out: s2c}
}

func (p *pipeEnd) ReadPacket() ([]byte, error) {
	m, ok := <-p.in
	if !ok {
		return nil, io.EOF
	}
	return m, nil
}

func (p *pipeEnd) WritePacket(b []byte) error {
	c := slices.Clone(b)
	p.written = append(p.written, c)
	select {
	case p.out <- c:
		return nil
	default:
		return errors.New("pipe full")
	}
}

func (p *pipeEnd) close() { p.once.Do(func() { close(p.out) }) }

// scriptTransport replays fixed packets to a Method and records what it
// writes; after the script it returns io.EOF.
type scriptTransport struct {
	packets [][]byte
	written [][]byte
}

func (s *scriptTransport) ReadPacket() ([]byte, error) {
	if len(s.packets) == 0 {
		return nil, io.EOF
	}
	p := s.packets[0]
	s.packets = s.packets[1:]
	return p, nil
}

func (s *scriptTransport) WritePacket(b []byte) error {
	s.written = append(s.written, slices.Clone(b))
	return nil
}

// testHostKey is an ssh-ed25519 host key built directly on crypto/ed25519
// (RFC 8709 §4 and §6 blob formats), so these tests do not depend on
// package keys.
type testHostKey struct{ priv ed25519.PrivateKey }

func newTestHostKey() testHostKey {
	seed := bytes.Repeat([]byte{0x42}, ed25519.SeedSize)
	return testHostKey{ed25519.NewKeyFromSeed(seed)}
}

func (k testHostKey) PublicKeyBlob() []byte {
	b := wire.AppendStringS(nil, "ssh-ed25519")
	return wire.AppendString(b, k.priv.Public().(ed25519.PublicKey))
}

func (k testHostKey) Sign(_ io.Reader, data []byte) ([]byte, error) {
	b := wire.AppendStringS(nil, "ssh-ed25519")
	return wire.AppendString(b, ed25519.Sign(k.priv, data)), nil
}

// verify checks a signature blob made by Sign against the blob's key.
func (k testHostKey) verify(t *testing.T, blob, sig, H []byte) {
	t.Helper()
	if !bytes.Equal(blob, k.PublicKeyBlob()) {
		t.Fatalf("host key blob = %x, want %x", blob, k.PublicKeyBlob())
	}
	r := wire.NewReader(sig)
	if alg := r.String(); alg != "ssh-ed25519" {
		t.Fatalf("signature algorithm %q", alg)
	}
	s := r.Bytes()
	if !r.Done() {
		t.Fatalf("malformed signature blob %x", sig)
	}
	if !ed25519.Verify(k.priv.Public().(ed25519.PublicKey), H, s) {
		t.Fatal("host key signature does not verify over H")
	}
}

type failingHostKey struct{ testHostKey }

func (failingHostKey) Sign(io.Reader, []byte) ([]byte, error) { return nil, errors.New("hsm offline") }

// testMagics returns realistic exchange-hash inputs.
func testMagics() *Magics {
	return &Magics{
		ClientVersion: []byte("SSH-2.0-OpenSSH_9.9"),
		ServerVersion: []byte("SSH-2.0-ferry"),
		ClientKexInit: append([]byte{wire.MsgKexInit}, bytes.Repeat([]byte{0xc1}, 40)...),
		ServerKexInit: append([]byte{wire.MsgKexInit}, bytes.Repeat([]byte{0x5e}, 48)...),
	}
}

// detRand is a deterministic randomness source for reproducible exchanges.
func detRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// fixedRand returns the concatenation of chunks, then fails: it feeds a
// method exactly the private values a known-answer test chose.
func fixedRand(chunks ...[]byte) io.Reader {
	return io.MultiReader(bytes.NewReader(bytes.Join(chunks, nil)), errReader{})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("fixedRand exhausted") }

type kexRun struct {
	client, server       *Result
	clientErr, serverErr error
	c2s, s2c             [][]byte // payloads each side wrote
}

// runKex runs Client against Server over an in-memory pipe.
func runKex(t testing.TB, cm, sm Method, hk HostKey, crand, srand io.Reader) kexRun {
	t.Helper()
	cp, sp := newPipe()
	m := testMagics()
	var run kexRun
	var wg sync.WaitGroup
	wg.Go(func() {
		defer sp.close()
		run.server, run.serverErr = sm.Server(sp, m, hk, srand)
	})
	run.client, run.clientErr = cm.Client(cp, m, crand)
	cp.close()
	wg.Wait()
	run.c2s, run.s2c = cp.written, sp.written
	return run
}

// wantDisconnect checks err is a *wire.DisconnectError with the reason.
func wantDisconnect(t *testing.T, err error, reason uint32) {
	t.Helper()
	var de *wire.DisconnectError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v (%T), want *wire.DisconnectError reason %d", err, err, reason)
	}
	if de.Reason != reason {
		t.Fatalf("disconnect reason = %d (%s), want %d", de.Reason, de.Message, reason)
	}
}

// Hand-written encodings for the exchange-hash oracles, deliberately not
// using package wire or exchangeHash.

func encString(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func encUint32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// encMPIntBytes encodes an unsigned big-endian magnitude per RFC 4251 §5.
func encMPIntBytes(mag []byte) []byte {
	for len(mag) > 0 && mag[0] == 0 {
		mag = mag[1:]
	}
	if len(mag) > 0 && mag[0]&0x80 != 0 {
		mag = append([]byte{0}, mag...)
	}
	return encString(mag)
}

func mustMethod(t testing.TB, name string, opts *Options) Method {
	t.Helper()
	m, ok := New(name, opts)
	if !ok {
		t.Fatalf("New(%q) = false", name)
	}
	return m
}
