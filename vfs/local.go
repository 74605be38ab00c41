package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// maxRealPathLinks bounds the symbolic links RealPath follows, like
// SYMLOOP_MAX (POSIX requires at least 8; os.Root itself stops at 8 per
// call, so a deeper chain could not be opened anyway).
const maxRealPathLinks = 8

// MaxOpenFiles bounds the files and directories open at once through one
// Local FS; OpenFile beyond it fails with EMFILE. The daemon shares one
// Local FS among all the live sessions of an account, so this bounds the
// descriptors one account holds, whatever it does: each SFTP session may
// hold 256 handles (sftp.DefaultMaxHandles) and a connection 10 sessions,
// and connections per account are not limited, so without it one client
// with eight connections used up the server's 20,000 descriptors and no
// one could connect. 1,024 is far above what transfer clients keep open
// (a file or two per transfer, a few transfers at once), and is the
// usual soft RLIMIT_NOFILE that bounds each of OpenSSH's sftp-server
// processes.
const MaxOpenFiles = 1024

// local is an FS confined to one directory with os.Root: every call
// resolves its path component by component with openat(2) and refuses
// symbolic links and ".." that lead out, so a directory swapped for a
// symbolic link between two calls cannot redirect the second one.
type local struct {
	root *os.Root
	// open counts the Files returned by OpenFile and not yet closed.
	open atomic.Int64
}

// Local returns an FS confined to dir, which becomes "/".
//
// Symbolic links: other software (a web server, a backup job) follows the
// links users create without os.Root's confinement, so Symlink only makes
// links that lead at or below their own directory: a target is a
// relative path with no ".." component. An absolute client target "/x/y"
// is stored as the equivalent relative path when that has no ".."
// (it lies below the link's directory) and refused otherwise. Any ".."
// would be unsafe: how far it climbs depends on where the link sits and
// on the links its path passes through, and both can change after the
// check (renaming the directory, swapping a component for another link),
// while a target that only descends stays inside whatever happens. The
// refusal wraps ErrEscape. Links created by other means are still never
// followed outside: Readlink returns their text, following them fails
// with ErrEscape.
func Local(dir string) (FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &local{root: r}, nil
}

// rel turns a client-view path into a name relative to the root.
func rel(name string) string {
	c := Clean(name)
	if c == "/" {
		return "."
	}
	return c[1:]
}

// errPathEscapesText is os.Root's unexported errPathEscapes; matching its
// text is the only way to tell it from other failures.
const errPathEscapesText = "path escapes from parent"

// fix rewrites an os.Root error to name the client path (never the host
// path) and to wrap ErrEscape for an escape attempt.
func fix(op, name string, err error) error {
	if err == nil {
		return nil
	}
	inner := err
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		inner = pe.Err
	case errors.As(err, &le):
		inner = le.Err
	}
	if inner != nil && inner.Error() == errPathEscapesText {
		inner = ErrEscape
	}
	return &fs.PathError{Op: op, Path: Clean(name), Err: inner}
}

func (l *local) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if l.open.Add(1) > MaxOpenFiles {
		l.open.Add(-1)
		return nil, &fs.PathError{Op: "open", Path: Clean(name), Err: syscall.EMFILE}
	}
	f, err := l.root.OpenFile(rel(name), flag|openNonblock, perm)
	if err != nil {
		l.open.Add(-1)
		return nil, fix("open", name, err)
	}
	clearNonblockRegular(f)
	return &osFile{f: f, name: Clean(name), fsys: l}, nil
}

func (l *local) Stat(name string) (fs.FileInfo, error) {
	fi, err := l.root.Stat(rel(name))
	return fi, fix("stat", name, err)
}

func (l *local) Lstat(name string) (fs.FileInfo, error) {
	fi, err := l.root.Lstat(rel(name))
	return fi, fix("lstat", name, err)
}

func (l *local) Mkdir(name string, perm fs.FileMode) error {
	return fix("mkdir", name, l.root.Mkdir(rel(name), perm))
}

func (l *local) Remove(name string) error {
	r := rel(name)
	fi, err := l.root.Lstat(r)
	if err != nil {
		return fix("remove", name, err)
	}
	if fi.IsDir() {
		return &fs.PathError{Op: "remove", Path: Clean(name), Err: syscall.EISDIR}
	}
	// os.Root.Remove tries unlinkat then AT_REMOVEDIR; a directory put in
	// place between the Lstat and here is at worst removed if empty.
	return fix("remove", name, l.root.Remove(r))
}

