package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math/big"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Fingerprints printed by ssh-keygen 9.2 -l -E sha256/md5 for testdata.
func TestFingerprints(t *testing.T) {
	tests := []struct{ file, sha, md5 string }{
		{"id_dsa.pub", "SHA256:V39+VpYpXGFgMMTnIkrdkz+tjDD6k5T+ZmzM0zbonMA", "MD5:91:9e:ef:87:d1:60:67:ca:1c:a6:19:ee:a3:27:a2:48"},
		{"id_ecdsa256.pub", "SHA256:pR6pMi+Ma4euS1KCorz5a99nJsiC94wD32eD3b/Sgqw", "MD5:0d:5d:3a:b2:1d:5c:f5:64:c6:b5:3a:33:6d:51:43:86"},
		{"id_ecdsa384.pub", "SHA256:Mhs9VXSjvbZTZwVdy3BpkMzDinniFich+MRy6K/iQe0", "MD5:e2:ff:32:99:04:e0:5f:fd:bc:07:05:6a:7a:0b:6e:e3"},
		{"id_ecdsa521.pub", "SHA256:3ibd8diOflknR8SaEAchVK5anKjnWSxbB7leSnmGFdQ", "MD5:bd:41:06:0b:b3:73:df:3e:51:96:f9:da:f5:d4:0d:5e"},
		{"id_ed25519.pub", "SHA256:EdzfhTXFdO1BxowA1H/Kv1N5PK+xaAIKWm1hNqq3h78", "MD5:c3:c0:55:18:ee:eb:24:11:68:22:00:74:11:47:02:00"},
		{"id_ed25519-cert.pub", "SHA256:EdzfhTXFdO1BxowA1H/Kv1N5PK+xaAIKWm1hNqq3h78", "MD5:c3:c0:55:18:ee:eb:24:11:68:22:00:74:11:47:02:00"},
		{"id_rsa.pub", "SHA256:irdojHQdx0pGRR/Wm0GbvVEIe/FYDJpbRqVs+A8SAbg", "MD5:f6:d4:a8:6d:3a:b6:97:92:63:8b:ab:b1:27:c0:91:13"},
		{"ca_ed25519.pub", "SHA256:HKiKR947Y+6cfO+g6sN5RSvqEL/EBG5x0BZpND0Zm/k", "MD5:fb:04:22:e8:0e:2c:c8:ad:1c:e2:cc:00:6d:85:0b:d1"},
	}
	for _, tt := range tests {
		k := readPub(t, tt.file)
		if got := FingerprintSHA256(k); got != tt.sha {
			t.Errorf("%s: FingerprintSHA256 %s, want %s", tt.file, got, tt.sha)
		}
		if got := FingerprintMD5(k); got != tt.md5 {
			t.Errorf("%s: FingerprintMD5 %s, want %s", tt.file, got, tt.md5)
		}
	}
}

