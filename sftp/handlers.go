package sftp

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-sftp/ferry/vfs"
)

// errDenied is refused by Options; it maps to PERMISSION_DENIED.
var errDenied = fs.ErrPermission

// serial handles every request other than READ and WRITE, alone.
func (s *session) serial(p []byte) {
	id := binary.BigEndian.Uint32(p[1:5])
	ok := true
	switch t := p[0]; {
	case t == fxpOpen:
		var m openReq
		if ok = m.unmarshal(p); ok {
			s.open(&m)
		}
	case t == fxpClose || t == fxpFstat || t == fxpReaddir:
		var m handleReq
		if ok = m.unmarshal(p); ok {
			s.handleOp(&m)
		}
	case isPathReq(t):
		var m pathReq
		if ok = m.unmarshal(p); ok {
			s.pathOp(&m)
		}
	case t == fxpSetstat:
		var m setstatReq
		if ok = m.unmarshal(p); ok {
			p := s.resolve(m.Path)
			err := s.checkRawPath(m.Path, p)
			if err == nil {
				// A pending upload of this session is changed itself.
				err = s.setstat(p, s.pendingUpload(p), &m.Attrs, false)
			}
			s.sendErrorOrOK(m.ID, err)
		}
	case t == fxpFsetstat:
		var m fsetstatReq
		if ok = m.unmarshal(p); ok {
			h := s.lookup(m.Handle)
			if h == nil || h.dir {
				s.sendStatus(m.ID, StatusFailure, "")
			} else {
				s.sendErrorOrOK(m.ID, s.setstat(h.path, h, &m.Attrs, false))
			}
		}
	case t == fxpMkdir:
		var m mkdirReq
		if ok = m.unmarshal(p); ok {
			s.mkdir(&m)
		}
	case t == fxpRename || t == fxpSymlink:
		var m twoPathReq
		if ok = m.unmarshal(p); ok {
			s.twoPathOp(&m)
		}
	case t == fxpExtended:
		var m extendedReq
		if ok = m.unmarshal(p); ok {
			s.extended(&m)
		}
	default:
		s.log.Debug("sftp: unknown request type", "type", t)
		s.sendStatus(id, StatusOpUnsupported, "")
	}
	if !ok {
		s.log.Debug("sftp: malformed request", "type", p[0], "id", id)
		s.sendStatus(id, StatusBadMessage, "")
	}
}

func (s *session) sendErrorOrOK(id uint32, err error) {
	if err == nil {
		s.sendStatus(id, StatusOK, "")
		return
	}
	s.sendError(id, err)
}

