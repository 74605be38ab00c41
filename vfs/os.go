package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"
)

// osFS is the whole filesystem as the invoking user: client paths are host
// paths. It is what OpenSSH's sftp-server offers and what stand-alone
// `ferry sftp-server` without --root serves; access control is the
// kernel's.
type osFS struct {
	start string
}

// OS returns an FS over the whole host filesystem. Relative names are
// resolved against startDir (made absolute); callers normally pass
// absolute names.
func OS(startDir string) (FS, error) {
	abs, err := filepath.Abs(startDir)
	if err != nil {
		return nil, err
	}
	return &osFS{start: abs}, nil
}

func (o *osFS) p(name string) string {
	if !path.IsAbs(name) {
		name = o.start + "/" + name
	}
	return path.Clean(name)
}

func (o *osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(o.p(name), flag|openNonblock, perm)
	if err != nil {
		return nil, err
	}
	clearNonblockRegular(f)
	return &osFile{f: f, name: o.p(name)}, nil
}

func (o *osFS) Stat(name string) (fs.FileInfo, error)  { return os.Stat(o.p(name)) }
func (o *osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(o.p(name)) }
func (o *osFS) Mkdir(name string, perm fs.FileMode) error {
	return os.Mkdir(o.p(name), perm)
}

func (o *osFS) Remove(name string) error {
	err := syscall.Unlink(o.p(name))
	if err != nil {
		return &fs.PathError{Op: "remove", Path: o.p(name), Err: err}
	}
	return nil
}

func (o *osFS) Rmdir(name string) error {
	err := syscall.Rmdir(o.p(name))
	if err != nil {
		return &fs.PathError{Op: "rmdir", Path: o.p(name), Err: err}
	}
	return nil
}

func (o *osFS) Rename(oldname, newname string) error {
	op, np := o.p(oldname), o.p(newname)
	fi, err := os.Lstat(op)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		err := os.Link(op, np)
		if err == nil {
			if err := os.Remove(op); err != nil {
				os.Remove(np)
				return err
			}
			return nil
		}
		if errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if _, err := os.Lstat(np); err == nil {
		return &fs.PathError{Op: "rename", Path: np, Err: fs.ErrExist}
	}
	return os.Rename(op, np)
}

// PosixRename is rename(2) itself: os.Rename refuses any existing
// directory as the new name, where rename(2) replaces an empty one.
func (o *osFS) PosixRename(oldname, newname string) error {
	op, np := o.p(oldname), o.p(newname)
	if err := syscall.Rename(op, np); err != nil {
		return &os.LinkError{Op: "rename", Old: op, New: np, Err: err}
	}
	return nil
}

func (o *osFS) Link(oldname, newname string) error {
	return os.Link(o.p(oldname), o.p(newname))
}

// Symlink stores target exactly as given, as OpenSSH's sftp-server does.
func (o *osFS) Symlink(target, linkname string) error {
	return os.Symlink(target, o.p(linkname))
}

func (o *osFS) Readlink(name string) (string, error) { return os.Readlink(o.p(name)) }

func (o *osFS) RealPath(name string) (string, error) {
	p := o.p(name)
	r, err := evalSymlinks(p)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	// As realpath(3) in OpenSSH's sftp-server: the last component may be
	// missing, and a dangling link there is followed to the name it
	// points at (REALPATH of "link" to "nowhere" is "/dir/nowhere", not
	// "/dir/link").
	for range maxRealPathLinks {
		d, err := evalSymlinks(path.Dir(p))
		if err != nil {
			return "", err
		}
		last := path.Join(d, path.Base(p))
		target, err := os.Readlink(last)
		if err != nil {
			return last, nil // missing, not a link
		}
		if !path.IsAbs(target) {
			target = path.Join(d, target)
		}
		p = path.Clean(target)
		if r, err := evalSymlinks(p); err == nil {
			return r, nil // appeared meanwhile
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", &fs.PathError{Op: "realpath", Path: name, Err: syscall.ELOOP}
}

// evalSymlinks is filepath.EvalSymlinks with the kernel's error for a
// link loop (ELOOP, which sftp-server answers NO_SUCH_FILE): EvalSymlinks
// reports one as a plain "too many links" error.
func evalSymlinks(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(p); serr != nil {
			return "", serr
		}
	}
	return r, err
}

func (o *osFS) Chmod(name string, mode fs.FileMode) error { return os.Chmod(o.p(name), mode) }
func (o *osFS) Chown(name string, uid, gid int) error     { return os.Chown(o.p(name), uid, gid) }
func (o *osFS) Lchown(name string, uid, gid int) error    { return os.Lchown(o.p(name), uid, gid) }
func (o *osFS) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(o.p(name), atime, mtime)
}

func (o *osFS) Lchtimes(name string, atime, mtime time.Time) error {
	p := o.p(name)
	d, err := os.Open(path.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := lutimesAt(d, path.Base(p), atime, mtime); err != nil {
		return &fs.PathError{Op: "lchtimes", Path: p, Err: err}
	}
	return nil
}

// Truncate uses truncate(2), which never opens the file: a FIFO fails
// with EINVAL instead of blocking.
func (o *osFS) Truncate(name string, size int64) error { return os.Truncate(o.p(name), size) }

func (o *osFS) StatVFS(name string) (*StatVFS, error) {
	f, err := os.OpenFile(o.p(name), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := fstatvfs(f)
	if err != nil {
		return nil, &fs.PathError{Op: "statvfs", Path: o.p(name), Err: err}
	}
	return st, nil
}

func (o *osFS) Close() error { return nil }
