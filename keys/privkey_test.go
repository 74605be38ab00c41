package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

func TestParsePrivateKeyGoPEMFormats(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaPriv := testSigners(t)[KeyRSA].(*rsaSigner).priv
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, _ := x509.MarshalECPrivateKey(ecPriv)
	tests := []struct {
		name string
		data []byte
		typ  string
	}{
		{"pkcs8 ed25519", pkcs8(edPriv), KeyEd25519},
		{"pkcs8 ecdsa", pkcs8(ecPriv), KeyECDSAP384},
		{"pkcs8 rsa", pkcs8(rsaPriv), KeyRSA},
		{"pkcs1 rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaPriv)}), KeyRSA},
		{"sec1 ecdsa", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), KeyECDSAP384},
	}
	for _, tt := range tests {
		s, err := ParsePrivateKey(tt.data)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if s.PublicKey().Type() != tt.typ {
			t.Fatalf("%s: type %s", tt.name, s.PublicKey().Type())
		}
	}
}

// openSSHKey rebuilds an openssh-key-v1 file from parts, so tests can
// corrupt one field at a time.
type openSSHKey struct {
	cipher, kdf string
	n           uint32
	pub         []byte
	check1      uint32
	check2      uint32
	fields      []byte // type and private fields
	comment     string
	pad         []byte
}

func (k *openSSHKey) encode() []byte {
	priv := wire.AppendUint32(nil, k.check1)
	priv = wire.AppendUint32(priv, k.check2)
	priv = append(priv, k.fields...)
	priv = wire.AppendStringS(priv, k.comment)
	priv = append(priv, k.pad...)
	b := []byte(openSSHMagic)
	b = wire.AppendStringS(b, k.cipher)
	b = wire.AppendStringS(b, k.kdf)
	b = wire.AppendString(b, nil)
	b = wire.AppendUint32(b, k.n)
	b = wire.AppendString(b, k.pub)
	b = wire.AppendString(b, priv)
	return pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: b})
}

