package sftp

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// openSSHRequestNames is what OpenSSH's `sftp-server -Q requests` prints
// (sftp-server.c handlers[] then extended_handlers[]; 9.2 and later).
var openSSHRequestNames = []string{
	"open", "close", "read", "write", "lstat", "fstat", "setstat", "fsetstat",
	"opendir", "readdir", "remove", "mkdir", "rmdir", "realpath", "stat",
	"rename", "readlink", "symlink",
	"posix-rename", "statvfs", "fstatvfs", "hardlink", "fsync", "lsetstat",
	"limits", "expand-path", "copy-data", "home-directory", "users-groups-by-id",
}

func TestRequestNames(t *testing.T) {
	if got := RequestNames(); !slices.Equal(got, openSSHRequestNames) {
		t.Fatalf("RequestNames() =\n%q\nwant OpenSSH's\n%q", got, openSSHRequestNames)
	}
}

// TestRequestKindsCoverServer checks the name of every request maps onto
// the packet the server handles under it, and that every extension the
// server advertises can be refused by name.
func TestRequestKindsCoverServer(t *testing.T) {
	wantType := map[string]byte{
		"open": fxpOpen, "close": fxpClose, "read": fxpRead, "write": fxpWrite,
		"lstat": fxpLstat, "fstat": fxpFstat, "setstat": fxpSetstat, "fsetstat": fxpFsetstat,
		"opendir": fxpOpendir, "readdir": fxpReaddir, "remove": fxpRemove, "mkdir": fxpMkdir,
		"rmdir": fxpRmdir, "realpath": fxpRealpath, "stat": fxpStat, "rename": fxpRename,
		"readlink": fxpReadlink, "symlink": fxpSymlink,
	}
	wantExt := map[string]string{
		"posix-rename": "posix-rename@openssh.com", "statvfs": "statvfs@openssh.com",
		"fstatvfs": "fstatvfs@openssh.com", "hardlink": "hardlink@openssh.com",
		"fsync": "fsync@openssh.com", "lsetstat": "lsetstat@openssh.com",
		"limits": "limits@openssh.com", "expand-path": "expand-path@openssh.com",
		"copy-data": "copy-data", "home-directory": "home-directory",
		"users-groups-by-id": "users-groups-by-id@openssh.com",
	}
	if len(wantType)+len(wantExt) != len(requestKinds) {
		t.Fatalf("%d request kinds, want %d", len(requestKinds), len(wantType)+len(wantExt))
	}
	for i, k := range requestKinds {
		var p []byte
		if ext, ok := wantExt[k.name]; ok {
			if k.typ != fxpExtended || k.ext != ext {
				t.Errorf("%s: type %d extension %q, want EXTENDED %q", k.name, k.typ, k.ext, ext)
			}
			p = (&extendedReq{ID: 7, Request: ext}).appendTo(nil)
		} else {
			typ, ok := wantType[k.name]
			if !ok || k.typ != typ || k.ext != "" {
				t.Errorf("%s: type %d extension %q, want type %d", k.name, k.typ, k.ext, typ)
			}
			p = []byte{typ, 0, 0, 0, 7}
		}
		if got := requestIndex(p); got != i {
			t.Errorf("%s: requestIndex(%x) = %d, want %d", k.name, p, got, i)
		}
	}
	for _, p := range [][]byte{
		{fxpInit, 0, 0, 0, 3},
		{99, 0, 0, 0, 1},
		(&extendedReq{ID: 1, Request: "hardlink"}).appendTo(nil),                // OpenSSH's short name is not the wire name
		(&extendedReq{ID: 1, Request: "posix-rename@openssh.co"}).appendTo(nil), // a prefix
		(&extendedReq{ID: 1, Request: "check-file"}).appendTo(nil),
		{fxpExtended, 0, 0, 0, 1, 0, 0, 0, 9, 'c', 'o'}, // name longer than the packet
		{fxpExtended, 0, 0, 0, 1, 0, 0},
	} {
		if got := requestIndex(p); got != -1 {
			t.Errorf("requestIndex(%x) = %d (%s), want -1", p, got, requestKinds[got].name)
		}
	}

	// Every extension in VERSION has a name, so a list can refuse it.
	ts := startServer(t, nil)
	rc := &rawClient{t: t, ts: ts}
	rc.send(&initMsg{Version: 3})
	var v versionMsg
	if p := rc.recv(); !v.unmarshal(p) {
		t.Fatalf("bad VERSION %x", p)
	}
	var advertised []string
	for _, e := range v.Extensions {
		advertised = append(advertised, e.Name)
	}
	var known []string
	for _, k := range requestKinds {
		if k.typ == fxpExtended {
			known = append(known, k.ext)
		}
	}
	if !slices.Equal(advertised, known) {
		t.Fatalf("VERSION advertises %q, request kinds name %q", advertised, known)
	}
}

