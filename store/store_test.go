package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// newKeyLine returns a fresh ssh-ed25519 authorized_keys line.
func newKeyLine(t testing.TB, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blob := wire.AppendString(wire.AppendStringS(nil, "ssh-ed25519"), pub)
	line := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob)
	if comment != "" {
		line += " " + comment
	}
	return line
}

type storeFactory func(t *testing.T) Store

func sqliteFactory(t *testing.T) Store {
	t.Helper()
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// postgresURL returns FERRY_TEST_POSTGRES or skips (fails under CI=true).
func postgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("FERRY_TEST_POSTGRES")
	if u == "" {
		testenv.Missing(t, "FERRY_TEST_POSTGRES is not set (source .ci/setup-postgres.sh)")
	}
	return u
}

// freshPostgresSchema creates an empty schema for one test (so reruns and
// parallel packages never see each other's rows) and returns a store URL
// that uses it.
func freshPostgresSchema(t *testing.T) string {
	t.Helper()
	base := postgresURL(t)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := fmt.Sprintf("ferry_test_%x", rnd)
	if _, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func postgresFactory(t *testing.T) Store {
	t.Helper()
	s, err := Open(t.Context(), freshPostgresSchema(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T)   { runStoreSuite(t, sqliteFactory) }
func TestPostgres(t *testing.T) { postgresURL(t); runStoreSuite(t, postgresFactory) }

func fullAccount(name string) *Account {
	uid, gid := uint32(1001), uint32(1002)
	return &Account{
		Name:         name,
		PasswordHash: "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		Home:         "/srv/sftp/" + name,
		Enabled:      true,
		ExpiresAt:    time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC),
		AuthMethods:  "publickey,password publickey",
		Permissions: Permissions{ReadOnly: true, UploadOnly: false, NoDelete: true, NoOverwrite: true,
			AllowSymlinks: true, AllowShell: true, AllowForwarding: true},
		QuotaBytes:     10 << 30,
		QuotaFiles:     1000,
		MaxSessions:    4,
		MaxConnections: 3,
		AllowFrom:      []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
		UID:            &uid,
		GID:            &gid,
		ForceCommand:   "internal-sftp",
	}
}

// sameSettings compares everything a caller sets (not IDs or timestamps
// the store assigns).
func sameSettings(t *testing.T, got, want *Account) {
	t.Helper()
	g, w := *got, *want
	g.ID, g.CreatedAt, g.UpdatedAt, g.LastLoginAt = 0, time.Time{}, time.Time{}, time.Time{}
	w.ID, w.CreatedAt, w.UpdatedAt, w.LastLoginAt = 0, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("account differs:\n got  %+v\n want %+v", g, w)
	}
}

func mustCount(t *testing.T, s Store, want int) {
	t.Helper()
	as, err := s.ListAccounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != want {
		t.Fatalf("%d accounts, want %d", len(as), want)
	}
}

func runStoreSuite(t *testing.T, newStore storeFactory) {
	t.Run("CreateLookup", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		a := fullAccount("alice")
		before := time.Now().Add(-time.Second).Truncate(time.Second)
		if err := s.CreateAccount(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
		if a.ID == 0 || a.CreatedAt.Before(before) {
			t.Fatalf("CreateAccount did not set ID/CreatedAt: %+v", a)
		}
		got, err := s.LookupAccount(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		sameSettings(t, got, a)
		if got.ID != a.ID || !got.CreatedAt.Equal(a.CreatedAt) || !got.LastLoginAt.IsZero() {
			t.Fatalf("stored %+v", got)
		}
		// Minimal account: NULLs and defaults round-trip as zero values.
		b := &Account{Name: "bob", Enabled: false}
		if err := s.CreateAccount(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
		got, err = s.LookupAccount(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		sameSettings(t, got, b)
		if got.UID != nil || got.HasPassword() || !got.ExpiresAt.IsZero() || got.AllowFrom != nil {
			t.Fatalf("minimal account came back as %+v", got)
		}
		as, err := s.ListAccounts(ctx)
		if err != nil || len(as) != 2 || as[0].Name != "alice" || as[1].Name != "bob" {
			t.Fatalf("ListAccounts = %v, %v", as, err)
		}
		if _, err := s.LookupAccount(ctx, "carol"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LookupAccount(unknown) err = %v, want ErrNotFound", err)
		}
		// Names are case-sensitive, like OpenSSH's.
		if _, err := s.LookupAccount(ctx, "Alice"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LookupAccount(Alice) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("CreateRejects", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.CreateAccount(ctx, &Account{Name: "alice", Enabled: true}, nil); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			a    *Account
			keys []string
			want error
		}{
			{&Account{Name: "alice"}, nil, ErrExists},
			{&Account{Name: ""}, nil, ErrInvalid},
			{&Account{Name: "-x"}, nil, ErrInvalid},
			{&Account{Name: "a/b"}, nil, ErrInvalid},
			{&Account{Name: ".."}, nil, ErrInvalid},
			{&Account{Name: "a b"}, nil, ErrInvalid},
			{&Account{Name: strings.Repeat("a", 65)}, nil, ErrInvalid},
			{&Account{Name: "x", Home: "relative/home"}, nil, ErrInvalid},
			{&Account{Name: "x", QuotaBytes: -1}, nil, ErrInvalid},
			{&Account{Name: "x", AuthMethods: "publickey,hostbased"}, nil, ErrInvalid},
			{&Account{Name: "x", MaxSessions: -1}, nil, ErrInvalid},
			{&Account{Name: "x", MaxConnections: -1}, nil, ErrInvalid},
			{&Account{Name: "x"}, []string{"ssh-ed25519 !!!notbase64"}, ErrInvalid},
			{&Account{Name: "x"}, []string{newKeyLine(t, ""), "not a key"}, ErrInvalid},
		} {
			err := s.CreateAccount(ctx, tc.a, tc.keys)
			if !errors.Is(err, tc.want) {
				t.Errorf("CreateAccount(%q, %q) err = %v, want %v", tc.a.Name, tc.keys, err, tc.want)
			}
		}
		mustCount(t, s, 1)
		// The longest valid name and the whole charset.
		for _, name := range []string{strings.Repeat("a", 64), "user@example.com", "_x.y-z9", "9lives"} {
			if err := s.CreateAccount(ctx, &Account{Name: name}, nil); err != nil {
				t.Errorf("CreateAccount(%q): %v", name, err)
			}
		}
	})

	t.Run("LookupLogin", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		want := fullAccount("carol")
		k1, k2 := newKeyLine(t, "one"), newKeyLine(t, "two")
		if err := s.CreateAccount(ctx, want, []string{k1, k2}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, &Account{Name: "dave", Enabled: true}, nil); err != nil {
			t.Fatal(err)
		}
		acct, keys, err := s.LookupLogin(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		sameSettings(t, acct, want)
		byKeys, err := s.AuthorizedKeys(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || len(byKeys) != 2 {
			t.Fatalf("LookupLogin keys %+v, AuthorizedKeys %+v", keys, byKeys)
		}
		for i := range keys {
			if *keys[i] != *byKeys[i] {
				t.Fatalf("key %d: LookupLogin %+v, AuthorizedKeys %+v", i, keys[i], byKeys[i])
			}
		}
		byName, err := s.LookupAccount(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(acct, byName) {
			t.Fatalf("LookupLogin account %+v, LookupAccount %+v", acct, byName)
		}
		// An account without keys is found, with none.
		if acct, keys, err := s.LookupLogin(ctx, "dave"); err != nil || acct.Name != "dave" || len(keys) != 0 {
			t.Fatalf("keyless account: %+v %+v %v", acct, keys, err)
		}
		if _, _, err := s.LookupLogin(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown account err = %v, want ErrNotFound", err)
		}
	})
	t.Run("Keys", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		k1 := newKeyLine(t, "alice@laptop")
		k2 := `from="192.0.2.0/24",command="echo \"hi there\"",no-pty ` + newKeyLine(t, "ci key")
		if err := s.CreateAccount(ctx, &Account{Name: "alice", Enabled: true}, []string{k1, k1 + " dup"}); err != nil {
			t.Fatal(err)
		}
		added, err := s.AddAuthorizedKey(ctx, "alice", "  "+k2+"  ")
		if err != nil {
			t.Fatal(err)
		}
		if added.Line != k2 || added.Comment != "ci key" || added.Type != "ssh-ed25519" || added.ID == 0 {
			t.Fatalf("AddAuthorizedKey = %+v", added)
		}
		keys, err := s.AuthorizedKeys(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].Line != k1 || keys[0].Comment != "alice@laptop" || keys[1].Fingerprint != added.Fingerprint ||
			keys[0].Account != "alice" {
			t.Fatalf("AuthorizedKeys = %+v", keys)
		}
		if !strings.HasPrefix(keys[0].Fingerprint, "SHA256:") || len(keys[0].Fingerprint) != len("SHA256:")+43 {
			t.Fatalf("fingerprint %q", keys[0].Fingerprint)
		}
		if _, err := s.AddAuthorizedKey(ctx, "alice", k1); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate key err = %v, want ErrExists", err)
		}
		if _, err := s.AddAuthorizedKey(ctx, "nobody", newKeyLine(t, "")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("key for unknown account err = %v, want ErrNotFound", err)
		}
		if _, err := s.AddAuthorizedKey(ctx, "alice", "ssh-ed25519"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad key err = %v, want ErrInvalid", err)
		}
		// The same key may belong to two accounts.
		if err := s.CreateAccount(ctx, &Account{Name: "bob"}, []string{k1}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, &Account{Name: "carol"}, nil); err != nil {
			t.Fatal(err)
		}
		all, err := s.AllAuthorizedKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || len(all["alice"]) != 2 || all["alice"][0].Line != k1 || all["alice"][1].Line != k2 ||
			all["alice"][1].Account != "alice" || len(all["bob"]) != 1 || all["bob"][0].Line != k1 || all["bob"][0].Account != "bob" {
			t.Fatalf("AllAuthorizedKeys = %v", all)
		}
		if err := s.DeleteAuthorizedKey(ctx, "alice", keys[0].Fingerprint); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAuthorizedKey(ctx, "alice", keys[0].Fingerprint); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete err = %v, want ErrNotFound", err)
		}
		if err := s.DeleteAuthorizedKey(ctx, "alice", fmt.Sprint(keys[1].ID)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAuthorizedKey(ctx, "alice", "junk"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("delete junk err = %v", err)
		}
		if err := s.DeleteAuthorizedKey(ctx, "nobody", "1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete for unknown account err = %v", err)
		}
		if keys, _ := s.AuthorizedKeys(ctx, "alice"); len(keys) != 0 {
			t.Fatalf("keys left: %+v", keys)
		}
		if keys, _ := s.AuthorizedKeys(ctx, "bob"); len(keys) != 1 || keys[0].Line != k1 {
			t.Fatalf("bob's keys: %+v", keys)
		}
		// Deleting an account deletes its keys.
		if err := s.DeleteAccount(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if keys, err := s.AuthorizedKeys(ctx, "bob"); err != nil || len(keys) != 0 {
			t.Fatalf("keys after delete: %v, %v", keys, err)
		}
		if err := s.DeleteAccount(ctx, "bob"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second DeleteAccount err = %v", err)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		a := &Account{Name: "alice", Enabled: true}
		if err := s.CreateAccount(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.AddUsage(ctx, "alice", 100, 1); !ok || err != nil {
			t.Fatal(ok, err)
		}
		want := fullAccount("alice")
		if err := s.UpdateAccount(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, _ := s.LookupAccount(ctx, "alice")
		want.UsedBytes, want.UsedFiles = 100, 1 // usage is not UpdateAccount's
		sameSettings(t, got, want)
		if err := s.UpdateAccount(ctx, &Account{Name: "nobody"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update unknown err = %v", err)
		}
		bad := *got
		bad.AllowFrom = append(bad.AllowFrom, netip.Prefix{})
		if err := s.UpdateAccount(ctx, &bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("update invalid err = %v", err)
		}
		if err := s.SetPasswordHash(ctx, "alice", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEnabled(ctx, "alice", false); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		if err := s.RecordLogin(ctx, "alice", at); err != nil {
			t.Fatal(err)
		}
		got, _ = s.LookupAccount(ctx, "alice")
		if got.HasPassword() || got.Enabled || !got.LastLoginAt.Equal(at) {
			t.Fatalf("after SetPasswordHash/SetEnabled/RecordLogin: %+v", got)
		}
		for name, err := range map[string]error{
			"SetPasswordHash": s.SetPasswordHash(ctx, "nobody", "x"),
			"SetEnabled":      s.SetEnabled(ctx, "nobody", true),
			"RecordLogin":     s.RecordLogin(ctx, "nobody", at),
			"SetUsage":        s.SetUsage(ctx, "nobody", 1, 1),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s(unknown) err = %v", name, err)
			}
		}
	})

	t.Run("UpgradePasswordHash", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.CreateAccount(ctx, &Account{Name: "alice", PasswordHash: "$1$old", Enabled: true}, nil); err != nil {
			t.Fatal(err)
		}
		hash := func() string {
			a, err := s.LookupAccount(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			return a.PasswordHash
		}
		// Only over the hash the caller verified.
		if ok, err := s.UpgradePasswordHash(ctx, "alice", "$1$other", "$argon2id$new"); ok || err != nil || hash() != "$1$old" {
			t.Fatalf("upgrade over a changed hash: ok=%v err=%v, stored %q", ok, err, hash())
		}
		if ok, err := s.UpgradePasswordHash(ctx, "alice", "$1$old", "$argon2id$new"); !ok || err != nil || hash() != "$argon2id$new" {
			t.Fatalf("upgrade: ok=%v err=%v, stored %q", ok, err, hash())
		}
		// A removed password (NULL) is never brought back.
		if err := s.SetPasswordHash(ctx, "alice", ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.UpgradePasswordHash(ctx, "alice", "", "$argon2id$new"); ok || err != nil || hash() != "" {
			t.Fatalf("upgrade over a removed password: ok=%v err=%v, stored %q", ok, err, hash())
		}
		if ok, err := s.UpgradePasswordHash(ctx, "nobody", "$1$old", "$argon2id$new"); ok || err != nil {
			t.Fatalf("upgrade of an unknown account: ok=%v err=%v", ok, err)
		}
		if _, err := s.UpgradePasswordHash(ctx, "alice", "$1$old", ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("upgrade to no hash: err=%v", err)
		}
	})

	t.Run("ModifyAccount", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.CreateAccount(ctx, &Account{Name: "alice", PasswordHash: "$1$old", Enabled: true}, nil); err != nil {
			t.Fatal(err)
		}
		// Writers that come while change runs (`ferry user disable` and
		// `user passwd` next to a panel's `user set`) wait and then
		// apply; they are not overwritten with what change was given.
		concurrent := make(chan error, 2)
		got, err := s.ModifyAccount(ctx, "alice", func(a *Account) error {
			go func() { concurrent <- s.SetEnabled(ctx, "alice", false) }()
			go func() { concurrent <- s.SetPasswordHash(ctx, "alice", "$1$new") }()
			// Long enough for writers that are not held back to land
			// before this change is stored.
			time.Sleep(200 * time.Millisecond)
			a.QuotaBytes = 1 << 20
			a.Name = "mallory" // cannot rename
			return nil
		})
		if err != nil || got.Name != "alice" || got.QuotaBytes != 1<<20 {
			t.Fatalf("ModifyAccount = %+v, %v", got, err)
		}
		for range 2 {
			if err := <-concurrent; err != nil {
				t.Fatalf("concurrent writer: %v", err)
			}
		}
		a, err := s.LookupAccount(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if a.Enabled || a.PasswordHash != "$1$new" || a.QuotaBytes != 1<<20 {
			t.Fatalf("after ModifyAccount with concurrent writers: enabled=%v hash=%q quota=%d; want false, $1$new, 1M",
				a.Enabled, a.PasswordHash, a.QuotaBytes)
		}
		mustCount(t, s, 1)

		// change's error stores nothing; an invalid result is refused.
		errChange := errors.New("no")
		if _, err := s.ModifyAccount(ctx, "alice", func(a *Account) error { a.QuotaBytes = 5; return errChange }); err != errChange {
			t.Fatalf("change error: %v", err)
		}
		if _, err := s.ModifyAccount(ctx, "alice", func(a *Account) error { a.Home = "relative"; return nil }); !errors.Is(err, ErrInvalid) {
			t.Fatalf("invalid change: %v", err)
		}
		if a, _ := s.LookupAccount(ctx, "alice"); a.QuotaBytes != 1<<20 || a.Home != "" {
			t.Fatalf("failed changes were stored: %+v", a)
		}
		if _, err := s.ModifyAccount(ctx, "nobody", func(*Account) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
	})

	t.Run("Quota", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.CreateAccount(ctx, &Account{Name: "q", QuotaBytes: 1000, QuotaFiles: 3}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccount(ctx, &Account{Name: "unlimited"}, nil); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name         string
			db, df       int64
			ok           bool
			bytes, files int64
		}{
			{"q", 600, 1, true, 600, 1},
			{"q", 400, 1, true, 1000, 2}, // exactly at quota
			{"q", 1, 0, false, 1000, 2},
			{"q", 0, 2, false, 1000, 2}, // files quota
			{"q", 0, 1, true, 1000, 3},
			{"q", -300, -1, true, 700, 2},
			{"q", 300, 0, true, 1000, 2},
			{"q", -5000, -10, true, 0, 0}, // clamped at 0
			{"q", 1001, 0, false, 0, 0},
			{"q", 500, -1, true, 500, 0}, // mixed: files clamp, bytes fit
			{"unlimited", 1 << 40, 1 << 20, true, 1 << 40, 1 << 20},
		}
		for i, st := range steps {
			ok, err := s.AddUsage(ctx, st.name, st.db, st.df)
			if err != nil || ok != st.ok {
				t.Fatalf("step %d: AddUsage(%d, %d) = %v, %v; want %v", i, st.db, st.df, ok, err, st.ok)
			}
			a, _ := s.LookupAccount(ctx, st.name)
			if a.UsedBytes != st.bytes || a.UsedFiles != st.files {
				t.Fatalf("step %d: used %d/%d, want %d/%d", i, a.UsedBytes, a.UsedFiles, st.bytes, st.files)
			}
		}
		if _, err := s.AddUsage(ctx, "nobody", 1, 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("AddUsage(unknown) err = %v", err)
		}
		if _, err := s.AddUsage(ctx, "q", MaxUsageDelta+1, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("AddUsage(huge) err = %v", err)
		}
		// Lowering the quota below usage blocks growth but not deletes.
		if err := s.SetUsage(ctx, "q", 900, 0); err != nil {
			t.Fatal(err)
		}
		a, _ := s.LookupAccount(ctx, "q")
		a.QuotaBytes = 500
		if err := s.UpdateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.AddUsage(ctx, "q", 1, 0); ok {
			t.Fatal("growth allowed over a lowered quota")
		}
		if ok, _ := s.AddUsage(ctx, "q", -100, 0); !ok {
			t.Fatal("delete refused over a lowered quota")
		}
	})

	t.Run("ConcurrentQuota", func(t *testing.T) {
		s := newStore(t)
		testConcurrentQuota(t, s, s)
	})

	t.Run("ImportAllOrNothing", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.CreateAccount(ctx, &Account{Name: "taken"}, nil); err != nil {
			t.Fatal(err)
		}
		batch := []NewAccount{
			{Account: &Account{Name: "new1", Enabled: true}, Keys: []string{newKeyLine(t, "a")}},
			{Account: &Account{Name: "taken"}},
		}
		err := s.ImportAccounts(ctx, batch)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `"taken"`) {
			t.Fatalf("import err = %v, want ErrExists naming \"taken\"", err)
		}
		mustCount(t, s, 1)
		batch[1].Account.Name = "new1"
		if err := s.ImportAccounts(ctx, batch); !errors.Is(err, ErrExists) {
			t.Fatalf("import with a repeated name err = %v", err)
		}
		batch[1].Account.Name = "new2"
		if err := s.ImportAccounts(ctx, batch); err != nil {
			t.Fatal(err)
		}
		mustCount(t, s, 3)
		if keys, _ := s.AuthorizedKeys(ctx, "new1"); len(keys) != 1 {
			t.Fatalf("imported keys: %v", keys)
		}
	})

	t.Run("ImportNamesEveryFailure", func(t *testing.T) {
		// Re-running an import after some accounts were created names
		// every taken name at once (PostgreSQL must not stop at the
		// first, where a failed INSERT aborts the transaction), and
		// invalid entries are all named before anything is written.
		s := newStore(t)
		ctx := t.Context()
		for _, n := range []string{"taken1", "taken2"} {
			if err := s.CreateAccount(ctx, &Account{Name: n}, nil); err != nil {
				t.Fatal(err)
			}
		}
		batch := []NewAccount{
			{Account: &Account{Name: "new1", Enabled: true}},
			{Account: &Account{Name: "taken1"}},
			{Account: &Account{Name: "new2", Enabled: true}, Keys: []string{newKeyLine(t, "k")}},
			{Account: &Account{Name: "taken2"}},
		}
		err := s.ImportAccounts(ctx, batch)
		var ie *ImportErrors
		if !errors.As(err, &ie) || ie.Count != 2 || !errors.Is(err, ErrExists) ||
			!strings.Contains(err.Error(), `"taken1"`) || !strings.Contains(err.Error(), `"taken2"`) {
			t.Fatalf("import err = %v, want both taken names", err)
		}
		mustCount(t, s, 2)
		batch[1].Account.Name, batch[3].Account.Name = "bad name", "new1"
		batch[2].Keys = []string{"ssh-ed25519 AAAA-not-base64"}
		err = s.ImportAccounts(ctx, batch)
		if !errors.As(err, &ie) || ie.Count != 3 || !strings.Contains(err.Error(), `"bad name"`) ||
			!strings.Contains(err.Error(), `account "new2"`) || !strings.Contains(err.Error(), "twice in the input") {
			t.Fatalf("import err = %v, want the name, the key and the repeated name", err)
		}
		mustCount(t, s, 2)
	})

	t.Run("ExternalChangesSeenAtOnce", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.CreateAccount(ctx, &Account{Name: "alice", Enabled: true}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccount(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		// A control panel writing SQL directly, with no notification.
		ss := s.(*sqlStore)
		if _, err := ss.db.ExecContext(ctx, ss.d.rebind("UPDATE accounts SET enabled = ?, allow_from = ? WHERE name = ?"),
			false, "198.51.100.7", "alice"); err != nil {
			t.Fatal(err)
		}
		a, err := s.LookupAccount(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if a.Enabled || len(a.AllowFrom) != 1 || a.AllowFrom[0] != netip.MustParsePrefix("198.51.100.7/32") {
			t.Fatalf("direct SQL change not seen: %+v", a)
		}
		// A malformed list in the database fails the lookup rather than
		// allowing every source.
		if _, err := ss.db.ExecContext(ctx, ss.d.rebind("UPDATE accounts SET allow_from = ? WHERE name = ?"), "10.0.0.0/33", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAccount(ctx, "alice"); err == nil {
			t.Fatal("lookup with a malformed allow_from succeeded")
		}
	})

	t.Run("SchemaMigrations", func(t *testing.T) {
		s := newStore(t)
		ss := s.(*sqlStore)
		ctx := t.Context()
		// Re-running the migrations is a no-op.
		if err := migrate(ctx, ss.db, ss.d, nil); err != nil {
			t.Fatal(err)
		}
		var n, v int
		if err := ss.db.QueryRowContext(ctx, "SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		ms, _ := loadMigrations(ss.d.migrations)
		if n != len(ms) || v != ms[len(ms)-1].version {
			t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, v, len(ms))
		}
		// A database from a newer ferry is refused.
		if _, err := ss.db.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		err := migrate(ctx, ss.db, ss.d, nil)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("migrate on a newer schema err = %v", err)
		}
		// The refusal says which migration made it newer and what to do.
		for _, want := range []string{"version 9999 since 1970-01-01T00:00:00Z, by future", "database schema 9999 or later", "restore the backup"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("newer-schema error %q does not say %q", err, want)
			}
		}
	})
}

// testConcurrentQuota runs bounded AddUsage calls from goroutines split
// across two stores (two servers) and checks that the quota is never
// exceeded and that exactly quota/step calls succeeded.
func testConcurrentQuota(t *testing.T, s1, s2 Store) {
	t.Helper()
	ctx := t.Context()
	const (
		quota      = 40 * 100
		step       = 100
		goroutines = 8
		perG       = 10 // 80 attempts for 40 slots
	)
	if err := s1.CreateAccount(ctx, &Account{Name: "shared", QuotaBytes: quota}, nil); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted int
		errs    []error
	)
	for g := range goroutines {
		s := s1
		if g%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			for range perG {
				ok, err := s.AddUsage(ctx, "shared", step, 1)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if ok {
					granted++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("AddUsage errors: %v", errs)
	}
	a, err := s2.LookupAccount(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if granted != quota/step || a.UsedBytes != quota || a.UsedFiles != int64(granted) {
		t.Fatalf("granted %d, used %d bytes/%d files; want %d grants filling the %d-byte quota exactly",
			granted, a.UsedBytes, a.UsedFiles, quota/step, quota)
	}
}

// TestPostgresTwoServers stands in for two ferry nodes on one PostgreSQL.
func TestPostgresTwoServers(t *testing.T) {
	u := freshPostgresSchema(t)
	testTwoServers(t, u)
}

// TestSQLiteTwoProcesses: two stores on one SQLite file (as the daemon and
// the CLI are).
func TestSQLiteTwoProcesses(t *testing.T) {
	testTwoServers(t, "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"))
}

func testTwoServers(t *testing.T, u string) {
	ctx := t.Context()
	var stores [2]Store
	var wg sync.WaitGroup
	var errs [2]error
	// Both open (and migrate) a fresh database at the same time.
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, u, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	a, b := stores[0], stores[1]
	key := newKeyLine(t, "k")
	if err := a.CreateAccount(ctx, &Account{Name: "web1", Enabled: true}, []string{key}); err != nil {
		t.Fatal(err)
	}
	got, err := b.LookupAccount(ctx, "web1")
	if err != nil || !got.Enabled {
		t.Fatalf("account added on A not seen on B: %v, %v", got, err)
	}
	if keys, err := b.AuthorizedKeys(ctx, "web1"); err != nil || len(keys) != 1 {
		t.Fatalf("key added on A not seen on B: %v, %v", keys, err)
	}
	if err := b.SetEnabled(ctx, "web1", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.LookupAccount(ctx, "web1"); got.Enabled {
		t.Fatal("disable on B not seen on A")
	}
	// Quota consumed on one is enforced on the other.
	got.QuotaBytes = 1000
	if err := a.UpdateAccount(ctx, got); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.AddUsage(ctx, "web1", 900, 1); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := b.AddUsage(ctx, "web1", 200, 1); ok || err != nil {
		t.Fatalf("B exceeded the quota A filled: %v, %v", ok, err)
	}
	if ok, err := b.AddUsage(ctx, "web1", 100, 1); !ok || err != nil {
		t.Fatal(ok, err)
	}
	testConcurrentQuota(t, a, b)
}

func TestOpenURLs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, u := range []string{
		"sqlite://" + filepath.Join(dir, "abs", "a.db"),
		"sqlite://rel/b.db",
		"sqlite:c.db",
		DefaultURL("data"),
	} {
		s, err := Open(t.Context(), u, Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		s.Close()
	}
	for _, p := range []string{"abs/a.db", "rel/b.db", "c.db", "data/ferry.db"} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatalf("%s not created: %v", p, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (it holds password hashes)", p, st.Mode().Perm())
		}
	}
	if got, want := DefaultURL("data"), "sqlite://"+filepath.Join(dir, "data", "ferry.db"); got != want {
		t.Errorf("DefaultURL = %q, want %q", got, want)
	}
	for _, u := range []string{"mysql://x", "sqlite://", "sqlite:///tmp/x.db?mode=ro", "::"} {
		if s, err := Open(t.Context(), u, Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

func TestAccountHelpers(t *testing.T) {
	a := fullAccount("alice")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if !a.CanLogin(now) || a.CanLogin(a.ExpiresAt) || !a.Expired(a.ExpiresAt.Add(time.Second)) {
		t.Error("expiry")
	}
	for addr, want := range map[string]bool{"192.0.2.9": true, "::ffff:192.0.2.9": true, "2001:db8::1": true, "198.51.100.1": false} {
		if got := a.AllowsSource(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowsSource(%s) = %v", addr, got)
		}
	}
	if got := a.AuthMethodLists(); !reflect.DeepEqual(got, [][]string{{"publickey", "password"}, {"publickey"}}) {
		t.Errorf("AuthMethodLists = %q", got)
	}
	if got := (&Account{Name: "bob"}).HomeDir("/var/lib/ferry"); got != "/var/lib/ferry/home/bob" {
		t.Errorf("HomeDir = %q", got)
	}
	for in, want := range map[string]string{"192.0.2.7/24": "192.0.2.0/24", "2001:db8::1": "2001:db8::1/128", "::ffff:10.1.2.3": "10.1.2.3/32",
		// IPv4-mapped CIDRs were kept as IPv6 and never matched a source.
		"::ffff:127.0.0.0/104": "127.0.0.0/8", "::ffff:192.0.2.9/128": "192.0.2.9/32", "::ffff:0:0/96": "0.0.0.0/0"} {
		if p, err := ParseAllowFrom(in); err != nil || p.String() != want {
			t.Errorf("ParseAllowFrom(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	if p, err := ParseAllowFrom("::ffff:127.0.0.0/104"); err != nil || !(&Account{AllowFrom: []netip.Prefix{p}}).AllowsSource(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("--allow-from ::ffff:127.0.0.0/104 (%v, %v) does not allow 127.0.0.1", p, err)
	}
	for _, in := range []string{"", "10.0.0.0/33", "host.example", "fe80::1%eth0"} {
		if _, err := ParseAllowFrom(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseAllowFrom(%q) err = %v", in, err)
		}
	}
}

func TestDefaultKeyParser(t *testing.T) {
	base := newKeyLine(t, "")
	for _, tc := range []struct {
		in, line, comment string
	}{
		{base, base, ""},
		{base + "   two  words ", base + " two  words", "two  words"},
		{"no-pty,command=\"a b\" " + base + " c", "no-pty,command=\"a b\" " + base + " c", "c"},
		{"\t" + base + "\tc", base + " c", "c"},
		{`environment="X=a\"b c" ` + base, `environment="X=a\"b c" ` + base, ""},
	} {
		pk, err := DefaultKeyParser(tc.in)
		if err != nil || pk.Line != tc.line || pk.Comment != tc.comment || pk.Type != "ssh-ed25519" {
			t.Errorf("DefaultKeyParser(%q) = %+v, %v; want line %q comment %q", tc.in, pk, err, tc.line, tc.comment)
		}
	}
	fields := strings.Fields(base)
	cert := certKeyLine(t)
	for _, in := range []string{"", "# comment", "ssh-ed25519", "ssh-rsa " + fields[1], `command="unterminated ` + base,
		"ssh-ed25519 AAAA====", base + "\nssh-ed25519 AAAA", strings.Repeat("a", MaxKeyLineLength+1),
		// A certificate line (id_ed25519-cert.pub pasted as a key)
		// matches no login, as a plain key or as a CA.
		cert, "cert-authority " + cert} {
		if _, err := DefaultKeyParser(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("DefaultKeyParser(%q) err = %v, want ErrInvalid", in, err)
		}
	}
}

// certKeyLine is the authorized_keys form of a user certificate, as
// ssh-keygen -s writes it to id_ed25519-cert.pub.
func certKeyLine(t *testing.T) string {
	t.Helper()
	user, err := keys.GenerateKey(keys.KeyEd25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := keys.GenerateKey(keys.KeyEd25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &keys.Certificate{Key: user.PublicKey(), CertType: keys.UserCert, KeyID: "id", ValidPrincipals: []string{"alice"}, ValidBefore: keys.CertTimeInfinity}
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(keys.MarshalAuthorizedKey(c))) + " alice"
}

func benchStore(b *testing.B) Store {
	s, err := Open(b.Context(), "sqlite://"+filepath.Join(b.TempDir(), "ferry.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	// A realistic table: the looked-up account among many.
	var batch []NewAccount
	for i := range 2000 {
		batch = append(batch, NewAccount{Account: &Account{Name: fmt.Sprintf("user%04d", i), Enabled: true,
			AllowFrom: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, Keys: []string{newKeyLine(b, "k"), newKeyLine(b, "k2")}})
	}
	if err := s.ImportAccounts(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkLookupAccount is the per-login cost of reading an account
// (SQLite, 2000 accounts).
func BenchmarkLookupAccount(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.LookupAccount(ctx, "user1234"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginLookups is a publickey login's store work: the account and
// its authorized keys, in one statement (LookupLogin, what the daemon
// runs) and in two.
func BenchmarkLoginLookups(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.Run("LookupLogin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, keys, err := s.LookupLogin(ctx, "user1234"); err != nil || len(keys) != 2 {
				b.Fatal(keys, err)
			}
		}
	})
	b.Run("TwoQueries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.LookupAccount(ctx, "user1234"); err != nil {
				b.Fatal(err)
			}
			if keys, err := s.AuthorizedKeys(ctx, "user1234"); err != nil || len(keys) != 2 {
				b.Fatal(keys, err)
			}
		}
	})
}

func BenchmarkAddUsage(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AddUsage(ctx, "user1234", 1, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeyParserMatchesSSHKeygen checks the canonical line and fingerprint
// against OpenSSH's own for each key type it generates.
func TestKeyParserMatchesSSHKeygen(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		f := filepath.Join(dir, typ)
		args := []string{"-q", "-t", typ, "-N", "", "-C", "test " + typ, "-f", f}
		if typ == "rsa" {
			args = append(args, "-b", "2048")
		}
		if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
		pub, err := os.ReadFile(f + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(keygen, "-l", "-E", "sha256", "-f", f+".pub").Output()
		if err != nil {
			t.Fatal(err)
		}
		wantFP := strings.Fields(string(out))[1]
		pk, err := DefaultKeyParser(string(pub))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if pk.Line != strings.TrimSpace(string(pub)) || pk.Fingerprint != wantFP || pk.Comment != "test "+typ {
			t.Errorf("%s: parsed %+v; want line %q fingerprint %s", typ, pk, pub, wantFP)
		}
	}
}
