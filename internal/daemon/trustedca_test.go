package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