func TestAlgorithmTables(t *testing.T) {
	if got := SignatureAlgorithmsFor(KeyRSA); !slices.Equal(got, []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}) {
		t.Errorf("ssh-rsa: %v", got)
	}
	if got := SignatureAlgorithmsFor(CertRSA); !slices.Equal(got, []string{CertSigRSASHA512, CertSigRSASHA256, CertRSA}) {
		t.Errorf("rsa cert: %v", got)
	}
	SignatureAlgorithmsFor(KeyRSA)[0] = "mutated"
	if SignatureAlgorithmsFor(KeyRSA)[0] != SigRSASHA512 {
		t.Error("SignatureAlgorithmsFor exposes the table")
	}
	if SignatureAlgorithmsFor("nope") != nil {
		t.Error("unknown type has algorithms")
	}
	for alg, want := range map[string]string{
		"rsa-sha2-256":                      "ssh-rsa",
		"rsa-sha2-512":                      "ssh-rsa",
		"ssh-rsa":                           "ssh-rsa",
		"ssh-ed25519":                       "ssh-ed25519",
		"ecdsa-sha2-nistp521":               "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com":        "sk-ssh-ed25519@openssh.com",
		"rsa-sha2-512-cert-v01@openssh.com": "ssh-rsa-cert-v01@openssh.com",
		"rsa-sha2-256-cert-v01@openssh.com": "ssh-rsa-cert-v01@openssh.com",
		"ssh-ed25519-cert-v01@openssh.com":  "ssh-ed25519-cert-v01@openssh.com",
		"ssh-dss":                           "ssh-dss",
		"rsa-sha2-384":                      "",
	} {
		if got := KeyTypeOfAlgorithm(alg); got != want {
			t.Errorf("KeyTypeOfAlgorithm(%q) = %q, want %q", alg, got, want)
		}
	}
	for alg, want := range map[string]string{
		CertSigRSASHA512:                   SigRSASHA512,
		CertSigRSASHA256:                   SigRSASHA256,
		CertRSA:                            SigRSASHA1,
		CertSKECDSAP256:                    KeySKECDSAP256,
		"ssh-ed25519":                      "ssh-ed25519",
		"ssh-ed25519-cert-v01@openssh.com": "ssh-ed25519",
	} {
		if got := UnderlyingAlgorithm(alg); got != want {
			t.Errorf("UnderlyingAlgorithm(%q) = %q, want %q", alg, got, want)
		}
	}
}

func mpintBytes(b []byte) []byte { return wire.AppendString(nil, b) }

