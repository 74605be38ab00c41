package kex

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

var wantNames = []string{
	"mlkem768x25519-sha256",
	"curve25519-sha256",
	"curve25519-sha256@libssh.org",
	"ecdh-sha2-nistp256",
	"ecdh-sha2-nistp384",
	"ecdh-sha2-nistp521",
	"diffie-hellman-group16-sha512",
	"diffie-hellman-group18-sha512",
	"diffie-hellman-group14-sha256",
	"diffie-hellman-group-exchange-sha256",
	"diffie-hellman-group14-sha1",
	"diffie-hellman-group-exchange-sha1",
	"diffie-hellman-group1-sha1",
}

func TestNames(t *testing.T) {
	if got := Names(); !slices.Equal(got, wantNames) {
		t.Fatalf("Names() = %q, want %q", got, wantNames)
	}
	for _, n := range []string{"", "curve25519-sha256@LIBSSH.ORG", "sntrup761x25519-sha512@openssh.com", "ext-info-c", "diffie-hellman-group15-sha512"} {
		if m, ok := New(n, nil); ok || m != nil {
			t.Errorf("New(%q) = %v, %v; want nil, false", n, m, ok)
		}
	}
}

// methodHash is each method's hash (RFC 4253 §8, RFC 4419 §4, RFC 5656
// §6.2.1, RFC 8268 §3, RFC 8731 §3, the hybrid draft).
var methodHash = map[string]crypto.Hash{
	"mlkem768x25519-sha256":                crypto.SHA256,
	"curve25519-sha256":                    crypto.SHA256,
	"curve25519-sha256@libssh.org":         crypto.SHA256,
	"ecdh-sha2-nistp256":                   crypto.SHA256,
	"ecdh-sha2-nistp384":                   crypto.SHA384,
	"ecdh-sha2-nistp521":                   crypto.SHA512,
	"diffie-hellman-group16-sha512":        crypto.SHA512,
	"diffie-hellman-group18-sha512":        crypto.SHA512,
	"diffie-hellman-group14-sha256":        crypto.SHA256,
	"diffie-hellman-group-exchange-sha256": crypto.SHA256,
	"diffie-hellman-group14-sha1":          crypto.SHA1,
	"diffie-hellman-group-exchange-sha1":   crypto.SHA1,
	"diffie-hellman-group1-sha1":           crypto.SHA1,
}

// TestClientServer runs every method's Client against its Server: both
// must agree on H and K, and the host key signature must verify over H.
func TestClientServer(t *testing.T) {
	hk := newTestHostKey()
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			run := runKex(t, m, m, hk, detRand(1), detRand(2))
			if run.clientErr != nil || run.serverErr != nil {
				t.Fatalf("client error %v, server error %v", run.clientErr, run.serverErr)
			}
			c, s := run.client, run.server
			if !bytes.Equal(c.H, s.H) {
				t.Fatalf("H differs: client %x, server %x", c.H, s.H)
			}
			if !bytes.Equal(c.K, s.K) {
				t.Fatalf("K differs")
			}
			if c.Hash != methodHash[name] || s.Hash != methodHash[name] {
				t.Fatalf("Hash = %v/%v, want %v", c.Hash, s.Hash, methodHash[name])
			}
			if len(c.H) != c.Hash.Size() {
				t.Fatalf("len(H) = %d, want %d", len(c.H), c.Hash.Size())
			}
			hk.verify(t, c.HostKeyBlob, c.Signature, c.H)
			if !bytes.Equal(s.Signature, c.Signature) || !bytes.Equal(s.HostKeyBlob, c.HostKeyBlob) {
				t.Fatal("server and client results disagree on host key or signature")
			}
			checkKEncoding(t, name, c.K)
		})
	}
}

// checkKEncoding checks K is a well-formed mpint, or for the hybrid a
// string holding a SHA-256 digest.
func checkKEncoding(t *testing.T, name string, K []byte) {
	t.Helper()
	r := wire.NewReader(K)
	if name == "mlkem768x25519-sha256" {
		if b := r.Bytes(); !r.Done() || len(b) != 32 {
			t.Fatalf("hybrid K = %x, want string of 32 bytes", K)
		}
		return
	}
	if v := r.MPInt(); !r.Done() || v.Sign() <= 0 {
		t.Fatalf("K = %x is not a positive minimal mpint", K)
	}
}

// TestClientServerDeterministic: with the same rand streams, methods that
// draw all their randomness from rand give identical transcripts; this is
// what golden handshake transcripts in package transport rely on.
func TestClientServerDeterministic(t *testing.T) {
	hk := newTestHostKey()
	for _, name := range []string{"curve25519-sha256", "diffie-hellman-group14-sha256", "diffie-hellman-group-exchange-sha256"} {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			a := runKex(t, m, m, hk, detRand(7), detRand(8))
			b := runKex(t, m, m, hk, detRand(7), detRand(8))
			if a.clientErr != nil || b.clientErr != nil {
				t.Fatal(a.clientErr, b.clientErr)
			}
			if !bytes.Equal(a.client.H, b.client.H) {
				t.Fatal("same randomness, different H")
			}
			c := runKex(t, m, m, hk, detRand(7), detRand(9))
			if bytes.Equal(a.client.H, c.client.H) {
				t.Fatal("different server randomness, same H")
			}
		})
	}
}