// open handles SSH_FXP_OPEN (draft-02 §6.3).
func (s *session) open(m *openReq) {
	o := &s.srv.opts
	p := s.resolve(m.Path)
	if err := s.checkRawPath(m.Path, p); err != nil {
		s.sendError(m.ID, err)
		return
	}
	read := m.PFlags&fxfRead != 0
	write := m.PFlags&fxfWrite != 0
	flags := os.O_RDONLY
	switch {
	case read && write:
		flags = os.O_RDWR
	case write:
		flags = os.O_WRONLY
	}
	if m.PFlags&fxfCreat != 0 {
		flags |= os.O_CREATE
	}
	if m.PFlags&fxfTrunc != 0 {
		flags |= os.O_TRUNC
	}
	if m.PFlags&fxfExcl != 0 {
		flags |= os.O_EXCL
	}
	if m.PFlags&fxfAppend != 0 {
		flags |= os.O_APPEND
	}
	// APPEND without WRITE changes nothing (sftp-server -R serves it).
	modifies := write || flags&(os.O_CREATE|os.O_TRUNC) != 0
	readable := !write || read
	if o.Permissions.NoDownload && !read && modifies {
		// Cyberduck's "New File" opens CREAT|TRUNC with neither READ nor
		// WRITE: an upload-only account may create the file, and the
		// handle reads nothing.
		readable = false
	}
	if (o.ReadOnly && modifies) || (o.Permissions.NoDownload && readable) || (modifies && reserved(p)) {
		s.sendError(m.ID, errDenied)
		return
	}
	if len(s.handles) >= o.MaxHandles {
		s.sendStatus(m.ID, StatusFailure, "too many open handles")
		return
	}
	perm := fs.FileMode(0o666)
	if m.Attrs.Flags&AttrPermissions != 0 {
		perm = fs.FileMode(m.Attrs.Permissions & 0o777)
	}
	perm &^= o.Umask
	h := &handle{path: p, read: readable, write: write, append: flags&os.O_APPEND != 0}
	if modifies {
		// Measured before the size below: a shrink after it makes the
		// first write measure the file again.
		if up := s.pendingUpload(p); up != nil && flags&os.O_TRUNC == 0 {
			if err := s.uploadInPlace(up); err != nil {
				s.sendError(m.ID, err)
				return
			}
		}
		h.own.shrinks = o.QuotaLock.shrinks.Load()
		fi, err := s.fs.Lstat(p)
		exists := err == nil
		isLink := exists && fi.Mode()&fs.ModeSymlink != 0
		// dangling: p is a link to nothing, so CREAT makes a new file
		// through it, to be charged as one (without it, creating and
		// removing files through links left the account a file and the
		// link's length in bytes uncharged each time).
		dangling := false
		if isLink {
			if tfi, err := s.fs.Stat(p); err == nil {
				fi = tfi
			} else {
				dangling = errors.Is(err, fs.ErrNotExist)
			}
		}
		creates := (!exists || dangling) && flags&os.O_CREATE != 0
		if exists && o.Permissions.NoOverwrite {
			s.sendError(m.ID, errDenied)
			return
		}
		if exists && flags&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
			s.sendError(m.ID, fs.ErrExist)
			return
		}
		if !exists && flags&os.O_CREATE != 0 && mustBeDir(m.Path) {
			// open(2) cannot create "name/": a regular file is no
			// directory.
			s.sendError(m.ID, syscall.EISDIR)
			return
		}
		atomicUpload := !o.DirectUploads && write && !h.append &&
			((!exists && flags&os.O_CREATE != 0) || (exists && fi.Mode().IsRegular() && flags&os.O_TRUNC != 0))
		if isLink {
			atomicUpload = false // a rename would replace the link, not write through it
		}
		if flags&os.O_EXCL != 0 {
			// EXCL promises that this OPEN alone created the file: with a
			// temporary file the target appeared only at CLOSE, so two
			// sessions could both be granted it and one upload was lost.
			// The target itself is created with O_EXCL, as sftp-server
			// does.
			atomicUpload = false
		}
		// An atomic upload's temporary file is a new file whatever the
		// flags (OPEN WRITE|TRUNC of an existing file, as Cyberduck
		// overwrites, has no CREAT): its CLOSE, or its abandonment, gives
		// back one file, so it must have been charged one.
		if o.Quota != nil && (creates || atomicUpload) {
			err := s.reserve(p, 0, 1)
			if errors.Is(err, errQuota) && atomicUpload && exists {
				// At --quota-files, replacing a file adds none: write it in
				// place, as sftp-server does, rather than refuse every
				// overwrite until the customer deletes a file.
				s.log.Info("sftp: at the file quota; overwriting in place", "path", p)
				atomicUpload = false
			} else if err != nil {
				if errors.Is(err, errQuota) {
					s.log.Info("sftp: quota refused a new file", "path", p)
				}
				s.sendError(m.ID, err)
				return
			}
		}
		if atomicUpload && exists {
			// The replaced file must be writable by this user, as it would
			// have to be for truncating it in place; a rename alone only
			// needs the directory.
			probe, err := s.fs.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				// The new file charged above will not be made: a
				// read-only file a client retried over (or one removed
				// in between) took one more of the account's files each
				// time, until --quota-files refused every upload.
				if o.Quota != nil {
					o.Quota.Release(s.ctx, 0, 1)
				}
				s.sendError(m.ID, err)
				return
			}
			probe.Close()
		}
		if atomicUpload {
			h.tmp = tempName(p)
			if exists {
				h.replaced = targetStateOf(fi)
			}
			// Under NoOverwrite the rename must not replace a file another
			// session created meanwhile.
			h.excl = o.Permissions.NoOverwrite
			tflags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if read {
				tflags = os.O_RDWR | os.O_CREATE | os.O_EXCL
			}
			f, err := s.fs.OpenFile(h.tmp, tflags, perm)
			if err != nil {
				if o.Quota != nil {
					o.Quota.Release(s.ctx, 0, 1)
				}
				if !exists || !errors.Is(err, fs.ErrPermission) {
					s.sendError(m.ID, err)
					return
				}
				// A directory this user may not write to (a customer's
				// chmod 555) holds no temporary file, but its files stay
				// writable: the probe above opened this one. Truncate it
				// in place, as sftp-server does, rather than refuse an
				// upload the kernel allows.
				atomicUpload, h.tmp, h.excl = false, "", false
			} else {
				h.f = f
			}
		}
		if atomicUpload {
			if f := h.f; exists {
				// Keep the replaced file's mode and (when privileged, the
				// only case where they differ) owner, as truncating it in
				// place would.
				f.Chmod(fi.Mode().Perm())
				if uid, gid, _, ok := vfs.Owner(fi); ok {
					if tfi, err := f.Stat(); err == nil {
						if tuid, tgid, _, _ := vfs.Owner(tfi); tuid != uid || tgid != gid {
							f.Chown(int(uid), int(gid))
						}
					}
				}
			}
		} else {
			f, err := s.openInPlace(p, flags, perm, exists && fi.Mode().IsRegular())
			if err != nil {
				if o.Quota != nil && creates {
					o.Quota.Release(s.ctx, 0, 1)
				}
				s.sendError(m.ID, err)
				return
			}
			h.f = f
			if exists && !dangling && flags&os.O_TRUNC == 0 {
				h.own.size = fi.Size()
			}
			if o.Quota != nil {
				o.QuotaLock.attach(h)
			}
		}
	} else {
		name := p
		if up := s.pendingUpload(p); up != nil {
			// This session's own upload to p, not in place until its
			// CLOSE: read what it holds, as STAT already shows it (see
			// pendingUpload). A file written and read back over two
			// handles (sshfs, any FUSE client) read nothing or the old
			// file.
			name = up.tmp
		}
		f, err := s.fs.OpenFile(name, flags, 0)
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		h.f = f
	}
	if fi, err := h.f.Stat(); err == nil {
		if dev, ino, ok := vfs.FileID(fi); ok {
			h.file = fileID{dev, ino}
		}
	}
	hb, _ := s.newHandle(h)
	s.sendMsg(&handleMsg{ID: m.ID, Handle: hb})
}

