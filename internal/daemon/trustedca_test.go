package daemon

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestTrustedUserCAKeysLogin: a certificate from a trusted_user_ca_keys CA
// logs in to the account it names, without any authorized_keys line (sshd
// TrustedUserCAKeys); one naming another user, or a user with no account,
// does not.
func TestTrustedUserCAKeysLogin(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "carol", "pw-carol", 0) // no keys at all
	ca := newTestSigner(t)
	caFile := filepath.Join(dir, "user_ca.pub")
	if err := os.WriteFile(caFile, ssh.MarshalAuthorizedKey(ca.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startDaemonWith(t, dir, "", func(c *Config) {
		c.TrustedUserCAKeys = caFile
		c.PerSourcePenalties.Enabled = false
	})
	certSigner := func(signer ssh.Signer, principals ...string) ssh.Signer {
		return userCertSigner(t, signer, principals...)
	}
	checkCertLogins(t, addr, []certLogin{
		{"trusted CA, login name", "carol", certSigner(ca, "carol"), true},
		{"trusted CA, other name", "carol", certSigner(ca, "dave"), false},
		{"trusted CA, no account", "dave", certSigner(ca, "dave"), false},
		{"untrusted CA", "carol", certSigner(newTestSigner(t), "carol"), false},
	})
}

// TestTrustedUserCAKeysRefusesOptions: sshd cannot read a
// TrustedUserCAKeys line with options, so none of them ever restricted a CA
// there; ferry used to take the key and drop the options, trusting a
// from="10.9.9.9" CA from everywhere and an expired one forever. Such a
// file, or one naming a certificate as CA, now fails validation (serve
// --check, start and reload) with its line number.
func TestTrustedUserCAKeysRefusesOptions(t *testing.T) {
	dir := t.TempDir()
	ca := authorizedLine(newTestSigner(t))
	cert := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(userCertSigner(t, newTestSigner(t), "carol").PublicKey())))
	for _, tc := range []struct{ name, line, want string }{
		{"from", `from="10.9.9.9" ` + ca, "line 2: options are not allowed"},
		{"expiry-time", `expiry-time="20200101" ` + ca, "line 2: options are not allowed"},
		{"cert-authority principals", `cert-authority,principals="ops" ` + ca, "line 2: options are not allowed"},
		{"restrict", `restrict ` + ca, "line 2: options are not allowed"},
		{"certificate", cert, "line 2: ssh-ed25519-cert-v01@openssh.com is a certificate"},
		{"garbage", "not a key", "line 2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name+".pub")
			if err := os.WriteFile(f, []byte("# CAs\n"+tc.line+"\n"+ca+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c := Default()
			c.TrustedUserCAKeys = f
			err := c.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != "trusted_user_ca_keys" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want a trusted_user_ca_keys error containing %q", err, tc.want)
			}
		})
	}
	good := filepath.Join(dir, "good.pub")
	if err := os.WriteFile(good, []byte("# CAs\r\n\r\n  "+ca+" comment with spaces\r\n"+ca+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.TrustedUserCAKeys = good
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() of a plain CA file = %v", err)
	}
}

