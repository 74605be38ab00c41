package keys

import (
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// certOptions encodes (name, data) pairs as a critical options or
// extensions field, data taken verbatim.
func certOptions(pairs ...string) []byte {
	var b []byte
	for i := 0; i < len(pairs); i += 2 {
		b = wire.AppendStringS(b, pairs[i])
		b = wire.AppendStringS(b, pairs[i+1])
	}
	return b
}

// optString is the data of an option holding one string.
func optString(s string) string { return string(wire.AppendStringS(nil, s)) }

// rawUserCert signs, with ca, a user certificate for alice whose options
// fields are taken verbatim, so tests can build what SignCert would not.
func rawUserCert(t *testing.T, ca Signer, k PublicKey, critical, extensions []byte) []byte {
	t.Helper()
	b := wire.AppendStringS(nil, certTypeOf(k))
	b = wire.AppendString(b, make([]byte, 32))
	b = k.(fieldAppender).appendFields(b)
	b = wire.AppendUint64(b, 1)
	b = wire.AppendUint32(b, UserCert)
	b = wire.AppendStringS(b, "id")
	b = wire.AppendString(b, wire.AppendStringS(nil, "alice"))
	b = wire.AppendUint64(b, 0)
	b = wire.AppendUint64(b, CertTimeInfinity)
	b = wire.AppendString(b, critical)
	b = wire.AppendString(b, extensions)
	b = wire.AppendString(b, nil)
	b = wire.AppendString(b, ca.PublicKey().Marshal())
	sig, err := ca.Sign(rand.Reader, b, "")
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendString(b, sig.Marshal())
}

// TestCertificateOptionData checks the data of known critical options and
// extensions as sshd 9.2's cert_option_list does (each case was run
// against sshd with TrustedUserCAKeys): a force-command or source-address
// holds exactly one string, flags hold nothing, and an unknown extension
// may hold anything.
func TestCertificateOptionData(t *testing.T) {
	signers := testSigners(t)
	ca, user := signers[KeyEd25519], signers[KeyECDSAP256].PublicKey()
	pty := certOptions(ExtPermitPTY, "")
	tests := []struct {
		name       string
		critical   []byte
		extensions []byte
		ok         bool   // sshd accepts the certificate
		command    string // its forced command
	}{
		{"force-command", certOptions(OptForceCommand, optString("internal-sftp")), pty, true, "internal-sftp"},
		// x/crypto/ssh writes an empty force-command as empty data;
		// sshd refuses it ("Unable to parse"). It used to mean no
		// forced command at all.
		{"force-command empty data", certOptions(OptForceCommand, ""), pty, false, ""},
		// sshd logs in and runs the empty command, which does nothing;
		// ferry cannot force an empty command and refuses.
		{"force-command empty string", certOptions(OptForceCommand, optString("")), pty, false, ""},
		{"force-command trailing data", certOptions(OptForceCommand, optString("ls")+"x"), pty, false, ""},
		{"force-command NUL", certOptions(OptForceCommand, optString("ls\x00rm")), pty, false, ""},
		{"source-address", certOptions(OptSourceAddress, optString("10.0.0.0/8,127.0.0.1/32")), pty, true, ""},
		{"source-address empty data", certOptions(OptSourceAddress, ""), pty, false, ""},
		{"source-address trailing data", certOptions(OptSourceAddress, optString("127.0.0.1")+"\x00"), pty, false, ""},
		{"verify-required", certOptions(OptVerifyRequired, ""), pty, true, ""},
		{"verify-required with data", certOptions(OptVerifyRequired, optString("")), pty, false, ""},
		{"permit-pty with data", nil, certOptions(ExtPermitPTY, optString("x")), false, ""},
		{"no-touch-required with data", nil, certOptions(ExtNoTouchRequired, "\x00"), false, ""},
		{"unknown extension with binary data", nil, certOptions(ExtPermitPTY, "", "zz@example.com", "\x01\x02\x03"), true, ""},
		{"unknown extension with string data", nil, certOptions(ExtPermitPTY, "", "login@github.com", optString("alice")), true, ""},
		{"unknown critical option", certOptions("zz@example.com", ""), pty, false, ""},
	}
	trusted := func(PublicKey) bool { return true }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob := rawUserCert(t, ca, user, tt.critical, tt.extensions)
			k, err := ParsePublicKey(blob)
			if err != nil {
				if tt.ok {
					t.Fatalf("parse: %v", err)
				}
				return
			}
			cmd, err := k.(*Certificate).CheckUserCertificate("alice", time.Now(), net.ParseIP("127.0.0.1"), trusted)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckUserCertificate: %v, want ok=%v", err, tt.ok)
			}
			if cmd != tt.command {
				t.Errorf("force-command %q, want %q", cmd, tt.command)
			}
		})
	}
}

// TestCertificateOptionDataBuilt checks that a certificate built in code
// is judged by the bytes SignCert writes.
func TestCertificateOptionDataBuilt(t *testing.T) {
	signers := testSigners(t)
	c := &Certificate{Key: signers[KeyECDSAP256].PublicKey(), CertType: UserCert, ValidPrincipals: []string{"alice"},
		ValidBefore: CertTimeInfinity, CriticalOptions: map[string]string{OptForceCommand: ""}}
	if err := c.SignCert(rand.Reader, signers[KeyEd25519], ""); err != nil {
		t.Fatal(err)
	}
	trusted := func(PublicKey) bool { return true }
	if cmd, err := c.CheckUserCertificate("alice", time.Now(), nil, trusted); err == nil {
		t.Fatalf("empty force-command accepted (command %q)", cmd)
	}
	c.CriticalOptions[OptForceCommand] = "true"
	if err := c.SignCert(rand.Reader, signers[KeyEd25519], ""); err != nil {
		t.Fatal(err)
	}
	if cmd, err := c.CheckUserCertificate("alice", time.Now(), nil, trusted); err != nil || cmd != "true" {
		t.Fatalf("force-command: %q, %v", cmd, err)
	}
}

// TestCertificateSecurityKeyCA checks that a CA on a FIDO key made with
// no-touch-required (whose signatures lack the user-presence flag) can
// sign certificates, as sshd accepts them.
func TestCertificateSecurityKeyCA(t *testing.T) {
	for _, typ := range []string{KeySKEd25519, KeySKECDSAP256} {
		ca := newTestSKSigner(t, typ)
		ca.flags = 0
		c := &Certificate{Key: testSigners(t)[KeyEd25519].PublicKey(), CertType: UserCert, ValidPrincipals: []string{"alice"},
			ValidBefore: CertTimeInfinity}
		if err := c.SignCert(rand.Reader, ca, ""); err != nil {
			t.Fatal(err)
		}
		k, err := ParsePublicKey(c.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		trusted := func(PublicKey) bool { return true }
		if _, err := k.(*Certificate).CheckUserCertificate("alice", time.Now(), nil, trusted); err != nil {
			t.Errorf("%s CA without user presence: %v", typ, err)
		}
	}
}
