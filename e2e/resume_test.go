package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestInterruptedPutThenReput: an OpenSSH sftp upload over an existing
// file is killed halfway, then resumed with reput, which appends from the
// size the remote file has (FileZilla resumes the same way, by itself,
// after a dropped connection). The interrupted atomic upload used to be
// discarded, so reput appended the new file's tail to the previous
// version: a corrupt file and exit status 0. What arrived is kept now,
// and the resumed file is the new one.
func TestInterruptedPutThenReput(t *testing.T) {
	t.Parallel()
	sshpass := testenv.NeedTool(t, "sshpass")
	sftpBin := testenv.NeedTool(t, "sftp")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	home := s.mkHome(t, "alice")
	local := t.TempDir()
	whole := randomBytes(t, 24<<20)
	writeFile(t, filepath.Join(local, "whole"), whole)
	writeFile(t, filepath.Join(home, "site.tar"), randomBytes(t, 1<<20)) // the previous version

	// About 2 MB/s (-l is in Kbit/s): the kill comes well before the end.
	bf := filepath.Join(t.TempDir(), "batch")
	writeFile(t, bf, []byte("put whole site.tar\n"))
	args := append([]string{"-p", "pw-alice", sftpBin, "-l", "16000"}, sshOpts(s.port)...)
	args = append(args, "-b", bf, "alice@127.0.0.1")
	put := exec.Command(sshpass, args...)
	put.Dir = local
	var out lockedBuffer
	put.Stdout, put.Stderr = &out, &out
	if err := put.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a few megabytes have arrived in the temporary file.
	deadline := time.Now().Add(30 * time.Second)
	for received := int64(0); received < 4<<20; {
		if time.Now().After(deadline) {
			put.Process.Kill()
			put.Wait()
			t.Fatalf("upload did not start within 30 s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
		ents, _ := os.ReadDir(home)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".ferry-upload-") {
				if fi, err := e.Info(); err == nil {
					received = fi.Size()
				}
			}
		}
	}
	put.Process.Kill() // sshpass; its sftp and ssh go with the pty
	put.Wait()
	exec.Command("pkill", "-KILL", "-f", "alice@127.0.0.1.*"+bf).Run()

	got := waitFile(t, filepath.Join(home, "site.tar"), func(b []byte) bool { return bytes.HasPrefix(whole, b) && len(b) >= 4<<20 })
	if got == nil {
		t.Fatal("the interrupted upload's data never replaced the previous version")
	}
	mustSucceed(t, s.sftpBatch(t, local, "alice", "pw-alice", "reput whole site.tar\n"), "reput")
	if got := readFile(t, filepath.Join(home, "site.tar")); !bytes.Equal(got, whole) {
		t.Fatalf("after reput the remote file has %d bytes, differing from the %d local", len(got), len(whole))
	}
}

// waitFile polls path for up to 10 s until ok accepts its contents, and
// returns them (nil if never).
func waitFile(t *testing.T, path string, ok func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && ok(b) {
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
