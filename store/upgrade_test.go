package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The upgrade tests open databases an older ferry wrote, so that every
// migration added later is run against real old rows (imported hashes,
// key options, usage counters, sequences) and not only against an empty
// schema. testdata/schema1 was made by ferry 441eac8, the last commit
// before schema version 2, with:
//
//	ferry user add pw1 (password pwpass1); key1 (a plain key); opt1 (a key
//	  with from=, no-pty, environment=, command=); quota1 (password
//	  quotapw, --quota-bytes 10M --quota-files 100 --no-delete --symlinks,
//	  then two 3,000,000-byte uploads through its server); dis1
//	  (--disabled, password dispw); exp1 (--expires 2020-01-01, password
//	  exppw); fut1 (--expires 2099-01-01 --readonly --allow-from
//	  127.0.0.0/8 --max-sessions 3); sh1 (--shell --auth-methods password
//	  --uid 12345 --gid 12345 --force-command "echo hello-forced");
//	  caacct (a cert-authority,principals="caacct" line)
//	ferry user import --csv: imp6 ($6$, sha512pw), impb ($2b$, bcryptpw),
//	  impm ($1$, md5pw)
//
// A new schema version adds testdata/schemaN made by the last binary
// before it; these fixtures are never edited.

// loadFixture runs a dump file's SQL on db.
func loadFixture(t *testing.T, db *sql.DB, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), string(b)); err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
}

func TestUpgradeFromSchema1SQLite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ferry.db")
	db, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, db, "schema1/sqlite.sql")
	db.Close()
	checkUpgradeFromSchema1(t, "sqlite://"+p)
}

func TestUpgradeFromSchema1Postgres(t *testing.T) {
	u := freshPostgresSchema(t)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, db, "schema1/postgres.sql")
	db.Close()
	checkUpgradeFromSchema1(t, u)
}

