package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

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

// maxHomeLinks bounds the symbolic links followed in a home's path, as
// the kernel's ELOOP limit (40) does.
const maxHomeLinks = 40

// checkHomePath refuses a home that a local user other than root and
// ferry's own could swap for another directory, sshd's rule for
// ChrootDirectory ("bad ownership or modes for chroot directory
// component"): every directory in which a name of the path is looked up,
// the targets of symbolic links included, must belong to root or to
// ferry's user and be writable by nobody else, unless it is sticky
// (/tmp) and the name in it belongs to root or ferry's user. A home under
// a directory the web server's user can write (/srv/www, group www-data,
// 0775) was served wherever a link put there by a compromised web
// application pointed: another customer's home, or, with ferry as root,
// /etc or /root/.ssh. Components not created yet are not checked
// (homeDir checks again once it has made them).
func checkHomePath(home string) error {
	return checkHomePathTrusting(home, uint32(os.Geteuid()))
}

// HomePathProblem is checkHomePath for `ferry user` commands, which may
// run as root for a server running as its own user: the owner of dataDir
// (the server's user, normally) is trusted too. A non-nil result is what
// the server will refuse sessions in home for.
func HomePathProblem(home, dataDir string) error {
	trusted := []uint32{uint32(os.Geteuid())}
	if fi, err := os.Stat(dataDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			trusted = append(trusted, st.Uid)
		}
	}
	return checkHomePathTrusting(home, trusted...)
}

// checkHomePathTrusting is checkHomePath with root and the given uids as
// the owners that may change the path.
func checkHomePathTrusting(home string, uids ...uint32) error {
	trusted := func(fi os.FileInfo) (uint32, bool) {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, true
		}
		return st.Uid, st.Uid == 0 || slices.Contains(uids, st.Uid)
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return err
	}
	names := strings.Split(abs, "/")
	dir, links := "/", 0
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		dfi, err := os.Lstat(dir)
		if err != nil {
			return err
		}
		if uid, ok := trusted(dfi); !ok {
			return fmt.Errorf("home %s: directory %s belongs to uid %d, who could replace the home with a link to any other directory; give it to root (chown root %s)", home, dir, uid, dir)
		}
		shared := dfi.Mode()&0o022 != 0
		if shared && dfi.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("home %s: directory %s is writable by group or others, who could replace the home with a link to any other directory (chmod go-w %s)", home, dir, dir)
		}
		next := filepath.Join(dir, name)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if uid, ok := trusted(fi); shared && !ok {
			return fmt.Errorf("home %s: %s, in the sticky directory %s, belongs to uid %d, who could point it at any other directory", home, next, dir, uid)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			dir = next
			continue
		}
		if links++; links > maxHomeLinks {
			return fmt.Errorf("home %s: too many levels of symbolic links", home)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			dir = "/"
		}
		names = append(strings.Split(target, "/"), names...)
	}
	return nil
}
