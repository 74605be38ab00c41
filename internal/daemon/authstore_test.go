package daemon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/store"
	"golang.org/x/crypto/ssh"
)

// TestAuthenticatorLogsStoreFailure: a login refused because the account
// store failed (PostgreSQL stopped: "connection refused") is logged with
// the store's error; the log said only "authentication failed", as for a
// wrong password. An unknown user is not a store failure.
func TestAuthenticatorLogsStoreFailure(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addAccount(t, st, "alice", "pw-alice", 0)
	var logs testenv.LockedBuffer
	a := &accountAuthenticator{st: st, memo: &accountMemo{}, pv: store.DefaultPasswordVerifier(), now: time.Now,
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	key, err := keys.ParsePublicKey(newTestSigner(t).PublicKey().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PublicKey(ctx, testMeta{"mallory"}, key); !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := a.Password(ctx, testMeta{"mallory"}, []byte("pw")); !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("unknown user: %v", err)
	}
	if out := logs.String(); out != "" {
		t.Errorf("unknown user logged as a store failure:\n%s", out)
	}

	st.Close() // every query now fails
	if _, err := a.PublicKey(ctx, testMeta{"alice"}, key); !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("publickey with the store closed: %v, want ErrDenied", err)
	}
	if _, err := a.Password(ctx, testMeta{"bob"}, []byte("pw-alice")); !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("password with the store closed: %v, want ErrDenied", err)
	}
	out := logs.String()
	for _, user := range []string{"alice", "bob"} {
		if !strings.Contains(out, "level=WARN msg=\"account store failed; login refused\" user="+user) {
			t.Errorf("store failure for %s not logged:\n%s", user, out)
		}
	}
	if !strings.Contains(out, "sql: statement is closed") {
		t.Errorf("log does not carry the store's error:\n%s", out)
	}
}

// TestStoreOutageDoesNotPenaliseClients: logins refused because the
// account store failed are not the client's authentication failures. A
// PostgreSQL restart, or a fleet of servers running it out of connections
// ("too many clients already"), refused every login meanwhile, and each
// counted against its address as authfail: four connections of one
// client (OpenSSH, rclone retrying) left it refused by the penalty for a
// while after the database came back. A wrong key still counts.
func TestStoreOutageDoesNotPenaliseClients(t *testing.T) {
	dir := t.TempDir()
	addr, logs := startDaemonLogs(t, dir, "", nil) // default per_source_penalties: authfail:5s min:15s
	st := openSQLiteStore(t, dir)
	signer := newTestSigner(t)
	addAccount(t, st, "alice", "pw-alice", 0, authorizedLine(signer))
	db, err := sql.Open("sqlite", filepath.Join(dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// closed waits until the daemon has ended (and penalised) n
	// connections: a client's Dial returns before the server records it.
	closed := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), `msg="connection closed"`) < n; {
			if time.Now().After(deadline) {
				t.Fatalf("the daemon did not log %d closed connections", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	login := func(s ssh.Signer) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}

	// The store cannot answer: every lookup fails with "no such table".
	exec("ALTER TABLE accounts RENAME TO accounts_away")
	for i := range 5 {
		if err := login(signer); err == nil {
			t.Fatalf("login %d succeeded with the store failing", i)
		}
	}
	exec("ALTER TABLE accounts_away RENAME TO accounts")
	closed(5)
	if err := login(signer); err != nil {
		t.Fatalf("login after the store came back: %v", err)
	}

	// Wrong keys are still the client's failures: 4 × 5 s goes past min.
	other := newTestSigner(t)
	for range 4 {
		if err := login(other); err == nil {
			t.Fatal("a key alice does not have logged in")
		}
	}
	closed(10)
	if err := login(signer); err == nil {
		t.Fatal("the address was not penalised for wrong keys")
	}
}

// TestFromConnInfoStoreUnavailable: a connection whose every refusal was
// the store's (ConnInfo.AuthUnavailable) is not penalised, however it
// ends; one wrong credential among them still is.
func TestFromConnInfoStoreUnavailable(t *testing.T) {
	gaveUp := &wire.DisconnectError{Reason: wire.DisconnectNoMoreAuthMethodsAvailable, Remote: true}
	for _, tc := range []struct {
		name string
		info server.ConnInfo
		want []Event
	}{
		{"store failed, client gave up", server.ConnInfo{Phase: "auth", AuthFailures: 2, AuthUnavailable: 2, Err: gaveUp}, nil},
		{"store failed, client closed", server.ConnInfo{Phase: "auth", AuthFailures: 1, AuthUnavailable: 1, Err: io.EOF}, nil},
		{"store failed, then a wrong password", server.ConnInfo{Phase: "auth", AuthFailures: 2, AuthUnavailable: 1, Err: gaveUp}, []Event{EventAuthFail}},
	} {
		if got := FromConnInfo(&tc.info); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
