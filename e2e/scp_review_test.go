package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// scpKeyOpts makes an ed25519 key, installs it for each of users (created
// with password "pw-"+name and extra flags), and returns the OpenSSH
// options that log in with it. Key login lets one scp -3 authenticate to
// two accounts, which sshpass's single password cannot.
func scpKeyOpts(t *testing.T, s *server, users map[string][]string) []string {
	t.Helper()
	keygen := testenv.NeedTool(t, "ssh-keygen")
	key := filepath.Join(t.TempDir(), "id")
	mustSucceed(t, run(t, "", "", keygen, "-q", "-t", "ed25519", "-N", "", "-f", key), "ssh-keygen")
	pub := strings.TrimSpace(string(readFile(t, key+".pub")))
	for name, flags := range users {
		s.addUser(name, "pw-"+name, append([]string{"--authorized-key", pub}, flags...)...)
	}
	// Before sshOpts: for ssh options the first value given wins.
	return append([]string{"-O", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "PubkeyAuthentication=yes",
		"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no"}, sshOpts(s.port)...)
}

// TestSCPThroughLocalRefusal: "scp -3" between two ferry accounts relays
// "scp -f" on one to "scp -t" on the other, and its exit status is the
// source's. When the destination refused a file (here: no-overwrite),
// ferry's scp -f exited 0 and so did the client, with no message: the
// user saw success for a file that never arrived.
func TestSCPThroughLocalRefusal(t *testing.T) {
	t.Parallel()
	scp := testenv.NeedTool(t, "scp")
	s := startServer(t, serverOpts{})
	opts := scpKeyOpts(t, s, map[string][]string{"alice": nil, "bob": {"--no-overwrite"}})
	local := t.TempDir()
	alice, bob := s.mkHome(t, "alice"), s.mkHome(t, "bob")
	writeFile(t, filepath.Join(alice, "new"), []byte("new data"))
	writeFile(t, filepath.Join(alice, "kept"), []byte("alice's version"))
	writeFile(t, filepath.Join(bob, "kept"), []byte("bob's version"))
	scp3 := func(src string) result {
		return run(t, local, "", scp, append(slices.Clone(opts), "-3", "alice@127.0.0.1:"+src, "bob@127.0.0.1:")...)
	}
	mustSucceed(t, scp3("new"), "scp -3 of a new file")
	if got := string(readFile(t, filepath.Join(bob, "new"))); got != "new data" {
		t.Errorf("scp -3: bob has %q", got)
	}
	if r := scp3("kept"); r.code != 1 {
		t.Errorf("scp -3 onto a file a no-overwrite account has: exit %d, want 1:\n%s", r.code, r.out)
	}
	if got := string(readFile(t, filepath.Join(bob, "kept"))); got != "bob's version" {
		t.Errorf("no-overwrite file replaced by scp -3: %q", got)
	}
}

// TestSCPPuTTYTargetDirMissing: pscp sends "scp -d -t DIR" for several
// files. A missing DIR was reported with a fatal (\x02) line before the
// first OK, which pscp drops, and the session ended: the user saw only
// "Received unexpected end-of-file from server". The reason now comes as
// a warning line, which pscp prints, and each file it goes on sending is
// refused with it until pscp ends the session itself.
func TestSCPPuTTYTargetDirMissing(t *testing.T) {
	t.Parallel()
	pscp := testenv.NeedTool(t, "pscp")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	writeFile(t, filepath.Join(local, "a"), []byte("a"))
	writeFile(t, filepath.Join(local, "b"), []byte("b"))
	r := run(t, local, "", pscp, "-scp", "-batch", "-q", "-pw", "pw-alice", "-P", strconv.Itoa(s.port),
		"-hostkey", s.fingerprint(t, "ed25519"), "a", "b", "alice@127.0.0.1:nodir/")
	if r.code != 1 || !strings.Contains(r.out, "scp: /nodir: No such file or directory") || strings.Contains(r.out, "FATAL ERROR") {
		t.Errorf("pscp of two files into a missing directory: exit %d, want 1 and the reason:\n%s", r.code, r.out)
	}
	if ents, _ := os.ReadDir(s.home("alice")); len(ents) != 0 {
		t.Errorf("home has %d entries", len(ents))
	}
}

