//go:build unix

package vfs

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// These *at(2) calls work in a directory opened through a Root, naming
// one component, for what os.Root lacks.

// lutimesAt sets the times of name in the open directory dir without
// following it if it is a symbolic link: utimensat(2) with
// AT_SYMLINK_NOFOLLOW, what sftp-server's lsetstat@openssh.com does.
// name is a single component, so nothing outside dir is looked up.
func lutimesAt(dir *os.File, name string, atime, mtime time.Time) error {
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.UtimesNanoAt(int(fd), name, ts, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return err
	}
	return serr
}

// renameatFiles is renameat(2) of oldName in oldDir to newName in newDir,
// each a single component.
func renameatFiles(oldDir *os.File, oldName string, newDir *os.File, newName string) error {
	orc, err := oldDir.SyscallConn()
	if err != nil {
		return err
	}
	nrc, err := newDir.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := orc.Control(func(ofd uintptr) {
		if err := nrc.Control(func(nfd uintptr) {
			serr = unix.Renameat(int(ofd), oldName, int(nfd), newName)
		}); err != nil {
			serr = err
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}
