package kex

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/big"
	"slices"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handHash is the exchange-hash oracle: HASH over the concatenation of
// already-encoded fields, starting with the four RFC 4253 §8 magics and
// K_S.
func handHash(h crypto.Hash, ks []byte, fields ...[]byte) []byte {
	m := testMagics()
	d := h.New()
	for _, f := range [][]byte{m.ClientVersion, m.ServerVersion, m.ClientKexInit, m.ServerKexInit, ks} {
		d.Write(encString(f))
	}
	for _, f := range fields {
		d.Write(f)
	}
	return d.Sum(nil)
}

// RFC 7748 §5.2 and §6.1 test vectors, through x25519Shared.
func TestX25519RFC7748(t *testing.T) {
	for _, v := range []struct{ scalar, u, out string }{
		{ // §5.2, first vector
			"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
		},
		{ // §5.2, second vector (u has the top bit set, which X25519 masks)
			"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
		},
		{ // §6.1, Alice's private key with Bob's public key
			"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
		},
		{ // §6.1, Bob's private key with Alice's public key
			"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
			"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
		},
	} {
		priv, err := newX25519Key(bytes.NewReader(unhex(t, v.scalar)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := x25519Shared(priv, unhex(t, v.u))
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != v.out {
			t.Errorf("X25519(%s, %s) = %x, want %s", v.scalar[:8], v.u[:8], got, v.out)
		}
	}
}

// RFC 7748 §6.1 key pairs.
const (
	alicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	alicePub  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	bobPriv   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	bobPub    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	aliceBobK = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
)

// TestCurve25519KAT runs curve25519-sha256 with the RFC 7748 §6.1 keys
// (Alice as client, Bob as server) and checks every byte on the wire, K as
// the RFC 8731 §3.1 mpint, and H against a hand-assembled hash input.
func TestCurve25519KAT(t *testing.T) {
	hk := newTestHostKey()
	for _, name := range []string{"curve25519-sha256", "curve25519-sha256@libssh.org"} {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			run := runKex(t, m, m, hk, fixedRand(unhex(t, alicePriv)), fixedRand(unhex(t, bobPriv)))
			if run.clientErr != nil || run.serverErr != nil {
				t.Fatal(run.clientErr, run.serverErr)
			}
			wantInit := append([]byte{30}, encString(unhex(t, alicePub))...)
			if len(run.c2s) != 1 || !bytes.Equal(run.c2s[0], wantInit) {
				t.Fatalf("client sent %x, want %x", run.c2s, wantInit)
			}
			// 0x4a < 0x80: no sign byte, so K = 00000020 || secret.
			wantK := unhex(t, "00000020"+aliceBobK)
			if !bytes.Equal(run.client.K, wantK) || !bytes.Equal(run.server.K, wantK) {
				t.Fatalf("K = %x / %x, want %x", run.client.K, run.server.K, wantK)
			}
			ks := hk.PublicKeyBlob()
			wantH := handHash(crypto.SHA256, ks, encString(unhex(t, alicePub)), encString(unhex(t, bobPub)), wantK)
			if !bytes.Equal(run.client.H, wantH) || !bytes.Equal(run.server.H, wantH) {
				t.Fatalf("H = %x, want %x", run.client.H, wantH)
			}
			sig, _ := hk.Sign(nil, wantH)
			wantReply := slices.Concat([]byte{31}, encString(ks), encString(unhex(t, bobPub)), encString(sig))
			if len(run.s2c) != 1 || !bytes.Equal(run.s2c[0], wantReply) {
				t.Fatalf("server sent %x, want %x", run.s2c, wantReply)
			}
		})
	}
}

// fixedNIST is a nistAgreement with chosen private keys, for the NIST
// CAVS vectors (crypto/ecdh.GenerateKey ignores rand since Go 1.26).
type fixedNIST struct {
	a              nistAgreement
	client, server *ecdh.PrivateKey
}

func (f fixedNIST) hybrid() bool { return false }

func (f fixedNIST) clientInit(io.Reader) (clientAgreement, []byte, error) {
	return nistClient{f.a, f.client}, f.client.PublicKey().Bytes(), nil
}

func (f fixedNIST) serverReply(_ io.Reader, qc []byte, _ crypto.Hash) ([]byte, []byte, error) {
	return f.a.serverReplyWith(f.server, qc)
}

