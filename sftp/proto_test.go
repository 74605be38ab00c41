package sftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/vfs"
)

// message is what every request and reply struct implements.
type message interface {
	appendTo([]byte) []byte
	unmarshal([]byte) bool
}

func roundTripCases() []struct {
	name string
	in   message
	out  func() message
} {
	attrs := Attrs{Flags: AttrSize | AttrUIDGID | AttrPermissions | AttrACModTime | AttrExtended,
		Size: 1 << 40, UID: 1000, GID: 100, Permissions: 0o100644, ATime: 1, MTime: 2,
		Extended: []extensionPair{{"a@b", "c"}}}
	return []struct {
		name string
		in   message
		out  func() message
	}{
		{"init", &initMsg{Version: 3, Rest: []byte{}}, func() message { return new(initMsg) }},
		{"version", &versionMsg{Version: 3, Extensions: []extensionPair{{"x@y", "1"}, {"z", ""}}}, func() message { return new(versionMsg) }},
		{"open", &openReq{ID: 7, Path: "/a b", PFlags: fxfWrite | fxfCreat, Attrs: attrs}, func() message { return new(openReq) }},
		{"close", &handleReq{Type: fxpClose, ID: 1, Handle: []byte{0, 0, 0, 1}}, func() message { return new(handleReq) }},
		{"fstat", &handleReq{Type: fxpFstat, ID: 1, Handle: []byte{0, 0, 0, 1}}, func() message { return new(handleReq) }},
		{"readdir", &handleReq{Type: fxpReaddir, ID: 1, Handle: []byte{0, 0, 0, 1}}, func() message { return new(handleReq) }},
		{"read", &readReq{ID: 9, Handle: []byte("h"), Offset: 1 << 33, Length: 32768}, func() message { return new(readReq) }},
		{"write", &writeReq{ID: 9, Handle: []byte("h"), Offset: 5, Data: []byte("data")}, func() message { return new(writeReq) }},
		{"lstat", &pathReq{Type: fxpLstat, ID: 2, Path: "/x"}, func() message { return new(pathReq) }},
		{"stat", &pathReq{Type: fxpStat, ID: 2, Path: "/x"}, func() message { return new(pathReq) }},
		{"opendir", &pathReq{Type: fxpOpendir, ID: 2, Path: "/x"}, func() message { return new(pathReq) }},
		{"remove", &pathReq{Type: fxpRemove, ID: 2, Path: "/x"}, func() message { return new(pathReq) }},
		{"rmdir", &pathReq{Type: fxpRmdir, ID: 2, Path: "/x"}, func() message { return new(pathReq) }},
		{"realpath", &pathReq{Type: fxpRealpath, ID: 2, Path: "."}, func() message { return new(pathReq) }},
		{"readlink", &pathReq{Type: fxpReadlink, ID: 2, Path: "/l"}, func() message { return new(pathReq) }},
		{"setstat", &setstatReq{ID: 3, Path: "/x", Attrs: Attrs{Flags: AttrPermissions, Permissions: 0o600}}, func() message { return new(setstatReq) }},
		{"fsetstat", &fsetstatReq{ID: 3, Handle: []byte{1, 2, 3, 4}, Attrs: Attrs{Flags: AttrSize, Size: 3}}, func() message { return new(fsetstatReq) }},
		{"mkdir", &mkdirReq{ID: 4, Path: "/d", Attrs: Attrs{}}, func() message { return new(mkdirReq) }},
		{"rename", &twoPathReq{Type: fxpRename, ID: 5, First: "/a", Second: "/b"}, func() message { return new(twoPathReq) }},
		{"symlink", &twoPathReq{Type: fxpSymlink, ID: 5, First: "target", Second: "/link"}, func() message { return new(twoPathReq) }},
		{"extended", &extendedReq{ID: 6, Request: "limits@openssh.com", Data: []byte{}}, func() message { return new(extendedReq) }},
		{"status", &statusMsg{ID: 8, Code: StatusEOF, Message: "End of file"}, func() message { return new(statusMsg) }},
		{"handle", &handleMsg{ID: 8, Handle: []byte{0, 0, 0, 1}}, func() message { return new(handleMsg) }},
		{"data", &dataMsg{ID: 8, Data: []byte("abc")}, func() message { return new(dataMsg) }},
		{"name", &nameMsg{ID: 8, Entries: []nameEntry{{"a", "long a", Attrs{}}, {"b", "long b", attrs}}}, func() message { return new(nameMsg) }},
		{"attrs", &attrsMsg{ID: 8, Attrs: attrs}, func() message { return new(attrsMsg) }},
		{"extended reply", &extendedReplyMsg{ID: 8, Data: []byte{1, 2}}, func() message { return new(extendedReplyMsg) }},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.in.appendTo(nil)
			got := tc.out()
			if !got.unmarshal(b) {
				t.Fatalf("unmarshal(%x) failed", b)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.in)
			}
			if b2 := got.appendTo(nil); !bytes.Equal(b, b2) {
				t.Fatalf("re-marshal differs:\n%x\n%x", b, b2)
			}
		})
	}
}

