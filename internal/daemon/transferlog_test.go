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

// TestTransfersWithoutBytesCounted: an upload that moved no bytes (an
// empty file, or one whose every write the quota refused) is still an
// upload in ferry_transfers_total, with its result; they were counted
// only when bytes moved, so quota-refused uploads never showed as failed
// transfers. A file opened for reading and closed unread is no transfer.
func TestTransfersWithoutBytesCounted(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "iris", "pw-iris", 1<<10)
	metricsAddr := freeLoopbackAddr(t)
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.Metrics.Listen = metricsAddr })
	sc := sftpClient(t, addr, "iris", ssh.Password("pw-iris"))

	if err := upload(sc, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := upload(sc, "big", make([]byte, 4<<10)); err == nil {
		t.Fatal("a 4 KiB upload fit a 1 KiB quota")
	}
	f, err := sc.Open("empty")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	want := []string{
		`ferry_transfers_total{direction="upload",protocol="sftp",result="ok"} 1`,
		`ferry_transfers_total{direction="upload",protocol="sftp",result="failed"} 1`,
	}
	body := scrapeMetrics(metricsAddr, func(body string) bool {
		return strings.Contains(body, want[0]) && strings.Contains(body, want[1])
	})
	for _, w := range want {
		if !strings.Contains(body, w+"\n") {
			t.Errorf("no %s:\n%s", w, grepLines(body, "ferry_transfer"))
		}
	}
	if strings.Contains(body, `direction="download"`) {
		t.Errorf("a file opened and closed unread counted as a download:\n%s", grepLines(body, "ferry_transfer"))
	}
}

// TestSessionLinesNameTheConnection: an account's SFTP lines (here the
// quota's refusal) name the connection they came from, as the transfer
// and login lines do; with one account on several connections at once
// (FileZilla two, rclone four) they named only the user.
func TestSessionLinesNameTheConnection(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "jules", "pw-jules", 1<<10)
	addr, logs := startDaemonLogs(t, dir, "", nil)
	sc := sftpClient(t, addr, "jules", ssh.Password("pw-jules"))
	if err := upload(sc, "big", make([]byte, 4<<10)); err == nil {
		t.Fatal("a 4 KiB upload fit a 1 KiB quota")
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "quota refused a write") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no quota refusal logged:\n%s", logs.String())
	}
	if !strings.Contains(line, "remote=127.0.0.1:") {
		t.Errorf("the refusal does not name the connection: %s", line)
	}
}
