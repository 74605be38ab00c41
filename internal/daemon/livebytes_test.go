package daemon

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// TestBytesCountedWhileConnected: ferry_bytes_total was added when a
// connection closed, so a transfer of hours showed no traffic while it
// ran and one spike at its end. An authenticated connection's bytes are
// in the counter at every scrape while it is open.
func TestBytesCountedWhileConnected(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "lou", "pw-lou", 0)
	metricsAddr := freeLoopbackAddr(t)
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.Metrics.Listen = metricsAddr })
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "lou", Auth: []ssh.AuthMethod{ssh.Password("pw-lou")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	f, err := sc.Create("up")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("x"), 2<<20)); err != nil {
		t.Fatal(err)
	}
	inBytes := func(body string) float64 {
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, `ferry_bytes_total{direction="in"} `); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
		return 0
	}
	body := scrapeMetrics(metricsAddr, func(body string) bool { return inBytes(body) >= 2<<20 })
	if got := inBytes(body); got < 2<<20 {
		t.Fatalf("ferry_bytes_total{direction=\"in\"} = %v with 2 MiB uploaded on an open connection", got)
	}
	f.Close()
}
