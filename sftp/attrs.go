package sftp

import (
	"encoding/binary"
	"io/fs"
	"strconv"
	"syscall"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/vfs"
)

// Attribute flags, draft-ietf-secsh-filexfer-02 §5.
const (
	AttrSize        = 0x00000001
	AttrUIDGID      = 0x00000002
	AttrPermissions = 0x00000004
	AttrACModTime   = 0x00000008
	AttrExtended    = 0x80000000
)

// attrKnown is every flag version 3 defines; others are a malformed ATTRS.
const attrKnown = AttrSize | AttrUIDGID | AttrPermissions | AttrACModTime | AttrExtended

// Attrs is the ATTRS structure of draft-02 §5. Permissions carries the
// full st_mode (file type bits included), as OpenSSH sends it.
type Attrs struct {
	Flags       uint32
	Size        uint64
	UID, GID    uint32
	Permissions uint32
	ATime       uint32
	MTime       uint32
	Extended    []extensionPair
}

func (a *Attrs) appendTo(b []byte) []byte {
	b = wire.AppendUint32(b, a.Flags)
	if a.Flags&AttrSize != 0 {
		b = wire.AppendUint64(b, a.Size)
	}
	if a.Flags&AttrUIDGID != 0 {
		b = wire.AppendUint32(b, a.UID)
		b = wire.AppendUint32(b, a.GID)
	}
	if a.Flags&AttrPermissions != 0 {
		b = wire.AppendUint32(b, a.Permissions)
	}
	if a.Flags&AttrACModTime != 0 {
		b = wire.AppendUint32(b, a.ATime)
		b = wire.AppendUint32(b, a.MTime)
	}
	if a.Flags&AttrExtended != 0 {
		b = wire.AppendUint32(b, uint32(len(a.Extended)))
		for _, e := range a.Extended {
			b = wire.AppendStringS(b, e.Name)
			b = wire.AppendStringS(b, e.Data)
		}
	}
	return b
}

// unmarshal parses p, which must hold exactly one ATTRS.
func (a *Attrs) unmarshal(p []byte) bool {
	rest, ok := a.parse(p)
	return ok && len(rest) == 0
}

// parse reads one ATTRS from the front of p and returns what follows.
func (a *Attrs) parse(p []byte) ([]byte, bool) {
	*a = Attrs{}
	u32 := func() (uint32, bool) {
		if len(p) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(p)
		p = p[4:]
		return v, true
	}
	var ok bool
	if a.Flags, ok = u32(); !ok || a.Flags&^attrKnown != 0 {
		return nil, false
	}
	if a.Flags&AttrSize != 0 {
		if len(p) < 8 {
			return nil, false
		}
		a.Size = binary.BigEndian.Uint64(p)
		p = p[8:]
	}
	if a.Flags&AttrUIDGID != 0 {
		if len(p) < 8 {
			return nil, false
		}
		a.UID, a.GID = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		p = p[8:]
	}
	if a.Flags&AttrPermissions != 0 {
		if a.Permissions, ok = u32(); !ok {
			return nil, false
		}
	}
	if a.Flags&AttrACModTime != 0 {
		if len(p) < 8 {
			return nil, false
		}
		a.ATime, a.MTime = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		p = p[8:]
	}
	if a.Flags&AttrExtended != 0 {
		n, ok := u32()
		if !ok || n > maxExtendedAttrs {
			return nil, false
		}
		r := wire.NewReader(p)
		for i := uint32(0); i < n; i++ {
			a.Extended = append(a.Extended, extensionPair{r.String(), r.String()})
		}
		if !r.Ok() {
			return nil, false
		}
		p = r.Rest()
	}
	return p, true
}

// Unix file type bits of st_mode, which SFTP v3 carries in permissions.
const (
	modeTypeMask = 0o170000
	modeSocket   = 0o140000
	modeSymlink  = 0o120000
	modeRegular  = 0o100000
	modeBlock    = 0o060000
	modeDir      = 0o040000
	modeChar     = 0o020000
	modeFIFO     = 0o010000
)

