package daemon

import (
	"os"
	"path/filepath"
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
	for _, tc := range []struct {
		name   string
		user   string
		signer ssh.Signer
		ok     bool
	}{
		{"trusted CA, login name", "carol", certSigner(ca, "carol"), true},
		{"trusted CA, other name", "carol", certSigner(ca, "dave"), false},
		{"trusted CA, no account", "dave", certSigner(ca, "dave"), false},
		{"untrusted CA", "carol", certSigner(newTestSigner(t), "carol"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: tc.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(tc.signer)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("login as %s: err = %v, want success %v", tc.user, err, tc.ok)
			}
		})
	}
}
