package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// KeyParser parses authorized_keys lines; nil means DefaultKeyParser.
	KeyParser KeyParser
	// Logger receives migration notices; nil discards them.
	Logger *slog.Logger
}

// DefaultURL is the store URL used when none is configured: SQLite at
// <dataDir>/ferry.db.
func DefaultURL(dataDir string) string {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return "sqlite://" + filepath.ToSlash(filepath.Join(dataDir, "ferry.db"))
}

// parseURL parses a database URL, with an error that does not repeat any
// of it: url.Parse's quotes the whole URL, password included, and the
// reasons it gives quote the bytes around the fault, which lie in the
// password when it holds an unencoded '%' ("invalid URL escape"), '/' or
// '#' ("invalid port" with the password's first part), the usual ways
// such a URL fails. Every log, `serve --check` and `ferry user` error
// printed them.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("store: bad database URL (not repeated: it may hold a password): percent-encode % @ / ? # [ ] and spaces in its user name, password and path (% as %25)")
	}
	return u, nil
}

// Open connects to the store named by rawURL and brings its schema up to
// date:
//
//	sqlite:///abs/path/ferry.db   absolute path (three slashes)
//	sqlite://rel/path/ferry.db    relative to the working directory
//	sqlite:rel/path/ferry.db      the same
//	postgres://user@host:5432/db?sslmode=disable   (or postgresql://)
//
// PostgreSQL URLs are passed to pgx unchanged, so any libpq keyword works,
// including search_path=schema to keep ferry's tables in their own schema.
// A SQLite database file is created (mode 0600, it holds password hashes)
// with its directory (0700) when missing.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var (
		d   *dialect
		dsn string
	)
	switch u.Scheme {
	case "sqlite", "sqlite3":
		p, err := sqlitePath(u)
		if err != nil {
			return nil, err
		}
		if err := createSQLiteFile(p); err != nil {
			return nil, err
		}
		// WAL lets logins read while the CLI writes; busy_timeout makes
		// writers from several processes queue instead of failing;
		// _txlock=immediate takes the write lock at BEGIN so a read-then-
		// write transaction never hits SQLITE_BUSY_SNAPSHOT mid-way.
		dsn = "file:" + p + "?_busy_timeout=10000&_journal_mode=WAL&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate"
		d = sqliteDialect
	case "postgres", "postgresql":
		dsn = rawURL
		d = postgresDialect
	default:
		return nil, fmt.Errorf("store: unsupported database URL scheme %q (want sqlite:// or postgres://)", u.Scheme)
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := openSQLStore(ctx, db, d, opts.KeyParser, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// InspectSchema returns the schema version of the database rawURL names
// (as Open takes it) without creating, migrating or otherwise changing
// it: 0 for a database ferry has not set up yet (a SQLite file that does
// not exist, a PostgreSQL database or schema without ferry's tables).
// Compared with SchemaVersion it tells, before a restart, whether start
// will migrate the database or refuse it as newer than this ferry.
func InspectSchema(ctx context.Context, rawURL string) (int, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return 0, err
	}
	var db *sql.DB
	var hasTable string
	switch u.Scheme {
	case "sqlite", "sqlite3":
		p, err := sqlitePath(u)
		if err != nil {
			return 0, err
		}
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if db, err = sql.Open("sqlite", "file:"+p+"?mode=ro&_busy_timeout=10000"); err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
		hasTable = "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	case "postgres", "postgresql":
		if db, err = sql.Open("pgx", rawURL); err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
		hasTable = "SELECT to_regclass('schema_migrations') IS NOT NULL"
	default:
		return 0, fmt.Errorf("store: unsupported database URL scheme %q (want sqlite:// or postgres://)", u.Scheme)
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, hasTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema_migrations: %w", err)
	}
	return int(v.Int64), nil
}

// sqliteBusyRetry is how long Open keeps starting new attempts on a
// SQLite database that another process is creating or migrating at the
// same moment.
const sqliteBusyRetry = 10 * time.Second

// postgresLockRetry is how long Open keeps retrying a PostgreSQL
// migration that could not take its table locks within
// migrationLockTimeout: long enough for an ordinary long transaction
// (a report, a panel's edit) to end, bounded so a session left idle in
// transaction fails the start with the reason instead of hanging it.
const postgresLockRetry = 5 * time.Minute

// openSQLStore migrates db and prepares the store. Two processes opening
// a SQLite file at once (the daemon and the CLI), above all a fresh one,
// can see SQLITE_BUSY or SQLITE_LOCKED where the busy timeout does not
// apply (switching the new file to WAL); Open then retries, starting new
// attempts for sqliteBusyRetry (an attempt may itself wait the busy
// timeout). A PostgreSQL migration that timed out waiting for its locks
// is retried for postgresLockRetry, with a warning each time. Other
// errors are returned at once.
func openSQLStore(ctx context.Context, db *sql.DB, d *dialect, kp KeyParser, log *slog.Logger) (*sqlStore, error) {
	start := time.Now()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		err := migrate(ctx, db, d, log)
		var s *sqlStore
		if err == nil {
			s, err = newSQLStore(ctx, db, d, kp)
		}
		switch {
		case err == nil:
			return s, nil
		case d == sqliteDialect && isSQLiteBusy(err) && time.Since(start) < sqliteBusyRetry:
		case d == postgresDialect && isLockTimeout(err) && time.Since(start) < postgresLockRetry:
			log.Warn("store: migration waits for other sessions' locks on ferry's tables (a long transaction?); "+
				"logins of servers already running go on meanwhile", "backend", d.name, "waited", time.Since(start).Round(time.Second), "error", err)
			wait = max(wait, time.Second)
		case d == postgresDialect && isLockTimeout(err):
			return nil, fmt.Errorf("%w (for %s another session held a lock on ferry's tables: see pg_stat_activity, for one idle in transaction, and start again)",
				err, postgresLockRetry)
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// isLockTimeout reports PostgreSQL's lock_not_available (55P03), what
// lock_timeout raises.
func isLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// isSQLiteBusy reports SQLITE_BUSY (5) or SQLITE_LOCKED (6), primary codes.
func isSQLiteBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// maxOpenConns bounds each process's connections: a PostgreSQL server
// shared by several ferry nodes defaults to max_connections=100, and SQLite
// serialises writers anyway.
const maxOpenConns = 8

// SQLitePath returns the database file a sqlite:// store URL names; ok is
// false for other URLs.
func SQLitePath(rawURL string) (path string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "sqlite" && u.Scheme != "sqlite3") {
		return "", false
	}
	p, err := sqlitePath(u)
	return p, err == nil
}

func sqlitePath(u *url.URL) (string, error) {
	var p string
	switch {
	case u.Opaque != "": // sqlite:rel/path
		p = u.Opaque
	case u.Host != "": // sqlite://rel/path: the first segment parses as host
		p = u.Host + u.Path
	default: // sqlite:///abs/path
		p = u.Path
	}
	if p == "" {
		return "", errors.New("store: sqlite URL has no path")
	}
	if strings.ContainsAny(p, "?#") || u.RawQuery != "" {
		return "", errors.New("store: sqlite path must not contain '?' or '#', and the URL takes no parameters")
	}
	return filepath.FromSlash(p), nil
}

func createSQLiteFile(p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return f.Close()
}

// dialect is what differs between the two back ends. Queries are written
// once with '?' placeholders and rebound for PostgreSQL.
type dialect struct {
	name       string
	driver     string
	migrations string // directory in migrationFS
	numbered   bool   // $1, $2, ... placeholders
	greatest   string // two-argument maximum: SQLite's scalar MAX, PostgreSQL's GREATEST
	// lockMigrations serialises concurrent Opens (several servers starting
	// at once) inside the migration transaction. SQLite needs nothing:
	// BEGIN IMMEDIATE already excludes other writers.
	lockMigrations string
	// lockTimeout bounds each lock wait of a migration, once
	// lockMigrations is held. A migration that adds a column waits for
	// an ACCESS EXCLUSIVE lock on accounts, and while it waits every
	// other query on the table queues behind it: one long transaction
	// (a panel's, a report's) stalled the logins of every server still
	// running, the whole fleet of a rolling upgrade, for as long as it
	// lasted. With the bound the attempt gives up, those queries run,
	// and openSQLStore tries again.
	lockTimeout string
	// forUpdate ends a SELECT that must lock its row until the
	// transaction ends. SQLite needs nothing: _txlock=immediate takes the
	// database's write lock at BEGIN.
	forUpdate string
}

// migrationLockKey is the pg_advisory_xact_lock key ("ferry\0\0\1"): any
// constant works as long as no other application on the database uses it.
const migrationLockKey = 0x6665727279000001

var (
	sqliteDialect = &dialect{name: "sqlite", driver: "sqlite", migrations: "migrations/sqlite", greatest: "MAX"}

	postgresDialect = &dialect{name: "postgres", driver: "pgx", migrations: "migrations/postgres", numbered: true,
		greatest: "GREATEST", forUpdate: " FOR UPDATE", lockMigrations: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(migrationLockKey)),
		lockTimeout: "SET LOCAL lock_timeout = %d"}
)

// migrationLockTimeout is the lock_timeout of a PostgreSQL migration's
// statements. A variable for the tests.
var migrationLockTimeout = 2 * time.Second

// rebind turns '?' placeholders into $n for PostgreSQL. ferry's queries
// have no '?' inside string literals.
func (d *dialect) rebind(q string) string {
	q = strings.ReplaceAll(q, "GREATEST(", d.greatest+"(")
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// isUniqueViolation recognises both drivers' unique-constraint errors.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	return false
}