func TestMessageStrict(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.in.appendTo(nil)
			switch tc.in.(type) {
			case *initMsg, *extendedReq, *extendedReplyMsg:
				// Extension data is opaque to the framing parser.
			case *writeReq:
				// Bytes after the data are ignored: TestWriteTrailingBytes.
			default:
				if tc.out().unmarshal(append(b[:len(b):len(b)], 0)) {
					t.Errorf("trailing byte accepted")
				}
			}
			for n := 0; n < len(b); n++ {
				if _, ok := tc.in.(*extendedReplyMsg); ok && n >= 5 {
					break // reply data is opaque
				}
				if _, ok := tc.in.(*extendedReq); ok && n >= len(b)-len(tc.in.(*extendedReq).Data) && n > 0 {
					break
				}
				if _, ok := tc.in.(*initMsg); ok && n >= 5 {
					break
				}
				if _, ok := tc.in.(*versionMsg); ok && n >= 5 {
					break // fewer extension pairs is still a valid VERSION
				}
				if tc.out().unmarshal(b[:n]) {
					t.Errorf("truncated to %d bytes accepted", n)
				}
			}
			wrong := append([]byte{}, b...)
			wrong[0] = 250
			if tc.out().unmarshal(wrong) {
				t.Errorf("wrong type byte accepted")
			}
		})
	}
}

func TestPathReqRejectsOtherTypes(t *testing.T) {
	b := (&pathReq{Type: fxpOpen, ID: 1, Path: "/"}).appendTo(nil)
	if new(pathReq).unmarshal(b) {
		t.Fatal("pathReq accepted an OPEN type byte")
	}
	b = (&handleReq{Type: fxpRead, ID: 1, Handle: []byte("h")}).appendTo(nil)
	if new(handleReq).unmarshal(b) {
		t.Fatal("handleReq accepted a READ type byte")
	}
}

func TestAttrsEncoding(t *testing.T) {
	cases := []struct {
		a    Attrs
		want string
	}{
		{Attrs{}, "00000000"},
		{Attrs{Flags: AttrSize, Size: 0x0102030405060708}, "00000001" + "0102030405060708"},
		{Attrs{Flags: AttrUIDGID, UID: 1000, GID: 100}, "00000002" + "000003e8" + "00000064"},
		{Attrs{Flags: AttrPermissions, Permissions: 0o100644}, "00000004" + "000081a4"},
		{Attrs{Flags: AttrACModTime, ATime: 1, MTime: 2}, "00000008" + "00000001" + "00000002"},
		{Attrs{Flags: AttrExtended, Extended: []extensionPair{{"n", "d"}}}, "80000000" + "00000001" + "000000016e" + "0000000164"},
		{Attrs{Flags: AttrSize | AttrPermissions, Size: 5, Permissions: 0o40755}, "00000005" + "0000000000000005" + "000041ed"},
	}
	for _, tc := range cases {
		got := fmt.Sprintf("%x", tc.a.appendTo(nil))
		if got != tc.want {
			t.Errorf("%+v encodes as %s, want %s", tc.a, got, tc.want)
		}
		var back Attrs
		if !back.unmarshal(tc.a.appendTo(nil)) || !reflect.DeepEqual(back, tc.a) {
			t.Errorf("decode(%s) = %+v", got, back)
		}
	}
	bad := [][]byte{
		{0, 0, 0},                         // short flags
		{0, 0, 0, 1, 0},                   // short size
		{0, 0, 0, 0x10},                   // unknown flag (v4 bits)
		{0x80, 0, 0, 0, 0, 0, 0, 1},       // extended count with no pairs
		{0x80, 0, 0, 0, 0xff, 0xff, 0, 0}, // extended count over the bound
		{0, 0, 0, 0, 1},                   // trailing byte
	}
	for _, b := range bad {
		var a Attrs
		if a.unmarshal(b) {
			t.Errorf("Attrs.unmarshal(%x) accepted", b)
		}
	}
}

func TestStrmode(t *testing.T) {
	for mode, want := range map[uint32]string{
		0o100644: "-rw-r--r-- ",
		0o040755: "drwxr-xr-x ",
		0o120777: "lrwxrwxrwx ",
		0o104755: "-rwsr-xr-x ",
		0o102644: "-rw-r-Sr-- ",
		0o041777: "drwxrwxrwt ",
		0o041776: "drwxrwxrwT ",
		0o010600: "prw------- ",
		0o140755: "srwxr-xr-x ",
		0o020620: "crw--w---- ",
		0o060660: "brw-rw---- ",
	} {
		if got := string(strmode(mode, nil)); got != want {
			t.Errorf("strmode(%o) = %q, want %q", mode, got, want)
		}
	}
}

