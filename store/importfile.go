package store

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/store/password"
)

// Import-file bounds: an import is one transaction held in memory.
const (
	// MaxImportAccounts is far above any one hosting server's customer
	// count, and a hundred thousand accounts import in seconds.
	MaxImportAccounts = 100_000
	// maxPasswdLine: passwd(5)/shadow(5) lines are short; glibc's NSS
	// buffer for one entry is typically 1 KiB, 64 KiB is generous.
	maxPasswdLine = 64 * 1024
	// maxAuthorizedKeysFile bounds one authorized_keys file read at import.
	maxAuthorizedKeysFile = 4 << 20
	// MaxImportErrorsListed bounds the failed entries an ImportErrors
	// lists (all are counted): enough to show every kind of mistake in a
	// file, short enough to read in a terminal.
	MaxImportErrorsListed = 50
)

// ImportErrors is every entry of an import that failed, in input order.
// An export of 20,000 accounts with a few hundred bad entries (hashes of an
// unsupported format, names ferry refuses) took one run per entry when
// only the first was reported; now one run names them all.
type ImportErrors struct {
	// Errs are the first MaxImportErrorsListed failures.
	Errs []error
	// Count is how many entries failed in all.
	Count int
}

// add records one more failure.
func (e *ImportErrors) add(err error) {
	e.Count++
	if len(e.Errs) < MaxImportErrorsListed {
		e.Errs = append(e.Errs, err)
	}
}

// err returns e, or nil when nothing failed.
func (e *ImportErrors) err() error {
	if e.Count == 0 {
		return nil
	}
	return e
}

func (e *ImportErrors) Error() string {
	if e.Count == 1 {
		return e.Errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d entries failed:", e.Count)
	for _, err := range e.Errs {
		b.WriteString("\n\t")
		b.WriteString(err.Error())
	}
	if n := e.Count - len(e.Errs); n > 0 {
		fmt.Fprintf(&b, "\n\t... and %d more", n)
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every listed failure.
func (e *ImportErrors) Unwrap() []error { return e.Errs }

// CSVImportHeader is the header ParseCSVImport requires (columns may come
// in any order).
var csvImportColumns = []string{"name", "password_hash", "home", "authorized_keys"}

// ParseCSVImport reads accounts from CSV (RFC 4180) with the header
// "name,password_hash,home,authorized_keys". authorized_keys holds zero or
// more lines (a quoted field may span lines); an empty home means the
// default; an empty password_hash means no password. Imported accounts are
// enabled. A hash of a format ferry cannot verify fails its row, or with
// opts.SkipUnsupportedHashes gives the account no password and a warning.
// Errors name the CSV line; a bad row does not stop the reading,
// so that the error, an *ImportErrors, lists every bad row (a CSV syntax
// error still ends it, since the rows after it cannot be told apart).
func ParseCSVImport(r io.Reader, opts CSVImportOptions) (accounts []NewAccount, warnings []string, err error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("csv header: %w", err)
	}
	cr.FieldsPerRecord = len(header)
	col := map[string]int{}
	settings := map[string]int{} // opts.SettingColumns in the header
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) // spreadsheet exports start with a BOM
		if n := strings.ReplaceAll(strings.ToLower(h), "-", "_"); slices.Contains(opts.SettingColumns, n) {
			h = n
			settings[h] = i
		} else if !slices.Contains(csvImportColumns, h) {
			want := strings.Join(csvImportColumns, ",")
			if len(opts.SettingColumns) > 0 {
				want += ", and any of " + strings.Join(opts.SettingColumns, ",")
			}
			return nil, nil, fmt.Errorf("csv header: unknown column %q (want %s)", h, want)
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("csv header: column %q twice", h)
		}
		col[h] = i
	}
	for _, c := range csvImportColumns {
		if _, ok := col[c]; !ok {
			return nil, nil, fmt.Errorf("csv header: column %q missing (want %s)", c, strings.Join(csvImportColumns, ","))
		}
	}
	var (
		errs  ImportErrors
		lines = map[string]int{} // name → CSV line it is first on
	)
	for rows := 0; ; rows++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs.add(fmt.Errorf("csv: %w", err))
			return nil, nil, errs.err()
		}
		line, _ := cr.FieldPos(0)
		if rows == MaxImportAccounts {
			errs.add(fmt.Errorf("csv line %d: more than %d accounts", line, MaxImportAccounts))
			return nil, nil, errs.err()
		}
		a := &Account{
			Name:         strings.TrimSpace(rec[col["name"]]),
			PasswordHash: strings.TrimSpace(rec[col["password_hash"]]),
			Home:         strings.TrimSpace(rec[col["home"]]),
			Enabled:      true,
		}
		if err := checkImported(a); err != nil {
			if !opts.SkipUnsupportedHashes || !errors.Is(err, password.ErrUnknownFormat) {
				errs.add(fmt.Errorf("csv line %d: %w", line, err))
				continue
			}
			warnings = append(warnings, fmt.Sprintf("csv line %d: account %q: password hash %s not supported, imported without a password", line, a.Name, hashKind(a.PasswordHash)))
			a.PasswordHash = ""
		}
		if len(settings) > 0 {
			values := make(map[string]string, len(settings))
			for c, i := range settings {
				if v := strings.TrimSpace(rec[i]); v != "" {
					values[c] = v
				}
			}
			if err := opts.Settings(a, values); err != nil {
				errs.add(fmt.Errorf("csv line %d: account %q: %w", line, a.Name, err))
				continue
			}
		}
		if first, dup := lines[a.Name]; dup {
			errs.add(fmt.Errorf("csv line %d: account %q: %w (on line %d too)", line, a.Name, ErrExists, first))
			continue
		}
		lines[a.Name] = line
		keys := splitKeyLines(rec[col["authorized_keys"]])
		if len(keys) > MaxKeysPerAccount {
			errs.add(fmt.Errorf("csv line %d: account %q: more than %d keys", line, a.Name, MaxKeysPerAccount))
			continue
		}
		accounts = append(accounts, NewAccount{Account: a, Keys: keys})
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	return accounts, warnings, nil
}