// NIST CAVS 14.1 ECC CDH Primitive (SP 800-56A) vectors, first of each
// curve, as also used by crypto/ecdh's tests.
var cavsVectors = []struct {
	name                       string
	priv, pub, peerPub, shared string
	hash                       crypto.Hash
}{
	{
		name:    "ecdh-sha2-nistp256",
		priv:    "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534",
		pub:     "04ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b23028af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141",
		peerPub: "04700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac",
		shared:  "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b",
		hash:    crypto.SHA256,
	},
	{
		name:    "ecdh-sha2-nistp384",
		priv:    "3cc3122a68f0d95027ad38c067916ba0eb8c38894d22e1b15618b6818a661774ad463b205da88cf699ab4d43c9cf98a1",
		pub:     "049803807f2f6d2fd966cdd0290bd410c0190352fbec7ff6247de1302df86f25d34fe4a97bef60cff548355c015dbb3e5fba26ca69ec2f5b5d9dad20cc9da711383a9dbe34ea3fa5a2af75b46502629ad54dd8b7d73a8abb06a3a3be47d650cc99",
		peerPub: "04a7c76b970c3b5fe8b05d2838ae04ab47697b9eaf52e764592efda27fe7513272734466b400091adbf2d68c58e0c50066ac68f19f2e1cb879aed43a9969b91a0839c4c38a49749b661efedf243451915ed0905a32b060992b468c64766fc8437a",
		shared:  "5f9d29dc5e31a163060356213669c8ce132e22f57c9a04f40ba7fcead493b457e5621e766c40a2e3d4d6a04b25e533f1",
		hash:    crypto.SHA384,
	},
	{
		// The shared x-coordinate starts with a zero byte, which the mpint
		// encoding of K must strip.
		name:    "ecdh-sha2-nistp521",
		priv:    "017eecc07ab4b329068fba65e56a1f8890aa935e57134ae0ffcce802735151f4eac6564f6ee9974c5e6887a1fefee5743ae2241bfeb95d5ce31ddcb6f9edb4d6fc47",
		pub:     "0400602f9d0cf9e526b29e22381c203c48a886c2b0673033366314f1ffbcba240ba42f4ef38a76174635f91e6b4ed34275eb01c8467d05ca80315bf1a7bbd945f550a501b7c85f26f5d4b2d7355cf6b02117659943762b6d1db5ab4f1dbc44ce7b2946eb6c7de342962893fd387d1b73d7a8672d1f236961170b7eb3579953ee5cdc88cd2d",
		peerPub: "0400685a48e86c79f0f0875f7bc18d25eb5fc8c0b07e5da4f4370f3a9490340854334b1e1b87fa395464c60626124a4e70d0f785601d37c09870ebf176666877a2046d01ba52c56fc8776d9e8f5db4f0cc27636d0b741bbe05400697942e80b739884a83bde99e0f6716939e632bc8986fa18dccd443a348b6c3e522497955a4f3c302f676",
		shared:  "005fc70477c3e63bc3954bd0df3ea0d1f41ee21746ed95fc5e1fdf90930d5e136672d72cc770742d1711c3c3a4c334a0ad9759436a4d3c5bf6e74b9578fac148c831",
		hash:    crypto.SHA512,
	},
}

