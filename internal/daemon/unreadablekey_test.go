package daemon

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestUnreadableStoredKeyLogged: a key line an older ferry stored and this
// one refuses (command="" was taken as "no command" until it was refused)
// stopped logging in after the upgrade with only "authentication failed"
// in the log; the refusal now says which stored key and why, for the key
// offered, and stays silent for other keys' logins.
func TestUnreadableStoredKeyLogged(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	stale, other := newTestSigner(t), newTestSigner(t)
	addAccount(t, st, "upgraded", "pw-upgraded", 0)
	a, err := st.LookupAccount(context.Background(), "upgraded")
	if err != nil {
		t.Fatal(err)
	}
	// As the old ferry stored it: the store of today refuses the line.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fp := ssh.FingerprintSHA256(stale.PublicKey())
	if _, err := db.Exec("INSERT INTO authorized_keys (account_id, line, fingerprint, key_type, comment) VALUES (?, ?, ?, 'ssh-ed25519', '')",
		a.ID, `command="" `+authorizedLine(stale), fp); err != nil {
		t.Fatal(err)
	}
	addr, logs := startDaemonLogs(t, dir, "", func(c *Config) { c.PerSourcePenalties.Enabled = false })
	login := func(s ssh.Signer) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "upgraded", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}
	if login(other) == nil {
		t.Fatal("a key the account does not have logged in")
	}
	if strings.Contains(logs.String(), "authorized key unreadable") {
		t.Fatalf("another key's login logged the unreadable line:\n%s", logs.String())
	}
	if login(stale) == nil {
		t.Fatal(`a command="" key logged in`)
	}
	got := logs.String()
	if !strings.Contains(got, "authorized key unreadable") || !strings.Contains(got, fp) || !strings.Contains(got, "command") {
		t.Fatalf("the unreadable stored key was not logged with its fingerprint and reason:\n%s", got)
	}
}
