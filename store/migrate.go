package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFS holds the schema, one directory per back end. A migration is
// NNNN_description.sql; versions are never reused or edited once released,
// only added. Each runs against the databases earlier releases wrote:
// TestUpgradeFromSchema1* opens their checked-in dumps (testdata/schema1).
// SQLite migrations run with foreign_keys on and inside a transaction
// (where the pragma cannot be changed), so the usual table rebuild would
// lose every key: DROP TABLE accounts deletes its rows first, and
// authorized_keys follows by ON DELETE CASCADE.
//
//go:embed migrations
var migrationFS embed.FS

// ErrSchemaTooNew: the database was migrated by a newer ferry.
var ErrSchemaTooNew = errors.New("store: database schema is newer than this ferry")

// SchemaVersion is the schema version this build migrates a database to
// (the same for both back ends): what `ferry version` reports, and what
// an older ferry refusing the database with ErrSchemaTooNew names.
func SchemaVersion() int {
	ms, err := loadMigrations(sqliteDialect.migrations)
	if err != nil || len(ms) == 0 {
		return 0 // the embedded files are checked by the tests
	}
	return ms[len(ms)-1].version
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: bad migration file name %q", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	return ms, nil
}

// migrate applies every missing migration in one transaction, so a
// half-applied schema is never visible and a failed Open changes nothing.
// Two processes opening a new database at once are serialised by the
// dialect's lock (PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE), and
// the second finds the work done.
func migrate(ctx context.Context, db *sql.DB, d *dialect, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ms, err := loadMigrations(d.migrations)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	if d.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, d.lockMigrations); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
	}
	if d.lockTimeout != "" {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(d.lockTimeout, migrationLockTimeout.Milliseconds())); err != nil {
			return fmt.Errorf("store: migration lock timeout: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT   NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: schema_migrations: %w", err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT version, name, applied_at FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("store: schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	maxApplied, newestName, newestAt := 0, "", int64(0)
	for rows.Next() {
		var (
			v    int
			name string
			at   int64
		)
		if err := rows.Scan(&v, &name, &at); err != nil {
			rows.Close()
			return fmt.Errorf("store: schema_migrations: %w", err)
		}
		applied[v] = true
		if v > maxApplied {
			maxApplied, newestName, newestAt = v, name, at
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("store: schema_migrations: %w", err)
	}
	if latest := ms[len(ms)-1].version; maxApplied > latest {
		// Said in full because it is met mid-upgrade: an old node of a
		// fleet restarting after a new one migrated the shared database
		// (running old nodes go on working; the new columns only add), or
		// a downgrade after an upgrade.
		return fmt.Errorf("%w (database at version %d since %s, by %s; this ferry knows %d): "+
			"a newer ferry upgraded it; run a ferry whose `ferry version` shows database schema %d or later, "+
			"or restore the backup taken before the upgrade",
			ErrSchemaTooNew, maxApplied, time.Unix(newestAt, 0).UTC().Format(time.RFC3339), newestName, latest, maxApplied)
	}
	n := 0
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.version, m.name, time.Now().Unix()); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		log.Info("store: applied migration", "backend", d.name, "version", m.version, "name", m.name)
		n++
	}
	if n == 0 {
		return nil // nothing to commit; the deferred Rollback releases the lock
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit migrations: %w", err)
	}
	return nil
}
