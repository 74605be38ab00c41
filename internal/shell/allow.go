package shell

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-sftp/ferry/scp"
)

var (
	errNotAllowed   = errors.New("not in allowed_commands")
	errOutsideHome  = errors.New("argument names a path outside the home")
	errNoExecutable = errors.New("program not found in PATH")
)

// checkAllowed splits cmd without a shell (scp.SplitCommand: quotes are
// honoured, operators, substitutions and patterns refused), matches it
// against the allow-list by leading words, and checks every argument.
// It returns argv with argv[0] resolved in Config.Path, and every
// argument that is an absolute path taken in the account's view, where
// "/" is its home as in SFTP and SCP: "/d/f" is passed on as "./d/f"
// (the process starts in the home). Clients name files by the paths SFTP
// gave them: rclone checks each upload with "md5sum /dir/file", and a
// refusal there failed every upload as corrupted.
func (h *Handler) checkAllowed(cmd string) ([]string, error) {
	argv, err := scp.SplitCommand(cmd)
	if err != nil {
		return nil, err
	}
	allowed := false
	for _, prefix := range h.allowed {
		if len(argv) >= len(prefix) && equalWords(argv[:len(prefix)], prefix) {
			allowed = true
			break
		}
	}
	if !allowed {
		return nil, errNotAllowed
	}
	for i, a := range argv[1:] {
		if filepath.IsAbs(a) {
			a = "." + a
			argv[1+i] = a
		}
		if err := h.checkArg(a); err != nil {
			return nil, err
		}
	}
	prog, err := lookPath(argv[0], h.cfg.Path)
	if err != nil {
		return nil, err
	}
	argv[0] = prog
	return argv, nil
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkArg refuses an argument that names a path outside the home: an
// absolute path, or one whose ".." elements climb above the home, or
// that leads out through a symbolic link. Options are checked with their
// values: "--log-file=/x" by the part after '=', and a short option's
// attached value ("-T/tmp") by what follows the letter. The check is
// conservative — an option value that merely looks like such a path is
// refused too — because allow-listed programs (rsync, git) run as the
// account's user, without a chroot.
func (h *Handler) checkArg(a string) error {
	cands := []string{a}
	if strings.HasPrefix(a, "-") {
		if _, v, ok := strings.Cut(a, "="); ok {
			cands = append(cands, v)
		}
		if !strings.HasPrefix(a, "--") && len(a) > 2 {
			cands = append(cands, a[2:])
		}
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if filepath.IsAbs(c) || strings.HasPrefix(c, "~") {
			return errOutsideHome
		}
		if !h.insideHome(c) {
			return errOutsideHome
		}
	}
	return nil
}

// insideHome resolves p relative to the home, lexically and then through
// the symbolic links of its longest existing prefix.
func (h *Handler) insideHome(p string) bool {
	full := filepath.Join(h.cfg.Home, p)
	if !within(h.cfg.Home, full) {
		return false
	}
	home, err := filepath.EvalSymlinks(h.cfg.Home)
	if err != nil {
		return false
	}
	// The longest prefix that exists decides where the path leads.
	for cur := full; ; cur = filepath.Dir(cur) {
		if _, err := os.Lstat(cur); err == nil {
			real, err := filepath.EvalSymlinks(cur)
			if err != nil {
				// A dangling link: where it points is not known to stay.
				return false
			}
			return within(home, real)
		}
		if cur == h.cfg.Home || cur == "/" {
			return false
		}
	}
}

func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// lookPath finds a program in the configured PATH, never the server's
// own, and never relative to the working directory (a user's file named
// like an allowed program must not run instead of it).
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			return "", errNoExecutable
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNoExecutable
}
