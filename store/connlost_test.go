package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestPostgresLookupAfterBackendsTerminated: PostgreSQL restarting, failing
// over, or an admin's pg_terminate_backend ends the connections ferry keeps
// in its pool, and each one's next query failed with "terminating
// connection due to administrator command" (SQLSTATE 57P01): a busy
// server's logins (its connections reused within pgx's one-second no-ping
// window) were refused once per pooled connection after the database was
// back. Lookups, which change nothing, are tried again on another
// connection.
func TestPostgresLookupAfterBackendsTerminated(t *testing.T) {
	storeURL := freshPostgresSchema(t)
	var rnd [6]byte
	rand.Read(rnd[:])
	app := fmt.Sprintf("ferry_connlost_%x", rnd)
	u, err := url.Parse(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	ctx := t.Context()
	s, err := Open(ctx, u.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateAccount(ctx, &Account{Name: "alice", Enabled: true}, nil); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	backends := func() int {
		t.Helper()
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Several connections in the pool, as concurrent logins leave them.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if _, _, err := s.LookupLogin(ctx, "alice"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := backends(); n < 2 {
		t.Fatalf("%d pooled connections, want several", n)
	}
	if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); backends() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("terminated backends did not go away")
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range 6 {
		if _, _, err := s.LookupLogin(lctx, "alice"); err != nil {
			t.Fatalf("login lookup %d after the backends were terminated: %v", i, err)
		}
		if _, err := s.LookupAccount(lctx, "alice"); err != nil {
			t.Fatalf("account lookup %d after the backends were terminated: %v", i, err)
		}
	}
}
