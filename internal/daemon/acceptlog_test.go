package daemon

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// emfileListener fails its accepts with EMFILE, as a listener does once
// the process has used up RLIMIT_NOFILE, then reports itself closed.
type emfileListener struct {
	net.Listener
	fails int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails == 0 {
		return nil, net.ErrClosed
	}
	l.fails--
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// TestAcceptOutOfDescriptorsLogged: a listener out of descriptors left
// every client hanging in the backlog with nothing above DEBUG in the
// log; the first failure is now a WARN, and a streak of them one line.
func TestAcceptOutOfDescriptorsLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logs testenv.LockedBuffer
	d := &Daemon{log: slog.New(slog.NewTextHandler(&logs, nil))}
	d.acceptLoop(&GuardedListener{Listener: &emfileListener{Listener: ln, fails: 4}})
	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"cannot accept connections: out of file descriptors"); n != 1 ||
		!strings.Contains(out, "too many open files") {
		t.Errorf("4 failed accepts logged %d WARN lines (want 1, with the error):\n%s", n, out)
	}
}

// TestAcceptFailuresRateLimited: while accepts keep failing, a WARN at
// most once an interval with the count; the next accept says so once.
func TestAcceptFailuresRateLimited(t *testing.T) {
	var logs testenv.LockedBuffer
	a := acceptFailures{log: slog.New(slog.NewTextHandler(&logs, nil)), addr: "127.0.0.1:2222"}
	emfile := os.NewSyscallError("accept4", syscall.EMFILE)
	t0 := time.Now()
	for i := range 100 {
		a.failed(emfile, t0.Add(time.Duration(i)*time.Second)) // 100 s of failures
	}
	a.failed(errors.New("proxyproto: invalid header"), t0.Add(100*time.Second))
	a.succeeded()
	a.succeeded()
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 2 || !strings.Contains(out, "failed_accepts=61") {
		t.Errorf("100 s of failed accepts: %d WARN lines, want 2 (at 0 s and 60 s, the second counting 61):\n%s", n, out)
	}
	if n := strings.Count(out, "accepting connections again"); n != 1 || !strings.Contains(out, "failed_accepts=100") {
		t.Errorf("recovery logged %d times, want once with failed_accepts=100:\n%s", n, out)
	}
	if strings.Contains(out, "proxyproto") {
		t.Errorf("a client's bad PROXY header logged above DEBUG:\n%s", out)
	}
}
