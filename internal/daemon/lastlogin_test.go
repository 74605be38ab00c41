package daemon

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

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
		a, err := st.LookupAccount(context.Background(), user)
		if err != nil {
			t.Fatal(err)
		}
		if a.LastLoginAt.IsZero() {
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
