package sftp

import (
	"encoding/binary"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Packet types, draft-ietf-secsh-filexfer-02 §3.
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpRead          = 5
	fxpWrite         = 6
	fxpLstat         = 7
	fxpFstat         = 8
	fxpSetstat       = 9
	fxpFsetstat      = 10
	fxpOpendir       = 11
	fxpReaddir       = 12
	fxpRemove        = 13
	fxpMkdir         = 14
	fxpRmdir         = 15
	fxpRealpath      = 16
	fxpStat          = 17
	fxpRename        = 18
	fxpReadlink      = 19
	fxpSymlink       = 20
	fxpStatus        = 101
	fxpHandle        = 102
	fxpData          = 103
	fxpName          = 104
	fxpAttrs         = 105
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// Status codes, draft-ietf-secsh-filexfer-02 §7.
const (
	StatusOK               = 0
	StatusEOF              = 1
	StatusNoSuchFile       = 2
	StatusPermissionDenied = 3
	StatusFailure          = 4
	StatusBadMessage       = 5
	StatusNoConnection     = 6
	StatusConnectionLost   = 7
	StatusOpUnsupported    = 8
)

// statusMessages are the texts OpenSSH's sftp-server sends with each code;
// some clients show them verbatim, so ferry sends the same words.
var statusMessages = [...]string{
	"Success", "End of file", "No such file", "Permission denied", "Failure",
	"Bad message", "No connection", "Connection lost", "Operation unsupported",
}

func statusText(code uint32) string {
	if int(code) < len(statusMessages) {
		return statusMessages[code]
	}
	return "Unknown error"
}

// Open flags (pflags), draft-ietf-secsh-filexfer-02 §6.3.
const (
	fxfRead   = 0x01
	fxfWrite  = 0x02
	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10
	fxfExcl   = 0x20
)

// protocolVersion is the only version ferry speaks: 3, the one every
// client implements and OpenSSH's sftp-server answers with.
const protocolVersion = 3

// maxPacket bounds one SFTP packet (after its length field); OpenSSH's
// sftp-server refuses anything larger (SFTP_MAX_MSG_LENGTH, 256 KiB), so
// no client sends more.
const maxPacket = 256 * 1024

// maxReadLength is the largest READ ferry answers in full and the
// max-read-length/max-write-length it advertises in limits@openssh.com:
// OpenSSH's SFTP_MAX_READ_LENGTH, 1 KiB under maxPacket to leave room
// for the DATA/WRITE header.
const maxReadLength = maxPacket - 1024

// maxHandleLen bounds a handle string; ferry's are 4 bytes and OpenSSH's
// get_handle rejects anything of 256 bytes or more.
const maxHandleLen = 256

// maxExtendedAttrs bounds the extended attribute pairs accepted in one
// ATTRS (draft-02 §5 puts no limit on extended_count; the packet size
// bounds the bytes, this bounds the work).
const maxExtendedAttrs = 64

// pathReq is the request shape shared by LSTAT, STAT, OPENDIR, REMOVE,
// RMDIR, REALPATH and READLINK (draft-02 §6): one path after the id. They
// share one struct because their bodies are identical; the type byte is
// kept and checked so a parser for one never accepts another.
type pathReq struct {
	Type byte
	ID   uint32
	Path string
}

func isPathReq(t byte) bool {
	switch t {
	case fxpLstat, fxpStat, fxpOpendir, fxpRemove, fxpRmdir, fxpRealpath, fxpReadlink:
		return true
	}
	return false
}

func (m *pathReq) appendTo(b []byte) []byte {
	b = append(b, m.Type)
	b = wire.AppendUint32(b, m.ID)
	return wire.AppendStringS(b, m.Path)
}

func (m *pathReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	m.Type = r.Byte()
	m.ID = r.Uint32()
	m.Path = r.String()
	return r.Done() && isPathReq(m.Type)
}

// handleReq is CLOSE, FSTAT or READDIR (and fsync@openssh.com's body
// after the extension name): one handle after the id.
type handleReq struct {
	Type   byte
	ID     uint32
	Handle []byte
}

func (m *handleReq) appendTo(b []byte) []byte {
	b = append(b, m.Type)
	b = wire.AppendUint32(b, m.ID)
	return wire.AppendString(b, m.Handle)
}

func (m *handleReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	m.Type = r.Byte()
	m.ID = r.Uint32()
	m.Handle = r.Bytes()
	return r.Done() && (m.Type == fxpClose || m.Type == fxpFstat || m.Type == fxpReaddir) && len(m.Handle) < maxHandleLen
}

// initMsg is SSH_FXP_INIT (draft-02 §4). Version 3 carries no extension
// data from the client; anything after the version is ignored as the draft
// allows for extension pairs.
type initMsg struct {
	Version uint32
	Rest    []byte
}

func (m *initMsg) appendTo(b []byte) []byte {
	b = append(b, fxpInit)
	b = wire.AppendUint32(b, m.Version)
	return append(b, m.Rest...)
}

func (m *initMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpInit {
		return false
	}
	m.Version = r.Uint32()
	m.Rest = r.Rest()
	return r.Ok()
}

// extensionPair is one name/data pair in VERSION.
type extensionPair struct{ Name, Data string }

// versionMsg is SSH_FXP_VERSION (draft-02 §4).
type versionMsg struct {
	Version    uint32
	Extensions []extensionPair
}

func (m *versionMsg) appendTo(b []byte) []byte {
	b = append(b, fxpVersion)
	b = wire.AppendUint32(b, m.Version)
	for _, e := range m.Extensions {
		b = wire.AppendStringS(b, e.Name)
		b = wire.AppendStringS(b, e.Data)
	}
	return b
}

func (m *versionMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpVersion {
		return false
	}
	m.Version = r.Uint32()
	m.Extensions = nil
	for r.Ok() && !r.Empty() {
		m.Extensions = append(m.Extensions, extensionPair{r.String(), r.String()})
	}
	return r.Done()
}

// openReq is SSH_FXP_OPEN (draft-02 §6.3).
type openReq struct {
	ID     uint32
	Path   string
	PFlags uint32
	Attrs  Attrs
}

func (m *openReq) appendTo(b []byte) []byte {
	b = append(b, fxpOpen)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendStringS(b, m.Path)
	b = wire.AppendUint32(b, m.PFlags)
	return m.Attrs.appendTo(b)
}

func (m *openReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpOpen {
		return false
	}
	m.ID = r.Uint32()
	m.Path = r.String()
	m.PFlags = r.Uint32()
	return r.Ok() && m.Attrs.unmarshal(r.Rest())
}

// readReq is SSH_FXP_READ (draft-02 §6.4). Parsed by hand, without a
// wire.Reader, because it is on the zero-allocation data path.
type readReq struct {
	ID     uint32
	Handle []byte
	Offset uint64
	Length uint32
}

func (m *readReq) appendTo(b []byte) []byte {
	b = append(b, fxpRead)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendString(b, m.Handle)
	b = wire.AppendUint64(b, m.Offset)
	return wire.AppendUint32(b, m.Length)
}

func (m *readReq) unmarshal(p []byte) bool {
	if len(p) < 9 || p[0] != fxpRead {
		return false
	}
	m.ID = binary.BigEndian.Uint32(p[1:])
	hl := binary.BigEndian.Uint32(p[5:])
	p = p[9:]
	if hl >= maxHandleLen || len(p) != int(hl)+12 {
		return false
	}
	m.Handle = p[:hl]
	m.Offset = binary.BigEndian.Uint64(p[hl:])
	m.Length = binary.BigEndian.Uint32(p[hl+8:])
	return true
}

// writeReq is SSH_FXP_WRITE (draft-02 §6.4); Data aliases the packet.
type writeReq struct {
	ID     uint32
	Handle []byte
	Offset uint64
	Data   []byte
}

func (m *writeReq) appendTo(b []byte) []byte {
	b = append(b, fxpWrite)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendString(b, m.Handle)
	b = wire.AppendUint64(b, m.Offset)
	return wire.AppendString(b, m.Data)
}

func (m *writeReq) unmarshal(p []byte) bool {
	if len(p) < 9 || p[0] != fxpWrite {
		return false
	}
	m.ID = binary.BigEndian.Uint32(p[1:])
	hl := binary.BigEndian.Uint32(p[5:])
	p = p[9:]
	if hl >= maxHandleLen || len(p) < int(hl)+12 {
		return false
	}
	m.Handle = p[:hl]
	m.Offset = binary.BigEndian.Uint64(p[hl:])
	dl := binary.BigEndian.Uint32(p[hl+8:])
	p = p[hl+12:]
	// Bytes after the data are ignored, as OpenSSH's sftp-server ignores
	// what follows a request's fields: pkg/sftp before v1.13.6 (rclone
	// 1.60 and other Go tools built with it) sends its whole chunk buffer
	// after a short read's data, with the data's length declared right.
	if uint64(len(p)) < uint64(dl) {
		return false
	}
	m.Data = p[:dl]
	return true
}

// setstatReq is SSH_FXP_SETSTAT (draft-02 §6.9); also the body of
// lsetstat@openssh.com.
type setstatReq struct {
	ID    uint32
	Path  string
	Attrs Attrs
}

func (m *setstatReq) appendTo(b []byte) []byte {
	b = append(b, fxpSetstat)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendStringS(b, m.Path)
	return m.Attrs.appendTo(b)
}

func (m *setstatReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpSetstat {
		return false
	}
	m.ID = r.Uint32()
	m.Path = r.String()
	return r.Ok() && m.Attrs.unmarshal(r.Rest())
}

// fsetstatReq is SSH_FXP_FSETSTAT (draft-02 §6.9).
type fsetstatReq struct {
	ID     uint32
	Handle []byte
	Attrs  Attrs
}

func (m *fsetstatReq) appendTo(b []byte) []byte {
	b = append(b, fxpFsetstat)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendString(b, m.Handle)
	return m.Attrs.appendTo(b)
}

func (m *fsetstatReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpFsetstat {
		return false
	}
	m.ID = r.Uint32()
	m.Handle = r.Bytes()
	return r.Ok() && len(m.Handle) < maxHandleLen && m.Attrs.unmarshal(r.Rest())
}

// mkdirReq is SSH_FXP_MKDIR (draft-02 §6.6).
type mkdirReq struct {
	ID    uint32
	Path  string
	Attrs Attrs
}

func (m *mkdirReq) appendTo(b []byte) []byte {
	b = append(b, fxpMkdir)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendStringS(b, m.Path)
	return m.Attrs.appendTo(b)
}

func (m *mkdirReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpMkdir {
		return false
	}
	m.ID = r.Uint32()
	m.Path = r.String()
	return r.Ok() && m.Attrs.unmarshal(r.Rest())
}

// twoPathReq is RENAME (oldpath, newpath) or SYMLINK. For SYMLINK,
// OpenSSH sends the link target first and the link path second, the
// reverse of the draft (OpenSSH PROTOCOL §3.1); every client follows
// OpenSSH, so ferry does too: First is the target, Second the new link.
type twoPathReq struct {
	Type          byte
	ID            uint32
	First, Second string
}

func (m *twoPathReq) appendTo(b []byte) []byte {
	b = append(b, m.Type)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendStringS(b, m.First)
	return wire.AppendStringS(b, m.Second)
}

func (m *twoPathReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	m.Type = r.Byte()
	m.ID = r.Uint32()
	m.First = r.String()
	m.Second = r.String()
	return r.Done() && (m.Type == fxpRename || m.Type == fxpSymlink)
}

// extendedReq is SSH_FXP_EXTENDED (draft-02 §8): the request name, then
// request-specific data parsed by the extension.
type extendedReq struct {
	ID      uint32
	Request string
	Data    []byte
}

func (m *extendedReq) appendTo(b []byte) []byte {
	b = append(b, fxpExtended)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendStringS(b, m.Request)
	return append(b, m.Data...)
}

func (m *extendedReq) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpExtended {
		return false
	}
	m.ID = r.Uint32()
	m.Request = r.String()
	m.Data = r.Rest()
	return r.Ok()
}

