//go:build linux

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// sshfsScript runs on the mount: writes through open files (truncate,
// append, in-place writes at offsets), a rename over an existing file,
// times set by path, links, rsync and git.
const sshfsScript = `set -eu
cp "$SRC/big.bin" big.bin
cmp big.bin "$SRC/big.bin"
echo one > new.txt
echo two >> new.txt
printf XY | dd of=new.txt bs=1 seek=1 conv=notrunc status=none
echo replaced > other.txt
mv other.txt new2.txt
echo first > new2.txt.old
mv new2.txt new2.txt.old
touch -d 2020-01-01T00:00:00Z stamped.txt
echo 0123456789 > cut.txt
truncate -s 4 cut.txt
ln new.txt hard.txt
ln -s new.txt soft.txt
readlink soft.txt
rsync -a "$SRC/tree/" tree/
diff -r "$SRC/tree" tree
mkdir repo
cd repo
git init -q
git -c user.email=e2e@example.org -c user.name=e2e commit -q --allow-empty -m empty
echo hello > README
git add README
git -c user.email=e2e@example.org -c user.name=e2e commit -q -m readme
git fsck --no-progress
git log --format=%s | tr '\n' ' '
echo
cd ..
df -k . | tail -1
echo done
`

// TestSSHFS mounts a home with sshfs (OpenSSH's ssh underneath, and
// posix-rename, statvfs, hardlink and fsync extensions) and uses it as a
// local filesystem.
func TestSSHFS(t *testing.T) {
	t.Parallel()
	sshfs := testenv.NeedTool(t, "sshfs")
	for _, tool := range []string{"ssh", "rsync", "git"} {
		testenv.NeedTool(t, tool)
	}
	fusermount := "fusermount3"
	if _, err := exec.LookPath(fusermount); err != nil {
		fusermount = testenv.NeedTool(t, "fusermount")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "/dev/fuse is not available")
	}
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice", "--symlinks")
	home := s.mkHome(t, "alice")
	src := t.TempDir()
	big := randomBytes(t, 3<<20+4321)
	writeFile(t, filepath.Join(src, "big.bin"), big)
	tree := map[string][]byte{"a": []byte("a\n"), "sub/b": randomBytes(t, 100000), "sub/deep/c": nil}
	for name, data := range tree {
		p := filepath.Join(src, "tree", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeFile(t, p, data)
	}

	mnt := t.TempDir()
	r := run(t, "", "pw-alice\n", sshfs, "-p", strconv.Itoa(s.port), "-F", "/dev/null",
		"-o", "password_stdin", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PubkeyAuthentication=no", "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=5",
		"alice@127.0.0.1:/", mnt)
	mustSucceed(t, r, "sshfs")
	t.Cleanup(func() {
		// Lazily, so that a process still in the mount cannot keep it.
		if r := run(t, "", "", fusermount, "-u", "-z", mnt); r.code != 0 {
			t.Errorf("fusermount -u: %s", r.out)
		}
		// t.TempDir's removal must not reach into the home through a
		// mount that is still going away.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if mounts, _ := os.ReadFile("/proc/self/mounts"); !bytes.Contains(mounts, []byte(" "+mnt+" ")) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	script := filepath.Join(src, "script.sh")
	writeFile(t, script, []byte(sshfsScript))
	r = run(t, mnt, "", "env", "SRC="+src, "HOME="+src, "GIT_CONFIG_NOSYSTEM=1", "bash", script)
	if r.code != 0 || !strings.HasSuffix(r.out, "done\n") {
		t.Fatalf("script on the sshfs mount: exit %d:\n%s", r.code, r.out)
	}
	for _, want := range []string{"new.txt\n", "readme empty \n"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("script output lacks %q:\n%s", want, r.out)
		}
	}

	if got := readFile(t, filepath.Join(home, "big.bin")); !bytes.Equal(got, big) {
		t.Errorf("big.bin: %d bytes, want %d, or contents differ", len(got), len(big))
	}
	for name, want := range map[string]string{"new.txt": "oXY\ntwo\n", "new2.txt.old": "replaced\n", "cut.txt": "0123"} {
		if got := readFile(t, filepath.Join(home, name)); string(got) != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "other.txt")); !os.IsNotExist(err) {
		t.Errorf("other.txt after mv: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(home, "stamped.txt")); err != nil || !fi.ModTime().Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("touch -d of a new file: %v", err)
	}
	a, _ := os.Stat(filepath.Join(home, "new.txt"))
	b, err := os.Stat(filepath.Join(home, "hard.txt"))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("hard.txt is not a hard link of new.txt: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(home, "soft.txt")); err != nil || target != "new.txt" {
		t.Errorf("soft.txt -> %q, %v", target, err)
	}
	checkTree(t, filepath.Join(home, "tree"), tree)
	// df: the filesystem the home is on (no quota set).
	f := strings.Fields(r.out[strings.LastIndex(strings.TrimSuffix(r.out, "done\n"), "alice@"):])
	if len(f) < 4 {
		t.Fatalf("df output: %q", r.out)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(home, &st); err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatUint(st.Blocks*uint64(st.Bsize)/1024, 10); f[1] != want {
		t.Errorf("df size %s KiB, want %s", f[1], want)
	}
}
