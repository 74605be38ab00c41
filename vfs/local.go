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

// MaxPathLen bounds a path the FS takes, in bytes, as PATH_MAX bounds
// one the kernel takes (OpenSSH's sftp-server fails a longer one with
// ENAMETOOLONG). os.Root resolves a path one component at a time, one
// openat(2) each, so without it a single request naming a path of a
// hundred thousand components cost a third of a second of CPU.
const MaxPathLen = 4095

// rel turns a client-view path into a name relative to the root, or fails
// it for op with ENAMETOOLONG.
func rel(op, name string) (string, error) {
	c := Clean(name)
	if len(c) > MaxPathLen {
		return "", &fs.PathError{Op: op, Path: c[:64] + "...", Err: syscall.ENAMETOOLONG}
	}
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
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
	r, err := rel("open", name)
	if err != nil {
		return nil, err
	}
	if l.open.Add(1) > MaxOpenFiles {
		l.open.Add(-1)
		return nil, &fs.PathError{Op: "open", Path: Clean(name), Err: syscall.EMFILE}
	}
	f, err := l.root.OpenFile(r, flag|openNonblock, perm)
	if err != nil {
		l.open.Add(-1)
		return nil, fix("open", name, err)
	}
	clearNonblockRegular(f)
	return &osFile{f: f, name: Clean(name), fsys: l}, nil
}