// openInPlace opens p for writing without a temporary file. Truncating an
// existing regular file releases what it held, measured and released under
// the account's QuotaLock so that no write to it is charged in between.
func (s *session) openInPlace(p string, flags int, perm fs.FileMode, regular bool) (vfs.File, error) {
	if flags&os.O_TRUNC == 0 || !regular || s.srv.opts.Quota == nil {
		return s.fs.OpenFile(p, flags, perm)
	}
	defer s.lockShrink()()
	fi, err := s.fs.Stat(p)
	f, oerr := s.fs.OpenFile(p, flags, perm)
	if oerr == nil && err == nil && fi.Mode().IsRegular() {
		s.srv.opts.Quota.Release(s.ctx, fi.Size(), 0)
	}
	return f, oerr
}

// handleOp handles CLOSE, FSTAT and READDIR.
func (s *session) handleOp(m *handleReq) {
	h := s.lookup(m.Handle)
	if h == nil {
		// sftp-server's close(2) of no descriptor fails with EBADF,
		// which it answers NO_SUCH_FILE; FSTAT and READDIR say FAILURE.
		code := uint32(StatusFailure)
		if m.Type == fxpClose {
			code = StatusNoSuchFile
		}
		s.sendStatus(m.ID, code, "")
		return
	}
	switch m.Type {
	case fxpClose:
		s.sendErrorOrOK(m.ID, s.finish(h, true))
	case fxpFstat:
		fi, err := h.f.Stat()
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendMsg(&attrsMsg{ID: m.ID, Attrs: attrsFromFileInfo(fi)})
	case fxpReaddir:
		if !h.dir {
			s.sendStatus(m.ID, StatusFailure, "")
			return
		}
		s.readdir(m.ID, h)
	}
}

