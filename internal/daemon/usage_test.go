package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func writeFile(t *testing.T, name string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCountHome: regular files count with their sizes, a hard-linked
// file once, and neither symlinks (to a file outside the home, to a
// directory) nor directories count.
func TestCountHome(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	writeFile(t, filepath.Join(home, "a"), 1000)
	writeFile(t, filepath.Join(home, "sub", "deeper", "b"), 234)
	writeFile(t, filepath.Join(home, "empty"), 0)
	if err := os.Link(filepath.Join(home, "a"), filepath.Join(home, "sub", "a-link")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(base, "outside", "big"), 1<<20)
	for target, link := range map[string]string{"../outside/big": "to-file", "../outside": "to-dir"} {
		if err := os.Symlink(target, filepath.Join(home, link)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := CountHome(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	if want := (HomeUsage{Bytes: 1234, Files: 3}); got != want {
		t.Errorf("CountHome = %+v, want %+v", got, want)
	}

	got, err = CountHome(context.Background(), filepath.Join(base, "never-logged-in"))
	if err != nil || got != (HomeUsage{}) {
		t.Errorf("CountHome of a missing home = %+v, %v; want zero, nil", got, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 1100 {
		writeFile(t, filepath.Join(home, "many", string(rune('a'+i%26)), string(rune('a'+i/26))), 1)
	}
	if _, err := CountHome(ctx, home); !errors.Is(err, context.Canceled) {
		t.Errorf("CountHome with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestQuotaRecountedAtFirstSession: files put in a home outside ferry
// (before the account had a quota, by an import, or by the owner of a
// deleted and re-created account) are charged at the account's first
// session after the daemon starts, once: with the counters at 0 the
// account had its whole quota on top of what it already held.
func TestQuotaRecountedAtFirstSession(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	const quota = 1 << 20
	addAccount(t, st, "erin", "pw-erin", quota)
	home := filepath.Join(dir, "home", "erin")
	writeFile(t, filepath.Join(home, "old", "backup.tar"), 900<<10)
	writeFile(t, filepath.Join(home, "notes"), 100)

	addr := startDaemon(t, dir, "")
	c := sftpClient(t, addr, "erin", ssh.Password("pw-erin"))
	acct, err := st.LookupAccount(context.Background(), "erin")
	if err != nil {
		t.Fatal(err)
	}
	if acct.UsedBytes != 900<<10+100 || acct.UsedFiles != 2 {
		t.Errorf("after the first session used = %d bytes, %d files; want %d, 2", acct.UsedBytes, acct.UsedFiles, 900<<10+100)
	}
	if err := upload(c, "new", make([]byte, 200<<10)); err == nil {
		t.Error("a 200 KiB upload fit in a 1 MiB quota already holding 900 KiB")
	}

	// Once per account per process: a later session does not walk the
	// home again (what ferry charged since is in the counters).
	writeFile(t, filepath.Join(home, "later"), 5000)
	sftpClient(t, addr, "erin", ssh.Password("pw-erin"))
	again, err := st.LookupAccount(context.Background(), "erin")
	if err != nil {
		t.Fatal(err)
	}
	if again.UsedBytes != acct.UsedBytes || again.UsedFiles != acct.UsedFiles {
		t.Errorf("second session changed usage to %d bytes, %d files; want it left at %d, %d",
			again.UsedBytes, again.UsedFiles, acct.UsedBytes, acct.UsedFiles)
	}
}