// TestECDHNISTKAT runs each side of ecdh-sha2-nistp* with a CAVS private
// key against the CAVS peer public key: the method's Q, K and H must match
// the vector and a hand-assembled hash.
func TestECDHNISTKAT(t *testing.T) {
	hk := newTestHostKey()
	ks := hk.PublicKeyBlob()
	for _, v := range cavsVectors {
		t.Run(v.name, func(t *testing.T) {
			em := mustMethod(t, v.name, nil).(*ephemeralMethod)
			if em.hash != v.hash {
				t.Fatalf("hash = %v, want %v", em.hash, v.hash)
			}
			a := em.agreement.(nistAgreement)
			priv, err := a.curve.NewPrivateKey(unhex(t, v.priv))
			if err != nil {
				t.Fatal(err)
			}
			fixed := &ephemeralMethod{agreement: fixedNIST{a: a, client: priv, server: priv}, hash: em.hash}
			wantK := encMPIntBytes(unhex(t, v.shared))
			if v.shared[:2] == "00" && len(wantK) != 4+len(v.shared)/2-1 {
				t.Fatalf("oracle did not strip the leading zero: %x", wantK)
			}

			// Server side: the client (peer) sends the CAVS peer key.
			st := &scriptTransport{packets: [][]byte{append([]byte{30}, encString(unhex(t, v.peerPub))...)}}
			res, err := fixed.Server(st, testMagics(), hk, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantH := handHash(v.hash, ks, encString(unhex(t, v.peerPub)), encString(unhex(t, v.pub)), wantK)
			if !bytes.Equal(res.K, wantK) || !bytes.Equal(res.H, wantH) {
				t.Fatalf("server K = %x H = %x, want K = %x H = %x", res.K, res.H, wantK, wantH)
			}
			sig, _ := hk.Sign(nil, wantH)
			wantReply := slices.Concat([]byte{31}, encString(ks), encString(unhex(t, v.pub)), encString(sig))
			if !bytes.Equal(st.written[0], wantReply) {
				t.Fatalf("server reply = %x, want %x", st.written[0], wantReply)
			}

			// Client side: the server (peer) answers with the CAVS peer key.
			reply := slices.Concat([]byte{31}, encString(ks), encString(unhex(t, v.peerPub)), encString([]byte("sig")))
			ct := &scriptTransport{packets: [][]byte{reply}}
			res, err = fixed.Client(ct, testMagics(), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantH = handHash(v.hash, ks, encString(unhex(t, v.pub)), encString(unhex(t, v.peerPub)), wantK)
			if !bytes.Equal(res.K, wantK) || !bytes.Equal(res.H, wantH) {
				t.Fatalf("client K = %x H = %x, want K = %x H = %x", res.K, res.H, wantK, wantH)
			}
			if want := append([]byte{30}, encString(unhex(t, v.pub))...); !bytes.Equal(ct.written[0], want) {
				t.Fatalf("client init = %x, want %x", ct.written[0], want)
			}
			if string(res.Signature) != "sig" || !bytes.Equal(res.HostKeyBlob, ks) {
				t.Fatal("client did not return the server's host key and signature")
			}
		})
	}
}

// fixedHybrid is mlkem768x25519 with derandomized encapsulation
// (crypto/mlkem/mlkemtest) and a chosen server X25519 key.
type fixedHybrid struct {
	serverX25519 *ecdh.PrivateKey
	encapsRand   []byte
}

func (f fixedHybrid) hybrid() bool { return true }

func (f fixedHybrid) clientInit(rand io.Reader) (clientAgreement, []byte, error) {
	return mlkem768x25519{}.clientInit(rand)
}

func (f fixedHybrid) serverReply(_ io.Reader, qc []byte, h crypto.Hash) ([]byte, []byte, error) {
	return mlkem768x25519{}.serverReplyWith(qc, h, f.serverX25519, func(ek *mlkem.EncapsulationKey768) ([]byte, []byte) {
		k, c, err := mlkemtest.Encapsulate768(ek, f.encapsRand)
		if err != nil {
			panic(err)
		}
		return k, c
	})
}

// TestHybridKAT runs mlkem768x25519-sha256 with every random input fixed:
// the ML-KEM seed, the RFC 7748 X25519 keys and the encapsulation
// randomness. It checks C_INIT and S_REPLY layout, K = string(SHA-256(K_PQ
// || K_CL)) (OpenSSH kexmlkem768x25519.c) and H.
func TestHybridKAT(t *testing.T) {
	hk := newTestHostKey()
	ks := hk.PublicKeyBlob()
	seed := bytes.Repeat([]byte{0x5a}, mlkem.SeedSize)
	encRand := bytes.Repeat([]byte{0xa5}, 32)
	bob, err := ecdh.X25519().NewPrivateKey(unhex(t, bobPriv))
	if err != nil {
		t.Fatal(err)
	}
	m := &ephemeralMethod{agreement: fixedHybrid{bob, encRand}, hash: crypto.SHA256}
	run := runKex(t, m, m, hk, fixedRand(seed, unhex(t, alicePriv)), nil)
	if run.clientErr != nil || run.serverErr != nil {
		t.Fatal(run.clientErr, run.serverErr)
	}

	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		t.Fatal(err)
	}
	cInit := slices.Concat(dk.EncapsulationKey().Bytes(), unhex(t, alicePub))
	if len(cInit) != 1216 {
		t.Fatalf("C_INIT is %d bytes", len(cInit))
	}
	if want := append([]byte{30}, encString(cInit)...); !bytes.Equal(run.c2s[0], want) {
		t.Fatalf("client init differs from 30 || string(ek || X25519 pub)")
	}
	kpq, ct, err := mlkemtest.Encapsulate768(dk.EncapsulationKey(), encRand)
	if err != nil {
		t.Fatal(err)
	}
	sReply := slices.Concat(ct, unhex(t, bobPub))
	if len(sReply) != 1120 {
		t.Fatalf("S_REPLY is %d bytes", len(sReply))
	}
	digest := sha256.Sum256(slices.Concat(kpq, unhex(t, aliceBobK)))
	wantK := encString(digest[:])
	if !bytes.Equal(run.client.K, wantK) || !bytes.Equal(run.server.K, wantK) {
		t.Fatalf("K = %x / %x, want %x", run.client.K, run.server.K, wantK)
	}
	wantH := handHash(crypto.SHA256, ks, encString(cInit), encString(sReply), wantK)
	if !bytes.Equal(run.client.H, wantH) || !bytes.Equal(run.server.H, wantH) {
		t.Fatalf("H = %x, want %x", run.client.H, wantH)
	}
	sig, _ := hk.Sign(nil, wantH)
	if want := slices.Concat([]byte{31}, encString(ks), encString(sReply), encString(sig)); !bytes.Equal(run.s2c[0], want) {
		t.Fatal("server reply differs from 31 || string K_S || string(ct || X25519 pub) || string sig")
	}
}

// readExponent mirrors the documented private exponent draw: expBits
// bits, big-endian, top bits of the first byte masked.
func readExponent(b []byte, bits int) *big.Int {
	b = slices.Clone(b[:(bits+7)/8])
	if extra := len(b)*8 - bits; extra > 0 {
		b[0] &= 0xff >> extra
	}
	return new(big.Int).SetBytes(b)
}

func mpint(v *big.Int) []byte { return encMPIntBytes(v.Bytes()) }

// TestDHKAT runs the fixed-group methods with chosen exponents and checks
// e, f, K and H (RFC 4253 §8) computed independently here.
func TestDHKAT(t *testing.T) {
	hk := newTestHostKey()
	ks := hk.PublicKeyBlob()
	for _, tc := range []struct {
		name     string
		primeHex string
		expBits  int
		hash     crypto.Hash
	}{
		{"diffie-hellman-group1-sha1", oakleyGroup2Hex, 256, crypto.SHA1},
		{"diffie-hellman-group14-sha1", modpGroup14Hex, 256, crypto.SHA1},
		{"diffie-hellman-group14-sha256", modpGroup14Hex, 256, crypto.SHA256},
		{"diffie-hellman-group16-sha512", modpGroup16Hex, 304, crypto.SHA512},
		{"diffie-hellman-group18-sha512", modpGroup18Hex, 400, crypto.SHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := bytes.Repeat([]byte{0xc3}, 64)
			sr := bytes.Repeat([]byte{0x3c}, 64)
			m := mustMethod(t, tc.name, nil)
			run := runKex(t, m, m, hk, fixedRand(cr), fixedRand(sr))
			if run.clientErr != nil || run.serverErr != nil {
				t.Fatal(run.clientErr, run.serverErr)
			}
			p, _ := new(big.Int).SetString(tc.primeHex, 16)
			g := big.NewInt(2)
			x, y := readExponent(cr, tc.expBits), readExponent(sr, tc.expBits)
			if x.BitLen() != tc.expBits {
				t.Fatalf("test exponent has %d bits", x.BitLen())
			}
			e := new(big.Int).Exp(g, x, p)
			f := new(big.Int).Exp(g, y, p)
			k := new(big.Int).Exp(e, y, p)
			if want := append([]byte{30}, mpint(e)...); !bytes.Equal(run.c2s[0], want) {
				t.Fatal("client init is not 30 || mpint(g^x mod p) with the documented exponent")
			}
			wantK := mpint(k)
			wantH := handHash(tc.hash, ks, mpint(e), mpint(f), wantK)
			if !bytes.Equal(run.client.K, wantK) || !bytes.Equal(run.server.K, wantK) {
				t.Fatal("K differs from (g^x)^y mod p")
			}
			if !bytes.Equal(run.client.H, wantH) || !bytes.Equal(run.server.H, wantH) {
				t.Fatalf("H = %x, want %x", run.client.H, wantH)
			}
			sig, _ := hk.Sign(nil, wantH)
			if want := slices.Concat([]byte{31}, encString(ks), mpint(f), encString(sig)); !bytes.Equal(run.s2c[0], want) {
				t.Fatal("server reply differs from 31 || string K_S || mpint f || string sig")
			}
		})
	}
}

