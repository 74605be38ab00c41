package scp

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

// errReadOnly is the refusal of every record on a read-only account.
const errReadOnly = "Permission denied (the account is read-only)"

// runSink serves "scp -t TARGET": the client sends records and data.
func (s *session) runSink() error {
	w := s.cmd.Paths[0]
	target := s.resolve(w.Text, w.Home)
	fi, err := s.fs.Stat(target)
	isDir := err == nil && fi.IsDir()
	if s.cmd.TargetDir && !isDir {
		// scp.c verifydir(): a warning line instead of the first OK, and
		// OpenSSH's scp gives up on it. PuTTY's pscp (which sends -d for
		// several files) prints it and goes on sending files; when
		// scp.c's sink exits here, pscp fails with "Received unexpected
		// end-of-file from server", often without the reason (which it
		// drops if the EOF comes with it). So ferry stays and refuses
		// each record with the reason, as it refuses those of a read-only
		// account, and ends at the client's EOF.
		why := "Not a directory"
		if err != nil {
			why = errText(err)
		}
		if err := s.warn("%s: %s", target, why); err != nil {
			return errPeerGone
		}
		s.refuse = why
		return s.sink(target, true, 0)
	}
	if !isDir {
		s.notDir = notDirTarget(w.Text, err)
	}
	if err := s.ack(); err != nil {
		return errPeerGone
	}
	return s.sink(target, isDir, 0)
}

// notDirTarget is why a target typed as a directory ("up/", "up/.",
// "up/..") that is not one refuses records, as the kernel refuses scp.c's
// open(2) and mkdir(2) of that path as typed; vfs paths are cleaned, and
// the file would otherwise be written at "up" itself. statErr is the
// target's Stat error (nil: it exists and is not a directory).
func notDirTarget(typed string, statErr error) *notDirError {
	last := typed[strings.LastIndexByte(typed, '/')+1:]
	if last == "." || last == ".." {
		why := "Not a directory"
		if statErr != nil {
			why = errText(statErr)
		}
		return &notDirError{tail: "/" + last, file: why, dir: why}
	}
	if !strings.HasSuffix(typed, "/") {
		return nil
	}
	// open("up/", O_CREAT) fails with EISDIR whatever "up" is;
	// mkdir("up/") makes a missing "up" and fails on a file.
	nd := &notDirError{tail: "/", file: "Is a directory"}
	if statErr == nil {
		nd.dir = "File exists"
	}
	return nd
}

// notDirError holds the refusals of notDirTarget for C (file) and D
// (dir) records ("": the record is accepted), and the end of the target
// as typed, for the messages.
type notDirError struct{ tail, file, dir string }

// sink reads records for one directory level (scp.c sink()); it returns
// at the E ending the level, or at EOF on the top level.
func (s *session) sink(target string, isDir bool, depth int) error {
	var times *timeMsg
	for {
		if err := s.ctx.Err(); err != nil {
			return &fatalError{err}
		}
		line, err := s.readLine()
		if err == io.EOF {
			if depth == 0 {
				return nil
			}
			return errPeerGone
		}
		if err != nil {
			return err
		}
		if line == "" {
			return s.fatal("protocol error: unexpected <newline>")
		}
		switch line[0] {
		case respWarning, respFatal:
			// The client could not read a file it meant to send; it
			// reports it to us as scp.c's run_err does to its peer.
			s.log.Debug("scp: client reported an error", "msg", line[1:])
			s.errs++
			if line[0] == respFatal {
				return &fatalError{errors.New("client: " + line[1:])}
			}
			continue
		case 'E':
			var m endDirMsg
			if err := m.unmarshal(line); err != nil {
				return s.fatal("protocol error: %v", err)
			}
			if err := s.ack(); err != nil {
				return errPeerGone
			}
			return nil
		case 'T':
			var m timeMsg
			err := m.unmarshal(line)
			if err != nil && err != errTimesOutOfRange {
				return s.fatal("protocol error: %v", err)
			}
			if err := s.ack(); err != nil {
				return errPeerGone
			}
			times = &m
			if err == errTimesOutOfRange {
				s.log.Debug("scp: times out of range, not set", "record", line)
				times = nil
			}
			continue
		case 'C', 'D':
		default:
			return s.fatal("protocol error: %v", errExpectedControl)
		}
		var m fileMsg
		if err := m.unmarshal(line); err != nil {
			if err == errBadName {
				return s.fatal("error: unexpected filename: %s", m.Name)
			}
			return s.fatal("protocol error: %v", err)
		}
		np := target
		if isDir {
			np = path.Join(target, m.Name)
		} else if nd := s.notDir; nd != nil && (m.Dir && nd.dir != "" || !m.Dir && nd.file != "") {
			why := nd.file
			if m.Dir {
				why = nd.dir
			}
			if err := s.warn("%s: %s", strings.TrimSuffix(np, "/")+nd.tail, why); err != nil {
				return errPeerGone
			}
			times = nil
			continue
		}
		if m.Dir {
			if !s.cmd.Recursive {
				return s.fatal("protocol error: received directory without -r")
			}
			err = s.sinkDir(np, &m, times, depth)
		} else {
			err = s.sinkFile(np, &m, times)
		}
		if err != nil && isFatal(err) {
			return err
		}
		if err != nil {
			return errPeerGone
		}
		times = nil
	}
}

