package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/store"
)

// TestCertAuthorityPrincipals logs in with user certificates through an
// account's cert-authority lines, with and without principals=, and checks
// sshd's rule (auth2-pubkey.c match_principals_option): with principals=
// the certificate must list one of them and the login name is not enough;
// without it the certificate must list the login name.
func TestCertAuthorityPrincipals(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newSigner := func() ssh.Signer {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	caLine := func(ca ssh.Signer) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))) }
	restrictedCA, plainCA := newSigner(), newSigner()
	addAccount(t, st, "alice", "pw-alice", 0, `cert-authority,principals="deploy,ops" `+caLine(restrictedCA))
	addAccount(t, st, "bob", "pw-bob", 0, "cert-authority "+caLine(plainCA))
	// Refused logins from 127.0.0.1 must not earn it sshd's penalty.
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.PerSourcePenalties.Enabled = false })

	certSigner := func(ca ssh.Signer, principals ...string) ssh.Signer {
		user := newSigner()
		c := &ssh.Certificate{
			Key: user.PublicKey(), CertType: ssh.UserCert, KeyId: "test", ValidPrincipals: principals,
			ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
			Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
		}
		if err := c.SignCert(rand.Reader, ca); err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewCertSigner(c, user)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		user   string
		signer ssh.Signer
		ok     bool
	}{
		{"principals= listed principal", "alice", certSigner(restrictedCA, "deploy"), true},
		{"principals= second listed principal", "alice", certSigner(restrictedCA, "x", "ops"), true},
		{"principals= login name only", "alice", certSigner(restrictedCA, "alice"), false},
		{"principals= unlisted principal", "alice", certSigner(restrictedCA, "root"), false},
		{"no principals= login name", "bob", certSigner(plainCA, "bob"), true},
		{"no principals= other name", "bob", certSigner(plainCA, "deploy"), false},
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