// readdir answers READDIR with up to maxReaddirEntries names, "." and
// ".." first as readdir(3) gives them to OpenSSH, with lstat attributes:
// a link's own attributes, never its target's.
func (s *session) readdir(id uint32, h *handle) {
	var entries []nameEntry
	now := time.Now()
	add := func(name string, fi fs.FileInfo) {
		a := attrsFromFileInfo(fi)
		uid, gid, _, _ := vfs.Owner(fi)
		entries = append(entries, nameEntry{
			Name:     name,
			LongName: longName(name, &a, nlinkOf(fi), s.userName(uid), s.groupName(gid), now),
			Attrs:    a,
		})
	}
	dots := !h.dirStarted
	if dots {
		h.dirStarted = true
		entries = make([]nameEntry, 2, maxReaddirEntries)
	}
	byName, byTemp := s.pendingUploadsIn(h.path)
	// Read at least once; read again only while everything read was a
	// hidden temporary file, so a reply is never empty before the end.
	for first := true; (first || len(entries) == 0) && !h.dirEOF; first = false {
		fis, err := h.f.ReadDir(maxReaddirEntries - len(entries))
		for _, fi := range fis {
			name := fi.Name()
			switch up := byTemp[name]; {
			case !isTemp(name):
				// This session's upload over it shows in its place, as
				// STAT shows it.
				if up := byName[name]; up != nil {
					if tfi, err := up.f.Stat(); err == nil {
						fi = tfi
					}
				}
				add(name, fi)
			case up != nil:
				// This session's upload of a new file: listed under its
				// name, as sftp-server lists a file being written.
				if _, err := s.fs.Lstat(up.path); errors.Is(err, fs.ErrNotExist) {
					add(path.Base(up.path), fi)
				}
			case now.Sub(fi.ModTime()) > staleTempAge:
				s.removeStaleTemp(path.Join(h.path, name))
			}
		}
		if err != nil {
			// A removed directory reads ENOENT: it has no entries left,
			// and sftp-server's readdir(3) loop ends there (EOF).
			if !errors.Is(err, io.EOF) && !errors.Is(err, fs.ErrNotExist) && len(entries) == 0 {
				s.sendError(id, err)
				return
			}
			h.dirEOF = true
		}
		if len(fis) == 0 {
			h.dirEOF = true
		}
	}
	if dots {
		// The directories themselves, as lstat("path/.") and
		// lstat("path/..") give them (a directory opened through a
		// symbolic link lists "." as that directory, not as the link),
		// taken after reading, as sftp-server does: the read updates the
		// directory's atime. A removed directory has no entries left,
		// not even these: readdir(3) gives sftp-server none.
		rest := entries[2:]
		entries = entries[:0]
		if fi, err := h.f.Stat(); err == nil && !unlinked(fi) {
			add(".", fi)
			if fi, err := s.fs.Stat(path.Dir(h.path)); err == nil {
				add("..", fi)
			}
		}
		entries = append(entries, rest...)
	}
	if len(entries) == 0 {
		s.sendStatus(id, StatusEOF, "")
		return
	}
	s.sendMsg(&nameMsg{ID: id, Entries: entries})
}

// removeStaleTemp deletes an atomic upload's temporary file left by a
// server that died before it could clean up (kill -9, power loss); an
// upload in progress rewrites its file far more often than staleTempAge.
//
// Clients cannot create names of that form (see reserved), so every such
// file is one an atomic upload made. Still, deleting is the one thing a
// listing does that the account may be forbidden: NoDelete accounts never
// remove anything this way (their stale uploads stay, hidden), and only a
// regular file with a single link, which is what an upload's temporary
// file is, is removed.
func (s *session) removeStaleTemp(p string) {
	if s.srv.opts.ReadOnly || s.srv.opts.Permissions.NoDelete {
		return
	}
	defer s.lockShrink()()
	fi, err := s.fs.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	if _, _, nlink, ok := vfs.Owner(fi); ok && nlink != 1 {
		return
	}
	if err := s.fs.Remove(p); err == nil {
		s.log.Info("sftp: removed stale temporary upload", "path", p, "mtime", fi.ModTime())
		s.releaseUnlinked(fi)
	}
}