func TestRequestFilterUnknownNames(t *testing.T) {
	for _, name := range []string{"nosuch", "OPEN", " open", "open ", "hardlink@openssh.com", "posix_rename", "init", "extended"} {
		var f RequestFilter
		err := f.Deny("close", name)
		if err == nil || err.Error() != fmt.Sprintf("sftp: unknown request %q", name) {
			t.Errorf("Deny(close, %q) = %v, want unknown request", name, err)
		}
		if err := f.Allow("open", name); err == nil {
			t.Errorf("Allow(open, %q) accepted", name)
		}
		// A failed call adds nothing, and a failed Allow does not make an
		// allowed list binding.
		if f != (RequestFilter{}) {
			t.Errorf("after failed Deny/Allow with %q: filter %+v, want the zero value", name, f)
		}
	}
}

func TestRequestFilterLists(t *testing.T) {
	all := RequestNames()
	tests := []struct {
		name           string
		deny, allow    []string
		allowList      bool // call Allow even with no names
		refused        []string
		permittedCheck []string
	}{
		{name: "zero value", permittedCheck: all},
		{name: "deny one", deny: []string{"write"}, refused: []string{"write"}},
		{name: "deny extension", deny: []string{"posix-rename", "copy-data"}, refused: []string{"posix-rename", "copy-data"}},
		{name: "allow some", allow: []string{"realpath", "stat", "open", "read", "close"}, allowList: true,
			refused: withoutNames(all, "realpath", "stat", "open", "read", "close")},
		{name: "empty allow list refuses everything", allowList: true, refused: all},
		{name: "denied wins over allowed", deny: []string{"read", "limits"}, allow: all, allowList: true, refused: []string{"read", "limits"}},
		{name: "allowed and denied", deny: []string{"open"}, allow: []string{"open", "close", "stat"}, allowList: true,
			refused: withoutNames(all, "close", "stat")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f RequestFilter
			if err := f.Deny(tc.deny...); err != nil {
				t.Fatal(err)
			}
			if tc.allowList {
				if err := f.Allow(tc.allow...); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := f.restricts(), len(tc.refused) > 0; got != want {
				t.Errorf("restricts() = %v, want %v", got, want)
			}
			for i, k := range requestKinds {
				want := !slices.Contains(tc.refused, k.name)
				if got := f.permits(i); got != want {
					t.Errorf("permits(%s) = %v, want %v", k.name, got, want)
				}
			}
		})
	}
}

func withoutNames(names []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(drop, n) })
}

// refusalCase sends one request of a kind, after whatever requests it
// needs first (opening handles), and returns the request's id. The request
// succeeds when served and, where the request can, changes the tree.
type refusalCase struct {
	name string
	send func(rc *rawClient) uint32
}

