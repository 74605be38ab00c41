// Package store keeps ferry's accounts, their authorized keys and per-user
// policy in a database, so that a hosting control panel can create and
// change accounts while servers run: embedded SQLite (modernc.org/sqlite) on
// one machine, or PostgreSQL (github.com/jackc/pgx/v5) shared by several
// ferry nodes.
//
// There is deliberately no cache: every login is one indexed query (see
// BenchmarkLookupAccount), so a change made with `ferry user`, by a control
// panel, or with plain SQL takes effect on the next login on every node.
//
// Both back ends share one schema (migrations/*), applied at Open inside a
// transaction and recorded in schema_migrations. Timestamps are stored as
// Unix seconds (BIGINT) and lists as comma-separated text, so a control panel
// can write rows directly with portable SQL.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Store is the account database. All methods are safe for concurrent use,
// including from several processes or (PostgreSQL) several machines.
type Store interface {
	// LookupAccount returns the named account or an error wrapping
	// ErrNotFound.
	LookupAccount(ctx context.Context, name string) (*Account, error)
	// LookupLogin returns the named account and its authorized keys
	// (oldest first) in one read, which is what a login needs; the error
	// wraps ErrNotFound when there is no such account.
	LookupLogin(ctx context.Context, name string) (*Account, []*AuthorizedKey, error)
	// ListAccounts returns every account ordered by name.
	ListAccounts(ctx context.Context) ([]*Account, error)
	// CreateAccount inserts a and its authorized_keys lines in one
	// transaction: an invalid key or a duplicate name leaves the database
	// unchanged. It sets a.ID, a.CreatedAt and a.UpdatedAt.
	CreateAccount(ctx context.Context, a *Account, keyLines []string) error
	// ImportAccounts creates every account in one transaction (all or
	// nothing); the error names the first account that failed.
	ImportAccounts(ctx context.Context, accounts []NewAccount) error
	// UpdateAccount replaces the named account's settings (everything but
	// ID, name, usage counters, CreatedAt and LastLoginAt) with a's.
	UpdateAccount(ctx context.Context, a *Account) error
	// ModifyAccount reads the named account, lets change edit it, and
	// stores the result as UpdateAccount does, in one transaction that
	// holds the account against other writers: a concurrent SetEnabled,
	// SetPasswordHash or ModifyAccount waits and then applies, instead of
	// being overwritten with what was read before it. The error wraps
	// ErrNotFound for no such account; an error from change is returned
	// as it is, with nothing stored. change must not block on anything
	// slow (it runs under the database's write lock) and cannot rename.
	ModifyAccount(ctx context.Context, name string, change func(*Account) error) (*Account, error)
	// DeleteAccount removes the account and its keys.
	DeleteAccount(ctx context.Context, name string) error
	// SetPasswordHash replaces the password hash ("" removes the password).
	SetPasswordHash(ctx context.Context, name, hash string) error
	// UpgradePasswordHash replaces the password hash with newHash only if
	// it is still oldHash, and reports whether it did. A login rehashing
	// the password it just verified must not undo a change made in the
	// meantime (`ferry user passwd`, --clear-password, a panel's UPDATE).
	UpgradePasswordHash(ctx context.Context, name, oldHash, newHash string) (bool, error)
	// SetEnabled enables or disables the account.
	SetEnabled(ctx context.Context, name string, enabled bool) error
	// RecordLogin sets LastLoginAt.
	RecordLogin(ctx context.Context, name string, at time.Time) error
	// AddUsage adds the deltas to the usage counters if the result stays
	// within the quotas (0 = unlimited), atomically across every server
	// sharing the database. Negative deltas (deletes) always succeed and
	// the counters never go below 0. ok is false, with a nil error, when a
	// quota would be exceeded; the counters are then unchanged.
	AddUsage(ctx context.Context, name string, deltaBytes, deltaFiles int64) (ok bool, err error)
	// SetUsage overwrites the usage counters (after a recount of the home
	// directory).
	SetUsage(ctx context.Context, name string, usedBytes, usedFiles int64) error
	// AuthorizedKeys returns the account's keys, oldest first.
	AuthorizedKeys(ctx context.Context, name string) ([]*AuthorizedKey, error)
	// AllAuthorizedKeys returns every account's keys, oldest first, by
	// account name (accounts without keys are absent), in one query: a
	// listing of thousands of accounts must not cost a round trip each.
	AllAuthorizedKeys(ctx context.Context) (map[string][]*AuthorizedKey, error)
	// AddAuthorizedKey parses and stores one authorized_keys line. A key
	// already present for the account is an error wrapping ErrExists.
	AddAuthorizedKey(ctx context.Context, name, line string) (*AuthorizedKey, error)
	// DeleteAuthorizedKey removes one key, named by its SHA256 fingerprint
	// ("SHA256:...") or its numeric ID.
	DeleteAuthorizedKey(ctx context.Context, name, fingerprintOrID string) error
	// Close releases the database.
	Close() error
}

