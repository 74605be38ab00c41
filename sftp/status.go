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
// OpenSSH's text for the code, except for a refused quota and for too
// many open files.
func statusFromError(err error) (uint32, string) {
	var code uint32
	switch {
	case err == nil:
		code = StatusOK
	case errors.Is(err, errQuota), errors.Is(err, errUploadDiscarded):
		return StatusFailure, err.Error()
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		// The account's open files (vfs.MaxOpenFiles) or the server's
		// descriptors are used up: say so, as for a refused quota.
		return StatusFailure, "too many open files"
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