func TestParsePublicKeyStrict(t *testing.T) {
	// Every checked-in key and certificate: exact round trip, and no proper
	// prefix or extension parses.
	for _, f := range []string{"id_dsa.pub", "id_ecdsa256.pub", "id_ecdsa384.pub", "id_ecdsa521.pub", "id_ed25519.pub", "id_rsa.pub",
		"id_ed25519-cert.pub", "id_rsa-cert.pub", "id_ecdsa256-cert.pub", "id_dsa-cert.pub"} {
		blob := readPub(t, f).Marshal()
		k, err := ParsePublicKey(blob)
		if err != nil || !bytes.Equal(k.Marshal(), blob) {
			t.Fatalf("%s: round trip: %v", f, err)
		}
		if _, err := ParsePublicKey(append(slices.Clone(blob), 0)); err == nil {
			t.Errorf("%s: trailing byte accepted", f)
		}
		for n := 0; n < len(blob); n++ {
			if _, err := ParsePublicKey(blob[:n]); err == nil {
				t.Fatalf("%s: %d-byte prefix accepted", f, n)
			}
		}
	}

	ec := readPub(t, "id_ecdsa256.pub").(*ECDSAPublicKey)
	offCurve := slices.Clone(ec.point)
	offCurve[len(offCurve)-1] ^= 1
	compressed := append([]byte{2 + ec.point[64]&1}, ec.point[1:33]...)
	ecBlob := func(typ, curve string, point []byte) []byte {
		b := wire.AppendStringS(nil, typ)
		b = wire.AppendStringS(b, curve)
		return wire.AppendString(b, point)
	}
	rsaBlob := func(e, n []byte) []byte {
		b := wire.AppendStringS(nil, KeyRSA)
		b = append(b, mpintBytes(e)...)
		return append(b, mpintBytes(n)...)
	}
	rsaKey := readPub(t, "id_rsa.pub").(*RSAPublicKey)
	n := rsaKey.key.N.Bytes() // 2048-bit: top bit set, so the mpint needs a 0 byte
	goodN := append([]byte{0}, n...)
	small := new(big.Int).Lsh(big.NewInt(1), 511)
	small.Add(small, big.NewInt(1))
	dsaKey := readPub(t, "id_dsa.pub").(*DSAPublicKey)
	dsaBlob := func(q *big.Int) []byte {
		b := wire.AppendStringS(nil, KeyDSA)
		b = wire.AppendMPInt(b, dsaKey.key.P)
		b = wire.AppendMPInt(b, q)
		b = wire.AppendMPInt(b, dsaKey.key.G)
		return wire.AppendMPInt(b, dsaKey.key.Y)
	}
	tests := []struct {
		name string
		blob []byte
		err  string
	}{
		{"empty", nil, "keys: short public key blob"},
		{"unknown type", wire.AppendStringS(nil, "ssh-foo"), `keys: unknown key type "ssh-foo"`},
		{"ecdsa good", ecBlob(KeyECDSAP256, "nistp256", ec.point), ""},
		{"ecdsa curve mismatch", ecBlob(KeyECDSAP256, "nistp384", ec.point), `keys: curve "nistp384" does not match key type ecdsa-sha2-nistp256`},
		{"ecdsa point for other curve", ecBlob(KeyECDSAP384, "nistp384", ec.point), "keys: invalid ecdsa-sha2-nistp384 point"},
		{"ecdsa off curve", ecBlob(KeyECDSAP256, "nistp256", offCurve), "keys: invalid ecdsa-sha2-nistp256 point"},
		{"ecdsa infinity", ecBlob(KeyECDSAP256, "nistp256", []byte{0}), "keys: invalid ecdsa-sha2-nistp256 point"},
		{"ecdsa compressed", ecBlob(KeyECDSAP256, "nistp256", compressed), "keys: invalid ecdsa-sha2-nistp256 point"},
		{"ed25519 short", wire.AppendString(wire.AppendStringS(nil, KeyEd25519), make([]byte, 31)), "keys: malformed ssh-ed25519 public key"},
		{"ed25519 long", wire.AppendString(wire.AppendStringS(nil, KeyEd25519), make([]byte, 33)), "keys: malformed ssh-ed25519 public key"},
		{"rsa good", rsaBlob([]byte{1, 0, 1}, goodN), ""},
		{"rsa non-minimal n", rsaBlob([]byte{1, 0, 1}, append([]byte{0}, goodN...)), "keys: malformed ssh-rsa public key"},
		{"rsa negative n", rsaBlob([]byte{1, 0, 1}, n), "keys: malformed ssh-rsa public key"},
		{"rsa 512 bits", rsaBlob([]byte{1, 0, 1}, append([]byte{0}, small.Bytes()...)), "keys: RSA modulus of 512 bits outside [1024, 16384]"},
		{"rsa e=1", rsaBlob([]byte{1}, goodN), "keys: invalid RSA public exponent"},
		{"rsa even e", rsaBlob([]byte{1, 0, 0}, goodN), "keys: invalid RSA public exponent"},
		{"rsa huge e", rsaBlob([]byte{1, 0, 0, 0, 1}, goodN), "keys: invalid RSA public exponent"},
		{"dsa good", dsaBlob(dsaKey.key.Q), ""},
		{"dsa 256-bit q", dsaBlob(new(big.Int).Lsh(dsaKey.key.Q, 96)), "keys: invalid ssh-dss parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePublicKey(tt.blob)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestParseSignature(t *testing.T) {
	sig := func(format string, blob []byte, rest ...byte) []byte {
		b := wire.AppendStringS(nil, format)
		b = wire.AppendString(b, blob)
		return append(b, rest...)
	}
	tests := []struct {
		name string
		in   []byte
		want *Signature
		err  string
	}{
		{"ed25519", sig("ssh-ed25519", []byte{1, 2}), &Signature{Format: "ssh-ed25519", Blob: []byte{1, 2}}, ""},
		{"rsa-sha2-256", sig("rsa-sha2-256", []byte{9}), &Signature{Format: "rsa-sha2-256", Blob: []byte{9}}, ""},
		{"sk", sig(KeySKEd25519, []byte{3}, 1, 0, 0, 0, 5), &Signature{Format: KeySKEd25519, Blob: []byte{3}, Rest: []byte{1, 0, 0, 0, 5}}, ""},
		{"sk short rest", sig(KeySKEd25519, []byte{3}, 1, 0, 0, 0), nil, "keys: malformed sk-ssh-ed25519@openssh.com signature"},
		{"sk long rest", sig(KeySKECDSAP256, []byte{3}, 1, 0, 0, 0, 0, 0), nil, "keys: malformed sk-ecdsa-sha2-nistp256@openssh.com signature"},
		{"trailing", sig("ssh-ed25519", []byte{1}, 0), nil, "keys: trailing data after ssh-ed25519 signature"},
		{"unknown", sig("ssh-foo", nil), nil, `keys: unknown signature format "ssh-foo"`},
		{"cert name", sig(CertSigRSASHA256, nil), nil, `keys: unknown signature format "rsa-sha2-256-cert-v01@openssh.com"`},
		{"control chars sanitized", sig("a\nb", nil), nil, `keys: unknown signature format "a?b"`},
		{"short", []byte{0, 0, 0, 11, 's'}, nil, "keys: short signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignature(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v", got)
			}
			if !bytes.Equal(got.Marshal(), tt.in) {
				t.Fatal("Marshal does not round-trip")
			}
		})
	}
}