func (l *local) Stat(name string) (fs.FileInfo, error) {
	r, err := rel("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := l.root.Stat(r)
	return fi, fix("stat", name, err)
}

func (l *local) Lstat(name string) (fs.FileInfo, error) {
	r, err := rel("lstat", name)
	if err != nil {
		return nil, err
	}
	fi, err := l.root.Lstat(r)
	return fi, fix("lstat", name, err)
}

func (l *local) Mkdir(name string, perm fs.FileMode) error {
	r, err := rel("mkdir", name)
	if err != nil {
		return err
	}
	return fix("mkdir", name, l.root.Mkdir(r, perm))
}

func (l *local) Remove(name string) error {
	r, err := rel("remove", name)
	if err != nil {
		return err
	}
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
	r, err := rel("rmdir", name)
	if err != nil {
		return err
	}
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
	o, n, err := rel2("rename", oldname, newname)
	if err != nil {
		return err
	}
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
	o, n, err := rel2("rename", oldname, newname)
	if err != nil {
		return err
	}
	if o == "." || n == "." {
		return &fs.PathError{Op: "rename", Path: "/", Err: syscall.EBUSY}
	}
	if fi, err := l.root.Lstat(n); err == nil && fi.IsDir() {
		// os.Root.Rename refuses any existing directory as the new name;
		// rename(2) replaces an empty one (and fails ENOTEMPTY, EISDIR or
		// ENOTDIR otherwise), as sftp-server's posix-rename does.
		return l.renameAt(oldname, newname, o, n)
	}
	return fix("rename", newname, l.root.Rename(o, n))
}

// renameAt is rename(2) between o and n (root-relative, clean) in their
// directories opened through the root: only the last components are
// named, so nothing is looked up outside it.
func (l *local) renameAt(oldname, newname, o, n string) error {
	od, err := l.openParent(o)
	if err != nil {
		return fix("rename", oldname, err)
	}
	defer od.Close()
	nd, err := l.openParent(n)
	if err != nil {
		return fix("rename", newname, err)
	}
	defer nd.Close()
	if err := renameatFiles(od, path.Base(o), nd, path.Base(n)); err != nil {
		return &os.LinkError{Op: "rename", Old: Clean(oldname), New: Clean(newname), Err: err}
	}
	return nil
}

// openParent opens the directory holding r (root-relative, clean).
func (l *local) openParent(r string) (*os.File, error) {
	return l.root.Open(path.Dir(r))
}

func (l *local) Link(oldname, newname string) error {
	o, n, err := rel2("link", oldname, newname)
	if err != nil {
		return err
	}
	return fix("link", newname, l.root.Link(o, n))
}

func (l *local) Symlink(target, linkname string) error {
	if target == "" {
		return &fs.PathError{Op: "symlink", Path: Clean(linkname), Err: syscall.ENOENT}
	}
	r, err := rel("symlink", linkname)
	if err != nil {
		return err
	}
	if len(target) > MaxPathLen {
		return &fs.PathError{Op: "symlink", Path: Clean(linkname), Err: syscall.ENAMETOOLONG}
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
	return fix("symlink", linkname, l.root.Symlink(stored, r))
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
	r, err := rel("readlink", name)
	if err != nil {
		return "", err
	}
	s, err := l.root.Readlink(r)
	return s, fix("readlink", name, err)
}

// rel2 is rel of both names of a two-path operation.
func rel2(op, oldname, newname string) (string, string, error) {
	o, err := rel(op, oldname)
	if err != nil {
		return "", "", err
	}
	n, err := rel(op, newname)
	return o, n, err
}

func (l *local) RealPath(name string) (string, error) {
	if _, err := rel("realpath", name); err != nil {
		return "", err
	}
	parts := splitPath(Clean(name))
	var out []string
	// dir is the directory out names, open: each step looks its component
	// up there. Looking each prefix up from the root again walked
	// 1+2+...+n components for a path of n: REALPATH of a path 2,000
	// directories deep (4,000 bytes, which a client can make with MKDIR)
	// cost about 6 s of CPU, and clients send REALPATH for every cd. Only
	// the one directory is held (holding every one on the way took a
	// descriptor per component, outside MaxOpenFiles); a ".." from a link
	// target reopens its parent from the root.
	dir := l.root
	defer func() {
		if dir != l.root {
			dir.Close()
		}
	}()
	enter := func(sub *os.Root) {
		if dir != l.root {
			dir.Close()
		}
		dir = sub
	}
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
			if len(out) == 0 {
				enter(l.root)
				continue
			}
			sub, err := l.root.OpenRoot(strings.Join(out, "/"))
			if err != nil {
				return "", fix("realpath", name, err)
			}
			enter(sub)
			continue
		}
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
			// and dir still name.
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
		enter(sub)
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
	r, err := rel("chmod", name)
	if err != nil {
		return err
	}
	return fix("chmod", name, l.root.Chmod(r, mode))
}

func (l *local) Chown(name string, uid, gid int) error {
	r, err := rel("chown", name)
	if err != nil {
		return err
	}
	return fix("chown", name, l.root.Chown(r, uid, gid))
}

func (l *local) Lchown(name string, uid, gid int) error {
	r, err := rel("lchown", name)
	if err != nil {
		return err
	}
	return fix("lchown", name, l.root.Lchown(r, uid, gid))
}

func (l *local) Chtimes(name string, atime, mtime time.Time) error {
	r, err := rel("chtimes", name)
	if err != nil {
		return err
	}
	return fix("chtimes", name, l.root.Chtimes(r, atime, mtime))
}

func (l *local) Lchtimes(name string, atime, mtime time.Time) error {
	r, err := rel("lchtimes", name)
	if err != nil {
		return err
	}
	if r == "." {
		return l.Chtimes(name, atime, mtime)
	}
	// The link's directory is opened through the root (confined, as any
	// lookup); only the last component is then named, not followed.
	d, err := l.openParent(r)
	if err != nil {
		return fix("lchtimes", name, err)
	}
	defer d.Close()
	if err := lutimesAt(d, path.Base(r), atime, mtime); err != nil {
		return &fs.PathError{Op: "lchtimes", Path: Clean(name), Err: err}
	}
	return nil
}

func (l *local) Truncate(name string, size int64) error {
	r, err := rel("truncate", name)
	if err != nil {
		return err
	}
	f, err := l.root.OpenFile(r, os.O_WRONLY|openNonblock, 0)
	if err != nil {
		return fix("truncate", name, err)
	}
	defer f.Close()
	return fix("truncate", name, f.Truncate(size))
}

func (l *local) StatVFS(name string) (*StatVFS, error) {
	r, err := rel("statvfs", name)
	if err != nil {
		return nil, err
	}
	f, err := l.root.OpenFile(r, os.O_RDONLY|openNonblock, 0)
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
