package sftp

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/vfs"
)

// maxIDLookups bounds the ids one users-groups-by-id@openssh.com request
// may ask about; each may read the passwd/group databases. OpenSSH's
// sftp client asks for the ids of one directory listing at a time.
const maxIDLookups = 1024

// copyChunk is the unit copy-data moves at a time.
const copyChunk = 256 << 10

// extended handles SSH_FXP_EXTENDED requests (OpenSSH PROTOCOL §4).
func (s *session) extended(m *extendedReq) {
	o := &s.srv.opts
	r := wire.NewReader(m.Data)
	bad := func() { s.sendStatus(m.ID, StatusBadMessage, "") }
	switch m.Request {
	case "posix-rename@openssh.com":
		oldp, newp := r.String(), r.String()
		if !r.Done() {
			bad()
			return
		}
		op, np := s.resolve(oldp), s.resolve(newp)
		if o.ReadOnly || reserved(np) || reserved(op) {
			s.sendError(m.ID, errDenied)
			return
		}
		if err := s.checkRawPaths(oldp, op, newp, np); err != nil {
			s.sendError(m.ID, err)
			return
		}
		if s.slashOnLink(oldp, op) {
			s.sendError(m.ID, syscall.ENOTDIR)
			return
		}
		s.sendErrorOrOK(m.ID, s.posixRename(op, np))
	case "statvfs@openssh.com", "fstatvfs@openssh.com":
		var p string
		var err error
		if m.Request == "statvfs@openssh.com" {
			raw := r.String()
			p = s.resolve(raw)
			err = s.checkRawPath(raw, p)
		} else {
			h := s.lookup(r.Bytes())
			if h == nil {
				if r.Done() {
					s.sendStatus(m.ID, StatusFailure, "")
					return
				}
			} else {
				p = h.path
				if h.tmp != "" {
					p = h.tmp
				}
			}
		}
		if !r.Done() {
			bad()
			return
		}
		var st *vfs.StatVFS
		if err == nil {
			st, err = s.fs.StatVFS(p)
		}
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendMsg(&extendedReplyMsg{ID: m.ID, Data: appendStatVFS(nil, st)})
	case "hardlink@openssh.com":
		oldp, newp := r.String(), r.String()
		if !r.Done() {
			bad()
			return
		}
		op, np := s.resolve(oldp), s.resolve(newp)
		if o.ReadOnly || o.Permissions.NoSymlinks || reserved(np) || reserved(op) {
			s.sendError(m.ID, errDenied)
			return
		}
		if err := s.checkRawPaths(oldp, op, newp, np); err != nil {
			s.sendError(m.ID, err)
			return
		}
		if s.slashOnLink(oldp, op) {
			// link(2) follows "ldir/" to a directory, which it refuses.
			s.sendError(m.ID, syscall.EPERM)
			return
		}
		// Under the shrink lock: a REMOVE or replace decides from the
		// link count whether the data goes with the name, and a link
		// added between its stat and its unlink would keep the data
		// uncharged after a full release.
		unlock := s.lockShrink()
		err := s.fs.Link(op, np)
		unlock()
		s.sendErrorOrOK(m.ID, err)
	case "fsync@openssh.com":
		hb := r.Bytes()
		if !r.Done() {
			bad()
			return
		}
		if o.ReadOnly {
			// sftp-server -R counts fsync as a write.
			s.sendError(m.ID, errDenied)
			return
		}
		h := s.lookup(hb)
		if h == nil || h.dir {
			// sftp-server finds no file descriptor: NO_SUCH_FILE.
			s.sendStatus(m.ID, StatusNoSuchFile, "")
			return
		}
		s.sendErrorOrOK(m.ID, h.f.Sync())
	case "lsetstat@openssh.com":
		p := r.String()
		if !r.Ok() {
			bad()
			return
		}
		var a Attrs
		if !a.unmarshal(r.Rest()) || a.Flags&AttrSize != 0 {
			// A link has no size to set: sftp-server refuses SIZE here
			// as a bad message rather than truncate the link's target.
			bad()
			return
		}
		rp := s.resolve(p)
		err := s.checkRawPath(p, rp)
		if err == nil {
			// "ldir/" names the directory, not the link.
			err = s.setstat(rp, nil, &a, !mustBeDir(p))
		}
		s.sendErrorOrOK(m.ID, err)
	case "limits@openssh.com":
		if !r.Done() {
			bad()
			return
		}
		var b []byte
		b = binary.BigEndian.AppendUint64(b, maxPacket)
		b = binary.BigEndian.AppendUint64(b, uint64(o.MaxReadLen))
		b = binary.BigEndian.AppendUint64(b, maxReadLength)
		b = binary.BigEndian.AppendUint64(b, uint64(o.MaxHandles))
		s.sendMsg(&extendedReplyMsg{ID: m.ID, Data: b})
	case "expand-path@openssh.com":
		p := r.String()
		if !r.Done() {
			bad()
			return
		}
		switch {
		case p == "~" || strings.HasPrefix(p, "~/"):
			p = o.Home + p[1:]
		case strings.HasPrefix(p, "~"):
			// Only the session's own home is known.
			name, rest, _ := strings.Cut(p[1:], "/")
			if name != o.User {
				s.sendStatus(m.ID, StatusNoSuchFile, "no such user")
				return
			}
			p = o.Home + "/" + rest
		}
		rp, err := s.fs.RealPath(s.resolve(p))
		if err != nil {
			s.sendError(m.ID, err)
			return
		}
		s.sendName(m.ID, rp)
	case "home-directory":
		name := r.String()
		if !r.Done() {
			bad()
			return
		}
		if name != "" && name != o.User {
			s.sendStatus(m.ID, StatusNoSuchFile, "")
			return
		}
		s.sendName(m.ID, o.Home)
	case "users-groups-by-id@openssh.com":
		uids, gids := r.Bytes(), r.Bytes()
		if !r.Done() || len(uids)%4 != 0 || len(gids)%4 != 0 {
			bad()
			return
		}
		if (len(uids)+len(gids))/4 > maxIDLookups {
			s.sendStatus(m.ID, StatusFailure, "too many ids")
			return
		}
		var users, groups []byte
		for i := 0; i < len(uids); i += 4 {
			users = wire.AppendStringS(users, s.lookupIDName(uint64(binary.BigEndian.Uint32(uids[i:])), false))
		}
		for i := 0; i < len(gids); i += 4 {
			groups = wire.AppendStringS(groups, s.lookupIDName(1<<32|uint64(binary.BigEndian.Uint32(gids[i:])), true))
		}
		b := wire.AppendString(nil, users)
		b = wire.AppendString(b, groups)
		s.sendMsg(&extendedReplyMsg{ID: m.ID, Data: b})
	case "copy-data":
		rh := r.Bytes()
		roff, rlen := r.Uint64(), r.Uint64()
		wh := r.Bytes()
		woff := r.Uint64()
		if !r.Done() {
			bad()
			return
		}
		if o.ReadOnly {
			s.sendError(m.ID, errDenied)
			return
		}
		s.sendErrorOrOK(m.ID, s.copyData(s.lookup(rh), roff, rlen, s.lookup(wh), woff))
	default:
		s.sendStatus(m.ID, StatusOpUnsupported, "")
	}
}

