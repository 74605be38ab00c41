package scp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
	"github.com/ferry-sftp/ferry/vfs"
)

type passwordAuth struct{ user, pass string }

func (a passwordAuth) Password(_ context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	if m.User() == a.user && string(pw) == a.pass {
		return &auth.Permissions{}, nil
	}
	return nil, auth.ErrDenied
}
func (passwordAuth) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}
func (passwordAuth) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

// startSSH serves scp commands over a vfs.Local of root on 127.0.0.1
// and returns the port and the host key's SHA256 fingerprint.
func startSSH(t *testing.T, root string, opts *Options) (port, fingerprint string) {
	t.Helper()
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hk}},
		Auth:      auth.Config{Authenticator: passwordAuth{"alice", "pw"}, FailureDelay: -1},
		Handler: server.HandlerFunc(func(s *server.Session) {
			if !IsSCPCommand(s.Command()) {
				fmt.Fprintf(s.Stderr(), "not scp: %q\n", s.Command())
				s.Exit(127)
				return
			}
			fsys, err := vfs.Local(root)
			if err != nil {
				s.Exit(1)
				return
			}
			defer fsys.Close()
			NewServer(fsys, opts).ServeSSH(s)
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), keys.FingerprintSHA256(hk.PublicKey())
}

func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// makeTree writes a small tree with awkward names, modes and times.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"plain.txt":          "plain\n",
		"with space":         "space",
		"it's \"quoted\"":    "quotes",
		"-dash":              "dash",
		"empty":              "",
		"sub/big.bin":        strings.Repeat("ferry\x00\xff", 50000),
		"sub/deeper/leaf":    "leaf",
		"sub/deeper/.hidden": "hidden",
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data, 0o640)
	}
	os.Chmod(filepath.Join(dir, "plain.txt"), 0o600)
	os.Chmod(filepath.Join(dir, "sub"), 0o750)
	var paths []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	// Deepest first: setting a child's times does not touch its
	// directory's mtime, but creating it did.
	for i := len(paths) - 1; i >= 0; i-- {
		ts := time.Unix(1500000000+int64(i)*1000, 0)
		if err := os.Chtimes(paths[i], ts, ts); err != nil {
			t.Fatal(err)
		}
	}
}

// sameTree compares contents byte for byte, permission bits and
// modification times; of directories only with dirAttrs. (PuTTY's pscp
// sends every directory as D0755 without a T record, and as a sink it
// creates directories with its own defaults.)
func sameTree(t *testing.T, want, got string, dirAttrs bool) {
	t.Helper()
	n := 0
	filepath.Walk(want, func(p string, wfi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(want, p)
		gfi, err := os.Stat(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		n++
		if wfi.IsDir() && !dirAttrs {
			return nil
		}
		if wfi.Mode() != gfi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gfi.Mode(), wfi.Mode())
		}
		if !wfi.ModTime().Equal(gfi.ModTime()) && rel != "." {
			t.Errorf("%s: mtime %v, want %v", rel, gfi.ModTime(), wfi.ModTime())
		}
		if wfi.Mode().IsRegular() {
			w, _ := os.ReadFile(p)
			g, _ := os.ReadFile(filepath.Join(got, rel))
			if !bytes.Equal(w, g) {
				t.Errorf("%s: contents differ (%d vs %d bytes)", rel, len(g), len(w))
			}
		}
		return nil
	})
	if n < 5 {
		t.Errorf("only %d entries compared", n)
	}
}