var (
	// ErrNotFound: no such account or key.
	ErrNotFound = errors.New("not found")
	// ErrExists: the account name, or the key for this account, is taken.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a field fails validation; the message names it.
	ErrInvalid = errors.New("invalid")
)

// Bounds. None of these can be grown by an SSH peer, but a login reads an
// account's keys and source list on every attempt, so they are capped for
// the same reason peer-growable data is.
const (
	// MaxNameLength matches the longest name common tools accept
	// (useradd: 32; hosting panels use e-mail-like names, hence 64).
	MaxNameLength = 64
	// MaxKeysPerAccount: OpenSSH has no limit, but every key is parsed at
	// each login; a thousand covers any team sharing one account.
	MaxKeysPerAccount = 1000
	// MaxKeyLineLength covers OpenSSH's largest public key blob
	// (SSH_MAX_PUBKEY_BYTES, 16384 bytes, 21848 in base64) plus options
	// and comment.
	MaxKeyLineLength = 32 * 1024
	// MaxAllowFrom bounds the per-account source CIDR list.
	MaxAllowFrom = 256
	// MaxPathLength is Linux's PATH_MAX.
	MaxPathLength = 4096
	// MaxForceCommandLength is an ordinary ARG_MAX-safe command line.
	MaxForceCommandLength = 4096
	// MaxQuota (2^62) keeps used+delta arithmetic inside int64 in SQL.
	MaxQuota = 1 << 62
	// MaxUsageDelta bounds one AddUsage change (1 PiB) for the same reason.
	MaxUsageDelta = 1 << 50
)

// Permissions are the per-account switches the sftp/scp/session layers
// enforce.
type Permissions struct {
	ReadOnly        bool `json:"read_only"`
	UploadOnly      bool `json:"upload_only"`
	NoDelete        bool `json:"no_delete"`
	NoOverwrite     bool `json:"no_overwrite"`
	AllowSymlinks   bool `json:"allow_symlinks"`
	AllowShell      bool `json:"allow_shell"` // shell and exec requests
	AllowForwarding bool `json:"allow_forwarding"`
}

