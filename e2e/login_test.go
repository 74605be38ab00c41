package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestLoginAndHostKeyPersistence: an account made with "ferry user add"
// logs in with OpenSSH sftp by password and by an ed25519 key, and the host
// key ferry generated on first start is the one it presents after a restart
// (a changed key would make every customer's client refuse to connect).
func TestLoginAndHostKeyPersistence(t *testing.T) {
	t.Parallel()
	sftp := testenv.NeedTool(t, "sftp")
	keygen := testenv.NeedTool(t, "ssh-keygen")
	s := startServer(t, serverOpts{freshKey: true})
	local := t.TempDir()

	s.addUser("alice", "s3cret")
	writeFile(t, filepath.Join(local, "hello.txt"), []byte("hello from alice\n"))
	r := s.sftpBatch(t, local, "alice", "s3cret", "put hello.txt\nls -1\n")
	mustSucceed(t, r, "password login")
	if got := readFile(t, filepath.Join(s.home("alice"), "hello.txt")); string(got) != "hello from alice\n" {
		t.Fatalf("uploaded file = %q", got)
	}
	if !strings.Contains(r.out, "\nhello.txt\n") {
		t.Errorf("ls -1 output lacks hello.txt:\n%s", r.out)
	}

	// Wrong password: sshpass exits 5 ("invalid password") when the server
	// asks again.
	if r := s.sftpBatch(t, local, "alice", "wrong", "ls\n"); r.code != 5 {
		t.Fatalf("login with a wrong password: sshpass exit %d, want 5:\n%s", r.code, r.out)
	}

	key := filepath.Join(local, "id_ed25519")
	mustSucceed(t, run(t, local, "", keygen, "-q", "-t", "ed25519", "-N", "", "-C", "bob@e2e", "-f", key), "ssh-keygen")
	pub := strings.TrimSpace(string(readFile(t, key+".pub")))
	out, err := s.ferry("", "user", "add", "bob", "--authorized-key", pub)
	if err != nil {
		t.Fatalf("ferry user add bob: %v\n%s", err, out)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(local, "kh")
	batch := filepath.Join(local, "batch")
	writeFile(t, batch, []byte("mkdir d\nput hello.txt d/h\nls d\n"))
	keyLogin := func(strict string) result {
		return run(t, local, "", sftp, "-F", "/dev/null",
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", key,
			"-o", "StrictHostKeyChecking="+strict, "-o", "UserKnownHostsFile="+kh,
			"-o", "GlobalKnownHostsFile=/dev/null", "-o", "PasswordAuthentication=no",
			"-o", "KbdInteractiveAuthentication=no",
			"-P", strconv.Itoa(s.port), "-b", batch, "bob@127.0.0.1")
	}
	mustSucceed(t, keyLogin("accept-new"), "key login (accept-new)")
	// bob has no password: a password login is refused like a wrong one.
	if r := s.sftpBatch(t, local, "bob", "", "ls\n"); r.code != 5 {
		t.Errorf("password login to a key-only account: sshpass exit %d, want 5:\n%s", r.code, r.out)
	}
	if !strings.Contains(s.stderr.String(), `msg="user authenticated" remote=127.0.0.1:`) || !strings.Contains(s.stderr.String(), ` user=bob methods=[publickey] key=SHA256:`) {
		t.Errorf("bob's login is not logged as publickey:\n%s", s.stderr.String())
	}
	if got := readFile(t, filepath.Join(s.home("bob"), "d", "h")); string(got) != "hello from alice\n" {
		t.Fatalf("bob's upload = %q", got)
	}

	hostPattern := "[127.0.0.1]:" + strconv.Itoa(s.port)
	r = run(t, local, "", keygen, "-F", hostPattern, "-f", kh)
	mustSucceed(t, r, "ssh-keygen -F")
	hostPub := strings.Fields(string(readFile(t, s.hostKeyPub("ed25519"))))
	if !strings.Contains(r.out, hostPub[0]+" "+hostPub[1]) {
		t.Fatalf("known_hosts entry is not the ed25519 host key %s:\n%s", hostPub[1], r.out)
	}

	kinds := []string{"ed25519", "ecdsa", "rsa"}
	before := map[string][]byte{}
	for _, k := range kinds {
		before[k] = readFile(t, s.hostKeyPub(k))
	}
	s.restart()
	for _, k := range kinds {
		if after := readFile(t, s.hostKeyPub(k)); !bytes.Equal(before[k], after) {
			t.Fatalf("%s host key changed across restart:\n%s\n%s", k, before[k], after)
		}
	}
	if strings.Contains(s.stderr.String(), "generated host key") {
		t.Fatalf("restart generated a host key:\n%s", s.stderr.String())
	}
	writeFile(t, batch, []byte("rm d/h\nrmdir d\n"))
	mustSucceed(t, keyLogin("yes"), "key login after restart (StrictHostKeyChecking=yes)")
	if _, err := os.Stat(filepath.Join(s.home("bob"), "d")); !os.IsNotExist(err) {
		t.Fatalf("d still exists after rmdir: %v", err)
	}
}