func TestLongName(t *testing.T) {
	loc := time.FixedZone("X", 0)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, loc)
	a := &Attrs{Permissions: 0o100644, Size: 1234, MTime: uint32(time.Date(2026, 11, 3, 9, 5, 0, 0, loc).Unix())}
	cases := []struct {
		a            *Attrs
		nlink        uint64
		owner, group string
		want         string
	}{
		{a, 1, "alice", "staff", "-rw-r--r--    1 alice    staff        1234 Nov  3 09:05 name"},
		{&Attrs{Permissions: 0o40755, Size: 4096, MTime: uint32(time.Date(2024, 1, 15, 0, 0, 0, 0, loc).Unix())}, 12,
			"verylongusername", "g", "drwxr-xr-x   12 verylongusername g            4096 Jan 15  2024 name"},
		// In the future: the year form, as OpenSSH.
		{&Attrs{Permissions: 0o100600, Size: 123456789, MTime: uint32(now.Add(time.Hour).Unix())}, 1000, "1001", "1001",
			"-rw-------  1000 1001     1001     123456789 Nov 24  2026 name"},
	}
	for _, tc := range cases {
		if got := longName("name", tc.a, tc.nlink, tc.owner, tc.group, now); got != tc.want {
			t.Errorf("longName =\n%q\nwant\n%q", got, tc.want)
		}
	}
}