// refusalTree is what refusalCase requests work on: a file, a second file
// to copy into, a directory and a symbolic link.
func refusalTree(t *testing.T, ts *testServer) {
	ts.write(t, "f", "original contents")
	ts.write(t, "f2", "second file")
	if err := os.Mkdir(filepath.Join(ts.root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(ts.root, "l")); err != nil {
		t.Fatal(err)
	}
}

func refusalCases() []refusalCase {
	open := func(rc *rawClient, path string, pflags uint32) []byte {
		rc.send(&openReq{ID: rc.nextID(), Path: path, PFlags: pflags})
		return rc.handle()
	}
	ext := func(rc *rawClient, name string, data []byte) uint32 {
		id := rc.nextID()
		rc.send(&extendedReq{ID: id, Request: name, Data: data})
		return id
	}
	path := func(typ byte) func(rc *rawClient) uint32 {
		return func(rc *rawClient) uint32 {
			id := rc.nextID()
			p := "/f"
			switch typ {
			case fxpOpendir, fxpRmdir:
				p = "/d"
			case fxpReadlink:
				p = "/l"
			case fxpRealpath:
				p = "."
			}
			rc.send(&pathReq{Type: typ, ID: id, Path: p})
			return id
		}
	}
	handleOp := func(typ byte, pflags uint32) func(rc *rawClient) uint32 {
		return func(rc *rawClient) uint32 {
			var h []byte
			if typ == fxpReaddir {
				rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: "/d"})
				h = rc.handle()
			} else {
				h = open(rc, "/f", pflags)
			}
			id := rc.nextID()
			rc.send(&handleReq{Type: typ, ID: id, Handle: h})
			return id
		}
	}
	chmod := Attrs{Flags: AttrPermissions, Permissions: 0o600}
	return []refusalCase{
		{"open", func(rc *rawClient) uint32 {
			id := rc.nextID()
			rc.send(&openReq{ID: id, Path: "/new", PFlags: fxfWrite | fxfCreat | fxfTrunc})
			return id
		}},
		{"close", func(rc *rawClient) uint32 {
			// An atomic upload is committed by CLOSE alone.
			h := open(rc, "/f", fxfWrite|fxfCreat|fxfTrunc)
			rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: []byte("replaced")})
			rc.expectStatus(StatusOK)
			id := rc.nextID()
			rc.send(&handleReq{Type: fxpClose, ID: id, Handle: h})
			return id
		}},
		{"read", func(rc *rawClient) uint32 {
			h := open(rc, "/f", fxfRead)
			id := rc.nextID()
			rc.send(&readReq{ID: id, Handle: h, Length: 100})
			return id
		}},
		{"write", func(rc *rawClient) uint32 {
			h := open(rc, "/f", fxfWrite)
			id := rc.nextID()
			rc.send(&writeReq{ID: id, Handle: h, Data: []byte("XX")})
			return id
		}},
		{"lstat", path(fxpLstat)},
		{"fstat", handleOp(fxpFstat, fxfRead)},
		{"setstat", func(rc *rawClient) uint32 {
			id := rc.nextID()
			rc.send(&setstatReq{ID: id, Path: "/f", Attrs: chmod})
			return id
		}},
		{"fsetstat", func(rc *rawClient) uint32 {
			h := open(rc, "/f", fxfWrite)
			id := rc.nextID()
			rc.send(&fsetstatReq{ID: id, Handle: h, Attrs: Attrs{Flags: AttrPermissions | AttrSize, Permissions: 0o600, Size: 3}})
			return id
		}},
		{"opendir", path(fxpOpendir)},
		{"readdir", handleOp(fxpReaddir, 0)},
		{"remove", path(fxpRemove)},
		{"mkdir", func(rc *rawClient) uint32 {
			id := rc.nextID()
			rc.send(&mkdirReq{ID: id, Path: "/newdir"})
			return id
		}},
		{"rmdir", path(fxpRmdir)},
		{"realpath", path(fxpRealpath)},
		{"stat", path(fxpStat)},
		{"rename", func(rc *rawClient) uint32 {
			id := rc.nextID()
			rc.send(&twoPathReq{Type: fxpRename, ID: id, First: "/f", Second: "/g"})
			return id
		}},
		{"readlink", path(fxpReadlink)},
		{"symlink", func(rc *rawClient) uint32 {
			id := rc.nextID()
			rc.send(&twoPathReq{Type: fxpSymlink, ID: id, First: "/f", Second: "/l2"})
			return id
		}},
		{"posix-rename", func(rc *rawClient) uint32 {
			return ext(rc, "posix-rename@openssh.com", appendStr(appendStr(nil, "/f"), "/f2"))
		}},
		{"statvfs", func(rc *rawClient) uint32 { return ext(rc, "statvfs@openssh.com", appendStr(nil, "/")) }},
		{"fstatvfs", func(rc *rawClient) uint32 {
			h := open(rc, "/f", fxfRead)
			return ext(rc, "fstatvfs@openssh.com", appendStr(nil, string(h)))
		}},
		{"hardlink", func(rc *rawClient) uint32 {
			return ext(rc, "hardlink@openssh.com", appendStr(appendStr(nil, "/f"), "/h"))
		}},
		{"fsync", func(rc *rawClient) uint32 {
			h := open(rc, "/f", fxfWrite)
			return ext(rc, "fsync@openssh.com", appendStr(nil, string(h)))
		}},
		{"lsetstat", func(rc *rawClient) uint32 {
			return ext(rc, "lsetstat@openssh.com", chmod.appendTo(appendStr(nil, "/f")))
		}},
		{"limits", func(rc *rawClient) uint32 { return ext(rc, "limits@openssh.com", nil) }},
		{"expand-path", func(rc *rawClient) uint32 { return ext(rc, "expand-path@openssh.com", appendStr(nil, "~/f")) }},
		{"copy-data", func(rc *rawClient) uint32 {
			r := open(rc, "/f", fxfRead)
			w := open(rc, "/f2", fxfWrite)
			var b []byte
			b = appendStr(b, string(r))
			b = binary.BigEndian.AppendUint64(b, 0) // read offset
			b = binary.BigEndian.AppendUint64(b, 0) // length: to EOF
			b = appendStr(b, string(w))
			b = binary.BigEndian.AppendUint64(b, 0) // write offset
			return ext(rc, "copy-data", b)
		}},
		{"home-directory", func(rc *rawClient) uint32 { return ext(rc, "home-directory", appendStr(nil, "")) }},
		{"users-groups-by-id", func(rc *rawClient) uint32 {
			return ext(rc, "users-groups-by-id@openssh.com", appendStr(appendStr(nil, "\x00\x00\x00\x00"), "\x00\x00\x00\x00"))
		}},
	}
}