// pendingUploadsIn returns this session's open atomic uploads into
// directory dir, by the target's name and by the temporary file's (both
// nil when there are none, the usual case).
func (s *session) pendingUploadsIn(dir string) (byName, byTemp map[string]*handle) {
	for _, h := range s.handles {
		if h.tmp == "" || path.Dir(h.path) != dir {
			continue
		}
		if byName == nil {
			byName, byTemp = map[string]*handle{}, map[string]*handle{}
		}
		byName[path.Base(h.path)] = h
		byTemp[path.Base(h.tmp)] = h
	}
	return byName, byTemp
}

// uploadInPlace puts this session's open atomic upload up in place now,
// before its CLOSE, for an OPEN that writes the same file without
// truncating it. sshfs (any FUSE client) sends "echo one > f; echo two
// >> f" as an upload, then an OPEN for appending that may arrive before
// the first handle's CLOSE, since FUSE releases a file asynchronously:
// the OPEN failed with No such file (a new file), or appended to the
// previous version, which the CLOSE then replaced, losing the append.
// The upload stops being atomic: the client asked for the file twice, and
// sftp-server, writing in place, gives the second handle what the first
// wrote. Runs after the barrier (a non-data request), so no write of up
// is in flight.
func (s *session) uploadInPlace(up *handle) error {
	if up.abandoned.Load() || up.writeFailed.Load() {
		return nil // discarded at its CLOSE: the OPEN acts on the file as it is
	}
	if err := s.commitUpload(up, true); err != nil {
		return err
	}
	up.tmp = ""
	if s.srv.opts.Quota != nil {
		// From now on an in-place handle: its charge is the file's, shared
		// with the handle about to open it.
		s.srv.opts.QuotaLock.attach(up)
	}
	return nil
}

// pendingUpload returns this session's open atomic upload to p, if any.
// The session sees its own upload in place, as with a file written
// directly: sshfs (and any FUSE client) looks a file up right after
// creating it, and "echo x > new" on an sshfs mount failed with ENOENT
// because the new file showed only at CLOSE. Other sessions still see
// the old file, or none, until then.
func (s *session) pendingUpload(p string) *handle {
	for _, h := range s.handles {
		if h.tmp != "" && h.path == p {
			return h
		}
	}
	return nil
}

// pathOp handles LSTAT, STAT, OPENDIR, REMOVE, RMDIR, REALPATH, READLINK.
func (s *session) pathOp(m *pathReq) {
	o := &s.srv.opts
	p := s.resolve(m.Path)
	// REALPATH takes "" for "." and, as sftp-server's realpath, names a
	// file even with a trailing slash.
	if err := s.checkRawPath(m.Path, p); err != nil && m.Type != fxpRealpath {
		s.sendError(m.ID, err)
		return
	}
	switch m.Type {
	case fxpLstat, fxpStat:
		var fi fs.FileInfo
		var err error
		if h := s.pendingUpload(p); h != nil {
			fi, err = h.f.Stat()
		} else if m.Type == fxpLstat && !mustBeDir(m.Path) {
			fi, err = s.fs.Lstat(p)
		} else {
			fi, err = s.fs.Stat(p)
		}
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendMsg(&attrsMsg{ID: m.ID, Attrs: attrsFromFileInfo(fi)})
	case fxpOpendir:
		if len(s.handles) >= o.MaxHandles {
			s.sendStatus(m.ID, StatusFailure, "too many open handles")
			return
		}
		f, err := s.fs.OpenFile(p, os.O_RDONLY, 0)
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		fi, err := f.Stat()
		if err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
		if err != nil {
			f.Close()
			s.sendError(m.ID, err)
			return
		}
		hb, _ := s.newHandle(&handle{path: p, f: f, dir: true, read: true})
		s.sendMsg(&handleMsg{ID: m.ID, Handle: hb})
	case fxpRemove:
		if o.ReadOnly || o.Permissions.NoDelete {
			s.sendError(m.ID, errDenied)
			return
		}
		if s.slashOnLink(m.Path, p) {
			s.sendError(m.ID, syscall.ENOTDIR)
			return
		}
		s.sendErrorOrOK(m.ID, s.remove(p))
	case fxpRmdir:
		if o.ReadOnly || o.Permissions.NoDelete {
			s.sendError(m.ID, errDenied)
			return
		}
		if err := s.dotLast(m.Path, syscall.EINVAL, syscall.ENOTEMPTY); err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendErrorOrOK(m.ID, s.fs.Rmdir(p))
	case fxpRealpath:
		r, err := s.fs.RealPath(p)
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendName(m.ID, r)
	case fxpReadlink:
		if s.slashOnLink(m.Path, p) {
			s.sendError(m.ID, syscall.EINVAL)
			return
		}
		t, err := s.fs.Readlink(p)
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendName(m.ID, t)
	}
}

