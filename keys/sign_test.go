package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// testSKSigner is a software stand-in for a FIDO authenticator: it makes
// sk-* signatures exactly as PROTOCOL.u2f describes, with chosen flags.
type testSKSigner struct {
	pub     PublicKey
	ed      ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	app     string
	flags   byte
	counter uint32
}

func newTestSKSigner(t testing.TB, keyType string) *testSKSigner {
	t.Helper()
	s := &testSKSigner{app: "ssh:", flags: SKFlagUserPresent, counter: 7}
	blob := wire.AppendStringS(nil, keyType)
	switch keyType {
	case KeySKEd25519:
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		s.ed = priv
		blob = wire.AppendString(blob, pub)
	case KeySKECDSAP256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.ec = priv
		point, _ := priv.PublicKey.Bytes()
		blob = wire.AppendStringS(blob, "nistp256")
		blob = wire.AppendString(blob, point)
	}
	blob = wire.AppendStringS(blob, s.app)
	k, err := ParsePublicKey(blob)
	if err != nil {
		t.Fatal(err)
	}
	s.pub = k
	return s
}

func (s *testSKSigner) PublicKey() PublicKey { return s.pub }

func (s *testSKSigner) Sign(_ io.Reader, data []byte, alg string) (*Signature, error) {
	if alg != "" && alg != s.pub.Type() {
		return nil, ErrWrongAlgorithm
	}
	rest := []byte{s.flags, byte(s.counter >> 24), byte(s.counter >> 16), byte(s.counter >> 8), byte(s.counter)}
	msg := skSignedData(s.app, rest, data)
	var blob []byte
	if s.ed != nil {
		blob = ed25519.Sign(s.ed, msg)
	} else {
		h := sha256.Sum256(msg)
		r, ss, err := ecdsa.Sign(rand.Reader, s.ec, h[:])
		if err != nil {
			return nil, err
		}
		blob = appendECDSASignatureBlob(nil, r, ss)
	}
	return &Signature{Format: s.pub.Type(), Blob: blob, Rest: rest}, nil
}

// testSigners caches one signer per key type; RSA and DSA generation is
// slow.
var testSignersOnce = sync.OnceValues(func() (map[string]Signer, error) {
	m := map[string]Signer{}
	for _, f := range []string{"id_ed25519", "id_rsa", "id_ecdsa256", "id_ecdsa384", "id_ecdsa521", "id_dsa"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			return nil, err
		}
		s, err := ParsePrivateKey(data)
		if err != nil {
			return nil, err
		}
		m[s.PublicKey().Type()] = s
	}
	return m, nil
})

func testSigners(t testing.TB) map[string]Signer {
	t.Helper()
	m, err := testSignersOnce()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Signer{}
	for k, v := range m {
		out[k] = v
	}
	out[KeySKEd25519] = newTestSKSigner(t, KeySKEd25519)
	out[KeySKECDSAP256] = newTestSKSigner(t, KeySKECDSAP256)
	return out
}

func TestSignVerifyRoundTrip(t *testing.T) {
	data := []byte("session identifier and userauth request")
	for typ, s := range testSigners(t) {
		for _, alg := range SignatureAlgorithmsFor(typ) {
			t.Run(alg+"/"+typ, func(t *testing.T) {
				sig, err := s.Sign(rand.Reader, data, alg)
				if err != nil {
					t.Fatal(err)
				}
				if sig.Format != alg {
					t.Fatalf("format %q", sig.Format)
				}
				// Through the wire forms, as a peer would see them.
				pub, err := ParsePublicKey(s.PublicKey().Marshal())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(pub.Marshal(), s.PublicKey().Marshal()) {
					t.Fatal("public key does not round-trip")
				}
				psig, err := ParseSignature(sig.Marshal())
				if err != nil {
					t.Fatal(err)
				}
				if err := pub.Verify(data, psig); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				bad := append([]byte(nil), data...)
				bad[0] ^= 1
				if err := pub.Verify(bad, psig); !errors.Is(err, ErrSignatureInvalid) {
					t.Fatalf("modified data: %v", err)
				}
				trunc := *psig
				trunc.Blob = psig.Blob[:len(psig.Blob)-1]
				if err := pub.Verify(data, &trunc); err == nil {
					t.Fatal("truncated blob verified")
				}
				flipped := *psig
				flipped.Blob = append([]byte(nil), psig.Blob...)
				flipped.Blob[len(flipped.Blob)-1] ^= 0x80
				if err := pub.Verify(data, &flipped); err == nil {
					t.Fatal("modified blob verified")
				}
				if b := sig.Marshal(); len(b) > 0 {
					if _, err := ParseSignature(b[:len(b)-1]); err == nil {
						t.Fatal("truncated signature parsed")
					}
					if _, err := ParseSignature(append(b, 0)); err == nil {
						t.Fatal("signature with trailing byte parsed")
					}
				}
			})
		}
	}
}