func (l *local) Rmdir(name string) error {
	r := rel(name)
	if r == "." {
		return &fs.PathError{Op: "rmdir", Path: "/", Err: syscall.EBUSY}
	}
	fi, err := l.root.Lstat(r)
	if err != nil {
		return fix("rmdir", name, err)
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "rmdir", Path: Clean(name), Err: syscall.ENOTDIR}
	}
	return fix("rmdir", name, l.root.Remove(r))
}

func (l *local) Rename(oldname, newname string) error {
	o, n := rel(oldname), rel(newname)
	fi, err := l.root.Lstat(o)
	if err != nil {
		return fix("rename", oldname, err)
	}
	if fi.Mode().IsRegular() {
		// As OpenSSH's sftp-server: link(2) then unlink(2) never replaces
		// an existing target, unlike a check followed by rename(2).
		err := l.root.Link(o, n)
		if err == nil {
			if err := l.root.Remove(o); err != nil {
				l.root.Remove(n)
				return fix("rename", oldname, err)
			}
			return nil
		}
		if err = fix("rename", newname, err); errors.Is(err, fs.ErrExist) || errors.Is(err, ErrEscape) {
			return err
		}
		// EXDEV, EPERM (filesystems without hard links): fall through.
	}
	if _, err := l.root.Lstat(n); err == nil {
		return &fs.PathError{Op: "rename", Path: Clean(newname), Err: fs.ErrExist}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fix("rename", newname, err)
	}
	return fix("rename", newname, l.root.Rename(o, n))
}

func (l *local) PosixRename(oldname, newname string) error {
	if rel(oldname) == "." || rel(newname) == "." {
		return &fs.PathError{Op: "rename", Path: "/", Err: syscall.EBUSY}
	}
	return fix("rename", newname, l.root.Rename(rel(oldname), rel(newname)))
}

func (l *local) Link(oldname, newname string) error {
	return fix("link", newname, l.root.Link(rel(oldname), rel(newname)))
}

func (l *local) Symlink(target, linkname string) error {
	if target == "" {
		return &fs.PathError{Op: "symlink", Path: Clean(linkname), Err: syscall.ENOENT}
	}
	stored := target
	if path.IsAbs(target) {
		// Relative to the link's real directory (its parent may be
		// reached through other links). Should that directory change
		// before the link is made, the stored target still only
		// descends: at worst it names another file inside.
		dir, err := l.RealPath(path.Dir(Clean(linkname)))
		if err != nil {
			return &fs.PathError{Op: "symlink", Path: Clean(linkname), Err: unwrapPathErr(err)}
		}
		r, err := filepath.Rel(dir, Clean(target))
		if err != nil {
			return &fs.PathError{Op: "symlink", Path: Clean(linkname), Err: syscall.EINVAL}
		}
		stored = filepath.ToSlash(r)
	}
	if climbs(stored) {
		return &fs.PathError{Op: "symlink", Path: Clean(linkname), Err: ErrEscape}
	}
	return fix("symlink", linkname, l.root.Symlink(stored, rel(linkname)))
}