// CSVImportOptions tune ParseCSVImport.
type CSVImportOptions struct {
	// SkipUnsupportedHashes imports accounts whose hash ferry cannot
	// verify (DES crypt, yescrypt, unsalted digests) without a password
	// instead of failing the import; each is reported in warnings.
	SkipUnsupportedHashes bool
	// SettingColumns are further columns the header may have (lower
	// case, with "_"; "-" in the header is read as "_"), such as
	// quota_bytes. For each row, Settings is given the account and the
	// row's non-empty values of those columns, and sets them on the
	// account; its error fails the row.
	SettingColumns []string
	Settings       func(a *Account, values map[string]string) error
}

func checkImported(a *Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.PasswordHash != "" {
		if err := password.Check(a.PasswordHash); err != nil {
			return fmt.Errorf("account %q: password hash %s: %w%s", a.Name, hashKind(a.PasswordHash), err, unsupportedHint(err))
		}
	}
	return nil
}

// unsupportedHint tells, after an unknown hash format, which ones ferry
// verifies: "unknown hash format" alone left the admin to guess whether
// the export or ferry was at fault.
func unsupportedHint(err error) string {
	if !errors.Is(err, password.ErrUnknownFormat) {
		return ""
	}
	return " (ferry verifies argon2id, bcrypt $2a$/$2b$/$2y$, SHA-crypt $5$/$6$, md5crypt $1$ and $apr1$, with or without a {SCHEME} prefix; not DES crypt, yescrypt or unsalted digests; --skip-unsupported-hashes imports such accounts without a password)"
}

// splitKeyLines splits authorized_keys text into lines, dropping blank and
// comment lines.
func splitKeyLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		out = append(out, l)
	}
	return out
}

// ReadAuthorizedKeysFile returns the key lines of an authorized_keys file,
// or of a public key file as SplitAuthorizedKeysText reads it.
func ReadAuthorizedKeysFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAuthorizedKeysFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAuthorizedKeysFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxAuthorizedKeysFile)
	}
	lines, err := SplitAuthorizedKeysText(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return lines, nil
}

// SplitAuthorizedKeysText returns the key lines of text as customers paste
// it into a control panel or upload it: authorized_keys lines (blank and #
// comment lines dropped, CRLF or LF endings), after a UTF-8 byte order mark
// (Windows Notepad's), and RFC 4716 public key blocks (PuTTYgen's "Save
// public key", ssh-keygen -e) turned into "type base64 comment" lines, as
// ssh-keygen -i would. A private key, or a PEM public key, is an error that
// says what to give instead; the key itself is never quoted back.
func SplitAuthorizedKeysText(text string) ([]string, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	var out []string
	n := 0
	for len(text) > 0 {
		n++
		line, rest, _ := strings.Cut(text, "\n")
		t := strings.TrimSpace(line)
		switch {
		case t == keys.RFC4716Begin:
			k, comment, after, err := keys.ParseRFC4716([]byte(text))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			n += strings.Count(text[:len(text)-len(after)], "\n") - 1
			l := strings.TrimSuffix(string(keys.MarshalAuthorizedKey(k)), "\n")
			if comment != "" {
				l += " " + comment
			}
			out = append(out, l)
			text = string(after)
			continue
		case isPrivateKeyLine(t):
			return nil, fmt.Errorf("line %d: this is a private key, which must stay with its owner; give the public key instead (the .pub file, or PuTTYgen's \"Public key for pasting into OpenSSH authorized_keys file\")", n)
		case strings.HasPrefix(t, "-----BEGIN ") && strings.HasSuffix(t, "PUBLIC KEY-----"):
			return nil, fmt.Errorf("line %d: a PEM public key is not an SSH public key; convert it with ssh-keygen -i -m PKCS8 -f FILE (or -m PEM for \"BEGIN RSA PUBLIC KEY\")", n)
		case t != "" && t[0] != '#':
			out = append(out, t)
		}
		text = rest
	}
	return out, nil
}