func (s *session) sinkDir(np string, m *fileMsg, times *timeMsg, depth int) error {
	o := &s.srv.opts
	if depth+1 >= maxDepth {
		return s.fatal("protocol error: directories nested too deeply")
	}
	if s.refuse != "" {
		return s.warn("%s: %s", np, s.refuse)
	}
	if isTemp(path.Base(np)) {
		return s.warn("%s: Permission denied", np)
	}
	if o.ReadOnly {
		return s.warn("%s: %s", np, errReadOnly)
	}
	mode := m.Mode
	if !s.cmd.PreserveTimes {
		mode &^= o.Umask
	}
	fi, err := s.fs.Stat(np)
	created := false
	switch {
	case err == nil && !fi.IsDir():
		return s.warn("%s: Not a directory", np)
	case err == nil:
	case !errors.Is(err, fs.ErrNotExist):
		return s.warn("%s: %s", np, errText(err))
	default:
		// Owner rwx while the contents arrive, as scp.c does, so a
		// read-only directory can still be filled; the real mode is set
		// at its E.
		if err := s.fs.Mkdir(np, mode|0o700); err != nil {
			return s.warn("%s: %s", np, errText(err))
		}
		created = true
	}
	if err := s.ack(); err != nil {
		return errPeerGone
	}
	if err := s.sink(np, true, depth+1); err != nil {
		return err
	}
	if (created && mode|0o700 != mode) || (s.cmd.PreserveTimes && !o.Permissions.NoChmod) {
		s.fs.Chmod(np, mode)
	}
	if times != nil {
		s.fs.Chtimes(np, time.Unix(times.Atime, times.AtimeUsec*1000), time.Unix(times.Mtime, times.MtimeUsec*1000))
	}
	return nil
}

// upload is one file being received.
type upload struct {
	path     string
	tmp      string // atomic: the temporary file renamed over path
	f        vfs.File
	size     int64 // what the C record announced
	written  int64 // what has been written of it
	reserved int64 // bytes charged to the quota
	files    int64 // files charged to the quota
	// shrinks is the QuotaLock generation an in-place upload last
	// measured its file at (sftp.QuotaLock.Write).
	shrinks uint64
	// orphan: the target was removed (or renamed over) while the upload
	// wrote it in place. The removal released what the file held then
	// (orphanBase); the rest of the charge, and what resync charged since
	// (orphanExtra), goes back when the upload ends, with the file.
	orphan      bool
	orphanBase  int64
	orphanExtra int64
}

// orphanCharge is what an in-place upload whose file has no name left
// still has charged for it.
func (u *upload) orphanCharge() int64 {
	if !u.orphan {
		return 0
	}
	return u.size - u.orphanBase + u.orphanExtra
}