// TestGEXKAT checks the RFC 4419 §3 hash for both request forms: min || n
// || max for SSH_MSG_KEX_DH_GEX_REQUEST, n alone for the old request, each
// hashed as the client sent it.
func TestGEXKAT(t *testing.T) {
	hk := newTestHostKey()
	ks := hk.PublicKeyBlob()
	p3072, _ := new(big.Int).SetString(modpGroup15Hex, 16)
	for _, tc := range []struct {
		name string
		req  gexRequest
		hash crypto.Hash
		wire []byte
		hin  []byte
	}{
		{"diffie-hellman-group-exchange-sha256", gexRequest{min: 2048, n: 3072, max: 8192}, crypto.SHA256,
			unhex(t, "22"+"00000800"+"00000c00"+"00002000"), unhex(t, "00000800"+"00000c00"+"00002000")},
		// The client's n is hashed as sent even when the server clamps it.
		{"diffie-hellman-group-exchange-sha1", gexRequest{min: 1024, n: 1024, max: 3072}, crypto.SHA1,
			unhex(t, "22"+"00000400"+"00000400"+"00000c00"), unhex(t, "00000400"+"00000400"+"00000c00")},
		{"diffie-hellman-group-exchange-sha256", gexRequest{n: 2048, old: true}, crypto.SHA256,
			unhex(t, "1e"+"00000800"), unhex(t, "00000800")},
		{"diffie-hellman-group-exchange-sha1", gexRequest{n: 3000, old: true}, crypto.SHA1,
			unhex(t, "1e"+"00000bb8"), unhex(t, "00000bb8")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gm := mustMethod(t, tc.name, nil).(*gexMethod)
			cr := bytes.Repeat([]byte{0x77}, 64)
			sr := bytes.Repeat([]byte{0x88}, 64)
			cp, sp := newPipe()
			var sres *Result
			var serr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer sp.close()
				sres, serr = gm.Server(sp, testMagics(), hk, fixedRand(sr))
			}()
			cres, cerr := gm.client(cp, testMagics(), fixedRand(cr), tc.req)
			cp.close()
			<-done
			if cerr != nil || serr != nil {
				t.Fatal(cerr, serr)
			}
			if !bytes.Equal(cp.written[0], tc.wire) {
				t.Fatalf("request = %x, want %x", cp.written[0], tc.wire)
			}
			g := big.NewInt(2)
			if want := slices.Concat([]byte{31}, mpint(p3072), mpint(g)); !bytes.Equal(sp.written[0], want) {
				t.Fatal("server did not offer RFC 3526 group 15 with g = 2")
			}
			x, y := readExponent(cr, 256), readExponent(sr, 256)
			e := new(big.Int).Exp(g, x, p3072)
			f := new(big.Int).Exp(g, y, p3072)
			wantK := mpint(new(big.Int).Exp(e, y, p3072))
			if want := append([]byte{32}, mpint(e)...); !bytes.Equal(cp.written[1], want) {
				t.Fatal("client init is not 32 || mpint e")
			}
			wantH := handHash(tc.hash, ks, tc.hin, mpint(p3072), mpint(g), mpint(e), mpint(f), wantK)
			if !bytes.Equal(cres.K, wantK) || !bytes.Equal(sres.K, wantK) {
				t.Fatal("K differs")
			}
			if !bytes.Equal(cres.H, wantH) || !bytes.Equal(sres.H, wantH) {
				t.Fatalf("H = %x, want %x", cres.H, wantH)
			}
			sig, _ := hk.Sign(nil, wantH)
			if want := slices.Concat([]byte{33}, encString(ks), mpint(f), encString(sig)); !bytes.Equal(sp.written[1], want) {
				t.Fatal("server reply differs from 33 || string K_S || mpint f || string sig")
			}
		})
	}
}

