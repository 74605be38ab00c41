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

// TestPublicKeyLoginCountedOnce: a public key login is one success in
// ferry_auth_total, though the client queries the key (PK_OK) before it
// signs and the authenticator answers both; and its key exchange is
// observed in ferry_kex_duration_seconds once the connection closes.
func TestPublicKeyLoginCountedOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromKey(priv)
	addAccount(t, st, "ida", "pw-ida", 0, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))))
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.Metrics.Listen = metricsAddr })

	// x/crypto's client queries each key before signing, as OpenSSH does.
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "ida", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); strings.Contains(body, `ferry_auth_total{method="publickey"`) &&
			strings.Contains(body, "ferry_kex_duration_seconds_count 1\n") {
			break
		}
	}
	if !strings.Contains(body, "ferry_kex_duration_seconds_count 1\n") {
		t.Errorf("the connection's key exchange was not observed:\n%s", grepLines(body, "ferry_kex_duration_seconds_count"))
	}
	if !strings.Contains(body, `ferry_auth_total{method="publickey",result="success"} 1`+"\n") {
		t.Errorf("auth metrics after one public key login:\n%s", grepLines(body, "ferry_auth_total"))
	}
}