// writeUpload writes the next chunk of an upload. An in-place upload under a quota writes under the account's
// QuotaLock: the whole size was charged when it opened, and a truncate
// or removal from another session releases what the file held at that
// moment, so after one the file is measured again and what was released
// from under this upload, which will write past it, is charged again.
// What a failed write left in the file (a short write on a full disk)
// counts as written: abort gives back only what never arrived.
func (s *session) writeUpload(u *upload, b []byte) error {
	o := &s.srv.opts
	write := func() error {
		n, err := u.f.Write(b)
		u.written += int64(n)
		return err
	}
	if o.Quota == nil || u.tmp != "" {
		return write()
	}
	resync := func() error {
		fi, err := u.f.Stat()
		if err != nil {
			return err
		}
		wasOrphan := u.orphan
		if _, _, nlink, ok := vfs.Owner(fi); ok && nlink == 0 && !u.orphan {
			u.orphan, u.orphanBase = true, fi.Size()
		}
		if lost := u.written - fi.Size(); lost > 0 {
			if err := s.reserve(u.path, lost, 0); err != nil {
				return err
			}
			u.reserved += lost
			if wasOrphan {
				u.orphanExtra += lost
			}
		}
		return nil
	}
	return o.QuotaLock.Write(&u.shrinks, resync, write)
}

// reserve charges the quota for an upload. A refusal comes back as
// errQuota ("Disk quota exceeded"); a store that could not record the
// charge (locked, restarting) is logged as such and the upload fails
// with "Failure": the customer was told their quota was full.
func (s *session) reserve(np string, bytes, files int64) error {
	err := s.srv.opts.Quota.Reserve(s.ctx, bytes, files)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sftp.ErrQuotaExceeded):
		s.log.Info("scp: quota refused an upload", "path", np, "bytes", bytes)
		return errQuota
	}
	s.log.Warn("scp: quota usage could not be recorded; upload refused", "path", np, "err", err)
	return errQuotaStore
}

// errQuotaStore: see reserve.
var errQuotaStore = errors.New("quota usage could not be recorded")

// sinkFile receives one C record's file. Errors before the data are sent
// instead of the OK, so the client skips the data (scp.c sink "bad:").
func (s *session) sinkFile(np string, m *fileMsg, times *timeMsg) error {
	start := time.Now()
	if s.refuse != "" {
		return s.warn("%s: %s", np, s.refuse)
	}
	if isTemp(path.Base(np)) {
		return s.warn("%s: Permission denied", np)
	}
	if s.srv.opts.ReadOnly {
		// Refused record by record, as scp.c's sink refuses a file it
		// cannot create: the client skips that file's data and goes on.
		// A fatal line before the first OK made PuTTY's pscp stop at the
		// server's early EOF with "Received unexpected end-of-file from
		// server" instead of showing why.
		return s.warn("%s: %s", np, errReadOnly)
	}
	u, err := s.openUpload(np, m)
	if err != nil {
		return s.warn("%s: %s", np, errText(err))
	}
	if err := s.ack(); err != nil {
		s.abort(u)
		return errPeerGone
	}
	var werr error
	for remaining := m.Size; remaining > 0; {
		if err := s.ctx.Err(); err != nil {
			s.abort(u)
			return &fatalError{err}
		}
		n := int(min(int64(len(s.buf)), remaining))
		if _, err := io.ReadFull(s.r, s.buf[:n]); err != nil {
			s.abort(u)
			s.record(np, true, 0, u.written, start, "aborted")
			return errPeerGone
		}
		if err := s.limit.Wait(s.ctx, n); err != nil {
			s.abort(u)
			return &fatalError{err}
		}
		if werr == nil {
			werr = s.writeUpload(u, s.buf[:n])
		}
		remaining -= int64(n)
	}
	// The client's verdict on what it sent: a warning means it could not
	// read the whole file and padded it (scp.c source()); such a file is
	// not kept. libssh2's scp_send (curl's scp://, PHP's ssh2_scp_send)
	// sends no verdict: it ends the channel with EOF right after the data.
	// OpenSSH's scp -t has closed the complete file by then and keeps it
	// (scp.c sink: response() comes after close()), and so does ferry.
	if _, err := s.r.Peek(1); err == io.EOF {
		// The data came in full; the sink loop then ends at the EOF.
	} else if err := s.response(); err != nil {
		if isFatal(err) {
			s.abort(u)
			return err
		}
		s.abort(u)
		s.record(np, true, 0, u.written, start, "failed: client read error")
		return s.warn("%s: upload discarded: the client reported an error", np)
	}
	if werr == nil && times != nil {
		werr = u.f.Chtimes(time.Unix(times.Atime, times.AtimeUsec*1000), time.Unix(times.Mtime, times.MtimeUsec*1000))
	}
	if werr != nil {
		s.abort(u)
		s.record(np, true, 0, u.written, start, "failed: "+errText(werr))
		return s.warn("%s: %s", np, errText(werr))
	}
	if err := s.commit(u); err != nil {
		s.record(np, true, 0, u.written, start, "failed: "+errText(err))
		return s.warn("%s: %s", np, errText(err))
	}
	s.record(np, true, 0, u.written, start, "ok")
	return s.ack()
}