// remove handles REMOVE: the file's size is measured, the name removed and
// the size released under the account's QuotaLock.
func (s *session) remove(p string) error {
	defer s.lockShrink()()
	fi, _ := s.fs.Lstat(p)
	err := s.fs.Remove(p)
	if err == nil {
		s.releaseUnlinked(fi)
	}
	return err
}

// sendName answers with one name whose long name repeats it and whose
// attributes are empty, as OpenSSH does for REALPATH and READLINK.
func (s *session) sendName(id uint32, name string) {
	s.sendMsg(&nameMsg{ID: id, Entries: []nameEntry{{Name: name, LongName: name}}})
}

func (s *session) mkdir(m *mkdirReq) {
	o := &s.srv.opts
	p := s.resolve(m.Path)
	if o.ReadOnly || reserved(p) {
		s.sendError(m.ID, errDenied)
		return
	}
	err := s.checkRawPath(m.Path, p)
	if err == nil {
		err = s.dotLast(m.Path, syscall.EEXIST, syscall.EEXIST)
	}
	if err != nil {
		s.sendError(m.ID, err)
		return
	}
	perm := fs.FileMode(0o777)
	if m.Attrs.Flags&AttrPermissions != 0 {
		perm = fs.FileMode(m.Attrs.Permissions & 0o777)
	}
	s.sendErrorOrOK(m.ID, s.fs.Mkdir(p, perm&^o.Umask))
}

// twoPathOp handles RENAME and SYMLINK.
func (s *session) twoPathOp(m *twoPathReq) {
	o := &s.srv.opts
	if m.Type == fxpSymlink && linkPathFirst(o.ClientVersion) {
		m.First, m.Second = m.Second, m.First
	}
	second := s.resolve(m.Second)
	if o.ReadOnly || (m.Type == fxpSymlink && o.Permissions.NoSymlinks) || reserved(second) {
		s.sendError(m.ID, errDenied)
		return
	}
	if m.Type == fxpRename {
		first := s.resolve(m.First)
		if reserved(first) {
			s.sendError(m.ID, errDenied)
			return
		}
		if err := s.checkRawPaths(m.First, first, m.Second, second); err != nil {
			s.sendError(m.ID, err)
			return
		}
		if s.slashOnLink(m.First, first) {
			s.sendError(m.ID, syscall.ENOTDIR)
			return
		}
		// v3 RENAME is a link then an unlink: under the shrink lock, so
		// no REMOVE counts the link in between.
		unlock := s.lockShrink()
		err := s.fs.Rename(first, second)
		unlock()
		s.sendErrorOrOK(m.ID, err)
		return
	}
	// OpenSSH's argument order: target first, link path second. The
	// target is stored as the client wrote it (see vfs.Local.Symlink).
	if reservedTarget(m.First) {
		s.sendError(m.ID, errDenied)
		return
	}
	if err := s.checkRawPath(m.Second, second); err != nil {
		s.sendError(m.ID, err)
		return
	}
	s.sendErrorOrOK(m.ID, s.fs.Symlink(m.First, second))
}

// checkRawPaths is checkRawPath for both paths of a two-path request
// (rename, posix-rename, hardlink), and fails a new name with a trailing
// slash for anything but a directory: cleaned, "file" renamed to "new/"
// became a file "new", where rename(2) and link(2) refuse it.
func (s *session) checkRawPaths(raw1, p1, raw2, p2 string) error {
	if err := s.checkRawPath(raw1, p1); err != nil {
		return err
	}
	if err := s.checkRawPath(raw2, p2); err != nil {
		return err
	}
	if p2 != "/" && mustBeDir(raw2) {
		stat := s.fs.Lstat
		if mustBeDir(raw1) {
			stat = s.fs.Stat
		}
		if fi, err := stat(p1); err == nil && !fi.IsDir() {
			return &fs.PathError{Op: "rename", Path: p2, Err: syscall.ENOTDIR}
		}
	}
	return nil
}

