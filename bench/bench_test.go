package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the whole harness in its smoke mode against real sshd and ferry. It is opt-in
// (FERRY_BENCH=1) so `make test` never runs benchmarks; it needs root, sshd and the sftp client.
func TestQuick(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the benchmark harness")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: tmpfs mount, benchmark user, cgroups")
	}
	for _, tool := range []string{"/usr/sbin/sshd", "sftp", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ferry := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", ferry, "github.com/ferry-sftp/ferry/cmd/ferry").CombinedOutput(); err != nil {
		t.Fatalf("building ferry: %v: %s", err, out)
	}
	o := &Options{
		Ferry: ferry, SSHD: "/usr/sbin/sshd", SFTP: "sftp", Runs: 1,
		FileSize: 4 << 20, Ciphers: DefaultCiphers(),
		Logins: 16, LoginClients: 8, IdleSessions: 10,
		RelaySize: 2 << 20, RelayDelay: 25 * time.Millisecond,
		Logf: t.Logf,
	}
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// transfer: 3 ciphers x get/put x (server CPU, MB/s, client CPU);
	// logins: 2 side by side + 2 ferry only; idle: 2; relay: 2.
	if want := 3*2*3 + 2 + 2 + 2 + 2; len(r.Rows) != want {
		t.Fatalf("%d rows, want %d", len(r.Rows), want)
	}
	for _, row := range r.Rows {
		ferryOnly := strings.HasSuffix(row.Workload, "(ferry only)")
		wantSSH := 1
		if ferryOnly {
			wantSSH = 0
		}
		if len(row.FerryAll) != 1 || len(row.SSHAll) != wantSSH {
			t.Errorf("%s %s: samples %v / %v, want 1 / %d", row.Workload, row.Metric, row.FerryAll, row.SSHAll, wantSSH)
		}
		if !strings.HasPrefix(row.Metric, "memory") && (row.Ferry <= 0 || (!ferryOnly && row.OpenSSH <= 0)) {
			t.Errorf("%s %s: ferry %v, OpenSSH %v: want both positive", row.Workload, row.Metric, row.Ferry, row.OpenSSH)
		}
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestResultsAdd(t *testing.T) {
	var r Results
	r.add("w", "m", "u", map[string][]float64{"ferry": {1, 2, 9}, "openssh": {8, 4, 4}}, true)
	got := r.Rows[0]
	if got.Ferry != 2 || got.OpenSSH != 4 || got.Ratio != 0.5 || !got.Lower {
		t.Errorf("row = %+v, want ferry 2, OpenSSH 4, ratio 0.5, lower", got)
	}
}

// TestRelay checks that the relay delivers every byte in order in both directions and passes the
// half-close on.
func TestRelay(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Echo server: returns what it reads, then closes its side.
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}()
	r, err := StartRelay(l.Addr().String(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	want := make([]byte, 5*relayChunk+12345)
	rand.Read(want)
	go func() {
		c.Write(want)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("relay returned %d bytes, differing from the %d sent", len(got), len(want))
	}
}
