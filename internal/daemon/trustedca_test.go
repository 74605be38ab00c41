package daemon

import (
	"os"
	"path/filepath"
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