// climbs reports whether a link target has a ".." component: such a
// link's reach depends on its place in the tree, which may change.
func climbs(target string) bool {
	for _, p := range strings.Split(target, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *local) Readlink(name string) (string, error) {
	s, err := l.root.Readlink(rel(name))
	return s, fix("readlink", name, err)
}

func (l *local) RealPath(name string) (string, error) {
	parts := splitPath(Clean(name))
	var out []string
	// dirs holds the directories of out, opened: dirs[i] is the one
	// out[:i] names, and each step looks its component up in the last of
	// them. Looking each prefix up from the root again walked 1+2+...+n
	// components for a path of n: REALPATH of a path 2,000 directories
	// deep (4,000 bytes, which a client can make with MKDIR) cost about
	// 6 s of CPU, and clients send REALPATH for every cd.
	dirs := []*os.Root{l.root}
	defer func() {
		for _, d := range dirs[1:] {
			d.Close()
		}
	}()
	links := 0
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(out) == 0 {
				return "", &fs.PathError{Op: "realpath", Path: Clean(name), Err: ErrEscape}
			}
			out = out[:len(out)-1]
			dirs[len(dirs)-1].Close()
			dirs = dirs[:len(dirs)-1]
			continue
		}
		dir := dirs[len(dirs)-1]
		last := i == len(parts)-1
		fi, err := dir.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && last {
				out = append(out, p)
				break
			}
			return "", fix("realpath", name, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			links++
			if links > maxRealPathLinks {
				return "", &fs.PathError{Op: "realpath", Path: Clean(name), Err: syscall.ELOOP}
			}
			target, err := dir.Readlink(p)
			if err != nil {
				return "", fix("realpath", name, err)
			}
			if path.IsAbs(target) {
				return "", &fs.PathError{Op: "realpath", Path: Clean(name), Err: ErrEscape}
			}
			// The target is relative to the link's directory, which out
			// and dirs still name.
			parts = append(splitPath(target), parts[i+1:]...)
			i = -1
			continue
		}
		if !fi.IsDir() && !last {
			return "", &fs.PathError{Op: "realpath", Path: Clean(name), Err: syscall.ENOTDIR}
		}
		out = append(out, p)
		if last {
			break
		}
		sub, err := dir.OpenRoot(p)
		if err != nil {
			return "", fix("realpath", name, err)
		}
		dirs = append(dirs, sub)
	}
	return "/" + strings.Join(out, "/"), nil
}

func splitPath(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// Chmod, Chown and Chtimes resolve the path inside the root, but on Unix
// os.Root applies them by name afterwards: a file swapped for a link in
// between gets the change on the link itself (see os.Root), never on
// anything outside.
func (l *local) Chmod(name string, mode fs.FileMode) error {
	return fix("chmod", name, l.root.Chmod(rel(name), mode))
}

func (l *local) Chown(name string, uid, gid int) error {
	return fix("chown", name, l.root.Chown(rel(name), uid, gid))
}

func (l *local) Lchown(name string, uid, gid int) error {
	return fix("lchown", name, l.root.Lchown(rel(name), uid, gid))
}

func (l *local) Chtimes(name string, atime, mtime time.Time) error {
	return fix("chtimes", name, l.root.Chtimes(rel(name), atime, mtime))
}

func (l *local) Truncate(name string, size int64) error {
	f, err := l.root.OpenFile(rel(name), os.O_WRONLY|openNonblock, 0)
	if err != nil {
		return fix("truncate", name, err)
	}
	defer f.Close()
	return fix("truncate", name, f.Truncate(size))
}

func (l *local) StatVFS(name string) (*StatVFS, error) {
	f, err := l.root.OpenFile(rel(name), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, fix("statvfs", name, err)
	}
	defer f.Close()
	st, err := fstatvfs(f)
	return st, fix("statvfs", name, err)
}

func (l *local) Close() error { return l.root.Close() }

// osFile adapts *os.File to File.
type osFile struct {
	f      *os.File
	name   string
	fsys   *local // whose open count it is in; nil for OS
	closed atomic.Bool
}

// Close closes the file; only the first call gives its slot back.
func (f *osFile) Close() error {
	if f.fsys != nil && f.closed.CompareAndSwap(false, true) {
		f.fsys.open.Add(-1)
	}
	return f.f.Close()
}

func (f *osFile) Read(p []byte) (int, error)               { return f.f.Read(p) }
func (f *osFile) Write(p []byte) (int, error)              { return f.f.Write(p) }
func (f *osFile) ReadAt(p []byte, off int64) (int, error)  { return f.f.ReadAt(p, off) }
func (f *osFile) WriteAt(p []byte, off int64) (int, error) { return f.f.WriteAt(p, off) }
func (f *osFile) Stat() (fs.FileInfo, error)               { return f.f.Stat() }
func (f *osFile) Truncate(size int64) error                { return f.f.Truncate(size) }
func (f *osFile) Chmod(mode fs.FileMode) error             { return f.f.Chmod(mode) }
func (f *osFile) Chown(uid, gid int) error                 { return f.f.Chown(uid, gid) }
func (f *osFile) Sync() error                              { return f.f.Sync() }
func (f *osFile) Chtimes(atime, mtime time.Time) error     { return futimes(f.f, atime, mtime) }
func (f *osFile) ReadDir(n int) ([]fs.FileInfo, error) {
	fis, err := f.f.Readdir(n)
	if err == nil && len(fis) == 0 && n > 0 {
		err = io.EOF
	}
	return fis, err
}