func TestParseOpenSSHPrivateKeyErrors(t *testing.T) {
	s := testSigners(t)[KeyEd25519].(*ed25519Signer)
	other := testSigners(t)[KeyECDSAP256]
	fields := wire.AppendStringS(nil, KeyEd25519)
	fields = wire.AppendString(fields, s.pub.key)
	fields = wire.AppendString(fields, s.priv)
	good := func() *openSSHKey {
		k := &openSSHKey{cipher: "none", kdf: "none", n: 1, pub: s.pub.Marshal(), check1: 7, check2: 7, fields: fields, comment: "c"}
		for i := byte(1); (8+len(fields)+4+1+len(k.pad))%openSSHBlockSize != 0; i++ {
			k.pad = append(k.pad, i)
		}
		return k
	}
	if _, err := ParsePrivateKey(good().encode()); err != nil {
		t.Fatalf("good key: %v", err)
	}
	wrongSeed := append([]byte(nil), fields...)
	wrongSeed[len(wrongSeed)-64] ^= 1
	tests := []struct {
		name string
		mod  func(k *openSSHKey)
		err  string
	}{
		{"encrypted", func(k *openSSHKey) { k.cipher, k.kdf = "aes256-ctr", "bcrypt" }, ErrEncryptedKey.Error()},
		{"two keys", func(k *openSSHKey) { k.n = 2 }, "keys: openssh-key-v1 file holds 2 keys, want 1"},
		{"check bytes", func(k *openSSHKey) { k.check2 = 8 }, "keys: openssh-key-v1 check bytes differ (corrupt or wrongly decrypted key)"},
		{"bad padding", func(k *openSSHKey) { k.pad[0] = 9 }, "keys: bad openssh-key-v1 padding"},
		{"unpadded", func(k *openSSHKey) { k.pad = append(k.pad, 0) }, "keys: openssh-key-v1 private section not padded"},
		{"public mismatch", func(k *openSSHKey) { k.pub = other.PublicKey().Marshal() }, "keys: openssh-key-v1 public key does not match private key"},
		{"private mismatch", func(k *openSSHKey) { k.fields = wrongSeed }, "keys: ssh-ed25519 private key does not match its public key"},
	}
	for _, tt := range tests {
		k := good()
		tt.mod(k)
		_, err := ParsePrivateKey(k.encode())
		if err == nil || err.Error() != tt.err {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		}
	}
	// sk keys need an authenticator.
	skFields := wire.AppendStringS(nil, KeySKEd25519)
	k := good()
	k.fields = skFields
	k.pad = nil
	for i := byte(1); (8+len(skFields)+4+1+len(k.pad))%openSSHBlockSize != 0; i++ {
		k.pad = append(k.pad, i)
	}
	if _, err := ParsePrivateKey(k.encode()); err == nil || !strings.Contains(err.Error(), "FIDO authenticator") {
		t.Errorf("sk key: %v", err)
	}
	for _, tt := range []struct{ name, data, err string }{
		{"not pem", "ssh-ed25519 AAAA", "keys: no PEM private key found"},
		{"encrypted pem", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n", ErrEncryptedKey.Error()},
		{"encrypted pkcs8", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", ErrEncryptedKey.Error()},
		{"unknown block", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", `keys: no private key among PEM blocks "CERTIFICATE"`},
	} {
		if _, err := ParsePrivateKey([]byte(tt.data)); err == nil || err.Error() != tt.err {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		}
	}
	if _, err := ParsePrivateKey(bytes.Repeat([]byte("A"), MaxPrivateKeyFile+1)); err == nil {
		t.Error("oversized file accepted")
	}
}

func TestMarshalPrivateKeyStable(t *testing.T) {
	for _, f := range []string{"id_ed25519", "id_rsa", "id_ecdsa521", "id_dsa"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParsePrivateKey(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := MarshalPrivateKey(s, "test")
		if err != nil {
			t.Fatal(err)
		}
		_, comment, err := parseOpenSSHPrivateKey(mustPEM(t, out))
		if err != nil || comment != "test" {
			t.Fatalf("%s: %q %v", f, comment, err)
		}
		// Except for the random check bytes, our encoding of the private
		// section is ssh-keygen's.
		_, origComment, _ := parseOpenSSHPrivateKey(mustPEM(t, data))
		again, _ := MarshalPrivateKey(s, origComment)
		a, b := mustPEM(t, again), mustPEM(t, data)
		if len(a) != len(b) {
			t.Fatalf("%s: %d bytes, ssh-keygen wrote %d", f, len(a), len(b))
		}
		diff := 0
		for i := range a {
			if a[i] != b[i] {
				diff++
			}
		}
		if diff > 8 {
			t.Errorf("%s: %d bytes differ from ssh-keygen's file, want only the check bytes", f, diff)
		}
	}
}

func mustPEM(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM")
	}
	return b.Bytes
}

func TestNewSignerFromKeyAndCryptoKeys(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewSignerFromKey(&edPriv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.PublicKey().(CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey), edPriv.Public().(ed25519.PublicKey)) {
		t.Error("ed25519 CryptoPublicKey")
	}
	rs := testSigners(t)[KeyRSA]
	if rs.PublicKey().(CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Error("rsa CryptoPublicKey")
	}
	ec := testSigners(t)[KeyECDSAP521].PublicKey().(*ECDSAPublicKey)
	if ec.Curve() != "nistp521" || ec.CryptoPublicKey().(*ecdsa.PublicKey).Curve != elliptic.P521() {
		t.Error("ecdsa curve")
	}
	if _, err := NewSignerFromKey("nope"); err == nil {
		t.Error("string accepted as a key")
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := NewSignerFromKey(p224); err == nil {
		t.Error("P-224 accepted")
	}
	if _, err := NewCertSigner(&Certificate{Key: ec}, rs); err == nil {
		t.Error("cert signer with mismatched key")
	}
}

func TestKeyOptionsAccessors(t *testing.T) {
	a, err := ParseAuthorizedKey([]byte("restrict,pty,no-touch-required ssh-ed25519 " + pubB64(t, "id_ed25519.pub")))
	if err != nil {
		t.Fatal(err)
	}
	o := &a.Options
	if !o.PTYAllowed() || o.PortForwardingAllowed() || o.AgentForwardingAllowed() || o.X11ForwardingAllowed() || o.UserRCAllowed() {
		t.Errorf("effective permissions wrong: %+v", o)
	}
	if o.SKPolicy() != (SKPolicy{NoTouchRequired: true}) {
		t.Error("SKPolicy")
	}
}

// TestParsePrivateKeyECParameters reads the file openssl ecparam -genkey
// writes, an "EC PARAMETERS" block before the key, which sshd and
// ssh-keygen -y load.
func TestParsePrivateKeyECParameters(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	params := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // OID prime256v1
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: params})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	s, err := ParsePrivateKey(data)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	want, _ := NewECDSAPublicKey(&priv.PublicKey)
	if !Equal(s.PublicKey(), want) {
		t.Fatal("wrong key")
	}
}

// A public key given where a private key belongs is named as such, not
// "no PEM private key found".
func TestParsePrivateKeyPublicKeyFile(t *testing.T) {
	for _, name := range seedPubFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParsePrivateKey(data); !errors.Is(err, ErrPublicKeyFile) {
			t.Errorf("%s: err = %v, want ErrPublicKeyFile", name, err)
		}
		if _, err := ParsePrivateKey([]byte(rfc4716Block(readPub(t, name), "Comment: x"))); !errors.Is(err, ErrPublicKeyFile) {
			t.Errorf("%s as RFC 4716: err = %v, want ErrPublicKeyFile", name, err)
		}
	}
	if _, err := ParsePrivateKey([]byte("not a key\n")); err == nil || errors.Is(err, ErrPublicKeyFile) {
		t.Errorf("garbage: err = %v", err)
	}
}