// TestRefusedRequests runs one request of every kind under each way a
// list can refuse it: it must be answered PERMISSION_DENIED and leave the
// tree as it was. The same request served (no lists, or allowed) must
// succeed, so each case really exercises a working request.
func TestRefusedRequests(t *testing.T) {
	cases := refusalCases()
	var names []string
	for _, c := range cases {
		names = append(names, c.name)
	}
	if !slices.Equal(names, RequestNames()) {
		t.Fatalf("cases cover %q, want every request %q", names, RequestNames())
	}
	all := RequestNames()
	for _, c := range cases {
		lists := []struct {
			name        string
			deny, allow []string
			allowList   bool
			refused     bool
		}{
			{name: "no lists"},
			{name: "allowed", allow: all, allowList: true},
			{name: "denied", deny: []string{c.name}, refused: true},
			{name: "not allowed", allow: withoutNames(all, c.name), allowList: true, refused: true},
			{name: "allowed and denied", deny: []string{c.name}, allow: all, allowList: true, refused: true},
		}
		for _, l := range lists {
			t.Run(c.name+"/"+l.name, func(t *testing.T) {
				var opts Options
				if err := opts.Requests.Deny(l.deny...); err != nil {
					t.Fatal(err)
				}
				if l.allowList {
					if err := opts.Requests.Allow(l.allow...); err != nil {
						t.Fatal(err)
					}
				}
				ts := startServer(t, &opts)
				refusalTree(t, ts)
				before := snapshotTree(t, ts.root)
				rc := ts.raw(t)
				id := c.send(rc)
				p := rc.recv()
				var st statusMsg
				isStatus := st.unmarshal(p)
				if isStatus && st.ID != id {
					t.Fatalf("reply to id %d, want %d: %x", st.ID, id, p)
				}
				if !l.refused {
					if isStatus && st.Code != StatusOK {
						t.Fatalf("served %s: status %d %q, want success", c.name, st.Code, st.Message)
					}
					return
				}
				if !isStatus || st.Code != StatusPermissionDenied || st.Message != "Permission denied" {
					t.Fatalf("refused %s: reply %x, want STATUS PERMISSION_DENIED \"Permission denied\"", c.name, p)
				}
				// The session goes on after a refusal.
				rc.send(&pathReq{Type: fxpOpendir, ID: 999, Path: "/no/such"})
				if st := rc.status(); st.ID != 999 || (st.Code != StatusNoSuchFile && st.Code != StatusPermissionDenied) {
					t.Fatalf("request after the refusal: %+v", st)
				}
				if err := ts.wait(); err != nil {
					t.Fatalf("Serve: %v", err)
				}
				if after := snapshotTree(t, ts.root); !slices.Equal(before, after) {
					t.Fatalf("refused %s changed the tree:\nbefore %q\nafter  %q", c.name, before, after)
				}
			})
		}
	}
}

// snapshotTree describes every entry under root: name, type and
// permissions, and a file's size, modification time and contents or a
// link's target. Directory times are left out: an atomic upload's
// temporary file touches them.
func snapshotTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e += fmt.Sprintf(" %d %v %q", fi.Size(), fi.ModTime().UnixNano(), b)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusedWriteKeepsPreviousVersion: an upload whose WRITE was refused
// is a failed upload, so CLOSE keeps the file as it was instead of
// committing what was (not) written.
func TestRefusedWriteKeepsPreviousVersion(t *testing.T) {
	var opts Options
	if err := opts.Requests.Deny("write"); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, &opts)
	ts.write(t, "f", "original contents")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: []byte("new")})
	rc.expectStatus(StatusPermissionDenied)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	if st := rc.status(); st.Code != StatusFailure || st.Message != errUploadDiscarded.Error() {
		t.Fatalf("CLOSE after a refused WRITE: %d %q, want FAILURE %q", st.Code, st.Message, errUploadDiscarded)
	}
	if got := ts.read(t, "f"); got != "original contents" {
		t.Fatalf("f = %q, want the previous version", got)
	}
	ents, err := os.ReadDir(ts.root)
	if err != nil || len(ents) != 1 {
		t.Fatalf("root holds %v (%v), want only f", ents, err)
	}
}