// dotLast fails a path whose last component is "." or "..", which resolve
// cleans away ("d/." became "d", "d/x/.." became "d") where rmdir(2) and
// mkdir(2) see the dot: the directory it is in must exist (else ENOENT,
// as path resolution fails), then "." fails with dot and ".." with
// dotdot (rmdir: EINVAL and ENOTEMPTY; mkdir: EEXIST for both).
func (s *session) dotLast(raw string, dot, dotdot syscall.Errno) error {
	trimmed := strings.TrimRight(raw, "/")
	last := trimmed[strings.LastIndexByte(trimmed, '/')+1:]
	if last != "." && last != ".." || trimmed == "" {
		return nil
	}
	if dir := trimmed[:len(trimmed)-len(last)]; dir != "" {
		if fi, err := s.fs.Stat(s.resolve(dir)); err != nil {
			return err
		} else if !fi.IsDir() {
			return &fs.PathError{Op: "stat", Path: raw, Err: syscall.ENOTDIR}
		}
	}
	if last == "." {
		return &fs.PathError{Op: "stat", Path: raw, Err: dot}
	}
	return &fs.PathError{Op: "stat", Path: raw, Err: dotdot}
}

// setstat applies attributes in OpenSSH's order (size, permissions,
// times, owner), carrying on after a failure and reporting the last one,
// as sftp-server does. With h set it works on the open file; with nofollow
// (lsetstat) a symbolic link itself is changed where Unix allows.
func (s *session) setstat(p string, h *handle, a *Attrs, nofollow bool) error {
	o := &s.srv.opts
	if o.ReadOnly || (h != nil && !h.write && a.Flags&AttrSize != 0) {
		return errDenied
	}
	if o.Permissions.NoChmod && a.Flags&(AttrPermissions|AttrUIDGID) != 0 {
		return errDenied
	}
	if o.Permissions.NoOverwrite && a.Flags&AttrSize != 0 {
		return errDenied
	}
	if a.Flags&(AttrPermissions|AttrUIDGID) != 0 && s.isRoot(p, h, nofollow) {
		return errDenied
	}
	isLink := false
	if nofollow {
		fi, err := s.fs.Lstat(p)
		if err != nil {
			return err
		}
		isLink = fi.Mode()&fs.ModeSymlink != 0
	}
	var last error
	if a.Flags&AttrSize != 0 {
		if a.Size > 1<<62 {
			last = syscall.EINVAL
		} else if isLink {
			last = syscall.ENOSYS
		} else if err := s.truncate(p, h, int64(a.Size)); err != nil {
			last = err
		}
	}
	if a.Flags&AttrPermissions != 0 {
		// Only the 0777 bits, as for OPEN, MKDIR and scp: the daemon
		// runs as one service user owning every home, so a setuid or
		// setgid bit would let an account plant a program that runs as
		// that user (or its group) for anyone who can execute it.
		mode := fs.FileMode(a.Permissions & 0o777)
		var err error
		switch {
		case isLink:
			err = syscall.ENOSYS // Linux has no lchmod
		case h != nil:
			err = h.f.Chmod(mode)
		default:
			err = s.fs.Chmod(p, mode)
		}
		if err != nil {
			last = err
		}
	}
	if a.Flags&AttrACModTime != 0 {
		at, mt := time.Unix(int64(a.ATime), 0), time.Unix(int64(a.MTime), 0)
		var err error
		switch {
		case isLink:
			err = s.fs.Lchtimes(p, at, mt)
		case h != nil:
			err = h.f.Chtimes(at, mt)
		default:
			err = s.fs.Chtimes(p, at, mt)
		}
		if err != nil {
			last = err
		}
	}
	if a.Flags&AttrUIDGID != 0 {
		var err error
		switch {
		case isLink:
			err = s.fs.Lchown(p, int(a.UID), int(a.GID))
		case h != nil:
			err = h.f.Chown(int(a.UID), int(a.GID))
		default:
			err = s.fs.Chown(p, int(a.UID), int(a.GID))
		}
		if err != nil {
			last = err
		}
	}
	return last
}

