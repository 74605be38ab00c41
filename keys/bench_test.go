package keys

import (
	"crypto/rand"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	signers := testSigners(b)
	data := make([]byte, 256) // about the size of a userauth signed blob
	for _, tc := range []struct{ typ, alg string }{
		{KeyEd25519, ""}, {KeyECDSAP256, ""}, {KeyECDSAP384, ""}, {KeyRSA, SigRSASHA256}, {KeyRSA, SigRSASHA512}, {KeySKEd25519, ""},
	} {
		s := signers[tc.typ]
		sig, err := s.Sign(rand.Reader, data, tc.alg)
		if err != nil {
			b.Fatal(err)
		}
		pub := s.PublicKey()
		b.Run(sig.Format, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := pub.Verify(data, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParsePublicKey(b *testing.B) {
	for _, f := range []string{"id_ed25519.pub", "id_ecdsa256.pub", "id_rsa.pub", "id_ed25519-cert.pub"} {
		blob := readPub(b, f).Marshal()
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(blob)))
			for b.Loop() {
				if _, err := ParsePublicKey(blob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseAuthorizedKey(b *testing.B) {
	line := []byte(`restrict,pty,command="/usr/bin/rsync --server",from="10.0.0.0/8" ` + string(MarshalAuthorizedKey(readPub(b, "id_ed25519.pub"))))
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := ParseAuthorizedKey(line); err != nil {
			b.Fatal(err)
		}
	}
}