// TestRefusedDataRequestsInOrder: refused READs answer in request order
// among pipelined requests, as served ones do.
func TestRefusedDataRequestsInOrder(t *testing.T) {
	var opts Options
	if err := opts.Requests.Deny("read"); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, &opts)
	ts.write(t, "f", strings.Repeat("x", 1<<20))
	rc := ts.raw(t)
	rc.send(&openReq{ID: 1, Path: "/f", PFlags: fxfRead | fxfWrite})
	h := rc.handle()
	var batch []byte
	for id := uint32(2); id < 40; id++ {
		var m appender = &readReq{ID: id, Handle: h, Length: 4096}
		if id%2 == 0 {
			m = &writeReq{ID: id, Handle: h, Offset: uint64(id) * 8192, Data: make([]byte, 8192)}
		}
		b := m.appendTo([]byte{0, 0, 0, 0})
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		batch = append(batch, b...)
	}
	rc.sendRaw(batch)
	rc.send(&pathReq{Type: fxpRealpath, ID: 40, Path: "."})
	for id := uint32(2); id < 40; id++ {
		st := rc.status()
		want := uint32(StatusOK)
		if id%2 == 1 {
			want = StatusPermissionDenied
		}
		if st.ID != id || st.Code != want {
			t.Fatalf("reply %d: id %d status %d, want id %d status %d", id-2, st.ID, st.Code, id, want)
		}
	}
	var n nameMsg
	if p := rc.recv(); !n.unmarshal(p) || n.ID != 40 {
		t.Fatalf("REALPATH reply %x", p)
	}
}

// TestRefusalEdges: a refused request is refused whatever its body (as
// OpenSSH decides before parsing); requests the lists do not name keep
// their own answers; INIT is never refused.
func TestRefusalEdges(t *testing.T) {
	var opts Options
	if err := opts.Requests.Allow(); err != nil { // nothing allowed
		t.Fatal(err)
	}
	ts := startServer(t, &opts)
	rc := &rawClient{t: t, ts: ts}
	rc.send(&initMsg{Version: 3})
	var v versionMsg
	if p := rc.recv(); !v.unmarshal(p) || v.Version != 3 || len(v.Extensions) != 0 {
		t.Fatalf("VERSION with nothing allowed: %x, want version 3 and no extensions", p)
	}
	for _, tc := range []struct {
		name string
		pkt  []byte // type onwards
		want uint32
	}{
		{"malformed STAT", []byte{fxpStat, 0, 0, 0, 1, 0, 0, 0, 99}, StatusPermissionDenied},
		{"malformed READ", []byte{fxpRead, 0, 0, 0, 2}, StatusPermissionDenied},
		{"malformed known extension", (&extendedReq{ID: 3, Request: "limits@openssh.com", Data: []byte("junk")}).appendTo(nil), StatusPermissionDenied},
		{"unknown extension", (&extendedReq{ID: 4, Request: "check-file"}).appendTo(nil), StatusOpUnsupported},
		{"unreadable extension name", []byte{fxpExtended, 0, 0, 0, 5, 0, 0, 1, 0, 'x'}, StatusBadMessage},
		{"unknown type", []byte{99, 0, 0, 0, 6}, StatusOpUnsupported},
	} {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(tc.pkt)))
		rc.sendRaw(append(b, tc.pkt...))
		st := rc.status()
		if id := binary.BigEndian.Uint32(tc.pkt[1:5]); st.ID != id || st.Code != tc.want {
			t.Errorf("%s: id %d status %d, want id %d status %d", tc.name, st.ID, st.Code, id, tc.want)
		}
	}

	// Only the refused extensions leave VERSION, in their order.
	opts = Options{}
	if err := opts.Requests.Deny("hardlink", "limits", "open"); err != nil {
		t.Fatal(err)
	}
	ts = startServer(t, &opts)
	rc = &rawClient{t: t, ts: ts}
	rc.send(&initMsg{Version: 3})
	if p := rc.recv(); !v.unmarshal(p) {
		t.Fatalf("bad VERSION %x", p)
	}
	var got []string
	for _, e := range v.Extensions {
		got = append(got, e.Name)
	}
	want := []string{"posix-rename@openssh.com", "statvfs@openssh.com", "fstatvfs@openssh.com",
		"fsync@openssh.com", "lsetstat@openssh.com", "expand-path@openssh.com", "copy-data",
		"home-directory", "users-groups-by-id@openssh.com"}
	if !slices.Equal(got, want) {
		t.Fatalf("VERSION advertises %q, want %q", got, want)
	}
}