// statusMsg is SSH_FXP_STATUS (draft-02 §7).
type statusMsg struct {
	ID       uint32
	Code     uint32
	Message  string
	Language string
}

func (m *statusMsg) appendTo(b []byte) []byte {
	b = append(b, fxpStatus)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendUint32(b, m.Code)
	b = wire.AppendStringS(b, m.Message)
	return wire.AppendStringS(b, m.Language)
}

func (m *statusMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpStatus {
		return false
	}
	m.ID = r.Uint32()
	m.Code = r.Uint32()
	m.Message = r.String()
	m.Language = r.String()
	return r.Done()
}

// handleMsg is SSH_FXP_HANDLE (draft-02 §7).
type handleMsg struct {
	ID     uint32
	Handle []byte
}

func (m *handleMsg) appendTo(b []byte) []byte {
	b = append(b, fxpHandle)
	b = wire.AppendUint32(b, m.ID)
	return wire.AppendString(b, m.Handle)
}

func (m *handleMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpHandle {
		return false
	}
	m.ID = r.Uint32()
	m.Handle = r.Bytes()
	return r.Done()
}

// dataMsg is SSH_FXP_DATA (draft-02 §7). The server builds it in place
// (see Server.read); this form is for tests and clients.
type dataMsg struct {
	ID   uint32
	Data []byte
}