// TestSCPFarFutureTimes: "scp -O -rp" of a tree holding a file dated
// 2446 (the latest ext4 keeps) sends a T record ferry cannot set. It
// ended the whole upload with "protocol error: mtime.sec not delimited";
// as with sshd, the tree now arrives and only that time is left unset.
func TestSCPFarFutureTimes(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	tree := filepath.Join(local, "tree")
	os.Mkdir(tree, 0o755)
	for _, n := range []string{"a", "future", "z"} {
		writeFile(t, filepath.Join(tree, n), []byte(n))
	}
	const year2446 = 15300000000
	future := syscall.Timespec{Sec: year2446}
	if err := syscall.UtimesNano(filepath.Join(tree, "future"), []syscall.Timespec{future, future}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(tree, "future")); err != nil || fi.ModTime().Unix() <= 1<<33 {
		t.Skipf("the local file system cannot hold a date past 2262 (%v, %v)", fi.ModTime(), err)
	}
	r := scpO(t, s, local, "pw-alice", "-r", "-p", "tree", "alice@127.0.0.1:")
	mustSucceed(t, r, "scp -O -rp of a tree with a file dated 2446")
	for _, n := range []string{"a", "future", "z"} {
		if got := readFile(t, filepath.Join(s.home("alice"), "tree", n)); string(got) != n {
			t.Errorf("%s: %q", n, got)
		}
	}
	if fi, err := os.Stat(filepath.Join(s.home("alice"), "tree", "future")); err != nil || fi.ModTime().After(time.Now().Add(time.Hour)) {
		t.Errorf("future: %v %v, want the upload's time", fi.ModTime(), err)
	}
}

// TestSCPGlobNegation: "scp -O host:'d/[!a]*' ." is expanded as the
// account's shell would for sshd; ferry took '!' as a member of the
// bracket and sent only the files the user excluded.
func TestSCPGlobNegation(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	d := filepath.Join(s.mkHome(t, "alice"), "d")
	os.Mkdir(d, 0o755)
	for _, n := range []string{"a1", "a2", "b1", "c1"} {
		writeFile(t, filepath.Join(d, n), []byte(n))
	}
	local := t.TempDir()
	r := scpO(t, s, local, "pw-alice", "alice@127.0.0.1:d/[!a]*", ".")
	mustSucceed(t, r, "scp -O of d/[!a]*")
	var got []string
	ents, _ := os.ReadDir(local)
	for _, e := range ents {
		got = append(got, e.Name())
		if b := readFile(t, filepath.Join(local, e.Name())); !bytes.Equal(b, []byte(e.Name())) {
			t.Errorf("%s: %q", e.Name(), b)
		}
	}
	if strings.Join(got, " ") != "b1 c1" {
		t.Errorf("scp -O host:'d/[!a]*' fetched %q, want b1 c1", got)
	}
}

// TestSCPGoSCPCommand: bramvdbogaerde/go-scp, the Go scp library (and code
// copied from it), runs "scp -qt %q" with Go's quoting. ferry refused
// "-q" as an unknown option, so every upload from it failed; OpenSSH's
// scp accepts its client-side options in server mode and ignores them.
func TestSCPGoSCPCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	os.Mkdir(filepath.Join(s.mkHome(t, "alice"), "up dir"), 0o755)
	_, conn := s.dialSSH(t, "alice", "pw-alice")
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stdin, _ := sess.StdinPipe()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Start(fmt.Sprintf("scp -qt %q", "/up dir/f.txt")); err != nil {
		t.Fatal(err)
	}
	data := "go-scp sent this\n"
	fmt.Fprintln(stdin, "C0644", len(data), "f.txt")
	io.WriteString(stdin, data+"\x00")
	stdin.Close()
	if err := sess.Wait(); err != nil || stdout.String() != "\x00\x00\x00" {
		t.Fatalf("scp -qt: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	if got := string(readFile(t, filepath.Join(s.home("alice"), "up dir", "f.txt"))); got != data {
		t.Errorf("uploaded %q", got)
	}
}