// TestExponentBits pins the private exponent sizes (SP 800-56A 2s, at least
// 256) and checks newPrivate yields exactly that many bits from an all-ones
// rand.
func TestExponentBits(t *testing.T) {
	for _, tc := range []struct{ pBits, want int }{
		{1024, 256}, {2048, 256}, {3072, 256}, {4096, 304}, {6144, 352}, {8192, 400},
	} {
		if got := exponentBits(tc.pBits); got != tc.want {
			t.Errorf("exponentBits(%d) = %d, want %d", tc.pBits, got, tc.want)
		}
		gr := &dhGroup{expBits: tc.want}
		x, err := gr.newPrivate(bytes.NewReader(bytes.Repeat([]byte{0xff}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		if x.BitLen() != tc.want {
			t.Errorf("newPrivate gave %d bits, want %d", x.BitLen(), tc.want)
		}
	}
	gr := &dhGroup{expBits: 256}
	_, err := gr.newPrivate(bytes.NewReader(make([]byte, 32*maxExponentTries)))
	wantDisconnect(t, err, wire.DisconnectKeyExchangeFailed)
	// A draw below 2 is retried, not used.
	x, err := gr.newPrivate(bytes.NewReader(slices.Concat(make([]byte, 31), []byte{1}, bytes.Repeat([]byte{7}, 32))))
	if err != nil || x.BitLen() < 200 {
		t.Fatalf("newPrivate after a rejected draw = %v, %v", x, err)
	}
}
