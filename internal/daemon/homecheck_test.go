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

// TestHomeHoldingFerryFilesRefused: an account whose home, written into the
// database by some other tool than `ferry user`, is or holds ferry's data
// directory gets no session. ferry reads every home as its own user, so
// such a home served the host private keys, ferry.db with every password
// hash, and every other account's home.
func TestHomeHoldingFerryFilesRefused(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := openSQLiteStore(t, dir)
	link := filepath.Join(base, "link-to-data")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	ownHome := filepath.Join(base, "customers", "carol")
	homes := map[string]string{
		"parent":   base,                       // holds the data directory
		"datadir":  dir,                        // the data directory itself
		"homeroot": filepath.Join(dir, "home"), // every account's default home
		"symlink":  link,                       // the data directory, through a link
		"carol":    ownHome,                    // an ordinary home elsewhere
	}
	h, err := password.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	for name, home := range homes {
		if err := st.CreateAccount(context.Background(), &store.Account{Name: name, PasswordHash: h, Enabled: true, Home: home}, nil); err != nil {
			t.Fatal(err)
		}
	}
	addr := startDaemon(t, dir, "")

	for name := range homes {
		t.Run(name, func(t *testing.T) {
			c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: name, Auth: []ssh.AuthMethod{ssh.Password("pw")},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var entries []os.FileInfo
			sc, err := sftp.NewClient(c)
			if err == nil {
				entries, err = sc.ReadDir("/")
				sc.Close()
			}
			if name == "carol" {
				if err != nil {
					t.Fatalf("an ordinary home elsewhere: %v", err)
				}
				return
			}
			if err == nil {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("home %s served; / lists %q", homes[name], names)
			}
		})
	}
}