// isRoot reports whether a SETSTAT names the file system's root (the
// account's home), by name, through a link or by handle. Its mode and
// owner are the server's, as a chroot directory's are root's for
// sftp-server: mode 000 locked the account out of its own home for good
// (the server's user could no longer look anything up in it, nor undo
// the change), and 0777 opened it to every local user.
func (s *session) isRoot(p string, h *handle, nofollow bool) bool {
	var fi fs.FileInfo
	var err error
	switch {
	case h != nil:
		fi, err = h.f.Stat()
	case nofollow:
		fi, err = s.fs.Lstat(p)
	default:
		fi, err = s.fs.Stat(p)
	}
	if err != nil {
		return false
	}
	root, err := s.fs.Stat("/")
	return err == nil && os.SameFile(fi, root)
}

// truncate changes a file's size, charging growth to the quota and
// releasing what a shrink frees. The file is measured, changed and the
// difference charged under the account's QuotaLock: a handle's own idea
// of the size may be stale (another session may have truncated the file
// and released its size already).
func (s *session) truncate(p string, h *handle, size int64) error {
	q := s.srv.opts.Quota
	if q == nil {
		if h != nil {
			return h.f.Truncate(size)
		}
		return s.fs.Truncate(p, size)
	}
	defer s.lockShrink()()
	var fi fs.FileInfo
	var err error
	if h != nil {
		fi, err = h.f.Stat()
	} else {
		fi, err = s.fs.Stat(p)
	}
	if err != nil {
		return err
	}
	if size > fi.Size() {
		if err := s.reserve(p, size-fi.Size(), 0); err != nil {
			return err
		}
	}
	if h != nil {
		err = h.f.Truncate(size)
	} else {
		err = s.fs.Truncate(p, size)
	}
	// A handle's file with no name left was released as it stood by the
	// REMOVE (or rename over it) that took its last name: shrinking it
	// gives back only what was charged since (orphanCharged), or every
	// truncate of a removed file would release its bytes a second time
	// and an account could upload past its quota without end.
	orphan := h != nil && unlinked(fi)
	var c *fileCharge
	if h != nil {
		c = h.c
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	switch {
	case err != nil && size > fi.Size():
		q.Release(s.ctx, size-fi.Size(), 0)
	case err == nil && size > fi.Size() && orphan:
		c.orphanCharged += size - fi.Size()
	case err == nil && size < fi.Size():
		freed := fi.Size() - size
		if orphan {
			freed = min(freed, c.orphanCharged)
			c.orphanCharged -= freed
		}
		q.Release(s.ctx, freed, 0)
	}
	if err == nil && c != nil {
		c.size = size
	}
	return err
}

// userName and groupName give the names OpenSSH's ls_file prints
// (user_from_uid/group_from_gid): the name when known, else the number.
func (s *session) userName(uid uint32) string { return s.idName(uint64(uid), false) }
func (s *session) groupName(gid uint32) string {
	return s.idName(1<<32|uint64(gid), true)
}

func (s *session) idName(key uint64, group bool) string {
	if n, ok := s.names[key]; ok {
		return n
	}
	num := strconv.FormatUint(key&0xffffffff, 10)
	name := num
	if group {
		if g, err := user.LookupGroupId(num); err == nil {
			name = g.Name
		}
	} else if u, err := user.LookupId(num); err == nil {
		name = u.Username
	}
	if len(s.names) < maxNameCache {
		s.names[key] = name
	}
	return name
}

// lookupIDName answers users-groups-by-id@openssh.com, which sends ""
// for unknown ids: it names only the ids this session has already shown
// in long names (the owners of what it listed) and the server's own user
// and group, which own what it writes. Naming any id let a confined
// account read the host's users and groups (uids 0-65535 in 64 requests),
// which sftp-server under ChrootDirectory, with no passwd database in the
// chroot, does not reveal.
func (s *session) lookupIDName(key uint64, group bool) string {
	id := key & 0xffffffff
	own := id == uint64(os.Getuid())
	if group {
		own = id == uint64(os.Getgid())
	}
	if _, shown := s.names[key]; !shown && !own {
		return ""
	}
	n := s.idName(key, group)
	if n == strconv.FormatUint(key&0xffffffff, 10) {
		return ""
	}
	return n
}
