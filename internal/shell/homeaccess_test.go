package shell

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestCommandUIDHomeAccess: a command run as another uid (shell_uid, an
// account's --uid) whose home that uid cannot enter (ferry's own homes
// are 0700) failed with "ferry: cannot run command" and a log line
// blaming the program ("fork/exec /bin/sh: permission denied"); the
// client and the log now say the home is not accessible, and to whom.
// With a home the uid can enter, the command runs as that uid.
func TestCommandUIDHomeAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run commands as another uid")
	}
	uid, gid := uint32(65534), uint32(65534)
	closed := t.TempDir() // 0700, root's
	var logged testenv.LockedBuffer
	h := newHandler(t, Config{User: "alice", AllowShell: true, Home: closed, UID: &uid, GID: &gid, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	_, stderr, status, _ := runCmd(t, c, "id -u", "")
	if status != 127 || !strings.Contains(stderr, "home directory not accessible") {
		t.Fatalf("closed home: status %d, stderr %q", status, stderr)
	}
	if !strings.Contains(logged.String(), "uid 65534 gid 65534 cannot enter") {
		t.Fatalf("log does not say why:\n%s", logged.String())
	}

	open, err := os.MkdirTemp("/tmp", "ferry-uidhome-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chown(open, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	h2 := newHandler(t, Config{User: "bob", AllowShell: true, Home: open, UID: &uid, GID: &gid})
	c2 := dial(t, startServer(t, accounts{"bob": h2}), "bob")
	stdout, stderr, status, _ := runCmd(t, c2, "id -u; pwd", "")
	if status != 0 || stdout != strconv.Itoa(int(uid))+"\n"+open+"\n" {
		t.Fatalf("reachable home: status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
}