func (m *dataMsg) appendTo(b []byte) []byte {
	b = append(b, fxpData)
	b = wire.AppendUint32(b, m.ID)
	return wire.AppendString(b, m.Data)
}

func (m *dataMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpData {
		return false
	}
	m.ID = r.Uint32()
	m.Data = r.Bytes()
	return r.Done()
}

// nameEntry is one file in SSH_FXP_NAME.
type nameEntry struct {
	Name     string
	LongName string
	Attrs    Attrs
}

// nameMsg is SSH_FXP_NAME (draft-02 §7).
type nameMsg struct {
	ID      uint32
	Entries []nameEntry
}

func (m *nameMsg) appendTo(b []byte) []byte {
	b = append(b, fxpName)
	b = wire.AppendUint32(b, m.ID)
	b = wire.AppendUint32(b, uint32(len(m.Entries)))
	for i := range m.Entries {
		b = wire.AppendStringS(b, m.Entries[i].Name)
		b = wire.AppendStringS(b, m.Entries[i].LongName)
		b = m.Entries[i].Attrs.appendTo(b)
	}
	return b
}

func (m *nameMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != fxpName {
		return false
	}
	m.ID = r.Uint32()
	n := r.Uint32()
	if !r.Ok() || n > maxPacket/4 {
		return false
	}
	m.Entries = nil
	rest := r.Rest()
	for i := uint32(0); i < n; i++ {
		var e nameEntry
		r := wire.NewReader(rest)
		e.Name = r.String()
		e.LongName = r.String()
		if !r.Ok() {
			return false
		}
		var ok bool
		rest, ok = e.Attrs.parse(r.Rest())
		if !ok {
			return false
		}
		m.Entries = append(m.Entries, e)
	}
	return len(rest) == 0
}