// openUpload applies the account's rules and opens the file to write:
// a temporary file beside np (atomic) or np itself.
func (s *session) openUpload(np string, m *fileMsg) (*upload, error) {
	o := &s.srv.opts
	u := &upload{path: np, size: m.Size}
	lfi, err := s.fs.Lstat(np)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	fi := lfi
	isLink := exists && lfi.Mode()&fs.ModeSymlink != 0
	if isLink {
		if fi, err = s.fs.Stat(np); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			// A dangling link: writing through it creates its target
			// (vfs.Local refuses targets outside the root).
			exists, fi = false, nil
		}
	}
	if exists && fi.IsDir() {
		return nil, errIsDir
	}
	if exists && !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	if exists && o.Permissions.NoOverwrite {
		return nil, fs.ErrPermission
	}
	// A rename would replace a link instead of writing through it, as
	// the in-place write the user asked for would (sftp does the same).
	atomicUpload := !o.DirectUploads && !isLink
	mode := m.Mode
	if !s.cmd.PreserveTimes {
		mode &^= o.Umask
	}
	u.reserved = m.Size
	if atomicUpload || !exists {
		u.files = 1
	}
	if o.Quota != nil {
		if err := s.reserve(np, u.reserved, u.files); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*upload, error) {
		if o.Quota != nil {
			o.Quota.Release(s.ctx, u.reserved, u.files)
		}
		return nil, err
	}
	setMode := s.cmd.PreserveTimes && !(exists && o.Permissions.NoChmod)
	if !atomicUpload {
		f, err := s.truncateInPlace(np, mode)
		if err != nil {
			return fail(err)
		}
		if setMode {
			f.Chmod(mode)
		}
		u.f = f
		return u, nil
	}
	if exists {
		// The replaced file must be writable by this user, as it would
		// have to be for an in-place write; a rename alone needs only the
		// directory.
		probe, err := s.fs.OpenFile(np, os.O_WRONLY, 0)
		if err != nil {
			return fail(err)
		}
		probe.Close()
	}
	u.tmp = tempName(np)
	f, err := s.fs.OpenFile(u.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fail(err)
	}
	switch {
	case setMode:
		f.Chmod(mode)
	case exists:
		// Without -p an existing file keeps its mode and (when
		// privileged, the only case where it differs) owner, as the
		// in-place write of scp.c would.
		f.Chmod(fi.Mode().Perm())
		if uid, gid, _, ok := vfs.Owner(fi); ok {
			if tfi, err := f.Stat(); err == nil {
				if tuid, tgid, _, _ := vfs.Owner(tfi); tuid != uid || tgid != gid {
					f.Chown(int(uid), int(gid))
				}
			}
		}
	}
	u.f = f
	return u, nil
}

