package daemon

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferry-sftp/ferry/store"
)

// checkHome refuses an account home that is, or holds, one of ferry's own
// files: the data directory, the root of the default homes, the SQLite
// database or a host key. ferry serves every home as the user it runs as,
// who can read all of these, so an account whose home is "/" (or the data
// directory's parent) could download the host private keys, every
// account's password hash and every other customer's files. `ferry user`
// refuses such homes; this is the server's own check, for homes written
// into the database by other tools (a control panel's SQL, a migration).
//
// Only a home set on the account is checked: a default home is
// <data_dir>/home/<name>, a single directory below the home root.
// Symbolic links are resolved, in both the home and the protected paths.
func checkHome(cfg *Config, home string) error {
	protected := []string{cfg.DataDir}
	if root, err := cfg.HomeRoot(); err == nil {
		protected = append(protected, root)
	}
	if u, err := cfg.DatabaseURL(); err == nil {
		if p, ok := store.SQLitePath(u); ok {
			protected = append(protected, p)
		}
	}
	protected = append(protected, cfg.HostKeys...)
	return CheckHomeHolds(home, protected)
}

// CheckHomeHolds refuses home if it is, or holds, any of the protected
// paths, with symbolic links resolved as far as each path exists (a
// database not created yet still names the directory it will be in).
// Empty protected paths are skipped. `ferry user` checks the homes it is
// given with it, the server each home set on an account (checkHome).
func CheckHomeHolds(home string, protected []string) error {
	h := resolveExisting(home)
	for _, p := range protected {
		if p == "" {
			continue
		}
		p = resolveExisting(p)
		if rel, err := filepath.Rel(h, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("home %s holds %s (ferry's own files or every account's home)", home, p)
		}
	}
	return nil
}

// resolveExisting is p made absolute with symbolic links resolved in the
// part of it that exists (a database not created yet still names the
// directory it will be created in).
func resolveExisting(p string) string {
	p, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for dir := p; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		if filepath.Dir(dir) == dir {
			return p
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
	}
}