// attrsMsg is SSH_FXP_ATTRS (draft-02 §7).
type attrsMsg struct {
	ID    uint32
	Attrs Attrs
}

func (m *attrsMsg) appendTo(b []byte) []byte {
	b = append(b, fxpAttrs)
	b = wire.AppendUint32(b, m.ID)
	return m.Attrs.appendTo(b)
}

func (m *attrsMsg) unmarshal(p []byte) bool {
	if len(p) < 5 || p[0] != fxpAttrs {
		return false
	}
	m.ID = binary.BigEndian.Uint32(p[1:])
	return m.Attrs.unmarshal(p[5:])
}

// extendedReplyMsg is SSH_FXP_EXTENDED_REPLY (draft-02 §8).
type extendedReplyMsg struct {
	ID   uint32
	Data []byte
}

func (m *extendedReplyMsg) appendTo(b []byte) []byte {
	b = append(b, fxpExtendedReply)
	b = wire.AppendUint32(b, m.ID)
	return append(b, m.Data...)
}

func (m *extendedReplyMsg) unmarshal(p []byte) bool {
	if len(p) < 5 || p[0] != fxpExtendedReply {
		return false
	}
	m.ID = binary.BigEndian.Uint32(p[1:])
	m.Data = p[5:]
	return true
}