// TestRevokedKeys: a key in revoked_keys logs in neither as a key nor as
// the key of a certificate, no certificate its CA signed logs in (through
// trusted_user_ca_keys or a cert-authority line), and a certificate listed
// there revokes its key (sshd RevokedKeys). Other keys are unaffected.
func TestRevokedKeys(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	revokedKey, goodKey, certListedKey := newTestSigner(t), newTestSigner(t), newTestSigner(t)
	lineCA, trustedCA, revokedLineCA := newTestSigner(t), newTestSigner(t), newTestSigner(t)
	addAccount(t, st, "alice", "pw-alice", 0, authorizedLine(revokedKey), authorizedLine(goodKey), authorizedLine(certListedKey),
		"cert-authority "+authorizedLine(lineCA), "cert-authority "+authorizedLine(revokedLineCA))
	certOf := func(ca, key ssh.Signer) ssh.Signer {
		c := &ssh.Certificate{
			Key: key.PublicKey(), CertType: ssh.UserCert, KeyId: "test", ValidPrincipals: []string{"alice"},
			ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
		}
		if err := c.SignCert(rand.Reader, ca); err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewCertSigner(c, key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	write := func(name string, lines ...string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	caFile := write("user_ca.pub", authorizedLine(trustedCA))
	listedCert := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(certOf(lineCA, certListedKey).PublicKey())))
	revokedFile := write("revoked.pub", "# revoked", authorizedLine(revokedKey), authorizedLine(trustedCA), authorizedLine(revokedLineCA), listedCert)
	addr := startDaemonWith(t, dir, "", func(c *Config) {
		c.TrustedUserCAKeys = caFile
		c.RevokedKeys = revokedFile
		c.PerSourcePenalties.Enabled = false
	})
	checkCertLogins(t, addr, []certLogin{
		{"good key", "alice", goodKey, true},
		{"revoked key", "alice", revokedKey, false},
		{"key revoked by listing its certificate", "alice", certListedKey, false},
		{"certificate of a revoked key", "alice", certOf(lineCA, revokedKey), false},
		{"certificate from revoked trusted CA", "alice", certOf(trustedCA, goodKey), false},
		{"certificate from revoked cert-authority CA", "alice", certOf(revokedLineCA, goodKey), false},
		{"certificate from cert-authority CA", "alice", certOf(lineCA, goodKey), true},
	})

	for _, tc := range []struct{ name, text, want string }{
		{"options", `from="10.0.0.0/8" ` + authorizedLine(revokedKey), "line 1: options are not allowed"},
		{"KRL", "SSHKRL\n\x00\x00\x00\x01", "key revocation list"},
		{"garbage", "not a key", "line 1:"},
	} {
		c := Default()
		c.RevokedKeys = write(tc.name, tc.text)
		var ce *ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Key != "revoked_keys" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want a revoked_keys error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestCASignatureAlgorithms: a CA that signs with SHA-1 (ssh-rsa) is
// refused by default, and ca_signature_algorithms = "+ssh-rsa" lets a
// deployment with such certificates opt back in, as sshd's
// CASignatureAlgorithms does; without the key there was no way to.
func TestCASignatureAlgorithms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCA, err := ssh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	sha1CA, err := ssh.NewSignerWithAlgorithms(rsaCA.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec string
		ok   bool
	}{{"", false}, {"+ssh-rsa", true}} {
		t.Run("ca_signature_algorithms="+tc.spec, func(t *testing.T) {
			dir := t.TempDir()
			st := openSQLiteStore(t, dir)
			addAccount(t, st, "carol", "pw-carol", 0)
			caFile := filepath.Join(dir, "user_ca.pub")
			if err := os.WriteFile(caFile, ssh.MarshalAuthorizedKey(rsaCA.PublicKey()), 0o644); err != nil {
				t.Fatal(err)
			}
			doc := ""
			if tc.spec != "" {
				doc = "ca_signature_algorithms = " + strconv.Quote(tc.spec) + "\n"
			}
			cfg, err := ParseConfig("t.toml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			addr := startDaemonWith(t, dir, "", func(c *Config) {
				c.CASignatureAlgorithms = cfg.CASignatureAlgorithms
				c.TrustedUserCAKeys = caFile
				c.PerSourcePenalties.Enabled = false
			})
			checkCertLogins(t, addr, []certLogin{
				{"SHA-1 CA signature", "carol", userCertSigner(t, sha1CA, "carol"), tc.ok},
				{"rsa-sha2-512 CA signature", "carol", userCertSigner(t, rsaCA, "carol"), true},
			})
		})
	}
	if _, err := ParseConfig("t.toml", []byte(`ca_signature_algorithms = "+ssh-rsa-cert-v01@openssh.com"`)); err == nil {
		t.Error("a certificate type was taken as a CA signature algorithm")
	}
}
