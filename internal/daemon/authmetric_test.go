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

// TestKeyboardInteractiveLoginCountedAsSuch: a password typed at a
// keyboard-interactive prompt (OpenSSH's sftp with a password, PuTTY) is
// counted under method="keyboard-interactive", as its log lines name it;
// it was counted as "password", so a server with password_authentication
// off still showed password attempts and none by keyboard-interactive.
func TestKeyboardInteractiveLoginCountedAsSuch(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "kim", "pw-kim", 0)
	metricsAddr := freeLoopbackAddr(t)
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.Metrics.Listen = metricsAddr })

	login := func(answer, password string) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "kim", Auth: []ssh.AuthMethod{
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				return []string{answer}, nil
			}),
			ssh.Password(password),
		}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := login("wrong", "pw-kim"); err != nil {
		t.Fatal(err)
	}
	if err := login("pw-kim", "unused"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ferry_auth_total{method="keyboard-interactive",result="failure"} 1`,
		`ferry_auth_total{method="keyboard-interactive",result="success"} 1`,
		`ferry_auth_total{method="password",result="success"} 1`,
	}
	body := scrapeMetrics(metricsAddr, func(body string) bool { return strings.Contains(body, want[1]) })
	for _, w := range want {
		if !strings.Contains(body, w+"\n") {
			t.Errorf("no %s:\n%s", w, grepLines(body, "ferry_auth_total"))
		}
	}
	if strings.Contains(body, `ferry_auth_total{method="password",result="failure"}`) {
		t.Errorf("a wrong keyboard-interactive answer counted as a password failure:\n%s", grepLines(body, "ferry_auth_total"))
	}
}
