package scp

import (
	"errors"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// The rcp/scp protocol has no specification; this follows what OpenSSH's
// scp.c (source(), rsource(), sink(), response()) sends and accepts.
// Every record is one line; data follows a C record.

// maxLine is the longest record accepted, including its newline: scp.c's
// sink reads records into a 2048-byte buffer.
const maxLine = 2048

// Response bytes (scp.c response()).
const (
	respOK      = 0x00
	respWarning = 0x01 // followed by a message line; the transfer goes on
	respFatal   = 0x02 // followed by a message line; the peer exits
)

// modeMask is what a C or D record carries: permission bits only.
// scp.c's FILEMODEMASK also lets setuid/setgid through; a hosting
// account must not be able to plant set-id programs, so they are cleared
// both ways.
const modeMask fs.FileMode = 0o777

var (
	errExpectedControl = errors.New("expected control record")
	errBadMode         = errors.New("bad mode")
	errModeDelim       = errors.New("mode not delimited")
	errSizeMissing     = errors.New("size not present")
	errSizeDelim       = errors.New("size not delimited")
	errBadSize         = errors.New("size out of range")
	// The T record's errors name the field as scp.c's do.
	errMtimeMissing   = errors.New("mtime.sec not present")
	errMtimeDelim     = errors.New("mtime.sec not delimited")
	errMtimeUsecDelim = errors.New("mtime.usec not delimited")
	errAtimeMissing   = errors.New("atime.sec not present")
	errAtimeDelim     = errors.New("atime.sec not delimited")
	errAtimeUsecDelim = errors.New("atime.usec not delimited")
	// errTimesOutOfRange is not a protocol error: the record is well
	// formed, its times are not set (scp.c sink: "setimes = 0; out of
	// range") and the file that follows is received as usual.
	errTimesOutOfRange = errors.New("times out of range")
	errBadName         = errors.New("unexpected filename")
	errTrailing        = errors.New("trailing bytes after record")
)

// fileMsg is "C<mode> <size> <name>\n" (dir false) or "D<mode> 0
// <name>\n" (dir true).
type fileMsg struct {
	Dir  bool
	Mode fs.FileMode
	Size int64
	Name string
}

func (m *fileMsg) appendTo(b []byte) []byte {
	t := byte('C')
	if m.Dir {
		t = 'D'
	}
	b = append(b, t)
	mode := strconv.FormatUint(uint64(m.Mode&modeMask), 8)
	for i := len(mode); i < 4; i++ {
		b = append(b, '0')
	}
	b = append(b, mode...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, m.Size, 10)
	b = append(b, ' ')
	b = append(b, m.Name...)
	return append(b, '\n')
}

// unmarshal parses a C or D record without its newline. The name is
// checked as scp.c's sink checks it (see validName).
func (m *fileMsg) unmarshal(line string) error {
	if len(line) < 1 || (line[0] != 'C' && line[0] != 'D') {
		return errExpectedControl
	}
	m.Dir = line[0] == 'D'
	if len(line) < 5 {
		return errBadMode
	}
	var mode uint32
	for i := 1; i < 5; i++ {
		c := line[i]
		if c < '0' || c > '7' {
			return errBadMode
		}
		mode = mode<<3 | uint32(c-'0')
	}
	m.Mode = fs.FileMode(mode) & modeMask
	rest := line[5:]
	if rest == "" || rest[0] != ' ' {
		return errModeDelim
	}
	rest = rest[1:]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return errSizeMissing
	}
	size, err := strconv.ParseInt(rest[:n], 10, 64)
	if err != nil {
		return errBadSize
	}
	m.Size = size
	rest = rest[n:]
	if rest == "" || rest[0] != ' ' {
		return errSizeDelim
	}
	m.Name = rest[1:]
	if !validName(m.Name) {
		return errBadName
	}
	return nil
}

// validName is scp.c's sink check: a record names one entry of the
// target directory, so "", ".", ".." and anything with '/' would write
// elsewhere (CVE-2018-20685, CVE-2019-6111). A newline cannot occur: it
// ends the record.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\n\x00")
}

// timeMsg is "T<mtime> <mtime usec> <atime> <atime usec>\n" (-p).
type timeMsg struct {
	Mtime, MtimeUsec, Atime, AtimeUsec int64
}

func (m *timeMsg) appendTo(b []byte) []byte {
	b = append(b, 'T')
	b = strconv.AppendInt(b, m.Mtime, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, m.MtimeUsec, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, m.Atime, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, m.AtimeUsec, 10)
	return append(b, '\n')
}

// maxTimeSec is the latest second a T record's times are set to: vfs
// hands times to the kernel as nanoseconds since 1970 in an int64
// (time.Time.UnixNano), which ends in the year 2262.
const maxTimeSec = math.MaxInt64 / 1_000_000_000

// unmarshal parses a T record without its newline, with scp.c's checks:
// each field is decimal digits and microseconds are at most 999999.
// Seconds beyond maxTimeSec (a file dated 2446, ext4's limit, or a
// corrupt timestamp) return errTimesOutOfRange with the record otherwise
// valid, as scp.c ignores times beyond time_t: the file still arrives.
func (m *timeMsg) unmarshal(line string) error {
	if len(line) < 1 || line[0] != 'T' {
		return errExpectedControl
	}
	rest := line[1:]
	// field takes the leading digits of rest; ok is false when there are
	// none.
	field := func() (digits string, ok bool) {
		n := 0
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		digits, rest = rest[:n], rest[n:]
		return digits, n > 0
	}
	// delimited consumes the separator that must follow a field.
	delimited := func(last bool) bool {
		if last {
			return rest == ""
		}
		if rest == "" || rest[0] != ' ' {
			return false
		}
		rest = rest[1:]
		return true
	}
	outOfRange := false
	seconds := func(missing, delim error, last bool) (int64, error) {
		d, ok := field()
		if !ok {
			return 0, missing
		}
		if !delimited(last) {
			return 0, delim
		}
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n > maxTimeSec {
			outOfRange = true
		}
		return n, nil
	}
	micros := func(delim error, last bool) (int64, error) {
		d, ok := field()
		if !ok || !delimited(last) {
			return 0, delim
		}
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n > 999999 {
			return 0, delim
		}
		return n, nil
	}
	var err error
	if m.Mtime, err = seconds(errMtimeMissing, errMtimeDelim, false); err != nil {
		return err
	}
	if m.MtimeUsec, err = micros(errMtimeUsecDelim, false); err != nil {
		return err
	}
	if m.Atime, err = seconds(errAtimeMissing, errAtimeDelim, false); err != nil {
		return err
	}
	if m.AtimeUsec, err = micros(errAtimeUsecDelim, true); err != nil {
		return err
	}
	if outOfRange {
		*m = timeMsg{}
		return errTimesOutOfRange
	}
	return nil
}

// endDirMsg is "E\n": the end of a D record's contents.
type endDirMsg struct{}

func (endDirMsg) appendTo(b []byte) []byte { return append(b, 'E', '\n') }

func (endDirMsg) unmarshal(line string) error {
	if line == "" || line[0] != 'E' {
		return errExpectedControl
	}
	if len(line) != 1 {
		return errTrailing
	}
	return nil
}