// unixMode converts a FileMode to st_mode bits.
func unixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	switch {
	case m&fs.ModeDir != 0:
		v |= modeDir
	case m&fs.ModeSymlink != 0:
		v |= modeSymlink
	case m&fs.ModeNamedPipe != 0:
		v |= modeFIFO
	case m&fs.ModeSocket != 0:
		v |= modeSocket
	case m&fs.ModeCharDevice != 0:
		v |= modeChar
	case m&fs.ModeDevice != 0:
		v |= modeBlock
	default:
		v |= modeRegular
	}
	return v
}

// attrsFromFileInfo fills the attributes OpenSSH's stat_to_attrib sends:
// size, uid/gid, mode and times.
func attrsFromFileInfo(fi fs.FileInfo) Attrs {
	a := Attrs{
		Flags:       AttrSize | AttrUIDGID | AttrPermissions | AttrACModTime,
		Size:        uint64(fi.Size()),
		Permissions: unixMode(fi.Mode()),
		MTime:       uint32(fi.ModTime().Unix()),
	}
	a.ATime = a.MTime
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		a.UID, a.GID = st.Uid, st.Gid
		a.Permissions = uint32(st.Mode)
		a.ATime = uint32(atime(st).Unix())
	}
	return a
}

// strmode renders st_mode like BSD strmode(3), which OpenSSH's ls_file
// uses: type, nine permission characters with set-id and sticky folded
// in, and a trailing space where BSD puts the ACL marker.
func strmode(mode uint32, b []byte) []byte {
	var t byte
	switch mode & modeTypeMask {
	case modeDir:
		t = 'd'
	case modeSymlink:
		t = 'l'
	case modeChar:
		t = 'c'
	case modeBlock:
		t = 'b'
	case modeFIFO:
		t = 'p'
	case modeSocket:
		t = 's'
	case modeRegular:
		t = '-'
	default:
		t = '?'
	}
	b = append(b, t)
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		c := byte('-')
		if mode&(1<<(8-i)) != 0 {
			c = rwx[i]
		}
		b = append(b, c)
	}
	fix := func(i int, bit uint32, set, unset byte) {
		if mode&bit != 0 {
			if b[i] == 'x' {
				b[i] = set
			} else {
				b[i] = unset
			}
		}
	}
	n := len(b) - 10
	fix(n+3, 0o4000, 's', 'S')
	fix(n+6, 0o2000, 's', 'S')
	fix(n+9, 0o1000, 't', 'T')
	return append(b, ' ')
}

// longName formats a READDIR long name exactly as OpenSSH's ls_file with
// remote=0: "%s %3u %-*s %-*s %8llu %s %s" (mode, links, owner and group
// padded to at least 8, size, date, name). The date is "Mon dd hh:mm"
// for files modified in the last six months and "Mon dd  yyyy" otherwise,
// in the server's local time, as strftime's "%b %e %H:%M" / "%b %e  %Y".
func longName(name string, a *Attrs, nlink uint64, owner, group string, now time.Time) string {
	b := make([]byte, 0, 64+len(name))
	b = strmode(a.Permissions, b)
	b = append(b, ' ')
	b = padLeft(b, strconv.FormatUint(nlink, 10), 3)
	b = append(b, ' ')
	b = padRight(b, owner, 8)
	b = append(b, ' ')
	b = padRight(b, group, 8)
	b = append(b, ' ')
	b = padLeft(b, strconv.FormatUint(a.Size, 10), 8)
	b = append(b, ' ')
	mt := time.Unix(int64(a.MTime), 0).In(now.Location())
	const halfYear = 365 * 24 * time.Hour / 2
	if now.Add(-halfYear).Before(mt) && !now.Before(mt) {
		b = mt.AppendFormat(b, "Jan _2 15:04")
	} else {
		b = mt.AppendFormat(b, "Jan _2  2006")
	}
	b = append(b, ' ')
	b = append(b, name...)
	return string(b)
}

func padLeft(b []byte, s string, w int) []byte {
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func padRight(b []byte, s string, w int) []byte {
	b = append(b, s...)
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return b
}

// nlinkOf returns st_nlink, or 1 when the FileInfo has no stat.
func nlinkOf(fi fs.FileInfo) uint64 {
	_, _, n, ok := vfs.Owner(fi)
	if !ok {
		return 1
	}
	return n
}