func TestHostKeySignFailure(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			run := runKex(t, m, m, failingHostKey{newTestHostKey()}, detRand(1), detRand(2))
			wantDisconnect(t, run.serverErr, wire.DisconnectKeyExchangeFailed)
			if run.clientErr == nil {
				t.Fatal("client finished without a reply")
			}
		})
	}
}

// TestResultDoesNotAliasTransport: the Transport's buffer is only valid
// until the next ReadPacket, so a client Result must own its bytes.
func TestResultDoesNotAliasTransport(t *testing.T) {
	m := mustMethod(t, "curve25519-sha256", nil)
	hk := newTestHostKey()
	run := runKex(t, m, m, hk, detRand(1), detRand(2))
	if run.clientErr != nil {
		t.Fatal(run.clientErr)
	}
	reply := run.s2c[0]
	blob := slices.Clone(run.client.HostKeyBlob)
	sig := slices.Clone(run.client.Signature)
	for i := range reply {
		reply[i] ^= 0xff
	}
	if !bytes.Equal(blob, run.client.HostKeyBlob) || !bytes.Equal(sig, run.client.Signature) {
		t.Fatal("client Result aliases the transport's packet buffer")
	}
}

// TestDerive checks RFC 4253 §7.2 against a hand-computed expansion,
// including output longer than one hash (the K2 = HASH(K || H || K1) rule)
// and all six letters.
func TestDerive(t *testing.T) {
	K := encMPIntBytes(bytes.Repeat([]byte{0x9a}, 32))
	H := bytes.Repeat([]byte{0x11}, 32)
	sid := bytes.Repeat([]byte{0x22}, 32)
	hashSum := func(h crypto.Hash, parts ...[]byte) []byte {
		d := h.New()
		for _, p := range parts {
			d.Write(p)
		}
		return d.Sum(nil)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
		seen := map[string]byte{}
		for letter := byte('A'); letter <= 'F'; letter++ {
			k1 := hashSum(h, K, H, []byte{letter}, sid)
			k2 := hashSum(h, K, H, k1)
			k3 := hashSum(h, K, H, k1, k2)
			want := slices.Concat(k1, k2, k3)
			for _, n := range []int{0, 1, 16, h.Size(), h.Size() + 1, 2 * h.Size(), 2*h.Size() + 5} {
				got := Derive(h, K, H, letter, sid, n)
				if !bytes.Equal(got, want[:n]) {
					t.Errorf("%v letter %c n=%d: got %x, want %x", h, letter, n, got, want[:n])
				}
			}
			full := hex.EncodeToString(Derive(h, K, H, letter, sid, 64))
			if prev, dup := seen[full]; dup {
				t.Errorf("%v: letters %c and %c derive the same key", h, prev, letter)
			}
			seen[full] = letter
		}
	}
	// The first derivation of a connection uses H as session_id.
	if got, want := Derive(crypto.SHA256, K, H, 'C', H, 32), hashSum(crypto.SHA256, K, H, []byte{'C'}, H); !bytes.Equal(got, want) {
		t.Errorf("session_id = H: got %x, want %x", got, want)
	}
}

// TestDeriveKnownAnswer pins Derive to a value computed outside Go
// (python3 hashlib: sha256(K||H||b"A"||sid), then sha256(K||H||K1)).
func TestDeriveKnownAnswer(t *testing.T) {
	K := []byte{0, 0, 0, 1, 0x05} // mpint 5
	H := []byte("exchange hash")
	sid := []byte("session id")
	want := "b0064c9455366352a61d5780e9cb266ba50a1408701d932f303f6cbf5497a03da5064bb6c0844dc3"
	if got := hex.EncodeToString(Derive(crypto.SHA256, K, H, 'A', sid, 40)); got != want {
		t.Fatalf("Derive = %s, want %s", got, want)
	}
}

// TestConcurrentExchanges: one Method value serves many exchanges at once
// (the handshake builds a Method per negotiation, but nothing should break
// if it is shared). Run with -race.
func TestConcurrentExchanges(t *testing.T) {
	hk := newTestHostKey()
	for _, name := range []string{"mlkem768x25519-sha256", "curve25519-sha256", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256", "diffie-hellman-group-exchange-sha256"} {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			const n = 4
			hs := make([][]byte, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					run := runKex(t, m, m, hk, detRand(byte(i)), detRand(byte(i+10)))
					errs[i] = errors.Join(run.clientErr, run.serverErr)
					if errs[i] == nil && !bytes.Equal(run.client.H, run.server.H) {
						errs[i] = errors.New("H differs")
					}
					if run.client != nil {
						hs[i] = run.client.H
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				for j := range i {
					if bytes.Equal(hs[i], hs[j]) {
						t.Fatalf("exchanges %d and %d produced the same H", i, j)
					}
				}
			}
		})
	}
}
