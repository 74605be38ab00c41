package daemon

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestRequiredRSASize: a 1024-bit RSA key is refused by default and logs
// in once required_rsa_size allows it, for customers with old keys.
func TestRequiredRSASize(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size   int // 0: the default
		wantOK bool
	}{{0, false}, {1024, true}} {
		dir := t.TempDir()
		st := openSQLiteStore(t, dir)
		addAccount(t, st, "old", "pw", 0, authorizedLine(signer))
		addr := startDaemonWith(t, dir, "", func(c *Config) {
			if tc.size != 0 {
				c.RequiredRSASize = tc.size
			}
		})
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "old", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if c != nil {
			c.Close()
		}
		if got := err == nil; got != tc.wantOK {
			t.Errorf("required_rsa_size %d: 1024-bit RSA login: %v, want success %v", tc.size, err, tc.wantOK)
		}
	}
}
