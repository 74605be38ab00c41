package e2e

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// scpO runs OpenSSH's scp -O (the legacy protocol) in local against s,
// with password pw for the account its arguments name.
func scpO(t *testing.T, s *server, local, pw string, args ...string) result {
	t.Helper()
	scp := testenv.NeedTool(t, "scp")
	sshpass := testenv.NeedTool(t, "sshpass")
	return run(t, local, "", sshpass, append([]string{"-p", pw, scp, "-O"}, append(sshOpts(s.port), args...)...)...)
}

// TestSCPLegacy: the original scp protocol (scp -O, and the default of
// OpenSSH before 9.0, still common on customers' machines) runs
// "scp -t"/"scp -f" as an exec request. ferry's help promises SCP and the
// scp package implements it, so ferry serve must route these commands to it.
func TestSCPLegacy(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	scpRun := func(args ...string) result { return scpO(t, s, local, "pw-alice", args...) }
	data := randomBytes(t, 3<<20+1)
	writeFile(t, filepath.Join(local, "up"), data)
	mustSucceed(t, scpRun("up", "alice@127.0.0.1:sent"), "scp -O upload")
	if got := readFile(t, filepath.Join(s.home("alice"), "sent")); !bytes.Equal(got, data) {
		t.Fatalf("scp -O upload: the server has %d bytes, differing from the %d sent", len(got), len(data))
	}
	mustSucceed(t, scpRun("alice@127.0.0.1:sent", "down"), "scp -O download")
	if got := readFile(t, filepath.Join(local, "down")); !bytes.Equal(got, data) {
		t.Fatalf("scp -O download: got %d bytes, differing from the %d on the server", len(got), len(data))
	}
}

// TestExecRefused: an account without shell access gets a clear refusal
// for a command, on stderr, with exit status 1.
func TestExecRefused(t *testing.T) {
	t.Parallel()
	ssh := testenv.NeedTool(t, "ssh")
	sshpass := testenv.NeedTool(t, "sshpass")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	opts := []string{"-F", "/dev/null", "-T", "-o", "BatchMode=no", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no",
		"-p", strconv.Itoa(s.port), "alice@127.0.0.1"}
	r := run(t, "", "", sshpass, append(append([]string{"-p", "pw-alice", ssh}, opts...), "echo", "hi")...)
	if r.code != 1 || !strings.Contains(r.out, "ferry: command not allowed: echo hi") || strings.Contains(r.out, "\nhi\n") {
		t.Errorf("ssh command on an account without shell: exit %d:\n%s", r.code, r.out)
	}
}
