package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestTransferLogNamesClient: each transfer line says which client
// address moved the file, for SFTP and for legacy SCP, so an admin can
// answer "who uploaded this, from where" from that one line (the
// "connection closed" line comes only at logout, and a long session
// interleaves with others).
func TestTransferLogNamesClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	c, conn := s.dialSSH(t, "alice", "pw-alice")
	if err := putFile(c, "up.bin", []byte("twelve bytes")); err != nil {
		t.Fatal(err)
	}
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	sess.Stdin = strings.NewReader("C0644 5 s.bin\nhello\x00")
	if out, err := sess.Output("scp -t ."); err != nil || string(out) != "\x00\x00\x00" {
		t.Fatalf("scp -t: %q, %v", out, err)
	}
	client := regexp.QuoteMeta(conn.LocalAddr().String())
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`msg=transfer protocol=sftp user=alice remote=` + client + ` path=/up\.bin bytes_read=0 bytes_written=12 `),
		regexp.MustCompile(`msg=transfer protocol=scp user=alice remote=` + client + ` path=/s\.bin bytes_read=0 bytes_written=5 `),
	} {
		if !s.waitLog(want.MatchString) {
			t.Errorf("no log line matching %s:\n%s", want, s.stderr.String())
		}
	}
}

// TestRootWarning: started as root without run_as, ferry warns that file
// modes no longer protect anything (root passes every permission check,
// so an account could overwrite a file its owner made 0444); started
// otherwise it says nothing of the kind.
func TestRootWarning(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	warned := strings.Contains(s.stderr.String(), `level=WARN msg="running as root: file and directory modes do not stop accounts`)
	if root := os.Geteuid() == 0; warned != root {
		t.Errorf("running as root: %v; warning logged: %v\n%s", root, warned, s.stderr.String())
	}
}

// TestSessionRefusedLogged: a session refused after login (max_sessions
// reached, or the account disabled while its connection is open) is
// logged with the account, the address and the reason; the client was
// told on stderr and the server's log said nothing.
func TestSessionRefusedLogged(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice", "--max-sessions", "1")
	_, conn := s.dialSSH(t, "alice", "pw-alice") // holds the one session
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var stderr strings.Builder
	sess.Stderr = &stderr
	if err := sess.Run("scp -t ."); err == nil {
		t.Fatal("a second session past --max-sessions 1 was served")
	}
	if !strings.Contains(stderr.String(), "ferry: too many concurrent sessions (max 1)") {
		t.Errorf("client stderr %q", stderr.String())
	}
	want := regexp.MustCompile(`msg="session refused" user=alice remote=` + regexp.QuoteMeta(conn.LocalAddr().String()) +
		` reason="too many concurrent sessions \(max 1\)"`)
	if !s.waitLog(want.MatchString) {
		t.Errorf("no log line matching %s:\n%s", want, s.stderr.String())
	}
}

// TestDisconnectWithoutChannelCloseNotLogged: a client that ends the
// connection without closing its SFTP channel first (libssh2, so curl,
// and paramiko do) ends its session normally; the server logged
// "sftp session ended ... error=\"context canceled\"" for each such
// login, an error line for nothing wrong.
func TestDisconnectWithoutChannelCloseNotLogged(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	c, conn := s.dialSSH(t, "alice", "pw-alice")
	if err := putFile(c, "f", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if !s.waitLog(func(log string) bool { return strings.Contains(log, "msg=transfer ") }) {
		t.Fatal("no transfer line")
	}
	conn.Close()
	if !s.waitLog(func(log string) bool {
		return strings.Contains(log, `msg="connection closed" remote=`+conn.LocalAddr().String())
	}) {
		t.Fatalf("no connection closed line:\n%s", s.stderr.String())
	}
	if strings.Contains(s.stderr.String(), "sftp session ended") {
		t.Errorf("a normal disconnect logged as a session error:\n%s", s.stderr.String())
	}
}