// Account is one login.
type Account struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// PasswordHash is a password.Hash string, or "" for no password
	// (NULL in the database).
	PasswordHash string `json:"-"`
	// Home is the absolute home directory; "" means <data-dir>/home/<name>,
	// resolved by the daemon (HomeDir).
	Home    string `json:"home"`
	Enabled bool   `json:"enabled"`
	// ExpiresAt is when logins stop being accepted; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// AuthMethods restricts authentication in the syntax of sshd_config's
	// AuthenticationMethods: space-separated lists of comma-separated
	// methods, any one list of which must be completed in full
	// ("publickey,password publickey"). "" means the server's default.
	AuthMethods string      `json:"auth_methods"`
	Permissions Permissions `json:"permissions"`
	// QuotaBytes and QuotaFiles: 0 is unlimited.
	QuotaBytes int64 `json:"quota_bytes"`
	QuotaFiles int64 `json:"quota_files"`
	UsedBytes  int64 `json:"used_bytes"`
	UsedFiles  int64 `json:"used_files"`
	// MaxSessions bounds concurrent sessions; 0 is the server's default.
	MaxSessions int `json:"max_sessions"`
	// MaxConnections bounds the account's concurrent authenticated
	// connections (on this server); 0 is unlimited.
	MaxConnections int `json:"max_connections"`
	// AllowFrom lists the source networks logins may come from; empty
	// allows all.
	AllowFrom []netip.Prefix `json:"allow_from"`
	// UID and GID, when set, are the system identity shell and exec
	// sessions run as.
	UID *uint32 `json:"uid,omitempty"`
	GID *uint32 `json:"gid,omitempty"`
	// ForceCommand replaces any command the client asks for (sshd's
	// ForceCommand).
	ForceCommand string    `json:"force_command,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastLoginAt  time.Time `json:"last_login_at,omitzero"`
}

// HasPassword reports whether the account has a password hash.
func (a *Account) HasPassword() bool { return a.PasswordHash != "" }

// Expired reports whether the account has expired at now.
func (a *Account) Expired(now time.Time) bool {
	return !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt)
}

// CanLogin reports whether the account is enabled and not expired.
func (a *Account) CanLogin(now time.Time) bool { return a.Enabled && !a.Expired(now) }

// AllowsSource reports whether a login from addr is allowed by AllowFrom.
func (a *Account) AllowsSource(addr netip.Addr) bool {
	if len(a.AllowFrom) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range a.AllowFrom {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AuthMethodLists splits AuthMethods into its lists; nil means no
// restriction.
func (a *Account) AuthMethodLists() [][]string {
	var lists [][]string
	for _, l := range strings.Fields(a.AuthMethods) {
		lists = append(lists, strings.Split(l, ","))
	}
	return lists
}

// HomeDir returns Home, or the default <dataDir>/home/<name>.
func (a *Account) HomeDir(dataDir string) string {
	if a.Home != "" {
		return a.Home
	}
	return filepath.Join(dataDir, "home", a.Name)
}

// NewAccount is one account to create, with its authorized_keys lines.
type NewAccount struct {
	Account *Account
	Keys    []string
}

// AuthorizedKey is one stored authorized_keys line.
type AuthorizedKey struct {
	ID      int64  `json:"id"`
	Account string `json:"account"`
	// Line is the canonical authorized_keys line: options as written, key
	// type, base64 of the re-marshalled key, comment.
	Line        string    `json:"line"`
	Fingerprint string    `json:"fingerprint"` // "SHA256:..." as ssh-keygen -l prints
	Type        string    `json:"type"`
	Comment     string    `json:"comment"`
	CreatedAt   time.Time `json:"created_at"`
}

// authMethodNames are the RFC 4252 §7-8 and RFC 4256 methods ferry
// implements.
var authMethodNames = map[string]bool{"publickey": true, "password": true, "keyboard-interactive": true}

// ValidateName checks an account name: 1-64 characters from [A-Za-z0-9._@-],
// starting with a letter, digit or underscore. The name becomes a directory
// name under <data-dir>/home and appears in logs, so no separators, spaces
// or control characters, and no leading '-', '.' or '@'.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%w account name %q: must be 1 to %d characters", ErrInvalid, name, MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case (c == '.' || c == '-' || c == '@') && i > 0:
		default:
			return fmt.Errorf("%w account name %q: only letters, digits and . _ - @ are allowed, and it must start with a letter, digit or _", ErrInvalid, name)
		}
	}
	return nil
}

// Validate checks every field a caller sets.
func (a *Account) Validate() error {
	if err := ValidateName(a.Name); err != nil {
		return err
	}
	if a.Home != "" {
		if len(a.Home) > MaxPathLength || !path.IsAbs(filepath.ToSlash(a.Home)) || strings.ContainsRune(a.Home, 0) {
			return fmt.Errorf("%w home %q: must be an absolute path", ErrInvalid, a.Home)
		}
	}
	if strings.ContainsAny(a.PasswordHash, "\x00\n") || len(a.PasswordHash) > 1024 {
		return fmt.Errorf("%w password hash", ErrInvalid)
	}
	if err := ValidateAuthMethods(a.AuthMethods); err != nil {
		return err
	}
	if a.QuotaBytes < 0 || a.QuotaBytes > MaxQuota {
		return fmt.Errorf("%w quota_bytes %d: must be 0 (unlimited) to 2^62", ErrInvalid, a.QuotaBytes)
	}
	if a.QuotaFiles < 0 || a.QuotaFiles > MaxQuota {
		return fmt.Errorf("%w quota_files %d: must be 0 (unlimited) to 2^62", ErrInvalid, a.QuotaFiles)
	}
	if a.UsedBytes < 0 || a.UsedFiles < 0 || a.UsedBytes > MaxQuota || a.UsedFiles > MaxQuota {
		return fmt.Errorf("%w usage counters", ErrInvalid)
	}
	if a.MaxSessions < 0 || a.MaxSessions > 1<<20 {
		return fmt.Errorf("%w max_sessions %d", ErrInvalid, a.MaxSessions)
	}
	if a.MaxConnections < 0 || a.MaxConnections > 1<<20 {
		return fmt.Errorf("%w max_connections %d", ErrInvalid, a.MaxConnections)
	}
	if len(a.AllowFrom) > MaxAllowFrom {
		return fmt.Errorf("%w allow_from: more than %d networks", ErrInvalid, MaxAllowFrom)
	}
	for _, p := range a.AllowFrom {
		if !p.IsValid() {
			return fmt.Errorf("%w allow_from network %v", ErrInvalid, p)
		}
	}
	if len(a.ForceCommand) > MaxForceCommandLength || strings.ContainsAny(a.ForceCommand, "\x00\n") {
		return fmt.Errorf("%w force_command", ErrInvalid)
	}
	return nil
}

// ValidateAuthMethods checks an AuthenticationMethods-style string.
func ValidateAuthMethods(s string) error {
	for _, list := range strings.Fields(s) {
		for _, m := range strings.Split(list, ",") {
			if !authMethodNames[m] {
				return fmt.Errorf("%w auth method %q: want publickey, password or keyboard-interactive", ErrInvalid, m)
			}
		}
	}
	return nil
}

// ParseAllowFrom parses one network: a CIDR prefix ("192.0.2.0/24",
// "2001:db8::/32") or a single address. The prefix is masked, so
// "192.0.2.7/24" is stored as 192.0.2.0/24.
func ParseAllowFrom(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w CIDR %q", ErrInvalid, s)
		}
		p = p.Masked()
		// Sources are matched unmapped (AllowsSource), so an IPv4-mapped
		// prefix (::ffff:0:0/96 and narrower) would never match: store
		// the IPv4 prefix it means, as a bare mapped address already is.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%w CIDR %q", ErrInvalid, s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func formatAllowFrom(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func parseAllowFromList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := ParseAllowFrom(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
