package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// TestSFTPSymlinkOrderFollowsClient: the SFTP server learns the client's
// identification string, so that WinSCP's SYMLINK (link path first, as it
// sends to any server not named OpenSSH) makes the link the user asked for.
// pkg/sftp puts its first argument first on the wire, as WinSCP puts the
// link path.
func TestSFTPSymlinkOrderFollowsClient(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	h, err := password.Hash("pw-wes")
	if err != nil {
		t.Fatal(err)
	}
	acct := &store.Account{Name: "wes", PasswordHash: h, Enabled: true, Permissions: store.Permissions{AllowSymlinks: true}}
	if err := st.CreateAccount(context.Background(), acct, nil); err != nil {
		t.Fatal(err)
	}
	addr := startDaemon(t, dir, "")
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "wes", Auth: []ssh.AuthMethod{ssh.Password("pw-wes")},
		ClientVersion: "SSH-2.0-WinSCP_release_6.3.5", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Symlink("/mylink", "target.txt"); err != nil {
		t.Fatal(err)
	}
	got, err := os.Readlink(filepath.Join(dir, "home", "wes", "mylink"))
	if err != nil || got != "target.txt" {
		t.Fatalf("WinSCP's SYMLINK made mylink -> %q (%v), want target.txt", got, err)
	}
}
