//go:build unix

package vfs

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

func futimes(f *os.File, atime, mtime time.Time) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	tv := []syscall.Timeval{syscall.NsecToTimeval(atime.UnixNano()), syscall.NsecToTimeval(mtime.UnixNano())}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Futimes(int(fd), tv) }); err != nil {
		return err
	}
	return serr
}

// Owner returns the numeric owner, group and link count of fi, when the
// FileInfo came from a Unix stat(2).
func Owner(fi fs.FileInfo) (uid, gid uint32, nlink uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 1, false
	}
	return st.Uid, st.Gid, uint64(st.Nlink), true
}

// FileID returns the device and inode numbers of fi, which name one file
// whatever its names, when the FileInfo came from a Unix stat(2).
func FileID(fi fs.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}

// openNonblock is added to every open: open(2) of a FIFO without a peer
// (for reading without a writer, or for writing without a reader) blocks
// until one comes, and a blocked open holds its OS thread, the session's
// dispatcher and an open-file slot for good, after the client has gone
// too. With O_NONBLOCK a FIFO opens at once for reading (reads see EOF
// while no writer is there) and fails with ENXIO for writing.
const openNonblock = syscall.O_NONBLOCK

// clearNonblockRegular puts a regular file opened with openNonblock back
// into blocking mode, as it would have been opened without it: Linux
// ignores O_NONBLOCK for regular files, but some file systems (FUSE)
// pass it on. FIFOs stay non-blocking: Go's poller waits for them.
func clearNonblockRegular(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			syscall.SetNonblock(int(fd), false)
		}
	})
}
