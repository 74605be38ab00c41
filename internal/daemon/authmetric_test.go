package daemon

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestPublicKeyLoginCountedOnce: a public key login is one success in
// ferry_auth_total, though the client queries the key (PK_OK) before it
// signs and the authenticator answers both; and its key exchange is
// observed in ferry_kex_duration_seconds once the connection closes.
func TestPublicKeyLoginCountedOnce(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	signer := newTestSigner(t)
	addAccount(t, st, "ida", "pw-ida", 0, authorizedLine(signer))
	metricsAddr := freeLoopbackAddr(t)
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.Metrics.Listen = metricsAddr })

	// x/crypto's client queries each key before signing, as OpenSSH does.
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "ida", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	const kexObserved = "ferry_kex_duration_seconds_count 1\n"
	body := scrapeMetrics(metricsAddr, func(body string) bool {
		return strings.Contains(body, `ferry_auth_total{method="publickey"`) && strings.Contains(body, kexObserved)
	})
	if !strings.Contains(body, `ferry_auth_total{method="publickey",result="success"} 1`+"\n") {
		t.Errorf("auth metrics after one public key login:\n%s", grepLines(body, "ferry_auth_total"))
	}
	if !strings.Contains(body, kexObserved) {
		t.Errorf("the connection's key exchange was not observed:\n%s", grepLines(body, "ferry_kex_duration_seconds_count"))
	}
}
