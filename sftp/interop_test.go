package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/vfs"
)

// The interop tests run OpenSSH's sftp client with -D against this test
// binary re-executed as an SFTP server on stdin/stdout (see TestMain), so
// they need no SSH server and no build of cmd/ferry.
const (
	envServeRoot = "FERRY_SFTP_TEST_SERVE_ROOT"
	envServeRO   = "FERRY_SFTP_TEST_SERVE_READONLY"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(envServeRoot); root != "" {
		os.Exit(serveStdio(root, os.Getenv(envServeRO) == "1"))
	}
	os.Exit(m.Run())
}

func serveStdio(root string, ro bool) int {
	fsys, err := vfs.Local(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := NewServer(fsys, &Options{ReadOnly: ro}).Serve(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runSFTP runs OpenSSH's sftp in batch mode against a server over root.
func runSFTP(t *testing.T, root string, ro bool, batch string, extra ...string) (string, string, error) {
	t.Helper()
	sftpBin := testenv.NeedTool(t, "sftp")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bf := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(bf, []byte(batch), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-b", bf, "-D", self}, extra...)
	cmd := exec.Command(sftpBin, args...)
	cmd.Env = append(os.Environ(), envServeRoot+"="+root)
	if ro {
		cmd.Env = append(cmd.Env, envServeRO+"=1")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s (%d bytes) and %s (%d bytes) differ", a, len(x), b, len(y))
	}
}

func TestOpenSSHPutGet(t *testing.T) {
	for _, mode := range []struct {
		name    string
		extra   []string
		getOnly bool
	}{
		{"default", nil, false},
		// OpenSSH's client refuses to send a WRITE over 256 KiB itself
		// ("Outbound message too long"), so -B 262144 only works for
		// downloads, where ferry clamps each READ to 261120 bytes as
		// OpenSSH's server does; uploads use the largest valid buffer.
		{"pipelined 64x255K", []string{"-R", "64", "-B", "261120"}, false},
		{"pipelined 64x256K get", []string{"-R", "64", "-B", "262144"}, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			root, local := t.TempDir(), t.TempDir()
			var batch strings.Builder
			sizes := []int{0, 1, 32<<10 - 1, 256<<10 + 1, 5 << 20}
			for _, n := range sizes {
				b := randomFile(t, filepath.Join(local, fmt.Sprint("in", n)), n)
				if mode.getOnly {
					os.WriteFile(filepath.Join(root, fmt.Sprint("up", n)), b, 0o644)
				} else {
					fmt.Fprintf(&batch, "put %s/in%d up%d\n", local, n, n)
				}
				fmt.Fprintf(&batch, "get up%d %s/out%d\n", n, local, n)
			}
			out, errOut, err := runSFTP(t, root, false, batch.String(), mode.extra...)
			if err != nil {
				t.Fatalf("sftp: %v\n%s\n%s", err, out, errOut)
			}
			for _, n := range sizes {
				sameFile(t, filepath.Join(local, fmt.Sprint("in", n)), filepath.Join(root, fmt.Sprint("up", n)))
				sameFile(t, filepath.Join(local, fmt.Sprint("in", n)), filepath.Join(local, fmt.Sprint("out", n)))
			}
		})
	}
}

func TestOpenSSHCommands(t *testing.T) {
	root, local := t.TempDir(), t.TempDir()
	data := randomFile(t, filepath.Join(local, "big"), 3<<20+17)
	// Half-uploaded and half-downloaded copies for reput/reget.
	os.WriteFile(filepath.Join(root, "partial-up"), data[:1<<20], 0o644)
	os.WriteFile(filepath.Join(root, "whole"), data, 0o644)
	os.WriteFile(filepath.Join(local, "partial-down"), data[:1<<20+5], 0o644)
	batch := fmt.Sprintf(`mkdir d
put %[1]s/big d/a
ls -l d
rename d/a d/b
ln -s b d/sym
ln d/b d/hard
chmod 600 d/b
ls -l d
df
reput %[1]s/big partial-up
reget whole %[1]s/partial-down
rm d/sym
rm d/hard
rm d/b
rmdir d
ls
`, local)
	out, errOut, err := runSFTP(t, root, false, batch)
	if err != nil {
		t.Fatalf("sftp: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"-rw-------", "d/sym", "d/hard", "Size", "Used", "Avail"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	sameFile(t, filepath.Join(local, "big"), filepath.Join(root, "partial-up"))
	sameFile(t, filepath.Join(root, "whole"), filepath.Join(local, "partial-down"))
	if _, err := os.Stat(filepath.Join(root, "d")); !os.IsNotExist(err) {
		t.Errorf("d still exists: %v", err)
	}
}

func TestOpenSSHReadOnly(t *testing.T) {
	root, local := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("keep"), 0o644)
	os.WriteFile(filepath.Join(local, "x"), []byte("x"), 0o644)
	for _, cmd := range []string{
		"put " + local + "/x y", "rm f", "mkdir d", "rename f g", "chmod 600 f", "ln -s f l",
	} {
		t.Run(cmd, func(t *testing.T) {
			out, errOut, err := runSFTP(t, root, true, cmd+"\n")
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1\n%s%s", err, out, errOut)
			}
			if !strings.Contains(errOut, "Permission denied") {
				t.Fatalf("stderr lacks Permission denied:\n%s", errOut)
			}
		})
	}
	out, errOut, err := runSFTP(t, root, true, "get f "+local+"/f\n")
	if err != nil {
		t.Fatalf("get under -R: %v\n%s%s", err, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "keep" {
		t.Fatalf("f = %q", b)
	}
}

// TestFerryCommand builds cmd/ferry and runs `ferry sftp-server` as
// OpenSSH would start it.
func TestFerryCommand(t *testing.T) {
	testenv.NeedTool(t, "sftp")
	gobin := testenv.NeedTool(t, "go")
	bin := filepath.Join(t.TempDir(), "ferry")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/ferry-sftp/ferry/cmd/ferry")
	if out, err := build.CombinedOutput(); err != nil {
		// cmd/ferry links every package of the tree; a package mid-edit
		// elsewhere must not fail this one's tests, except in CI where the
		// tree is whole.
		if testenv.InCI() {
			t.Fatalf("building cmd/ferry: %v\n%s", err, out)
		}
		t.Skipf("cmd/ferry does not build (another package?): %v\n%s", err, out)
	}
	root, local := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(root, "start"), 0o755)
	randomFile(t, filepath.Join(local, "in"), 100<<10)
	bf := filepath.Join(local, "batch")
	os.WriteFile(bf, []byte("pwd\nput "+local+"/in up\nget up "+local+"/out\nls -l\n"), 0o644)
	cmd := exec.Command(testenv.NeedTool(t, "sftp"), "-b", bf, "-D", bin+" sftp-server --root "+root+" -d /start")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Remote working directory: /start") {
		t.Errorf("pwd not /start:\n%s", out)
	}
	sameFile(t, filepath.Join(local, "in"), filepath.Join(root, "start", "up"))
	sameFile(t, filepath.Join(local, "in"), filepath.Join(local, "out"))

	// Read-only, whole filesystem, start directory.
	os.WriteFile(bf, []byte("pwd\nput "+local+"/in up2\n"), 0o644)
	cmd = exec.Command(testenv.NeedTool(t, "sftp"), "-b", bf, "-D", bin+" sftp-server -R -d "+root)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") || !strings.Contains(string(out), "Remote working directory: "+root) {
		t.Errorf("read-only session: %v\n%s", err, out)
	}
}