// isPrivateKeyLine reports whether line starts a private key file: PEM
// ("-----BEGIN OPENSSH PRIVATE KEY-----", RSA, EC, DSA, PKCS #8, encrypted
// or not), PuTTY's .ppk, or SSH.com's RFC 4716-style private key.
func isPrivateKeyLine(line string) bool {
	return strings.HasPrefix(line, "-----BEGIN ") && strings.HasSuffix(line, "PRIVATE KEY-----") ||
		strings.HasPrefix(line, "PuTTY-User-Key-File-") ||
		line == "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----"
}

// PasswdImportOptions tune ParsePasswdImport.
type PasswdImportOptions struct {
	// MinUID skips entries with a lower uid (system accounts: 1000 on
	// Debian).
	MinUID uint32
	// SkipUnsupportedHashes imports accounts whose shadow hash ferry
	// cannot verify (yescrypt "$y$", DES crypt, ...) without a password
	// instead of failing the import; each is reported in warnings.
	SkipUnsupportedHashes bool
}

// ParsePasswdImport reads passwd(5) lines (name:x:uid:gid:gecos:home:shell)
// and, when shadow is not nil, shadow(5) lines (name:hash:...). Each entry
// becomes an enabled account with the entry's home, uid and gid. Locked
// ("!...", "*") and empty shadow hashes give no password: an empty hash
// means "no password needed" to crypt(3), which ferry never allows. Keys
// are left for the caller to attach.
//
// Lines of pure-ftpd's virtual users file (pureftpd.passwd, as pure-pw
// writes it: the seven passwd fields, the sixth without a shell, then
// eleven more) are read too: the hash is the second field, the home loses
// its "/./" chroot mark, and the per-user connection limit, files and
// size quotas and allowed client addresses become the account's
// --max-connections, --quota-files, --quota-bytes and --allow-from.
// Settings ferry has no equivalent for (bandwidth, ratios, refused
// addresses, local addresses, hours) are named in a warning.
func ParsePasswdImport(passwd, shadow io.Reader, opts PasswdImportOptions) (accounts []NewAccount, warnings []string, err error) {
	var errs ImportErrors
	hashes := map[string]string{}
	if shadow != nil {
		scanColonFile(shadow, "shadow", 2, &errs, func(line int, f []string) error {
			if len(hashes) >= MaxImportAccounts {
				return fmt.Errorf("%w: more than %d entries", errImportTooLarge, MaxImportAccounts)
			}
			hashes[f[0]] = f[1]
			return nil
		})
		if errs.Count > 0 {
			return nil, nil, errs.err()
		}
	}
	seen := map[string]bool{}
	scanColonFile(passwd, "passwd", 7, &errs, func(line int, f []string) error {
		if len(f) != 7 && len(f) != pureFTPdFields {
			return fmt.Errorf("want name:password:uid:gid:gecos:home:shell, or pure-ftpd's %d fields", pureFTPdFields)
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("account %q: bad uid or gid", f[0])
		}
		if uint32(uid) < opts.MinUID {
			return nil
		}
		if seen[f[0]] {
			return fmt.Errorf("account %q: listed twice", f[0])
		}
		seen[f[0]] = true
		if len(accounts) == MaxImportAccounts {
			return fmt.Errorf("%w: more than %d accounts", errImportTooLarge, MaxImportAccounts)
		}
		u, g := uint32(uid), uint32(gid)
		home := f[5]
		if home != "" && !path.IsAbs(home) {
			return fmt.Errorf("account %q: home %q is not absolute", f[0], home)
		}
		a := &Account{Name: f[0], Home: path.Clean(home), UID: &u, GID: &g, Enabled: true}
		if home == "" {
			a.Home = ""
		}
		hash := hashes[f[0]]
		if shadow == nil && f[1] != "x" && f[1] != "*" && f[1] != "" && f[1][0] != '!' {
			hash = f[1] // a hash kept in passwd itself (pre-shadow systems, BSD master.passwd style)
		}
		switch {
		case hash == "", hash[0] == '!', hash[0] == '*':
			// locked or empty: no password
		default:
			if err := password.Check(hash); err != nil {
				if !opts.SkipUnsupportedHashes {
					return fmt.Errorf("account %q: password hash %s: %w (use --skip-unsupported-hashes to import it without a password)", a.Name, hashKind(hash), err)
				}
				warnings = append(warnings, fmt.Sprintf("account %q: password hash %s not supported, imported without a password", a.Name, hashKind(hash)))
			} else {
				a.PasswordHash = hash
			}
		}
		if len(f) == pureFTPdFields {
			ignored, err := pureFTPdLimits(a, f)
			if err != nil {
				return fmt.Errorf("account %q: %w", a.Name, err)
			}
			if len(ignored) > 0 {
				warnings = append(warnings, fmt.Sprintf("account %q: pure-ftpd's %s not imported (ferry has no such setting)", a.Name, strings.Join(ignored, ", ")))
			}
		}
		if err := a.Validate(); err != nil {
			return err
		}
		accounts = append(accounts, NewAccount{Account: a})
		return nil
	})
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	return accounts, warnings, nil
}

