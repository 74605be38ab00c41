package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/store"
)

// TestServeCheckDatabase: serve --check did not look at the account
// database, so an upgrade script that ran it before restarting learnt
// neither that start would migrate the database (after which older ferry
// versions refuse it) nor, after a downgrade, that start would refuse a
// database a newer ferry had migrated: it said "configuration OK" and the
// server then did not start. --check reads the schema version without
// changing anything and fails only on a database newer than this ferry.
func TestServeCheckDatabase(t *testing.T) {
	want := store.SchemaVersion()

	// Nothing there yet: reported, and --check creates nothing.
	fresh := filepath.Join(t.TempDir(), "data")
	out, _, err := ferryRun(t, fresh, "", "serve", "--check")
	if err != nil || !strings.Contains(out, fmt.Sprintf("not set up yet, created at start (schema %d)", want)) {
		t.Fatalf("--check on a new data directory: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ferry.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--check created the database: %v", err)
	}

	// A database an older ferry wrote (schema 1): start will migrate it.
	old := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile("../../store/testdata/schema1/sqlite.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(old, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(dump)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, _, err = ferryRun(t, old, "", "serve", "--check")
	if err != nil || !strings.Contains(out, fmt.Sprintf("schema 1, migrated to %d at start", want)) {
		t.Fatalf("--check on a schema 1 database: %v\n%s", err, out)
	}

	// Brought up to date (any CLI command migrates): current.
	mustRun(t, old, "", "user", "list")
	out, _, err = ferryRun(t, old, "", "serve", "--check")
	if err != nil || !strings.Contains(out, fmt.Sprintf("schema %d, current", want)) {
		t.Fatalf("--check on a current database: %v\n%s", err, out)
	}

	// Migrated by a newer ferry: the check fails, as start would.
	db, err = sql.Open("sqlite", "file:"+filepath.Join(old, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', 0)", want+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, _, err = ferryRun(t, old, "", "serve", "--check")
	if !errors.Is(err, store.ErrSchemaTooNew) || strings.Contains(out, "configuration OK") {
		t.Fatalf("--check on a database from a newer ferry: err = %v\n%s", err, out)
	}
}
