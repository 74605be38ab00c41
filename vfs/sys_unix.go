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