// posixRename handles posix-rename@openssh.com. The file it replaces is
// measured, replaced and released under the account's QuotaLock.
func (s *session) posixRename(op, np string) error {
	o := &s.srv.opts
	defer s.lockShrink()()
	replaced, err := s.fs.Lstat(np)
	if err == nil && (o.Permissions.NoOverwrite || o.Permissions.NoDelete) {
		// Replacing a file destroys it: refused to accounts that may not
		// overwrite and to those that may not delete.
		return errDenied
	}
	if err == nil {
		// rename(2) between two names of one file changes nothing and
		// succeeds; os.Root.Rename refuses a directory as the new name
		// even when it is the old one.
		if src, serr := s.fs.Lstat(op); serr == nil && os.SameFile(src, replaced) {
			return nil
		}
	}
	if err := s.fs.PosixRename(op, np); err != nil {
		return err
	}
	s.releaseUnlinked(replaced)
	return nil
}

// appendStatVFS encodes the statvfs@openssh.com reply (PROTOCOL §4.4):
// eleven uint64s in struct statvfs order.
func appendStatVFS(b []byte, st *vfs.StatVFS) []byte {
	for _, v := range [...]uint64{st.BlockSize, st.FragmentSize, st.Blocks, st.BlocksFree,
		st.BlocksAvail, st.Files, st.FilesFree, st.FilesAvail, st.FSID, st.Flags, st.NameMax} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

var errBadCopy = errors.New("copy-data: bad handles or ranges")

// copyData implements copy-data (draft-ietf-secsh-filexfer-extensions-00
// §7): length 0 copies to the end of the source, as it was when the
// request arrived. Reading "until EOF" instead never ended when the
// destination was the source file opened through a second handle (the
// copy appends to what it reads): the file grew at disk speed until the
// disk or the quota was full, on a busy core. The copy also stops when
// the session ends: it runs on the session's dispatcher, and a client
// that disconnected used to leave it running.
func (s *session) copyData(rh *handle, roff, rlen uint64, wh *handle, woff uint64) error {
	if rh != nil && wh != nil && rh != wh && !rh.dir && !wh.dir && (!rh.read || !wh.write) {
		// Two files, one opened without the access: sftp-server's read(2)
		// or write(2) fails with EBADF, which it answers NO_SUCH_FILE.
		return &fs.PathError{Op: "copy-data", Path: rh.path, Err: syscall.EBADF}
	}
	if rh == nil || wh == nil || rh.dir || wh.dir || !rh.read || !wh.write {
		return errBadCopy
	}
	const maxOff = 1 << 62
	if roff > maxOff || woff > maxOff || rlen > maxOff {
		return errBadCopy
	}
	if rh == wh && rlen == 0 {
		return errBadCopy
	}
	if rh == wh && roff < woff+rlen && woff < roff+rlen {
		return errBadCopy // overlapping ranges in one file
	}
	if rlen == 0 {
		fi, err := rh.f.Stat()
		if err != nil {
			return err
		}
		if size := uint64(fi.Size()); size > roff {
			rlen = size - roff
		} else {
			return nil
		}
	}
	buf := s.srv.getBuf(copyChunk)
	defer s.srv.putBuf(buf)
	b := buf.b[:copyChunk]
	ro, wo := int64(roff), int64(woff)
	left := int64(rlen)
	for left > 0 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		n := min(int64(len(b)), left)
		got, err := rh.f.ReadAt(b[:n], ro)
		if got > 0 {
			if werr := s.chargedWrite(wh, b[:got], wo); werr != nil {
				wh.writeFailed.Store(true)
				s.abandonUpload(wh)
				return werr
			}
			wh.bytesWritten.Add(int64(got))
			ro += int64(got)
			wo += int64(got)
			left -= int64(got)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
