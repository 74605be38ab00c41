//go:build linux

package kex

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
)

// TestInteropOpenSSHServer: our Client against OpenSSH's sshd, run in
// inetd mode (-i) on one end of a socketpair, for every method both
// implement. sshd's host key signature must verify over our H.
func TestInteropOpenSSHServer(t *testing.T) {
	sshd := testenv.NeedTool(t, "sshd")
	keygen := testenv.NeedTool(t, "ssh-keygen")
	sshPath := testenv.NeedTool(t, "ssh") // same build as sshd: its -Q kex
	out, err := exec.Command(sshPath, "-Q", "kex").Output()
	if err != nil {
		t.Fatal(err)
	}
	supported := strings.Fields(string(out))

	// sshd run as root wants /run/sshd for privilege separation; run as
	// an unprivileged user it needs nothing outside its config, so a root
	// test process starts it as nobody. The files must then be nobody's.
	dir, err := os.MkdirTemp("", "ferry-kex-sshd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			testenv.Missing(t, "no user nobody to run sshd as")
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		for _, f := range []string{hostKey, hostKey + ".pub"} {
			if err := os.Chown(f, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	ran := 0
	for _, name := range Names() {
		if !slices.Contains(supported, name) {
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(dir, "sshd_config_"+strings.NewReplacer("@", "_", ".", "_").Replace(name))
			conf := "HostKey " + hostKey + "\nUsePAM no\nPidFile none\nLogLevel DEBUG1\n" +
				"KexAlgorithms " + name + "\nHostKeyAlgorithms ssh-ed25519\n"
			if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours := os.NewFile(uintptr(fds[0]), "ours")
			theirs := os.NewFile(uintptr(fds[1]), "sshd")
			c, err := net.FileConn(ours)
			ours.Close()
			if err != nil {
				theirs.Close()
				t.Fatal(err)
			}
			defer c.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sshd, "-i", "-e", "-f", cfg)
			cmd.Stdin, cmd.Stdout = theirs, theirs
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			if err := cmd.Start(); err != nil {
				theirs.Close()
				t.Fatal(err)
			}
			theirs.Close()
			defer func() {
				c.Close()
				cmd.Wait()
			}()

			p, magics, err := harness(c, name, false)
			if err != nil {
				t.Fatalf("harness: %v\nsshd:\n%s", err, tail(stderr.String(), 30))
			}
			res, err := mustMethod(t, name, nil).Client(p, magics, rand.Reader)
			if err != nil {
				t.Fatalf("our client: %v\nsshd:\n%s", err, tail(stderr.String(), 30))
			}
			pub, err := ssh.ParsePublicKey(res.HostKeyBlob)
			if err != nil {
				t.Fatal(err)
			}
			r := wire.NewReader(res.Signature)
			sig := &ssh.Signature{Format: r.String(), Blob: r.Bytes()}
			if !r.Done() {
				t.Fatal("malformed signature blob")
			}
			if err := pub.Verify(res.H, sig); err != nil {
				t.Fatalf("sshd's signature does not verify over our H: %v", err)
			}
		})
	}
	if ran == 0 {
		t.Skip("sshd supports none of our methods")
	}
}
