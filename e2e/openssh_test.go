package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestOpenSSHSFTP drives OpenSSH's sftp in batch mode through the real
// server and checks every file byte for byte on both ends.
func TestOpenSSHSFTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice", "--symlinks")
	s.addUser("carol", "pw-carol")
	s.addUser("ro", "pw-ro", "--readonly")
	home := s.home("alice")
	local := t.TempDir()

	sizes := []int{0, 1, 32767, 262145, 5 << 20}
	var batch strings.Builder
	want := map[string][]byte{}
	for _, n := range sizes {
		name := fmt.Sprintf("f%d", n)
		want[name] = randomBytes(t, n)
		writeFile(t, filepath.Join(local, name), want[name])
		fmt.Fprintf(&batch, "put %s\nget %s %s.back\n", name, name, name)
	}
	batch.WriteString("mkdir dir\nrename f1 dir/one\nchmod 600 dir/one\nls -l dir\nln -s one dir/link\nls -l dir\ndf\n")
	r := s.sftpBatch(t, local, "alice", "pw-alice", batch.String())
	mustSucceed(t, r, "sftp batch")
	for _, n := range sizes {
		name := fmt.Sprintf("f%d", n)
		remote := name
		if n == 1 {
			remote = "dir/one"
		}
		if got := readFile(t, filepath.Join(home, remote)); !bytes.Equal(got, want[name]) {
			t.Errorf("uploaded %s: %d bytes differ from the %d sent", name, len(got), n)
		}
		if got := readFile(t, filepath.Join(local, name+".back")); !bytes.Equal(got, want[name]) {
			t.Errorf("downloaded %s: %d bytes differ from the %d on the server", name, len(got), n)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "f1")); !os.IsNotExist(err) {
		t.Errorf("f1 still exists after rename: %v", err)
	}
	st, err := os.Stat(filepath.Join(home, "dir", "one"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("dir/one after chmod 600: %v %v", st.Mode(), err)
	}
	if !strings.Contains(r.out, "-rw-------") {
		t.Errorf("ls -l does not show the 0600 mode:\n%s", r.out)
	}
	if target, err := os.Readlink(filepath.Join(home, "dir", "link")); err != nil || target != "one" {
		t.Errorf("dir/link -> %q, %v; want one", target, err)
	}
	if !strings.Contains(r.out, "lrwxrwxrwx") || !strings.Contains(r.out, "dir/link\n") {
		t.Errorf("ls -l does not show the symlink:\n%s", r.out)
	}
	// df prints a header and one line of numbers from statvfs@openssh.com.
	if !strings.Contains(r.out, "Size         Used        Avail       (root)    %Capacity") {
		t.Errorf("df did not print a statvfs table:\n%s", r.out)
	}

	// rm, rmdir; each step alone so a failure names its command.
	mustSucceed(t, s.sftpBatch(t, local, "alice", "pw-alice", "rm dir/link\nrm dir/one\nrmdir dir\n"), "rm/rmdir")
	if _, err := os.Stat(filepath.Join(home, "dir")); !os.IsNotExist(err) {
		t.Errorf("dir still exists after rmdir: %v", err)
	}
	// rmdir of a non-empty directory fails with SSH_FX_FAILURE, as
	// OpenSSH's sftp-server answers ENOTEMPTY, and leaves it.
	os.MkdirAll(filepath.Join(home, "full"), 0o755)
	writeFile(t, filepath.Join(home, "full", "x"), []byte("x"))
	if r := s.sftpBatch(t, local, "alice", "pw-alice", "rmdir full\n"); r.code != 1 || !strings.Contains(r.out, `remote rmdir "/full": Failure`) {
		t.Errorf("rmdir of a non-empty directory: exit %d:\n%s", r.code, r.out)
	}
	if _, err := os.Stat(filepath.Join(home, "full", "x")); err != nil {
		t.Errorf("full/x after a refused rmdir: %v", err)
	}

	// carol may not create symbolic links.
	writeFile(t, filepath.Join(s.mkHome(t, "carol"), "target"), []byte("t"))
	r = s.sftpBatch(t, local, "carol", "pw-carol", "ln -s target link\n")
	if r.code != 1 || !strings.Contains(r.out, "Permission denied") {
		t.Errorf("ln -s without --symlinks: exit %d, want 1 and Permission denied:\n%s", r.code, r.out)
	}
	if _, err := os.Lstat(filepath.Join(s.home("carol"), "link")); !os.IsNotExist(err) {
		t.Errorf("carol's link exists: %v", err)
	}

	t.Run("readonly", func(t *testing.T) {
		writeFile(t, filepath.Join(s.mkHome(t, "ro"), "kept"), []byte("kept"))
		writeFile(t, filepath.Join(local, "up"), []byte("up"))
		for _, tt := range []struct{ cmd, want string }{
			{"put up x", `dest open "/x": Permission denied`},
			{"mkdir d", `remote mkdir "/d": Permission denied`},
			{"rm kept", `remote delete /kept: Permission denied`},
			{"rename kept k2", `remote rename "/kept" to "/k2": Permission denied`},
			{"chmod 600 kept", `remote setstat "/kept": Permission denied`},
		} {
			r := s.sftpBatch(t, local, "ro", "pw-ro", tt.cmd+"\n")
			if r.code != 1 || !strings.Contains(r.out, tt.want) {
				t.Errorf("%q on a read-only account: exit %d, want 1 and %q:\n%s", tt.cmd, r.code, tt.want, r.out)
			}
		}
		ents, _ := os.ReadDir(s.home("ro"))
		if len(ents) != 1 || ents[0].Name() != "kept" {
			t.Errorf("read-only home changed: %v", ents)
		}
		if st, _ := os.Stat(filepath.Join(s.home("ro"), "kept")); st.Mode().Perm() != 0o644 {
			t.Errorf("kept mode %v after a refused chmod", st.Mode())
		}
	})

	t.Run("resume", func(t *testing.T) {
		whole := randomBytes(t, 3<<20+17)
		half := whole[:len(whole)/2]
		writeFile(t, filepath.Join(local, "whole"), whole)
		writeFile(t, filepath.Join(local, "half"), half)
		// An interrupted upload leaves the first half under the final name.
		mustSucceed(t, s.sftpBatch(t, local, "alice", "pw-alice", "put half resume.bin\n"), "put half")
		mustSucceed(t, s.sftpBatch(t, local, "alice", "pw-alice", "reput whole resume.bin\n"), "reput")
		if got := readFile(t, filepath.Join(home, "resume.bin")); !bytes.Equal(got, whole) {
			t.Fatalf("after reput the remote file has %d bytes, differing from the %d local", len(got), len(whole))
		}
		// An interrupted download leaves the first half locally.
		writeFile(t, filepath.Join(local, "resume.back"), half)
		mustSucceed(t, s.sftpBatch(t, local, "alice", "pw-alice", "reget resume.bin resume.back\n"), "reget")
		if got := readFile(t, filepath.Join(local, "resume.back")); !bytes.Equal(got, whole) {
			t.Fatalf("after reget the local file has %d bytes, differing from the %d remote", len(got), len(whole))
		}
	})

	// -B 262144 as such cannot work with OpenSSH's client: a WRITE of
	// 262144 bytes plus its header exceeds the client's own
	// SFTP_MAX_MSG_LENGTH (256 KiB) and it exits with "Outbound message too
	// long 262169" before sending; 261120 (256 KiB - 1024) is the largest
	// block OpenSSH itself picks from limits@openssh.com.
	t.Run("pipelined", func(t *testing.T) {
		big := randomBytes(t, 20<<20)
		writeFile(t, filepath.Join(local, "big"), big)
		mustSucceed(t, s.sftpBatch(t, local, "alice", "pw-alice", "put big\nget big big.back\n", "-R", "64", "-B", "261120"), "pipelined transfer")
		if got := readFile(t, filepath.Join(home, "big")); !bytes.Equal(got, big) {
			t.Fatalf("pipelined upload: %d bytes differ from the %d sent", len(got), len(big))
		}
		if got := readFile(t, filepath.Join(local, "big.back")); !bytes.Equal(got, big) {
			t.Fatalf("pipelined download: %d bytes differ", len(got))
		}
	})
}