func TestParseCheckedInCertificate(t *testing.T) {
	k := readPub(t, "id_ed25519-cert.pub")
	c, ok := k.(*Certificate)
	if !ok {
		t.Fatalf("%T", k)
	}
	if c.Type() != CertEd25519 || c.Serial != 42 || c.KeyID != "test-id" || c.CertType != UserCert ||
		!slices.Equal(c.ValidPrincipals, []string{"alice", "bob"}) || len(c.Nonce) != 32 {
		t.Fatalf("fields: %+v", c)
	}
	if !reflect.DeepEqual(c.CriticalOptions, map[string]string{"force-command": "/bin/true", "source-address": "127.0.0.1/32"}) {
		t.Errorf("critical options %v", c.CriticalOptions)
	}
	want := map[string]string{"permit-X11-forwarding": "", "permit-agent-forwarding": "", "permit-port-forwarding": "", "permit-pty": "", "permit-user-rc": ""}
	if !reflect.DeepEqual(c.Extensions, want) {
		t.Errorf("extensions %v", c.Extensions)
	}
	if !Equal(c.Key, readPub(t, "id_ed25519.pub")) || !Equal(c.SignatureKey, readPub(t, "ca_ed25519.pub")) {
		t.Error("key or CA differ")
	}
	// Re-encoding the parsed fields gives the same bytes ssh-keygen wrote.
	fresh := *c
	fresh.raw, fresh.signed = nil, nil
	if !bytes.Equal(fresh.Marshal(), c.Marshal()) {
		t.Error("field encoding differs from ssh-keygen's")
	}
	ca := readPub(t, "ca_ed25519.pub")
	trusted := func(k PublicKey) bool { return Equal(k, ca) }
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	fc, err := c.CheckUserCertificate("bob", at, net.ParseIP("127.0.0.1"), trusted)
	if err != nil || fc != "/bin/true" {
		t.Fatalf("check: %q %v", fc, err)
	}
	if _, err := c.CheckUserCertificate("bob", at, nil, trusted); err == nil {
		t.Error("source-address passed without a remote address")
	}
	if _, err := c.CheckUserCertificate("bob", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), net.ParseIP("127.0.0.1"), trusted); err == nil {
		t.Error("expired certificate accepted")
	}
	for _, f := range []string{"id_rsa-cert.pub", "id_ecdsa256-cert.pub", "id_dsa-cert.pub"} {
		c := readPub(t, f).(*Certificate)
		if _, err := c.CheckUserCertificate("alice", time.Now(), nil, trusted); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestCertificateStrict(t *testing.T) {
	signers := testSigners(t)
	ca := signers[KeyEd25519]
	base := func() *Certificate {
		return &Certificate{Key: signers[KeyECDSAP256].PublicKey(), CertType: UserCert, ValidPrincipals: []string{"alice"},
			ValidBefore: CertTimeInfinity, Extensions: map[string]string{ExtPermitPTY: ""}}
	}
	c := base()
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	blob := c.Marshal()
	k, err := ParsePublicKey(blob)
	if err != nil {
		t.Fatal(err)
	}
	pc := k.(*Certificate)
	if !reflect.DeepEqual(pc.Extensions, c.Extensions) || !slices.Equal(pc.ValidPrincipals, c.ValidPrincipals) || pc.Signature.Format != KeyEd25519 {
		t.Fatalf("round trip %+v", pc)
	}
	if !pc.HasExtension(ExtPermitPTY) || pc.HasExtension(ExtPermitUserRC) {
		t.Error("HasExtension")
	}

	// A certificate signed by a certificate is refused.
	cs, _ := NewCertSigner(c, signers[KeyECDSAP256])
	c2 := base()
	if err := c2.SignCert(rand.Reader, cs, ""); err == nil {
		t.Error("SignCert with a certificate authority")
	}
	// Build the same by hand and check the parser refuses it too.
	c2.SignatureKey = c
	tbs, _ := c2.bytesToSign()
	sig, _ := ca.Sign(rand.Reader, tbs, "")
	forged := wire.AppendString(tbs, sig.Marshal())
	if _, err := ParsePublicKey(forged); err == nil || !strings.Contains(err.Error(), "signature key is a certificate") {
		t.Errorf("cert-signed cert: %v", err)
	}
	// Duplicate extension names are refused.
	dup := wire.AppendStringS(nil, "permit-pty")
	dup = wire.AppendUint32(dup, 0)
	dup = append(dup, dup...)
	i := bytes.Index(blob, wire.AppendString(nil, []byte("\x00\x00\x00\x0apermit-pty\x00\x00\x00\x00")))
	if i < 0 {
		t.Fatal("extensions not found")
	}
	old := wire.AppendString(nil, []byte("\x00\x00\x00\x0apermit-pty\x00\x00\x00\x00"))
	mut := append(append(slices.Clone(blob[:i]), wire.AppendString(nil, dup)...), blob[i+len(old):]...)
	if _, err := ParsePublicKey(mut); err == nil || !strings.Contains(err.Error(), "extensions") {
		t.Errorf("duplicate extension: %v", err)
	}
	// Too many principals.
	c3 := base()
	for i := 0; i <= MaxCertPrincipals; i++ {
		c3.ValidPrincipals = append(c3.ValidPrincipals, "p")
	}
	c3.SignCert(rand.Reader, ca, "")
	if _, err := ParsePublicKey(c3.Marshal()); err == nil || !strings.Contains(err.Error(), "principals") {
		t.Errorf("too many principals: %v", err)
	}
	// SHA-1 CA signatures are refused by default but can be allowed.
	c4 := base()
	c4.SignCert(rand.Reader, signers[KeyRSA], SigRSASHA1)
	trusted := func(PublicKey) bool { return true }
	if _, err := c4.CheckUserCertificate("alice", time.Now(), nil, trusted); err == nil {
		t.Error("ssh-rsa CA signature accepted by default")
	}
	if _, err := c4.CheckCertificate(UserCert, &CertCheck{Principal: "alice", Now: time.Now(), IsTrustedCA: trusted,
		CASignatureAlgorithms: []string{SigRSASHA1}}); err != nil {
		t.Errorf("ssh-rsa CA signature explicitly allowed: %v", err)
	}
}

func TestHostCertificatePrincipals(t *testing.T) {
	signers := testSigners(t)
	ca := signers[KeyEd25519]
	c := &Certificate{Key: signers[KeyECDSAP256].PublicKey(), CertType: HostCert,
		ValidPrincipals: []string{"*.Example.com", "exact.host"}, ValidBefore: CertTimeInfinity}
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	trusted := func(k PublicKey) bool { return Equal(k, ca.PublicKey()) }
	for host, ok := range map[string]bool{"a.example.com": true, "A.EXAMPLE.COM": true, "exact.host": true, "example.com": false, "exact.hostx": false} {
		if err := c.CheckHostCertificate(host, time.Now(), trusted); (err == nil) != ok {
			t.Errorf("host %q: %v", host, err)
		}
	}
	// User certificates never match principals as patterns.
	c.CertType = UserCert
	c.ValidPrincipals = []string{"*"}
	c.SignCert(rand.Reader, ca, "")
	if _, err := c.CheckUserCertificate("alice", time.Now(), nil, trusted); err == nil {
		t.Error("user certificate principal matched as a pattern")
	}
}

// DeferPrincipal checks everything but the login name, for
// authorized_keys principals=; ListsUserPrincipal then matches names
// exactly, never as patterns.
func TestUserCertificateDeferredPrincipal(t *testing.T) {
	signers := testSigners(t)
	ca := signers[KeyEd25519]
	trusted := func(k PublicKey) bool { return Equal(k, ca.PublicKey()) }
	c := &Certificate{Key: signers[KeyECDSAP256].PublicKey(), CertType: UserCert,
		ValidPrincipals: []string{"deploy", "ops*"}, ValidBefore: CertTimeInfinity}
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckCertificate(UserCert, &CertCheck{Principal: "alice", Now: time.Now(), IsTrustedCA: trusted}); err == nil {
		t.Error("user not among principals accepted without DeferPrincipal")
	}
	if _, err := c.CheckCertificate(UserCert, &CertCheck{Principal: "alice", DeferPrincipal: true, Now: time.Now(), IsTrustedCA: trusted}); err != nil {
		t.Errorf("DeferPrincipal: %v", err)
	}
	for names, want := range map[string]bool{"deploy": true, "alice,deploy": true, "alice": false, "ops1": false, "ops*": true, "": false} {
		if got := c.ListsUserPrincipal(strings.Split(names, ",")); got != want {
			t.Errorf("ListsUserPrincipal(%q) = %v", names, got)
		}
	}
	// Deferring the name does not admit a certificate without principals.
	c.ValidPrincipals = nil
	c.SignCert(rand.Reader, ca, "")
	if _, err := c.CheckCertificate(UserCert, &CertCheck{DeferPrincipal: true, Now: time.Now(), IsTrustedCA: trusted}); err == nil {
		t.Error("certificate without principals accepted")
	}
}

func TestCertificateSKPolicy(t *testing.T) {
	signers := testSigners(t)
	sk := signers[KeySKEd25519].(*testSKSigner)
	c := &Certificate{Key: sk.PublicKey(), CertType: UserCert, ValidPrincipals: []string{"a"}, ValidBefore: CertTimeInfinity}
	if err := c.SignCert(rand.Reader, signers[KeyEd25519], ""); err != nil {
		t.Fatal(err)
	}
	sk.flags = 0
	sig, _ := sk.Sign(nil, []byte("d"), "")
	if err := c.Verify([]byte("d"), sig); !errors.Is(err, ErrUserPresence) {
		t.Errorf("Verify: %v", err)
	}
	if err := VerifyWithPolicy(c, []byte("d"), sig, SKPolicy{NoTouchRequired: true}); err != nil {
		t.Errorf("VerifyWithPolicy: %v", err)
	}
	if c.Type() != CertSKEd25519 {
		t.Errorf("type %s", c.Type())
	}
	if err := c.VerifyWithPolicy([]byte("d"), sig, SKPolicy{}); !errors.Is(err, ErrUserPresence) {
		t.Errorf("Certificate.VerifyWithPolicy: %v", err)
	}
	// sk certificates of both types parse back.
	for _, typ := range []string{KeySKEd25519, KeySKECDSAP256} {
		c := &Certificate{Key: signers[typ].PublicKey(), CertType: UserCert, ValidPrincipals: []string{"a"}, ValidBefore: CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signers[KeyEd25519], ""); err != nil {
			t.Fatal(err)
		}
		k, err := ParsePublicKey(c.Marshal())
		if err != nil {
			t.Fatalf("%s cert: %v", typ, err)
		}
		if k.Type() != certTypeOfKeyType[typ] || k.(*Certificate).Key.(SKPublicKey).Application() != "ssh:" {
			t.Errorf("%s cert parsed as %s", typ, k.Type())
		}
	}
}
