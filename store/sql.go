package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// sqlStore implements Store for both back ends over database/sql.
type sqlStore struct {
	db       *sql.DB
	d        *dialect
	parseKey KeyParser

	// The queries logins and sessions run, prepared once.
	lookupStmt *sql.Stmt
	keysStmt   *sql.Stmt
	loginStmt  *sql.Stmt
}

const accountColumns = `id, name, password_hash, home, enabled, expires_at, auth_methods,
	read_only, upload_only, no_delete, no_overwrite, allow_symlinks, allow_shell, allow_forwarding,
	quota_bytes, quota_files, used_bytes, used_files, max_sessions, allow_from, uid, gid,
	force_command, created_at, updated_at, last_login_at, max_connections`

const keyColumns = `k.id, a.name, k.line, k.fingerprint, k.key_type, k.comment, k.created_at`

func newSQLStore(ctx context.Context, db *sql.DB, d *dialect, kp KeyParser) (*sqlStore, error) {
	if kp == nil {
		kp = DefaultKeyParser
	}
	s := &sqlStore{db: db, d: d, parseKey: kp}
	var err error
	s.lookupStmt, err = db.PrepareContext(ctx, d.rebind("SELECT "+accountColumns+" FROM accounts WHERE name = ?"))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// LIMIT: a login parses at most MaxKeysPerAccount keys even if rows
	// were inserted behind the store's back.
	s.keysStmt, err = db.PrepareContext(ctx, d.rebind("SELECT "+keyColumns+
		" FROM authorized_keys k JOIN accounts a ON a.id = k.account_id WHERE a.name = ? ORDER BY k.id LIMIT "+
		strconv.Itoa(MaxKeysPerAccount)))
	if err != nil {
		s.lookupStmt.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	// One row per key (one with NULL key columns when there is none),
	// so a login reads its account and keys in one statement. The LIMIT
	// is keysStmt's.
	s.loginStmt, err = db.PrepareContext(ctx, d.rebind("SELECT "+qualify("a.", accountColumns)+
		", k.id, k.line, k.fingerprint, k.key_type, k.comment, k.created_at"+
		" FROM accounts a LEFT JOIN authorized_keys k ON k.account_id = a.id WHERE a.name = ? ORDER BY k.id LIMIT "+
		strconv.Itoa(MaxKeysPerAccount)))
	if err != nil {
		s.lookupStmt.Close()
		s.keysStmt.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}

// qualify prefixes each column of a comma-separated list with prefix.
func qualify(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

func (s *sqlStore) Close() error {
	s.lookupStmt.Close()
	s.keysStmt.Close()
	s.loginStmt.Close()
	return s.db.Close()
}

type rowScanner interface{ Scan(dest ...any) error }

func scanAccount(r rowScanner) (*Account, error) {
	var as accountScan
	if err := r.Scan(as.dest()...); err != nil {
		return nil, err
	}
	return as.account()
}

// accountScan receives accountColumns; account converts them.
type accountScan struct {
	a                          Account
	hash                       sql.NullString
	expires, uid, gid, lastLog sql.NullInt64
	allowFrom                  string
	created, updated           int64
}

func (as *accountScan) dest() []any {
	a, p := &as.a, &as.a.Permissions
	return []any{&a.ID, &a.Name, &as.hash, &a.Home, &a.Enabled, &as.expires, &a.AuthMethods,
		&p.ReadOnly, &p.UploadOnly, &p.NoDelete, &p.NoOverwrite, &p.AllowSymlinks, &p.AllowShell, &p.AllowForwarding,
		&a.QuotaBytes, &a.QuotaFiles, &a.UsedBytes, &a.UsedFiles, &a.MaxSessions, &as.allowFrom, &as.uid, &as.gid,
		&a.ForceCommand, &as.created, &as.updated, &as.lastLog, &a.MaxConnections}
}

func (as *accountScan) account() (*Account, error) {
	a := as.a
	a.PasswordHash = as.hash.String
	if as.expires.Valid {
		a.ExpiresAt = time.Unix(as.expires.Int64, 0).UTC()
	}
	if as.lastLog.Valid {
		a.LastLoginAt = time.Unix(as.lastLog.Int64, 0).UTC()
	}
	a.CreatedAt = time.Unix(as.created, 0).UTC()
	a.UpdatedAt = time.Unix(as.updated, 0).UTC()
	if as.uid.Valid {
		v := uint32(as.uid.Int64)
		a.UID = &v
	}
	if as.gid.Valid {
		v := uint32(as.gid.Int64)
		a.GID = &v
	}
	// A malformed list written directly into the database must not open
	// the account to every source: fail the lookup instead.
	var err error
	if a.AllowFrom, err = parseAllowFromList(as.allowFrom); err != nil {
		return nil, fmt.Errorf("store: account %q: allow_from column: %w", a.Name, err)
	}
	return &a, nil
}

// connLost reports the error of a query on a connection the server had
// ended: PostgreSQL shut down, restarted, failed over, or an admin ran
// pg_terminate_backend (SQLSTATE class 57P). pgx closes such a connection
// and the pool drops it, but it learns of the end only by reading the
// server's goodbye in place of its query's answer: it pings a connection
// before reuse only after a second idle, so a busy server's every pooled
// connection failed one query after the database came back.
func connLost(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "57P")
}

// retryRead runs read, a query that changes nothing, again while it fails
// with connLost, so that each pooled connection the server ended costs a
// retry instead of a refused login. At most maxOpenConns+1 attempts: each
// failure takes one dead connection out of the pool.
func retryRead[T any](ctx context.Context, read func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := read()
		if err == nil || attempt > maxOpenConns || !connLost(err) || ctx.Err() != nil {
			return v, err
		}
	}
}

func (s *sqlStore) LookupAccount(ctx context.Context, name string) (*Account, error) {
	a, err := retryRead(ctx, func() (*Account, error) { return scanAccount(s.lookupStmt.QueryRowContext(ctx, name)) })
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: lookup %q: %w", name, err)
	}
	return a, nil
}