func checkUpgradeFromSchema1(t *testing.T, url string) {
	ctx := t.Context()
	st, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("open a schema 1 database: %v", err)
	}
	defer st.Close()
	ss := st.(*sqlStore)
	ms, err := loadMigrations(ss.d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	var latest int
	if err := ss.db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if want := ms[len(ms)-1].version; latest != want {
		t.Fatalf("schema at version %d after Open, want %d", latest, want)
	}

	all, err := st.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range all {
		names = append(names, a.Name)
		// Columns added after schema 1 take their "as before" value.
		if a.MaxConnections != 0 {
			t.Errorf("%s: max_connections %d after upgrade, want 0 (unlimited, as before)", a.Name, a.MaxConnections)
		}
	}
	if got, want := strings.Join(names, " "), "caacct dis1 exp1 fut1 imp6 impb impm key1 opt1 pw1 quota1 sh1"; got != want {
		t.Fatalf("accounts after upgrade: %s, want %s", got, want)
	}

	get := func(name string) *Account {
		t.Helper()
		a, err := st.LookupAccount(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	q := get("quota1")
	if q.QuotaBytes != 10<<20 || q.QuotaFiles != 100 || q.UsedBytes != 6000000 || q.UsedFiles != 2 ||
		!q.Permissions.NoDelete || !q.Permissions.AllowSymlinks || q.Permissions.ReadOnly || q.LastLoginAt.IsZero() {
		t.Errorf("quota1 after upgrade: %+v", q)
	}
	if d := get("dis1"); d.Enabled {
		t.Errorf("dis1 enabled after upgrade")
	}
	if e := get("exp1"); !e.ExpiresAt.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("exp1 expires %v after upgrade", e.ExpiresAt)
	}
	f := get("fut1")
	if !f.ExpiresAt.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) || !f.Permissions.ReadOnly || f.MaxSessions != 3 ||
		len(f.AllowFrom) != 1 || f.AllowFrom[0].String() != "127.0.0.0/8" {
		t.Errorf("fut1 after upgrade: %+v", f)
	}
	sh := get("sh1")
	if !sh.Permissions.AllowShell || sh.AuthMethods != "password" || sh.UID == nil || *sh.UID != 12345 ||
		sh.GID == nil || *sh.GID != 12345 || sh.ForceCommand != "echo hello-forced" {
		t.Errorf("sh1 after upgrade: %+v", sh)
	}

	// Every password, argon2id or imported, still logs in; disabled and
	// expired accounts still do not.
	v := DefaultPasswordVerifier()
	now := time.Now()
	for name, pw := range map[string]string{"pw1": "pwpass1", "quota1": "quotapw", "imp6": "sha512pw", "impb": "bcryptpw", "impm": "md5pw"} {
		if _, err := PasswordLogin(ctx, st, v, name, pw, now); err != nil {
			t.Errorf("password login %s after upgrade: %v", name, err)
		}
	}
	for name, pw := range map[string]string{"dis1": "dispw", "exp1": "exppw"} {
		if _, err := PasswordLogin(ctx, st, v, name, pw, now); !errors.Is(err, ErrLoginFailed) {
			t.Errorf("password login %s (disabled or expired) after upgrade: err = %v", name, err)
		}
	}

	// Key lines keep their options, and the current parser (what a login
	// runs) still accepts each of them as it was stored.
	wantPrefix := map[string]string{
		"key1":   "ssh-ed25519 AAAA",
		"opt1":   `from="127.0.0.1,::1",no-pty,environment="X=1",command="echo forced-opt" ssh-ed25519 AAAA`,
		"caacct": `cert-authority,principals="caacct" ssh-ed25519 AAAA`,
	}
	for name, prefix := range wantPrefix {
		_, ks, err := st.LookupLogin(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != 1 || !strings.HasPrefix(ks[0].Line, prefix) {
			t.Errorf("%s keys after upgrade: %+v, want one starting %q", name, ks, prefix)
			continue
		}
		pk, err := DefaultKeyParser(ks[0].Line)
		if err != nil || pk.Line != ks[0].Line || pk.Fingerprint != ks[0].Fingerprint {
			t.Errorf("%s: stored key line no longer parses to itself: %+v, %v", name, pk, err)
		}
	}

	// The quota still holds against the old usage, and new rows continue
	// the old id sequences.
	if ok, err := st.AddUsage(ctx, "quota1", 5000000, 1); err != nil || ok {
		t.Errorf("AddUsage past quota1's quota after upgrade: ok=%v err=%v", ok, err)
	}
	if ok, err := st.AddUsage(ctx, "quota1", 4000000, 1); err != nil || !ok {
		t.Errorf("AddUsage within quota1's quota after upgrade: ok=%v err=%v", ok, err)
	}
	n := &Account{Name: "newcomer", Enabled: true}
	if err := st.CreateAccount(ctx, n, []string{newKeyLine(t, "new")}); err != nil {
		t.Fatalf("create an account after upgrade: %v", err)
	}
	if n.ID != 13 {
		t.Errorf("new account id %d after upgrade, want 13 (the old sequence continued)", n.ID)
	}
	if _, err := st.AddAuthorizedKey(ctx, "key1", newKeyLine(t, "second")); err != nil {
		t.Errorf("add a key after upgrade: %v", err)
	}
}

// TestSchemaVersion: both back ends' migrations end at the version
// SchemaVersion reports (they are kept in step).
func TestSchemaVersion(t *testing.T) {
	for _, d := range []*dialect{sqliteDialect, postgresDialect} {
		ms, err := loadMigrations(d.migrations)
		if err != nil {
			t.Fatal(err)
		}
		if got := ms[len(ms)-1].version; got != SchemaVersion() {
			t.Errorf("%s migrations end at %d, SchemaVersion() = %d", d.name, got, SchemaVersion())
		}
	}
}

// TestPostgresMigrationLockWait: a migration waiting for its lock on
// accounts queues every later query on the table behind it, so while one
// long transaction (a panel's, a report's) held the table, a new ferry's
// migration stalled the logins of every server still running, the whole
// fleet of a rolling upgrade. Each attempt now gives up after
// migrationLockTimeout, the queued queries run, and Open tries again,
// succeeding once the transaction ends.
func TestPostgresMigrationLockWait(t *testing.T) {
	u := freshPostgresSchema(t)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loadFixture(t, db, "schema1/postgres.sql")
	defer func(old time.Duration) { migrationLockTimeout = old }(migrationLockTimeout)
	migrationLockTimeout = 200 * time.Millisecond

	ctx := t.Context()
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	var holderPID int
	if err := holder.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&holderPID); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "SELECT name FROM accounts FOR SHARE"); err != nil {
		t.Fatal(err)
	}

	opened := make(chan error, 1)
	go func() {
		st, err := Open(ctx, u, Options{})
		if err == nil {
			st.Close()
		}
		opened <- err
	}()
	// Wait (bounded) until the migration is queued behind the holder.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holderPID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the migration never waited for the holder's lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What a running server's login reads: it must not wait for the
	// holder's transaction to end.
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var name string
	if err := db.QueryRowContext(qctx, "SELECT name FROM accounts WHERE name = 'pw1'").Scan(&name); err != nil {
		t.Fatalf("a login's read while a migration waited for a lock: %v", err)
	}
	select {
	case err := <-opened:
		t.Fatalf("Open returned while the lock was held: %v", err)
	default:
	}
	holder.Rollback()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open after the lock was released: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Open did not finish after the lock was released")
	}
	var v int
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version %d (%v) after Open, want %d", v, err, SchemaVersion())
	}
}

// TestInspectSchemaPostgres: InspectSchema reads a PostgreSQL schema's
// version (the one search_path names) without changing it.
func TestInspectSchemaPostgres(t *testing.T) {
	u := freshPostgresSchema(t)
	ctx := t.Context()
	if v, err := InspectSchema(ctx, u); err != nil || v != 0 {
		t.Fatalf("empty schema: version %d, %v; want 0", v, err)
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loadFixture(t, db, "schema1/postgres.sql")
	if v, err := InspectSchema(ctx, u); err != nil || v != 1 {
		t.Fatalf("schema 1 fixture: version %d, %v; want 1", v, err)
	}
	if v, err := InspectSchema(ctx, u); err != nil || v != 1 {
		t.Fatalf("inspected twice: version %d, %v; want 1 (InspectSchema must not migrate)", v, err)
	}
	st, err := Open(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if v, err := InspectSchema(ctx, u); err != nil || v != SchemaVersion() {
		t.Fatalf("after Open: version %d, %v; want %d", v, err, SchemaVersion())
	}
}