// truncateInPlace opens np for an in-place upload, truncating it. What an
// existing file held is measured and released under the account's
// QuotaLock, so SFTP handles open on it are charged again for what they
// write back.
func (s *session) truncateInPlace(np string, mode fs.FileMode) (vfs.File, error) {
	o := &s.srv.opts
	if o.Quota == nil {
		return s.fs.OpenFile(np, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	}
	defer o.QuotaLock.Shrink()()
	fi, serr := s.fs.Stat(np)
	f, err := s.fs.OpenFile(np, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err == nil && serr == nil && fi.Mode().IsRegular() {
		o.Quota.Release(s.ctx, fi.Size(), 0)
	}
	return f, err
}

var (
	errIsDir      = errors.New("Is a directory")
	errNotRegular = errors.New("Not a regular file")
)

// abort discards an upload: the temporary file goes, the target stays as
// it was, the quota is given back. An in-place upload keeps what arrived,
// as scp.c's does, and gives back what was charged for the rest.
func (s *session) abort(u *upload) {
	u.f.Close()
	q := s.srv.opts.Quota
	if u.tmp == "" && q != nil && u.orphan {
		q.Release(context.WithoutCancel(s.ctx), u.orphanCharge(), 0)
	} else if u.tmp == "" && q != nil && u.size > u.written {
		// The whole size was charged at the open, and the charge for the
		// file stays at that while the upload runs, whatever other
		// sessions truncate (writeUpload's resync charges back what they
		// release), so what the file is charged beyond its contents is
		// what never arrived.
		q.Release(context.WithoutCancel(s.ctx), u.size-u.written, 0)
	}
	if u.tmp != "" {
		if err := s.fs.Remove(u.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("scp: cannot remove temporary upload", "path", u.tmp, "err", err)
		}
		if q != nil {
			q.Release(context.WithoutCancel(s.ctx), u.reserved, u.files)
		}
	}
}

// commit makes a complete upload visible: fsync before the rename, so
// after a crash the name holds the old or the complete new contents.
func (s *session) commit(u *upload) error {
	q := s.srv.opts.Quota
	if u.tmp == "" {
		err := u.f.Close()
		if q != nil && u.orphan {
			q.Release(context.WithoutCancel(s.ctx), u.orphanCharge(), 0)
		}
		return err
	}
	err := u.f.Sync()
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if s.srv.opts.Permissions.NoOverwrite {
			// Never replace a file another session created meanwhile.
			// Rename is a link then an unlink: under the account's
			// QuotaLock, so no REMOVE counts the link in between.
			err = s.renameLocked(u.tmp, u.path)
		} else {
			err = s.replace(u)
		}
	}
	if err != nil {
		s.fs.Remove(u.tmp)
		if q != nil {
			q.Release(context.WithoutCancel(s.ctx), u.reserved, u.files)
		}
		return err
	}
	return nil
}

// replace renames an upload's temporary file over its target and gives
// back what the target holds at that moment (it may have changed, or
// been removed and released, since the upload started), under the
// account's QuotaLock. A file is charged once however many names it has,
// so a target with other links gives back nothing.
func (s *session) replace(u *upload) error {
	q := s.srv.opts.Quota
	if q == nil {
		return s.fs.PosixRename(u.tmp, u.path)
	}
	defer s.srv.opts.QuotaLock.Shrink()()
	old, serr := s.fs.Lstat(u.path)
	if err := s.fs.PosixRename(u.tmp, u.path); err != nil {
		return err
	}
	if serr != nil || !old.Mode().IsRegular() {
		return nil
	}
	if _, _, nlink, ok := vfs.Owner(old); ok && nlink > 1 {
		return nil
	}
	q.Release(context.WithoutCancel(s.ctx), old.Size(), 1)
	return nil
}

// renameLocked is Rename under the account's QuotaLock when a quota is
// kept.
func (s *session) renameLocked(from, to string) error {
	if s.srv.opts.Quota != nil {
		defer s.srv.opts.QuotaLock.Shrink()()
	}
	return s.fs.Rename(from, to)
}
