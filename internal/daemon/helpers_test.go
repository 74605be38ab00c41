package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/store"
)

// openSQLiteStore opens dir's ferry.db, the database startDaemon(t, dir,
// "") serves, and closes it when the test ends.
func openSQLiteStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestSigner is a fresh ed25519 key.
func newTestSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authorizedLine is signer's public key as an authorized_keys line.
func authorizedLine(signer ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// userCertSigner signs a fresh key's user certificate, valid for an hour
// either side of now, with ca and returns a signer that presents it.
func userCertSigner(t *testing.T, ca ssh.Signer, principals ...string) ssh.Signer {
	t.Helper()
	user := newTestSigner(t)
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

// freeLoopbackAddr is a 127.0.0.1 port free a moment ago, for a listener
// the daemon opens itself (metrics).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeMetrics fetches the daemon's /metrics until done accepts the body
// (metrics of a closing connection land a moment after the client
// returns), for at most ten seconds, and returns the last body.
func scrapeMetrics(addr string, done func(body string) bool) string {
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); done(body) {
			break
		}
	}
	return body
}

// certLogin is one login attempt of checkCertLogins.
type certLogin struct {
	name   string
	user   string
	signer ssh.Signer
	ok     bool
}

// checkCertLogins logs in to addr with each case's signer and checks it
// succeeds exactly when it should.
func checkCertLogins(t *testing.T, addr string, cases []certLogin) {
	t.Helper()
	for _, tc := range cases {
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