func TestStatusFromError(t *testing.T) {
	cases := []struct {
		err  error
		code uint32
		msg  string
	}{
		{nil, StatusOK, "Success"},
		{io.EOF, StatusEOF, "End of file"},
		{fs.ErrNotExist, StatusNoSuchFile, "No such file"},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, StatusNoSuchFile, "No such file"},
		{syscall.ENOTDIR, StatusNoSuchFile, "No such file"},
		{syscall.ELOOP, StatusNoSuchFile, "No such file"},
		{syscall.EACCES, StatusPermissionDenied, "Permission denied"},
		{syscall.EPERM, StatusPermissionDenied, "Permission denied"},
		{&fs.PathError{Op: "open", Path: "/x", Err: vfs.ErrEscape}, StatusPermissionDenied, "Permission denied"},
		{syscall.EINVAL, StatusBadMessage, "Bad message"},
		{syscall.ENAMETOOLONG, StatusBadMessage, "Bad message"},
		{syscall.ENOSYS, StatusOpUnsupported, "Operation unsupported"},
		{syscall.EEXIST, StatusFailure, "Failure"},
		{os.ErrExist, StatusFailure, "Failure"},
		{syscall.ENOTEMPTY, StatusFailure, "Failure"},
		{syscall.ENOSPC, StatusFailure, "no space left on device"},
		{errQuota, StatusFailure, "quota exceeded"},
		{errors.New("other"), StatusFailure, "Failure"},
	}
	for _, tc := range cases {
		code, msg := statusFromError(tc.err)
		if code != tc.code || msg != tc.msg {
			t.Errorf("statusFromError(%v) = %d %q, want %d %q", tc.err, code, msg, tc.code, tc.msg)
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	t.Run("request before INIT ends the session", func(t *testing.T) {
		ts := startServer(t, nil)
		rc := &rawClient{t: t, ts: ts}
		go rc.send(&pathReq{Type: fxpStat, ID: 1, Path: "/"})
		if err := <-ts.done; err == nil {
			t.Fatal("Serve returned nil")
		}
		ts.done <- nil
	})
	t.Run("oversized packet ends the session", func(t *testing.T) {
		ts := startServer(t, nil)
		rc := ts.raw(t)
		// Only the length: the session ends on it, before reading on (an
		// io.Pipe writer of more bytes would see the pipe closed).
		go rc.sendRaw([]byte{0, 4, 0, 1})
		if err := <-ts.done; !errors.Is(err, errPacketTooLong) {
			t.Fatalf("Serve = %v", err)
		}
		ts.done <- nil
	})
	t.Run("malformed request gets BAD_MESSAGE", func(t *testing.T) {
		ts := startServer(t, nil)
		rc := ts.raw(t)
		b := (&pathReq{Type: fxpStat, ID: 42, Path: "/"}).appendTo([]byte{0, 0, 0, 0})
		b = append(b, 0xff) // trailing garbage
		b[3] = byte(len(b) - 4)
		rc.sendRaw(b)
		s := rc.status()
		if s.ID != 42 || s.Code != StatusBadMessage {
			t.Fatalf("status %+v", s)
		}
		// The session goes on.
		rc.send(&pathReq{Type: fxpStat, ID: 43, Path: "/"})
		var a attrsMsg
		if p := rc.recv(); !a.unmarshal(p) || a.ID != 43 {
			t.Fatalf("STAT after bad message: %x", p)
		}
	})
	t.Run("unknown type gets OP_UNSUPPORTED", func(t *testing.T) {
		ts := startServer(t, nil)
		rc := ts.raw(t)
		rc.sendRaw([]byte{0, 0, 0, 5, 99, 0, 0, 0, 7})
		if s := rc.status(); s.ID != 7 || s.Code != StatusOpUnsupported || s.Message != "Operation unsupported" {
			t.Fatalf("status %+v", s)
		}
	})
	t.Run("bad handle", func(t *testing.T) {
		ts := startServer(t, nil)
		rc := ts.raw(t)
		rc.send(&readReq{ID: 1, Handle: []byte("nope"), Offset: 0, Length: 10})
		rc.expectStatus(StatusFailure)
		// As sftp-server, whose close(2) of no descriptor fails EBADF.
		rc.send(&handleReq{Type: fxpClose, ID: 2, Handle: []byte("nope")})
		rc.expectStatus(StatusNoSuchFile)
	})
	t.Run("read at EOF and directory end", func(t *testing.T) {
		ts := startServer(t, nil)
		ts.write(t, "f", "abc")
		rc := ts.raw(t)
		rc.send(&openReq{ID: 1, Path: "f", PFlags: fxfRead})
		h := rc.handle()
		rc.send(&readReq{ID: 2, Handle: h, Offset: 1, Length: 100})
		var d dataMsg
		if p := rc.recv(); !d.unmarshal(p) || string(d.Data) != "bc" {
			t.Fatalf("READ = %x", p)
		}
		rc.send(&readReq{ID: 3, Handle: h, Offset: 3, Length: 100})
		if s := rc.status(); s.Code != StatusEOF || s.Message != "End of file" {
			t.Fatalf("READ at EOF = %+v", s)
		}
		rc.send(&pathReq{Type: fxpOpendir, ID: 4, Path: "/"})
		dh := rc.handle()
		rc.send(&handleReq{Type: fxpReaddir, ID: 5, Handle: dh})
		var n nameMsg
		if p := rc.recv(); !n.unmarshal(p) || len(n.Entries) != 3 || n.Entries[0].Name != "." || n.Entries[1].Name != ".." || n.Entries[2].Name != "f" {
			t.Fatalf("READDIR = %+v", n)
		}
		rc.send(&handleReq{Type: fxpReaddir, ID: 6, Handle: dh})
		rc.expectStatus(StatusEOF)
		rc.send(&pathReq{Type: fxpOpendir, ID: 7, Path: "/f"})
		rc.expectStatus(StatusNoSuchFile) // ENOTDIR, as OpenSSH
	})
	t.Run("handle limit", func(t *testing.T) {
		ts := startServer(t, &Options{MaxHandles: 2})
		ts.write(t, "f", "abc")
		rc := ts.raw(t)
		for i := 0; i < 2; i++ {
			rc.send(&openReq{ID: rc.nextID(), Path: "f", PFlags: fxfRead})
			rc.handle()
		}
		rc.send(&openReq{ID: rc.nextID(), Path: "f", PFlags: fxfRead})
		rc.expectStatus(StatusFailure)
	})
	t.Run("symlink argument order", func(t *testing.T) {
		ts := startServer(t, nil)
		rc := ts.raw(t)
		rc.send(&twoPathReq{Type: fxpSymlink, ID: 1, First: "target", Second: "/link"})
		rc.expectStatus(StatusOK)
		if s, err := os.Readlink(ts.root + "/link"); err != nil || s != "target" {
			t.Fatalf("link = %q %v", s, err)
		}
	})
}

// TestWriteTrailingBytes: a WRITE's bytes after its data are ignored, as
// OpenSSH's sftp-server does. pkg/sftp before v1.13.6 (rclone 1.60 among
// others) sends a short read's data followed by the rest of its chunk
// buffer, and every upload of a file larger than a chunk failed with
// BAD_MESSAGE. A declared length longer than the packet is still refused.
func TestWriteTrailingBytes(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	send := func(off uint64, declared uint32, payload string) {
		b := (&writeReq{ID: rc.nextID(), Handle: h, Offset: off}).appendTo([]byte{0, 0, 0, 0})
		binary.BigEndian.PutUint32(b[len(b)-4:], declared)
		b = append(b, payload...)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		rc.sendRaw(b)
	}
	send(0, 3, "abcGARBAGE")
	rc.expectStatus(StatusOK)
	send(3, 2, "de")
	rc.expectStatus(StatusOK)
	send(5, 9, "short")
	rc.expectStatus(StatusBadMessage)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "abcde" {
		t.Fatalf("file holds %q, want %q", got, "abcde")
	}
}