// pureFTPdFields is the field count of a pureftpd.passwd line: account,
// password, uid, gid, gecos, home, upload and download bandwidth, upload
// and download ratio, max connections, files quota, size quota (bytes),
// allowed and refused local IPs, allowed and refused client IPs, time
// restrictions (pure-ftpd's README.Virtual-Users).
const pureFTPdFields = 18

// pureFTPdLimits sets a's limits from the pure-ftpd fields f and returns
// the names of the set fields that have no ferry equivalent.
func pureFTPdLimits(a *Account, f []string) (ignored []string, err error) {
	count := func(i int, what string) (int64, error) {
		if f[i] == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s %q: not a number", what, f[i])
		}
		return n, nil
	}
	maxConn, err := count(10, "max connections")
	if err != nil {
		return nil, err
	}
	if maxConn > 1<<20 {
		return nil, fmt.Errorf("max connections %d: too large", maxConn)
	}
	a.MaxConnections = int(maxConn)
	if a.QuotaFiles, err = count(11, "files quota"); err != nil {
		return nil, err
	}
	if a.QuotaBytes, err = count(12, "size quota"); err != nil {
		return nil, err
	}
	if f[15] != "" {
		// pure-ftpd also takes host names here; ferry matches addresses
		// only, so a name is an error rather than a dropped restriction.
		for _, n := range strings.Split(f[15], ",") {
			p, err := ParseAllowFrom(n)
			if err != nil {
				return nil, fmt.Errorf("allowed client IPs: %q is not an address or CIDR", n)
			}
			a.AllowFrom = append(a.AllowFrom, p)
		}
	}
	for _, x := range []struct {
		i    int
		name string
	}{{6, "upload bandwidth"}, {7, "download bandwidth"}, {8, "upload ratio"}, {9, "download ratio"},
		{13, "allowed local IPs"}, {14, "refused local IPs"}, {16, "refused client IPs"}, {17, "time restrictions"}} {
		if f[x.i] != "" && f[x.i] != "0" {
			ignored = append(ignored, x.name)
		}
	}
	return ignored, nil
}

// hashKind names a hash's format for messages without revealing it: its
// $id$ or {SCHEME} prefix.
func hashKind(h string) string {
	if strings.HasPrefix(h, "{") {
		if i := strings.IndexByte(h, '}'); i > 0 && i <= 32 {
			return fmt.Sprintf("%q", h[:i+1])
		}
	}
	if strings.HasPrefix(h, "$") {
		if i := strings.IndexByte(h[1:], '$'); i >= 0 && i <= 32 {
			return fmt.Sprintf("%q", h[:i+2])
		}
	}
	return "(no $id$ prefix)"
}

// errImportTooLarge ends an import file's reading: more entries than
// MaxImportAccounts.
var errImportTooLarge = errors.New("import too large")

// scanColonFile calls fn with the colon-separated fields of every
// non-blank, non-comment line, and adds each failure, naming the file and
// line, to errs; reading goes on past them, up to an unreadable line or
// an fn error wrapping errImportTooLarge.
func scanColonFile(r io.Reader, what string, minFields int, errs *ImportErrors, fn func(line int, fields []string) error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxPasswdLine)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, ":")
		if len(f) < minFields {
			errs.add(fmt.Errorf("%s line %d: too few fields", what, n))
			continue
		}
		if err := fn(n, f); err != nil {
			errs.add(fmt.Errorf("%s line %d: %w", what, n, err))
			if errors.Is(err, errImportTooLarge) {
				return
			}
		}
	}
	if err := sc.Err(); err != nil {
		errs.add(fmt.Errorf("%s line %d: %w", what, n+1, err))
	}
}
