package scp

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// runSource serves "scp -f PATH...": we send records and data.
func (s *session) runSource() error {
	// scp.c: the sink speaks first, with one OK.
	if err := s.response(); err != nil {
		if isFatal(err) {
			return err
		}
		return &fatalError{err}
	}
	if s.srv.opts.Permissions.NoDownload {
		return s.fatal("Permission denied: the account is upload-only")
	}
	for _, w := range s.cmd.Paths {
		if !w.Glob {
			if err := s.source(s.resolve(w.Text, w.Home), s.typedName(w), 0); err != nil {
				return err
			}
			continue
		}
		names, err := s.glob(w)
		if err != nil {
			if err := s.warn("%s: %v", w.Text, err); err != nil {
				return errPeerGone
			}
			continue
		}
		if len(names) == 0 {
			if err := s.warn("%s: No such file or directory", w.Text); err != nil {
				return errPeerGone
			}
			continue
		}
		for _, p := range names {
			if err := s.source(p, path.Base(p), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// typedName is the name a path the client typed is sent under: its last
// component as typed, after trailing slashes (scp.c source()), so
// "d/." and "d/.." are sent as "." and "..", which OpenSSH clients since
// 8.0 refuse (CVE-2018-20685) exactly as they do from sshd. The shell
// expands "~" and "~/" to the home's path, whose last component is the
// home directory's name, by default the account's (data/home/USER).
func (s *session) typedName(w Word) string {
	t := w.Text
	for len(t) > 1 && strings.HasSuffix(t, "/") {
		t = t[:len(t)-1]
	}
	if w.Home && (t == "" || t == "/") {
		if u := s.srv.opts.User; validName(u) {
			return u
		}
		return "."
	}
	if t == "" || t == "/" {
		// The whole home, typed as "/" (or "", which some clients send
		// for an empty path): its name in the client's view.
		return "."
	}
	return path.Base(t)
}

// source sends one file or (with -r) directory tree (scp.c source())
// under the given record name. Only errors that end the session are
// returned.
func (s *session) source(p, name string, depth int) error {
	if err := s.ctx.Err(); err != nil {
		return &fatalError{err}
	}
	if isTemp(name) {
		if depth > 0 {
			return nil
		}
		// Named by the client: refused as the sink refuses the name,
		// rather than skipped with no word and exit status 0.
		return s.warnOrGone("%s: Permission denied", p)
	}
	fi, err := s.fs.Stat(p)
	if err != nil {
		return s.warnOrGone("%s: %s", p, errText(err))
	}
	if strings.Contains(name, "\n") {
		// A newline would end the record early. scp.c sends such a name
		// encoded by strnvis(3) with VIS_NL ("a\^Jb"), and the file
		// arrives under that name.
		name = visNewline(name)
		if fi.IsDir() {
			// scp.c then opens the directory by its encoded name, which
			// fails ("No such file or directory"): said plainly here.
			return s.warnOrGone("%s: skipping, directory name contains a newline", p)
		}
	}
	if fi.IsDir() {
		if !s.cmd.Recursive {
			return s.warnOrGone("%s: not a regular file", p)
		}
		return s.rsource(p, name, fi, depth)
	}
	if !fi.Mode().IsRegular() {
		return s.warnOrGone("%s: not a regular file", p)
	}
	start := time.Now()
	f, err := s.fs.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return s.warnOrGone("%s: %s", p, errText(err))
	}
	defer f.Close()
	// The size and times of what was opened, not of what the name
	// pointed at a moment before.
	if fi, err = f.Stat(); err != nil {
		return s.warnOrGone("%s: %s", p, errText(err))
	}
	if s.cmd.PreserveTimes {
		if skip, err := s.sendRecord(timeRecord(fi)); skip || err != nil {
			return err
		}
	}
	if skip, err := s.sendRecord(&fileMsg{Mode: fi.Mode() & modeMask, Size: fi.Size(), Name: name}); skip || err != nil {
		return err
	}
	// Exactly Size bytes follow, whatever happens to the file meanwhile:
	// a shrunk or unreadable file is padded with zeros and reported
	// after the data, as scp.c does, so the stream stays in step.
	var rerr error
	var sent int64
	for remaining := fi.Size(); remaining > 0; {
		if err := s.ctx.Err(); err != nil {
			return &fatalError{err}
		}
		n := int(min(int64(len(s.buf)), remaining))
		b := s.buf[:n]
		if rerr == nil {
			var got int
			got, rerr = io.ReadFull(f, b)
			if rerr == io.ErrUnexpectedEOF || rerr == io.EOF {
				rerr = errors.New("file changed size during transfer")
			}
			clear(b[got:])
		} else {
			clear(b)
		}
		if err := s.limit.Wait(s.ctx, n); err != nil {
			return &fatalError{err}
		}
		if _, err := s.w.Write(b); err != nil {
			s.record(p, false, sent, 0, start, "aborted")
			return errPeerGone
		}
		sent += int64(n)
		remaining -= int64(n)
	}
	if rerr != nil {
		msg := rerr.Error()
		if !strings.HasPrefix(msg, "file changed") {
			msg = errText(rerr)
		}
		if err := s.warn("%s: %s", p, msg); err != nil {
			return errPeerGone
		}
		s.record(p, false, sent, 0, start, "failed: "+msg)
	} else {
		if err := s.ack(); err != nil {
			return errPeerGone
		}
		s.record(p, false, sent, 0, start, "ok")
	}
	if err := s.response(); err != nil && isFatal(err) {
		return err
	}
	return nil
}

// rsource sends a directory and its contents (scp.c rsource()).
func (s *session) rsource(p, name string, fi fs.FileInfo, depth int) error {
	if depth+1 >= maxDepth {
		return s.warnOrGone("%s: directories nested too deeply", p)
	}
	d, err := s.fs.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return s.warnOrGone("%s: %s", p, errText(err))
	}
	defer d.Close()
	if s.cmd.PreserveTimes {
		if skip, err := s.sendRecord(timeRecord(fi)); skip || err != nil {
			return err
		}
	}
	if skip, err := s.sendRecord(&fileMsg{Dir: true, Mode: fi.Mode() & modeMask, Name: name}); skip || err != nil {
		return err
	}
	for {
		ents, err := d.ReadDir(readDirBatch)
		// Sorted within a batch: stable output for equal trees, at no
		// cost in memory.
		slices.SortFunc(ents, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
		for _, e := range ents {
			if isTemp(e.Name()) {
				continue
			}
			if err := s.source(path.Join(p, e.Name()), e.Name(), depth+1); err != nil {
				return err
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				if err := s.warnOrGone("%s: %s", p, errText(err)); err != nil {
					return err
				}
			}
			break
		}
		if len(ents) == 0 {
			break
		}
	}
	_, err = s.sendRecord(endDirMsg{})
	return err
}

type record interface{ appendTo([]byte) []byte }

// sendRecord sends a record and reads the answer. skip reports a
// warning: the peer refused this entry and the next one follows.
func (s *session) sendRecord(m record) (skip bool, err error) {
	var b [maxLine + 64]byte
	if _, err := s.w.Write(m.appendTo(b[:0])); err != nil {
		return true, errPeerGone
	}
	if err := s.response(); err != nil {
		if isFatal(err) {
			return true, err
		}
		return true, nil
	}
	return false, nil
}

// warnOrGone sends a warning; only a failed write is returned.
func (s *session) warnOrGone(format string, args ...any) error {
	if err := s.warn(format, args...); err != nil {
		return errPeerGone
	}
	return nil
}

func timeRecord(fi fs.FileInfo) *timeMsg {
	mt := fi.ModTime()
	at := atime(fi)
	sec := func(t time.Time) int64 { return max(t.Unix(), 0) }
	return &timeMsg{Mtime: sec(mt), Atime: sec(at)}
}

// visNewline encodes a name as strnvis(3) does with only VIS_NL, the
// form scp.c sends a name holding a newline in: printable ASCII, space
// and tab stay, a backslash is doubled, 0xA0 becomes octal "\240", and
// every other byte "\^X" (control), "\M-x" or "\M-^X" (high bit set).
func visNewline(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case ' ' <= c && c <= '~', c == '\t':
			b.WriteByte(c)
		case c == 0xa0:
			b.WriteString(`\240`)
		default:
			b.WriteByte('\\')
			if c&0x80 != 0 {
				c &= 0x7f
				b.WriteByte('M')
			}
			switch {
			case c == 0x7f:
				b.WriteString("^?")
			case c < ' ':
				b.WriteByte('^')
				b.WriteByte(c + '@')
			default:
				b.WriteByte('-')
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}