// TestSCP: OpenSSH 9 scp speaks SFTP by default (the legacy protocol, scp
// -O, is TestSCPLegacy's).
func TestSCP(t *testing.T) {
	t.Parallel()
	scp := testenv.NeedTool(t, "scp")
	sshpass := testenv.NeedTool(t, "sshpass")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	opts := append(sshOpts(s.port), "-q")
	scpRun := func(args ...string) result {
		return run(t, local, "", sshpass, append([]string{"-p", "pw-alice", scp}, append(opts, args...)...)...)
	}
	// scp transfers "in place" and afterwards truncates the file to the
	// highest offset up to which every WRITE (or READ) was acknowledged in
	// order (sftp-client.c do_upload/do_download); a server that replies out
	// of order makes scp cut the file short and still exit 0. One round
	// rarely shows it, so several rounds of a file of many requests.
	for round := range 4 {
		data := randomBytes(t, 4<<20+3)
		writeFile(t, filepath.Join(local, "up"), data)
		mustSucceed(t, scpRun("up", "alice@127.0.0.1:sent"), "scp upload")
		if got := readFile(t, filepath.Join(s.home("alice"), "sent")); !bytes.Equal(got, data) {
			t.Fatalf("round %d: scp upload: the server has %d bytes, differing from the %d sent", round, len(got), len(data))
		}
		mustSucceed(t, scpRun("alice@127.0.0.1:sent", "down"), "scp download")
		if got := readFile(t, filepath.Join(local, "down")); !bytes.Equal(got, data) {
			t.Fatalf("round %d: scp download: got %d bytes, differing from the %d on the server", round, len(got), len(data))
		}
	}
	r := scpRun("alice@127.0.0.1:missing", "m")
	if r.code != 1 || !strings.Contains(r.out, "No such file or directory") {
		t.Fatalf("scp of a missing file: exit %d:\n%s", r.code, r.out)
	}
}
