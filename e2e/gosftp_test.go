package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7).
const (
	fxNoSuchFile       = 2
	fxPermissionDenied = 3
	fxFailure          = 4
)

// dialSFTP logs in with x/crypto/ssh, pinning the server's ed25519 host key,
// and starts a github.com/pkg/sftp client.
func (s *server) dialSFTP(t *testing.T, user, password string, opts ...sftp.ClientOption) *sftp.Client {
	t.Helper()
	c, _ := s.dialSSH(t, user, password, opts...)
	return c
}

// dialSSH is dialSFTP also returning the SSH connection under the client.
func (s *server) dialSSH(t *testing.T, user, password string, opts ...sftp.ClientOption) (*sftp.Client, *ssh.Client) {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey(readFile(t, s.hostKeyPub("ed25519")))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
				ans := make([]string, len(qs))
				for i := range ans {
					ans[i] = password
				}
				return ans, nil
			}),
		},
		HostKeyCallback:   ssh.FixedHostKey(pub),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
	}
	conn, err := ssh.Dial("tcp", s.addr(), cfg)
	if err != nil {
		t.Fatalf("ssh login as %s: %v", user, err)
	}
	c, err := sftp.NewClient(conn, opts...)
	if err != nil {
		conn.Close()
		t.Fatalf("sftp subsystem for %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c, conn
}

// wantStatus fails the test unless err is an SFTP status with code.
// pkg/sftp turns SSH_FX_NO_SUCH_FILE into fs.ErrNotExist and
// SSH_FX_PERMISSION_DENIED into fs.ErrPermission (and only those codes), so
// for them the sentinel stands for the code.
func wantStatus(t *testing.T, what string, err error, code uint32) {
	t.Helper()
	switch code {
	case fxNoSuchFile:
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: error %v (%T), want SSH_FX_NO_SUCH_FILE", what, err, err)
		}
		return
	case fxPermissionDenied:
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: error %v (%T), want SSH_FX_PERMISSION_DENIED", what, err, err)
		}
		return
	}
	var se *sftp.StatusError
	if !errors.As(err, &se) {
		t.Errorf("%s: error %v (%T), want SFTP status %d", what, err, err, code)
		return
	}
	if se.Code != code {
		t.Errorf("%s: status %d (%v), want %d", what, se.Code, se, code)
	}
}

