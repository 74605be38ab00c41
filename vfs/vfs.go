// Package vfs is the small filesystem interface that ferry's file transfer
// protocols (sftp, scp) run on, and its two implementations: Local, which
// confines every operation to one directory tree with os.Root, and OS, the
// whole filesystem as the invoking user (stand-alone `ferry sftp-server`).
//
// Paths are slash-separated and absolute in the client's view: for Local,
// "/" is the confining directory (the user's home). Implementations clean
// every path lexically first (path.Clean), so ".." can never climb above
// "/"; symbolic links are followed only while they stay inside the root.
//
// Errors are *fs.PathError (or *os.LinkError) wrapping the system error, so
// callers map them with errors.Is(err, fs.ErrNotExist) and friends. An
// attempt to leave the root wraps ErrEscape, which also matches
// fs.ErrPermission.
package vfs

import (
	"io"
	"io/fs"
	"path"
	"time"
)

// FS is a filesystem as SFTP (draft-ietf-secsh-filexfer-02) and SCP need
// it. All names are client-view paths (see the package comment). Methods
// are safe for concurrent use.
type FS interface {
	// OpenFile opens name with os.O_* flags; perm applies when the file
	// is created. Opening a directory read-only is allowed (for ReadDir).
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Stat follows a final symbolic link; Lstat does not.
	Stat(name string) (fs.FileInfo, error)
	Lstat(name string) (fs.FileInfo, error)
	Mkdir(name string, perm fs.FileMode) error
	// Remove removes a file (or symbolic link), never a directory: SFTP
	// has separate REMOVE and RMDIR requests, and unlink(2) semantics are
	// what OpenSSH's sftp-server gives REMOVE.
	Remove(name string) error
	// Rmdir removes an empty directory, never a file.
	Rmdir(name string) error
	// Rename fails when newname exists (SFTP v3 RENAME semantics).
	Rename(oldname, newname string) error
	// PosixRename replaces newname atomically (rename(2)).
	PosixRename(oldname, newname string) error
	// Link makes a hard link newname to oldname.
	Link(oldname, newname string) error
	// Symlink creates linkname pointing at target. See the implementations
	// for how absolute targets are stored.
	Symlink(target, linkname string) error
	// Readlink returns a link's text as stored.
	Readlink(name string) (string, error)
	// RealPath canonicalizes name: an absolute, clean path with every
	// symbolic link resolved. The final component need not exist
	// (clients canonicalize upload targets). A link leading outside the
	// root is an error wrapping ErrEscape; no outside path is revealed.
	RealPath(name string) (string, error)
	Chmod(name string, mode fs.FileMode) error
	Chown(name string, uid, gid int) error
	// Lchown changes a symbolic link's owner (lsetstat@openssh.com).
	Lchown(name string, uid, gid int) error
	Chtimes(name string, atime, mtime time.Time) error
	// Lchtimes sets a symbolic link's own times (lsetstat@openssh.com);
	// on anything else it is Chtimes.
	Lchtimes(name string, atime, mtime time.Time) error
	Truncate(name string, size int64) error
	// StatVFS reports the filesystem holding name (statvfs(3)).
	StatVFS(name string) (*StatVFS, error)
	// Close releases the FS (Local's directory handle).
	Close() error
}

// File is an open file or directory. ReadAt and WriteAt may be called
// concurrently (pread/pwrite), which is what lets SFTP serve many
// outstanding requests on one handle in parallel.
type File interface {
	io.Reader
	io.Writer
	io.ReaderAt
	io.WriterAt
	io.Closer
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Chmod(mode fs.FileMode) error
	Chown(uid, gid int) error
	Chtimes(atime, mtime time.Time) error
	Sync() error
	// ReadDir returns up to n entries (all when n <= 0) with lstat
	// information, and io.EOF once the directory is exhausted.
	ReadDir(n int) ([]fs.FileInfo, error)
}

// StatVFS mirrors struct statvfs as statvfs@openssh.com carries it
// (OpenSSH PROTOCOL §4.4).
type StatVFS struct {
	BlockSize    uint64 // f_bsize
	FragmentSize uint64 // f_frsize
	Blocks       uint64 // f_blocks, in f_frsize units
	BlocksFree   uint64 // f_bfree
	BlocksAvail  uint64 // f_bavail, for unprivileged users
	Files        uint64 // f_files
	FilesFree    uint64 // f_ffree
	FilesAvail   uint64 // f_favail
	FSID         uint64 // f_fsid
	Flags        uint64 // StatVFSReadOnly | StatVFSNoSUID
	NameMax      uint64 // f_namemax
}

// Flag bits of StatVFS.Flags, as OpenSSH PROTOCOL §4.4 defines them.
const (
	StatVFSReadOnly = 0x1 // SSH2_FXE_STATVFS_ST_RDONLY
	StatVFSNoSUID   = 0x2 // SSH2_FXE_STATVFS_ST_NOSUID
)

// ErrEscape reports an operation that would leave the root: through "..",
// an absolute symbolic link or a link chain. It matches fs.ErrPermission
// so that protocols answer it like any other denied access.
var ErrEscape error = escapeError{}

type escapeError struct{}

func (escapeError) Error() string        { return "path escapes from the root" }
func (escapeError) Is(target error) bool { return target == fs.ErrPermission }

// Clean returns the client-view form of name: absolute, slash-separated,
// with "." and ".." resolved lexically so that ".." stops at "/" (as under
// chroot(2)). A relative name is taken relative to "/".
func Clean(name string) string {
	return path.Clean("/" + name)
}