func TestDefaultAlgorithm(t *testing.T) {
	for typ, s := range testSigners(t) {
		sig, err := s.Sign(rand.Reader, []byte("x"), "")
		if err != nil {
			t.Fatal(err)
		}
		if want := SignatureAlgorithmsFor(typ)[0]; sig.Format != want {
			t.Errorf("%s: default %q, want %q", typ, sig.Format, want)
		}
	}
}

func TestVerifyWrongAlgorithm(t *testing.T) {
	signers := testSigners(t)
	data := []byte("data")
	edSig, _ := signers[KeyEd25519].Sign(rand.Reader, data, "")
	for typ, s := range signers {
		if typ == KeyEd25519 {
			continue
		}
		if err := s.PublicKey().Verify(data, edSig); !errors.Is(err, ErrWrongAlgorithm) {
			t.Errorf("%s key accepted an ssh-ed25519 signature: %v", typ, err)
		}
	}
	// A signature claiming rsa-sha2-256 but made with SHA-512 must fail.
	rsaSig, _ := signers[KeyRSA].Sign(rand.Reader, data, SigRSASHA512)
	rsaSig.Format = SigRSASHA256
	if err := signers[KeyRSA].PublicKey().Verify(data, rsaSig); !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("relabelled RSA signature: %v", err)
	}
	if _, err := signers[KeyEd25519].Sign(rand.Reader, data, SigRSASHA256); !errors.Is(err, ErrWrongAlgorithm) {
		t.Errorf("ed25519 signer made rsa-sha2-256: %v", err)
	}
}

func TestSKPolicy(t *testing.T) {
	data := []byte("data")
	for _, typ := range []string{KeySKEd25519, KeySKECDSAP256} {
		s := newTestSKSigner(t, typ)
		k := s.PublicKey()
		if k.(SKPublicKey).Application() != "ssh:" {
			t.Fatal("application")
		}
		tests := []struct {
			flags  byte
			policy SKPolicy
			want   error
		}{
			{SKFlagUserPresent, SKPolicy{}, nil},
			{0, SKPolicy{}, ErrUserPresence},
			{0, SKPolicy{NoTouchRequired: true}, nil},
			{SKFlagUserPresent, SKPolicy{VerifyRequired: true}, ErrUserVerification},
			{SKFlagUserPresent | SKFlagUserVerified, SKPolicy{VerifyRequired: true}, nil},
			{SKFlagUserVerified, SKPolicy{NoTouchRequired: true, VerifyRequired: true}, nil},
		}
		for _, tt := range tests {
			s.flags = tt.flags
			sig, err := s.Sign(nil, data, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyWithPolicy(k, data, sig, tt.policy); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
				t.Errorf("%s flags %#x policy %+v: %v, want %v", typ, tt.flags, tt.policy, err, tt.want)
			}
			if tt.policy == (SKPolicy{}) {
				if err := k.Verify(data, sig); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
					t.Errorf("Verify default policy flags %#x: %v", tt.flags, err)
				}
			}
			f, c, ok := sig.SKFlags()
			if !ok || f != tt.flags || c != 7 {
				t.Errorf("SKFlags = %#x, %d, %v", f, c, ok)
			}
		}
		// The flags are signed: changing them breaks the signature.
		s.flags = 0
		sig, _ := s.Sign(nil, data, "")
		sig.Rest[0] = SKFlagUserPresent
		if err := k.Verify(data, sig); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("%s: forged user-presence flag: %v", typ, err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	for _, tt := range []struct {
		typ  string
		bits int
	}{{KeyEd25519, 0}, {KeyECDSAP256, 0}, {KeyECDSAP384, 0}, {KeyECDSAP521, 0}, {KeyRSA, 2048}, {KeyDSA, 0}} {
		s, err := GenerateKey(tt.typ, tt.bits)
		if err != nil {
			t.Fatalf("%s: %v", tt.typ, err)
		}
		if s.PublicKey().Type() != tt.typ {
			t.Fatalf("type %s", s.PublicKey().Type())
		}
		if tt.typ == KeyRSA && s.PublicKey().(*RSAPublicKey).Bits() != 2048 {
			t.Fatal("bits")
		}
		pem, err := MarshalPrivateKey(s, "c")
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParsePrivateKey(pem)
		if err != nil {
			t.Fatal(err)
		}
		if !Equal(s.PublicKey(), s2.PublicKey()) {
			t.Fatal("MarshalPrivateKey/ParsePrivateKey changed the key")
		}
		sig, err := s2.Sign(rand.Reader, []byte("x"), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PublicKey().Verify([]byte("x"), sig); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := GenerateKey(KeyRSA, 512); err == nil {
		t.Fatal("512-bit RSA generated")
	}
	if _, err := GenerateKey("ssh-foo", 0); err == nil {
		t.Fatal("unknown type generated")
	}
}
