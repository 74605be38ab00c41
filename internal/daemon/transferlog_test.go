package daemon

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestSCPTransfersCountedAsSCP: an scp upload is counted with
// protocol="scp"; execHandler passed SCP the SFTP transfer log, so it
// was counted (and logged) as protocol="sftp".
func TestSCPTransfersCountedAsSCP(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "hugo", "pw-hugo", 0)
	metricsAddr := freeLoopbackAddr(t)
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.Metrics.Listen = metricsAddr })

	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "hugo", Auth: []ssh.AuthMethod{ssh.Password("pw-hugo")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	sess.Stdin = strings.NewReader("C0644 5 f\nhello\x00")
	if out, err := sess.Output("scp -t ."); err != nil || string(out) != "\x00\x00\x00" {
		t.Fatalf("scp -t: %q, %v", out, err)
	}

	body := scrapeMetrics(metricsAddr, func(body string) bool { return strings.Contains(body, "ferry_transfers_total{") })
	if !strings.Contains(body, `ferry_transfers_total{direction="upload",protocol="scp",result="ok"} 1`) ||
		strings.Contains(body, `protocol="sftp"`) {
		t.Errorf("transfer metrics after one scp upload:\n%s", grepLines(body, "ferry_transfer"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
