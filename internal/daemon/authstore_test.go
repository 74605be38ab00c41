package daemon

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/store"
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