// putFile uploads as OpenSSH's sftp does, opening for writing only:
// pkg/sftp's Create also asks for reading, which an upload-only account is
// rightly refused.
func putFile(c *sftp.Client, name string, data []byte) error {
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func getFile(c *sftp.Client, name string) ([]byte, error) {
	f, err := c.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestGoSFTP drives github.com/pkg/sftp over golang.org/x/crypto/ssh.
func TestGoSFTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice", "--symlinks")
	home := s.home("alice")
	c := s.dialSFTP(t, "alice", "pw-alice", sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))

	t.Run("concurrent", func(t *testing.T) {
		const files, size = 10, 2 << 20
		want := make([][]byte, files)
		for i := range want {
			want[i] = randomBytes(t, size)
		}
		var wg sync.WaitGroup
		errs := make([]error, files)
		for i := range files {
			wg.Go(func() { errs[i] = putFile(c, fmt.Sprintf("c%d", i), want[i]) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("upload c%d: %v", i, err)
			}
			if got := readFile(t, filepath.Join(home, fmt.Sprintf("c%d", i))); !bytes.Equal(got, want[i]) {
				t.Fatalf("c%d on the server: %d bytes differ", i, len(got))
			}
		}
		got := make([][]byte, files)
		for i := range files {
			wg.Go(func() { got[i], errs[i] = getFile(c, fmt.Sprintf("c%d", i)) })
		}
		wg.Wait()
		for i := range files {
			if errs[i] != nil || !bytes.Equal(got[i], want[i]) {
				t.Fatalf("download c%d: %d bytes, %v", i, len(got[i]), errs[i])
			}
		}
	})

	t.Run("extensions", func(t *testing.T) {
		if err := putFile(c, "a", []byte("aaa")); err != nil {
			t.Fatal(err)
		}
		if err := putFile(c, "b", []byte("bbb")); err != nil {
			t.Fatal(err)
		}
		// posix-rename@openssh.com replaces the target, unlike SSH_FXP_RENAME.
		wantStatus(t, "plain rename over an existing file", c.Rename("a", "b"), fxFailure)
		if err := c.PosixRename("a", "b"); err != nil {
			t.Fatalf("PosixRename: %v", err)
		}
		if got := readFile(t, filepath.Join(home, "b")); string(got) != "aaa" {
			t.Errorf("b after PosixRename = %q", got)
		}
		if _, err := os.Stat(filepath.Join(home, "a")); !os.IsNotExist(err) {
			t.Errorf("a after PosixRename: %v", err)
		}
		vfs, err := c.StatVFS("/")
		if err != nil {
			t.Fatalf("StatVFS: %v", err)
		}
		if vfs.Bsize == 0 || vfs.Blocks == 0 || vfs.Namemax == 0 {
			t.Errorf("StatVFS: %+v", vfs)
		}
		if err := c.Link("b", "hard"); err != nil {
			t.Fatalf("Link: %v", err)
		}
		st1, _ := os.Stat(filepath.Join(home, "b"))
		st2, err := os.Stat(filepath.Join(home, "hard"))
		if err != nil || !os.SameFile(st1, st2) {
			t.Errorf("hard is not a hard link of b: %v", err)
		}
		if err := c.Symlink("b", "soft"); err != nil {
			t.Fatalf("Symlink: %v", err)
		}
		if target, err := os.Readlink(filepath.Join(home, "soft")); err != nil || target != "b" {
			t.Errorf("soft on disk -> %q, %v", target, err)
		}
		if target, err := c.ReadLink("soft"); err != nil || target != "b" {
			t.Errorf("ReadLink(soft) = %q, %v", target, err)
		}
		if got, err := getFile(c, "soft"); err != nil || string(got) != "aaa" {
			t.Errorf("reading through soft: %q, %v", got, err)
		}
		_, err = c.Stat("missing")
		wantStatus(t, "Stat(missing)", err, fxNoSuchFile)
	})
}

// TestGoSFTPPolicy: each account restriction from "ferry user add" is
// enforced with SSH_FX_PERMISSION_DENIED and leaves the files unchanged.
func TestGoSFTPPolicy(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	for _, u := range []struct{ name, flag string }{
		{"ro", "--readonly"}, {"nodel", "--no-delete"}, {"noover", "--no-overwrite"}, {"uponly", "--upload-only"},
	} {
		s.addUser(u.name, "pw-"+u.name, u.flag)
		writeFile(t, filepath.Join(s.mkHome(t, u.name), "old.txt"), []byte("old"))
	}
	s.addUser("quota", "pw-quota", "--quota-bytes", "1M")

	t.Run("readonly", func(t *testing.T) {
		c := s.dialSFTP(t, "ro", "pw-ro")
		wantStatus(t, "create", putFile(c, "new.txt", []byte("x")), fxPermissionDenied)
		wantStatus(t, "overwrite", putFile(c, "old.txt", []byte("x")), fxPermissionDenied)
		wantStatus(t, "mkdir", c.Mkdir("d"), fxPermissionDenied)
		wantStatus(t, "remove", c.Remove("old.txt"), fxPermissionDenied)
		wantStatus(t, "rename", c.Rename("old.txt", "o2"), fxPermissionDenied)
		wantStatus(t, "chmod", c.Chmod("old.txt", 0o600), fxPermissionDenied)
		if got, err := getFile(c, "old.txt"); err != nil || string(got) != "old" {
			t.Errorf("read-only account cannot read: %q %v", got, err)
		}
	})
	t.Run("no-delete", func(t *testing.T) {
		c := s.dialSFTP(t, "nodel", "pw-nodel")
		wantStatus(t, "remove", c.Remove("old.txt"), fxPermissionDenied)
		if err := putFile(c, "new.txt", []byte("new")); err != nil {
			t.Errorf("no-delete account cannot upload: %v", err)
		}
		wantStatus(t, "posix-rename over a file", c.PosixRename("new.txt", "old.txt"), fxPermissionDenied)
		if got := readFile(t, filepath.Join(s.home("nodel"), "old.txt")); string(got) != "old" {
			t.Errorf("old.txt = %q after denied operations", got)
		}
	})
	t.Run("no-overwrite", func(t *testing.T) {
		c := s.dialSFTP(t, "noover", "pw-noover")
		wantStatus(t, "overwrite", putFile(c, "old.txt", []byte("xxxx")), fxPermissionDenied)
		if got := readFile(t, filepath.Join(s.home("noover"), "old.txt")); string(got) != "old" {
			t.Errorf("old.txt = %q after a denied overwrite", got)
		}
		if err := putFile(c, "new.txt", []byte("new")); err != nil {
			t.Errorf("no-overwrite account cannot create: %v", err)
		}
	})
	t.Run("upload-only", func(t *testing.T) {
		c := s.dialSFTP(t, "uponly", "pw-uponly")
		_, err := getFile(c, "old.txt")
		wantStatus(t, "download", err, fxPermissionDenied)
		if err := putFile(c, "new.txt", []byte("new")); err != nil {
			t.Errorf("upload-only account cannot upload: %v", err)
		}
		if got := readFile(t, filepath.Join(s.home("uponly"), "new.txt")); string(got) != "new" {
			t.Errorf("new.txt = %q", got)
		}
	})
	t.Run("quota", func(t *testing.T) {
		c := s.dialSFTP(t, "quota", "pw-quota")
		err := putFile(c, "big.bin", randomBytes(t, 2<<20))
		wantStatus(t, "upload over quota", err, fxFailure)
		if err != nil && !strings.Contains(err.Error(), "quota exceeded") {
			t.Errorf("over-quota error %q does not say quota exceeded", err)
		}
		if _, err := c.Stat("big.bin"); err == nil {
			t.Errorf("big.bin exists after a failed over-quota upload")
		}
		ents, _ := os.ReadDir(s.home("quota"))
		for _, e := range ents {
			t.Errorf("left in the home after a failed upload: %s", e.Name())
		}
		small := randomBytes(t, 512<<10)
		if err := putFile(c, "small.bin", small); err != nil {
			t.Fatalf("upload under quota after a refused one: %v", err)
		}
		if got := readFile(t, filepath.Join(s.home("quota"), "small.bin")); !bytes.Equal(got, small) {
			t.Errorf("small.bin: %d bytes differ", len(got))
		}
	})
}
