package sftp

import (
	"errors"
	"io"
	"io/fs"
	"syscall"
)

// statusFromError maps an error to the status code OpenSSH's sftp-server
// would send for the same errno (errno_to_portable): ENOENT, ENOTDIR,
// EBADF and ELOOP are NO_SUCH_FILE; EPERM and EACCES (and leaving the
// root) PERMISSION_DENIED; ENAMETOOLONG and EINVAL BAD_MESSAGE; ENOSYS
// OP_UNSUPPORTED; anything else, EEXIST included, FAILURE. The message is
// OpenSSH's text for the code, except for a refused quota, too many open
// files and the errors that say the disk took no more (fullDiskErrnos).
func statusFromError(err error) (uint32, string) {
	var code uint32
	switch {
	case err == nil:
		return StatusOK, statusText(StatusOK)
	case errors.Is(err, errQuota), errors.Is(err, errUploadDiscarded):
		return StatusFailure, err.Error()
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		// The account's open files (vfs.MaxOpenFiles) or the server's
		// descriptors are used up: say so, as for a refused quota.
		return StatusFailure, "too many open files"
	}
	for _, e := range fullDiskErrnos {
		if errors.Is(err, e) {
			return StatusFailure, e.Error()
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		code = StatusEOF
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.EBADF), errors.Is(err, syscall.ELOOP):
		code = StatusNoSuchFile
	case errors.Is(err, fs.ErrPermission):
		code = StatusPermissionDenied
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		code = StatusBadMessage
	case errors.Is(err, syscall.ENOSYS):
		code = StatusOpUnsupported
	default:
		code = StatusFailure
	}
	return code, statusText(code)
}

// fullDiskErrnos are answered FAILURE with their own text ("no space left
// on device") where sftp-server sends "Failure": a full disk, a full
// filesystem quota, a file size limit or a read-only filesystem is the
// host's state, not the request's fault, and the customer's client
// (psftp, WinSCP, FileZilla, paramiko print the message) should say which
// rather than leave them to retry.
var fullDiskErrnos = [...]syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EROFS}