func TestOpenSSHSCP(t *testing.T) {
	scpBin := testenv.NeedTool(t, "scp")
	sshpass := testenv.NeedTool(t, "sshpass")
	root, local := t.TempDir(), t.TempDir()
	port, _ := startSSH(t, root, nil)
	src := filepath.Join(local, "tree")
	makeTree(t, src)
	base := []string{"-p", "pw", scpBin, "-O", "-P", port, "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no"}
	scp := func(args ...string) {
		t.Helper()
		out, err := runTool(t, sshpass, append(append([]string(nil), base...), args...)...)
		if err != nil {
			t.Fatalf("scp %q: %v\n%s", args, err, out)
		}
	}
	// Upload a tree with -r -p, then download it again.
	scp("-r", "-p", src, "alice@127.0.0.1:")
	sameTree(t, src, filepath.Join(root, "tree"), true)
	back := filepath.Join(local, "back")
	os.Mkdir(back, 0o755)
	scp("-r", "-p", "alice@127.0.0.1:tree", back)
	sameTree(t, src, filepath.Join(back, "tree"), true)

	// Single files: a name with a space (quoted for the remote shell),
	// to a new name, and a download by pattern.
	scp(filepath.Join(src, "with space"), "alice@127.0.0.1:'renamed file'")
	if readFile(t, filepath.Join(root, "renamed file")) != "space" {
		t.Error("renamed upload")
	}
	pat := filepath.Join(local, "pat")
	os.Mkdir(pat, 0o755)
	scp("alice@127.0.0.1:tree/sub/deeper/*", pat)
	if readFile(t, filepath.Join(pat, "leaf")) != "leaf" {
		t.Error("pattern download")
	}
	if _, err := os.Stat(filepath.Join(pat, ".hidden")); err == nil {
		t.Error("* matched a dot file")
	}

	// The home itself is sent as "." as scp.c sends it; OpenSSH (since
	// 8.0, CVE-2018-20685) refuses that name, as it does from sshd.
	out, err := runTool(t, sshpass, append(append([]string(nil), base...), "-r", "alice@127.0.0.1:.", local)...)
	if err == nil || !strings.Contains(out, "unexpected filename: .") {
		t.Errorf("home download: %v %q", err, out)
	}

	// Errors reach the user and the exit status.
	out, err = runTool(t, sshpass, append(append([]string(nil), base...), "alice@127.0.0.1:nothere", local)...)
	if err == nil || !strings.Contains(out, "nothere: No such file or directory") {
		t.Errorf("missing file: %v %q", err, out)
	}
	noTemps(t, root)
}

func TestPuTTYSCP(t *testing.T) {
	pscp := testenv.NeedTool(t, "pscp")
	root, local := t.TempDir(), t.TempDir()
	port, fp := startSSH(t, root, nil)
	src := filepath.Join(local, "tree")
	makeTree(t, src)
	base := []string{"-scp", "-batch", "-pw", "pw", "-P", port, "-hostkey", fp}
	run := func(args ...string) {
		t.Helper()
		out, err := runTool(t, pscp, append(append([]string(nil), base...), args...)...)
		if err != nil {
			t.Fatalf("pscp %q: %v\n%s", args, err, out)
		}
	}
	run("-r", "-p", src, "alice@127.0.0.1:")
	sameTree(t, src, filepath.Join(root, "tree"), false)
	back := filepath.Join(local, "back")
	os.Mkdir(back, 0o755)
	run("-r", "-p", "alice@127.0.0.1:tree", back)
	sameTree(t, src, filepath.Join(back, "tree"), false)
	run(filepath.Join(src, "plain.txt"), "alice@127.0.0.1:copy.txt")
	if readFile(t, filepath.Join(root, "copy.txt")) != "plain\n" {
		t.Error("single upload")
	}
	noTemps(t, root)
}

// TestOpenSSHSCPReadOnly: the account's rules reach real clients.
func TestOpenSSHSCPReadOnly(t *testing.T) {
	scpBin := testenv.NeedTool(t, "scp")
	sshpass := testenv.NeedTool(t, "sshpass")
	root, local := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(local, "f"), "x", 0o644)
	port, _ := startSSH(t, root, &Options{ReadOnly: true})
	out, err := runTool(t, sshpass, "-p", "pw", scpBin, "-O", "-P", port, "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", filepath.Join(local, "f"), "alice@127.0.0.1:")
	if err == nil || !strings.Contains(out, "read-only") {
		t.Errorf("read-only upload: %v %q", err, out)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
}