func (s *sqlStore) LookupLogin(ctx context.Context, name string) (*Account, []*AuthorizedKey, error) {
	type login struct {
		acct *Account
		keys []*AuthorizedKey
	}
	l, err := retryRead(ctx, func() (login, error) {
		acct, keys, err := s.lookupLogin(ctx, name)
		return login{acct, keys}, err
	})
	return l.acct, l.keys, err
}

func (s *sqlStore) lookupLogin(ctx context.Context, name string) (*Account, []*AuthorizedKey, error) {
	rows, err := s.loginStmt.QueryContext(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("store: lookup %q: %w", name, err)
	}
	defer rows.Close()
	var (
		acct *Account
		keys []*AuthorizedKey
	)
	for rows.Next() {
		var (
			as                                  accountScan
			id, created                         sql.NullInt64
			line, fingerprint, keyType, comment sql.NullString
		)
		dest := append(as.dest(), &id, &line, &fingerprint, &keyType, &comment, &created)
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("store: lookup %q: %w", name, err)
		}
		if acct == nil {
			if acct, err = as.account(); err != nil {
				return nil, nil, err
			}
		}
		if id.Valid {
			keys = append(keys, &AuthorizedKey{ID: id.Int64, Account: acct.Name, Line: line.String,
				Fingerprint: fingerprint.String, Type: keyType.String, Comment: comment.String,
				CreatedAt: time.Unix(created.Int64, 0).UTC()})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: lookup %q: %w", name, err)
	}
	if acct == nil {
		return nil, nil, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	return acct, keys, nil
}

func (s *sqlStore) ListAccounts(ctx context.Context) ([]*Account, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+accountColumns+" FROM accounts ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	var out []*Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func nullID(v *uint32) any {
	if v == nil {
		return nil
	}
	return int64(*v)
}

// parseKeys parses and de-duplicates (by fingerprint, first wins) the lines
// to store with an account.
func (s *sqlStore) parseKeys(lines []string) ([]ParsedKey, error) {
	var out []ParsedKey
	seen := map[string]bool{}
	for _, l := range lines {
		pk, err := s.parseKey(l)
		if err != nil {
			return nil, err
		}
		if seen[pk.Fingerprint] {
			continue
		}
		seen[pk.Fingerprint] = true
		out = append(out, pk)
	}
	if len(out) > MaxKeysPerAccount {
		return nil, fmt.Errorf("%w: more than %d authorized keys", ErrInvalid, MaxKeysPerAccount)
	}
	return out, nil
}

func (s *sqlStore) CreateAccount(ctx context.Context, a *Account, keyLines []string) error {
	return s.ImportAccounts(ctx, []NewAccount{{Account: a, Keys: keyLines}})
}

func (s *sqlStore) ImportAccounts(ctx context.Context, accounts []NewAccount) error {
	// Validate and parse everything before touching the database, and
	// report every account that fails (an *ImportErrors), not only the
	// first: an import of thousands is fixed in one pass.
	var errs ImportErrors
	parsed := make([][]ParsedKey, len(accounts))
	names := map[string]bool{}
	for i, na := range accounts {
		if err := na.Account.Validate(); err != nil {
			errs.add(err)
			continue
		}
		if names[na.Account.Name] {
			errs.add(fmt.Errorf("account %q: %w (twice in the input)", na.Account.Name, ErrExists))
			continue
		}
		names[na.Account.Name] = true
		keys, err := s.parseKeys(na.Keys)
		if err != nil {
			errs.add(fmt.Errorf("account %q: %w", na.Account.Name, err))
			continue
		}
		parsed[i] = keys
	}
	if err := errs.err(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().Unix()
	insertAccount := s.d.rebind(`INSERT INTO accounts (name, password_hash, home, enabled, expires_at, auth_methods,
		read_only, upload_only, no_delete, no_overwrite, allow_symlinks, allow_shell, allow_forwarding,
		quota_bytes, quota_files, used_bytes, used_files, max_sessions, allow_from, uid, gid, force_command,
		created_at, updated_at, max_connections)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING RETURNING id`)
	// ON CONFLICT: a name already taken returns no row instead of failing
	// the statement, which on PostgreSQL would abort the transaction; the
	// loop goes on to find every taken name, then rolls back.
	//
	// The statements are prepared once: the transaction holds SQLite's
	// write lock while it runs, which stalls every server's writes (last
	// login, quota charges), and preparing each INSERT again took most
	// of that time (100,000 accounts: 5.5 s, 1.3 s prepared).
	insert, err := tx.PrepareContext(ctx, insertAccount)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer insert.Close()
	var insertKey *sql.Stmt
	for i, na := range accounts {
		a := na.Account
		p := a.Permissions
		var id int64
		err := insert.QueryRowContext(ctx, a.Name, nullString(a.PasswordHash), a.Home, a.Enabled,
			nullTime(a.ExpiresAt), a.AuthMethods, p.ReadOnly, p.UploadOnly, p.NoDelete, p.NoOverwrite,
			p.AllowSymlinks, p.AllowShell, p.AllowForwarding, a.QuotaBytes, a.QuotaFiles, a.UsedBytes, a.UsedFiles,
			a.MaxSessions, formatAllowFrom(a.AllowFrom), nullID(a.UID), nullID(a.GID), a.ForceCommand, now, now,
			a.MaxConnections).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) || isUniqueViolation(err) {
			errs.add(fmt.Errorf("account %q: %w", a.Name, ErrExists))
			continue
		}
		if err != nil {
			return fmt.Errorf("store: create %q: %w", a.Name, err)
		}
		if errs.Count > 0 {
			continue // rolled back anyway: only the taken names are sought
		}
		for _, k := range parsed[i] {
			if insertKey == nil {
				if insertKey, err = tx.PrepareContext(ctx, s.d.rebind(insertKeyQuery)); err != nil {
					return fmt.Errorf("store: %w", err)
				}
				defer insertKey.Close()
			}
			_, err := insertKey.ExecContext(ctx, id, k.Line, k.Fingerprint, k.Type, k.Comment, now)
			if err := keyInsertErr(k, err); err != nil {
				return fmt.Errorf("account %q: %w", a.Name, err)
			}
		}
		a.ID = id
		a.CreatedAt = time.Unix(now, 0).UTC()
		a.UpdatedAt = a.CreatedAt
	}
	if err := errs.err(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

const insertKeyQuery = `INSERT INTO authorized_keys (account_id, line, fingerprint, key_type, comment, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`

func (s *sqlStore) insertKey(ctx context.Context, tx *sql.Tx, accountID int64, k ParsedKey, now int64) error {
	_, err := tx.ExecContext(ctx, s.d.rebind(insertKeyQuery), accountID, k.Line, k.Fingerprint, k.Type, k.Comment, now)
	return keyInsertErr(k, err)
}

func keyInsertErr(k ParsedKey, err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("key %s: %w", k.Fingerprint, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: add key: %w", err)
	}
	return nil
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// execOne runs an UPDATE/DELETE that must hit exactly the named account.
func (s *sqlStore) execOne(ctx context.Context, name, what, query string, args ...any) error {
	return s.execOneIn(ctx, s.db, name, what, query, args...)
}

func (s *sqlStore) execOneIn(ctx context.Context, db execer, name, what, query string, args ...any) error {
	res, err := db.ExecContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return fmt.Errorf("store: %s %q: %w", what, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s %q: %w", what, name, err)
	}
	if n == 0 {
		return fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) UpdateAccount(ctx context.Context, a *Account) error {
	return s.updateAccountIn(ctx, s.db, a)
}

func (s *sqlStore) updateAccountIn(ctx context.Context, db execer, a *Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	p := a.Permissions
	now := time.Now().Unix()
	err := s.execOneIn(ctx, db, a.Name, "update", `UPDATE accounts SET password_hash = ?, home = ?, enabled = ?, expires_at = ?,
		auth_methods = ?, read_only = ?, upload_only = ?, no_delete = ?, no_overwrite = ?, allow_symlinks = ?,
		allow_shell = ?, allow_forwarding = ?, quota_bytes = ?, quota_files = ?, max_sessions = ?, allow_from = ?,
		uid = ?, gid = ?, force_command = ?, updated_at = ?, max_connections = ? WHERE name = ?`,
		nullString(a.PasswordHash), a.Home, a.Enabled, nullTime(a.ExpiresAt), a.AuthMethods, p.ReadOnly, p.UploadOnly,
		p.NoDelete, p.NoOverwrite, p.AllowSymlinks, p.AllowShell, p.AllowForwarding, a.QuotaBytes, a.QuotaFiles,
		a.MaxSessions, formatAllowFrom(a.AllowFrom), nullID(a.UID), nullID(a.GID), a.ForceCommand, now,
		a.MaxConnections, a.Name)
	if err == nil {
		a.UpdatedAt = time.Unix(now, 0).UTC()
	}
	return err
}

func (s *sqlStore) ModifyAccount(ctx context.Context, name string, change func(*Account) error) (*Account, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	a, err := scanAccount(tx.QueryRowContext(ctx, s.d.rebind("SELECT "+accountColumns+" FROM accounts WHERE name = ?"+s.d.forUpdate), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: lookup %q: %w", name, err)
	}
	if err := change(a); err != nil {
		return nil, err
	}
	a.Name = name
	if err := s.updateAccountIn(ctx, tx, a); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	return a, nil
}

func (s *sqlStore) DeleteAccount(ctx context.Context, name string) error {
	// Keys go with the account (ON DELETE CASCADE).
	return s.execOne(ctx, name, "delete", "DELETE FROM accounts WHERE name = ?", name)
}

func (s *sqlStore) SetPasswordHash(ctx context.Context, name, hash string) error {
	if strings.ContainsAny(hash, "\x00\n") || len(hash) > 1024 {
		return fmt.Errorf("%w password hash", ErrInvalid)
	}
	return s.execOne(ctx, name, "set password", "UPDATE accounts SET password_hash = ?, updated_at = ? WHERE name = ?",
		nullString(hash), time.Now().Unix(), name)
}

func (s *sqlStore) UpgradePasswordHash(ctx context.Context, name, oldHash, newHash string) (bool, error) {
	if newHash == "" || strings.ContainsAny(newHash, "\x00\n") || len(newHash) > 1024 {
		return false, fmt.Errorf("%w password hash", ErrInvalid)
	}
	// One statement, so the comparison and the write are atomic on both
	// back ends (see addUsageQuery).
	res, err := s.db.ExecContext(ctx, s.d.rebind("UPDATE accounts SET password_hash = ?, updated_at = ? WHERE name = ? AND password_hash = ?"),
		newHash, time.Now().Unix(), name, oldHash)
	if err != nil {
		return false, fmt.Errorf("store: upgrade password %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: upgrade password %q: %w", name, err)
	}
	return n == 1, nil
}

func (s *sqlStore) SetEnabled(ctx context.Context, name string, enabled bool) error {
	return s.execOne(ctx, name, "enable", "UPDATE accounts SET enabled = ?, updated_at = ? WHERE name = ?",
		enabled, time.Now().Unix(), name)
}

func (s *sqlStore) RecordLogin(ctx context.Context, name string, at time.Time) error {
	return s.execOne(ctx, name, "record login", "UPDATE accounts SET last_login_at = ? WHERE name = ?", at.Unix(), name)
}

func (s *sqlStore) SetUsage(ctx context.Context, name string, usedBytes, usedFiles int64) error {
	if usedBytes < 0 || usedFiles < 0 || usedBytes > MaxQuota || usedFiles > MaxQuota {
		return fmt.Errorf("%w usage counters", ErrInvalid)
	}
	return s.execOne(ctx, name, "set usage", "UPDATE accounts SET used_bytes = ?, used_files = ? WHERE name = ?",
		usedBytes, usedFiles, name)
}

// addUsageQuery is one statement so that the check and the update are
// atomic on both back ends: PostgreSQL re-evaluates the WHERE clause on the
// latest row version after waiting for a concurrent updater's row lock
// (READ COMMITTED, "EvalPlanQual"), and SQLite runs it under its single
// writer lock. A positive delta must fit under its quota; a negative one
// always applies and is clamped at zero.
const addUsageQuery = `UPDATE accounts
	SET used_bytes = GREATEST(0, used_bytes + CAST(? AS BIGINT)),
	    used_files = GREATEST(0, used_files + CAST(? AS BIGINT))
	WHERE name = ?
	  AND (CAST(? AS BIGINT) <= 0 OR quota_bytes = 0 OR used_bytes + CAST(? AS BIGINT) <= quota_bytes)
	  AND (CAST(? AS BIGINT) <= 0 OR quota_files = 0 OR used_files + CAST(? AS BIGINT) <= quota_files)
	RETURNING used_bytes`

func (s *sqlStore) AddUsage(ctx context.Context, name string, deltaBytes, deltaFiles int64) (bool, error) {
	if deltaBytes < -MaxUsageDelta || deltaBytes > MaxUsageDelta || deltaFiles < -MaxUsageDelta || deltaFiles > MaxUsageDelta {
		return false, fmt.Errorf("%w usage delta", ErrInvalid)
	}
	var used int64
	err := s.db.QueryRowContext(ctx, s.d.rebind(addUsageQuery), deltaBytes, deltaFiles, name,
		deltaBytes, deltaBytes, deltaFiles, deltaFiles).Scan(&used)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: add usage %q: %w", name, err)
	}
	// No row: either no such account or over quota.
	var one int
	err = s.db.QueryRowContext(ctx, s.d.rebind("SELECT 1 FROM accounts WHERE name = ?"), name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("store: add usage %q: %w", name, err)
	}
	return false, nil
}

func (s *sqlStore) AuthorizedKeys(ctx context.Context, name string) ([]*AuthorizedKey, error) {
	rows, err := s.keysStmt.QueryContext(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("store: keys %q: %w", name, err)
	}
	defer rows.Close()
	var out []*AuthorizedKey
	for rows.Next() {
		var k AuthorizedKey
		var created int64
		if err := rows.Scan(&k.ID, &k.Account, &k.Line, &k.Fingerprint, &k.Type, &k.Comment, &created); err != nil {
			return nil, fmt.Errorf("store: keys %q: %w", name, err)
		}
		k.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: keys %q: %w", name, err)
	}
	return out, nil
}

func (s *sqlStore) AllAuthorizedKeys(ctx context.Context) (map[string][]*AuthorizedKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+keyColumns+
		" FROM authorized_keys k JOIN accounts a ON a.id = k.account_id ORDER BY a.name, k.id")
	if err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]*AuthorizedKey)
	for rows.Next() {
		var k AuthorizedKey
		var created int64
		if err := rows.Scan(&k.ID, &k.Account, &k.Line, &k.Fingerprint, &k.Type, &k.Comment, &created); err != nil {
			return nil, fmt.Errorf("store: keys: %w", err)
		}
		// As AuthorizedKeys (keysStmt's LIMIT): rows inserted behind
		// the store's back beyond the limit are not reported.
		if len(out[k.Account]) >= MaxKeysPerAccount {
			continue
		}
		k.CreatedAt = time.Unix(created, 0).UTC()
		out[k.Account] = append(out[k.Account], &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	return out, nil
}

func (s *sqlStore) AddAuthorizedKey(ctx context.Context, name, line string) (*AuthorizedKey, error) {
	pk, err := s.parseKey(line)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, s.d.rebind("SELECT id FROM accounts WHERE name = ?"), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: add key: %w", err)
	}
	var count int
	if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM authorized_keys WHERE account_id = ?"), id).Scan(&count); err != nil {
		return nil, fmt.Errorf("store: add key: %w", err)
	}
	if count >= MaxKeysPerAccount {
		return nil, fmt.Errorf("%w: account %q already has %d authorized keys", ErrInvalid, name, count)
	}
	now := time.Now().Unix()
	if err := s.insertKey(ctx, tx, id, pk, now); err != nil {
		return nil, err
	}
	var keyID int64
	if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT id FROM authorized_keys WHERE account_id = ? AND fingerprint = ?"),
		id, pk.Fingerprint).Scan(&keyID); err != nil {
		return nil, fmt.Errorf("store: add key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	return &AuthorizedKey{ID: keyID, Account: name, Line: pk.Line, Fingerprint: pk.Fingerprint, Type: pk.Type,
		Comment: pk.Comment, CreatedAt: time.Unix(now, 0).UTC()}, nil
}

func (s *sqlStore) DeleteAuthorizedKey(ctx context.Context, name, fingerprintOrID string) error {
	column, arg := "fingerprint", any(fingerprintOrID)
	if !strings.HasPrefix(fingerprintOrID, "SHA256:") {
		id, err := strconv.ParseInt(fingerprintOrID, 10, 64)
		if err != nil {
			return fmt.Errorf("%w key %q: want a SHA256:... fingerprint or a numeric id", ErrInvalid, fingerprintOrID)
		}
		column, arg = "id", id
	}
	if _, err := s.LookupAccount(ctx, name); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.d.rebind("DELETE FROM authorized_keys WHERE "+column+
		" = ? AND account_id = (SELECT id FROM accounts WHERE name = ?)"), arg, name)
	if err != nil {
		return fmt.Errorf("store: delete key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("key %q of account %q: %w", fingerprintOrID, name, ErrNotFound)
	}
	return nil
}
