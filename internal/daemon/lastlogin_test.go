package daemon

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	_ "modernc.org/sqlite"

	"github.com/ferry-sftp/ferry/store"
)

// TestLastLoginEveryMethod: an account's last login (ferry user list and
// show, LAST LOGIN) was written only by a password login, so an account
// that logs in with a key or a certificate, most automated ones, showed
// "never" however often it was used, and looked stale to an admin
// pruning accounts. It is written once authentication completes, by any
// method, and not by a first step that never completes.
func TestLastLoginEveryMethod(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	keySigner, ca := newTestSigner(t), newTestSigner(t)
	addAccount(t, st, "bykey", "pw-bykey", 0, authorizedLine(keySigner))
	addAccount(t, st, "bycert", "pw-bycert", 0, "cert-authority "+authorizedLine(ca))
	addAccount(t, st, "bypassword", "pw-bypassword", 0)
	addAccount(t, st, "twostep", "pw-twostep", 0, authorizedLine(newTestSigner(t)))
	if _, err := st.ModifyAccount(context.Background(), "twostep", func(a *store.Account) error {
		a.AuthMethods = "password,publickey"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.PerSourcePenalties.Enabled = false })

	login := func(user string, auth ssh.AuthMethod) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{auth},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			return err
		}
		// A session round trip: the connection has started on the
		// server's side, past the point where the login is recorded.
		s, err := c.NewSession()
		if err == nil {
			s.Close()
		}
		c.Close()
		return nil
	}
	for user, auth := range map[string]ssh.AuthMethod{
		"bykey":      ssh.PublicKeys(keySigner),
		"bycert":     ssh.PublicKeys(userCertSigner(t, ca, "bycert")),
		"bypassword": ssh.Password("pw-bypassword"),
	} {
		if err := login(user, auth); err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
	}
	// The password step of "password,publickey" succeeds, the key step
	// is never made: no login.
	if err := login("twostep", ssh.Password("pw-twostep")); err == nil {
		t.Fatal("twostep logged in with its password alone")
	}

	for _, user := range []string{"bykey", "bycert", "bypassword"} {
		if !waitLastLogin(t, st, user) {
			t.Errorf("%s: last login never after logging in", user)
		}
	}
	a, err := st.LookupAccount(context.Background(), "twostep")
	if err != nil {
		t.Fatal(err)
	}
	if !a.LastLoginAt.IsZero() {
		t.Errorf("twostep: last login %v after a login that never completed", a.LastLoginAt)
	}
}

// TestLastLoginWhileDatabaseBusy: the last-login write ran in the login
// path, so while another process held SQLite's write lock (ferry user
// import of many accounts) every login stalled until the write gave up,
// 5 s, and the login was then never recorded. A login now goes ahead at
// once and its time is written once the lock is free.
func TestLastLoginWhileDatabaseBusy(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "busy", "pw-busy", 0)
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.PerSourcePenalties.Enabled = false })

	// Another writer, as `ferry user import` would be: it holds SQLite's
	// write lock until released.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "ferry.db")+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := lock.ExecContext(ctx, "COMMIT"); err != nil {
				t.Error(err)
			}
		}
	}
	defer release()

	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "busy", Auth: []ssh.AuthMethod{ssh.Password("pw-busy")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	release()

	if !waitLastLogin(t, st, "busy") {
		t.Fatal("last login never recorded after the database's write lock was released")
	}
}

// waitLastLogin reports whether user's last login is recorded within
// 15 s: it is written off the login path.
func waitLastLogin(t *testing.T, st store.Store, user string) bool {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, err := st.LookupAccount(context.Background(), user)
		if err != nil {
			t.Fatal(err)
		}
		if !a.LastLoginAt.IsZero() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
