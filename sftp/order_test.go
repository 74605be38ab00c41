package sftp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestConflictingRequestsKeepOrder sends overlapping WRITEs and a READ of
// the same range without waiting: the pipeline must apply them in order.
func TestConflictingRequestsKeepOrder(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead | fxfWrite | fxfCreat})
	h := rc.handle()
	const rounds = 200
	go func() {
		for i := 0; i < rounds; i++ {
			rc.send(&writeReq{ID: uint32(1000 + i), Handle: h, Offset: 0, Data: []byte(fmt.Sprintf("%08d", i))})
			rc.send(&readReq{ID: uint32(5000 + i), Handle: h, Offset: 0, Length: 8})
		}
	}()
	expectReadsSeeWrites(t, rc, rounds)
	rc.send(&handleReq{Type: fxpClose, ID: 1, Handle: h})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != fmt.Sprintf("%08d", rounds-1) {
		t.Fatalf("final content %q", got)
	}
}

// TestConflictingRequestsKeepOrderAcrossHandles is the same through two
// handles on one file, one writing and one reading, as a client that
// keeps a file open twice (sshfs) does: sftp-server, one request at a
// time, answers each READ with the WRITE before it.
func TestConflictingRequestsKeepOrderAcrossHandles(t *testing.T) {
	ts := startServer(t, &Options{DirectUploads: true})
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	wh := rc.handle()
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead})
	rh := rc.handle()
	const rounds = 200
	// All in one write, so the server sees them queued and runs them on
	// its workers rather than one by one as they arrive.
	var batch []byte
	frame := func(m appender) {
		b := m.appendTo([]byte{0, 0, 0, 0})
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		batch = append(batch, b...)
	}
	for i := 0; i < rounds; i++ {
		frame(&writeReq{ID: uint32(1000 + i), Handle: wh, Offset: 0, Data: []byte(fmt.Sprintf("%08d", i))})
		frame(&readReq{ID: uint32(5000 + i), Handle: rh, Offset: 0, Length: 8})
	}
	go ts.cw.Write(batch) // a failed test closes the pipe; nothing to report then
	expectReadsSeeWrites(t, rc, rounds)
}

// TestReadsAndWritesBeyondEndKeepOrder: a WRITE past the end of the file
// changes what a READ of a range it does not touch returns (EOF before
// it, a hole's zeros after it), so they keep their order as sftp-server,
// one request at a time, does.
func TestReadsAndWritesBeyondEndKeepOrder(t *testing.T) {
	ts := startServer(t, &Options{DirectUploads: true})
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead | fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	const rounds = 100
	var batch []byte
	frame := func(m appender) {
		b := m.appendTo([]byte{0, 0, 0, 0})
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		batch = append(batch, b...)
	}
	for i := 0; i < rounds; i++ {
		base := uint64(200 * i)
		// Before this round's WRITE the file ends at base-109 (or 0).
		frame(&readReq{ID: uint32(1000 + i), Handle: h, Offset: base + 50, Length: 10})
		frame(&writeReq{ID: uint32(3000 + i), Handle: h, Offset: base + 90, Data: []byte("w")})
		frame(&readReq{ID: uint32(5000 + i), Handle: h, Offset: base + 60, Length: 10})
	}
	go ts.cw.Write(batch) // a failed test closes the pipe; nothing to report then
	for n := 0; n < 3*rounds; n++ {
		p := rc.recv()
		id := binary.BigEndian.Uint32(p[1:5])
		switch {
		case id >= 5000:
			var d dataMsg
			if !d.unmarshal(p) || len(d.Data) != 10 {
				t.Fatalf("READ %d after a WRITE past it: %x, want 10 zero bytes of the hole", id, p)
			}
		case id >= 3000:
			var s statusMsg
			if !s.unmarshal(p) || s.Code != StatusOK {
				t.Fatalf("WRITE %d: %x", id, p)
			}
		default:
			var s statusMsg
			if !s.unmarshal(p) || s.Code != StatusEOF {
				t.Fatalf("READ %d past the end before a WRITE further on: %x, want EOF", id, p)
			}
		}
	}
}

// TestCloseWaitsForWrites pipelines many WRITEs then CLOSE: every byte
// must be in the file when CLOSE is answered.
func TestCloseWaitsForWrites(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send(&openReq{ID: 1, Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	chunk := bytes.Repeat([]byte("x"), 4096)
	const n = 300
	go func() {
		for i := 0; i < n; i++ {
			rc.send(&writeReq{ID: uint32(10 + i), Handle: h, Offset: uint64(i * len(chunk)), Data: chunk})
		}
		rc.send(&handleReq{Type: fxpClose, ID: 9999, Handle: h})
	}()
	for i := 0; i < n; i++ {
		if s := rc.status(); s.Code != StatusOK || s.ID == 9999 {
			t.Fatalf("reply %d: %+v", i, s)
		}
	}
	if s := rc.status(); s.ID != 9999 || s.Code != StatusOK {
		t.Fatalf("CLOSE reply %+v", s)
	}
	if fi, err := os.Stat(filepath.Join(ts.root, "f")); err != nil || fi.Size() != n*4096 {
		t.Fatalf("after CLOSE: %v %v", fi, err)
	}
	if len(ts.records) != 1 || ts.records[0].BytesWritten != n*4096 || ts.records[0].Result != "ok" || ts.records[0].Path != "/f" {
		t.Fatalf("transfer record %+v", ts.records)
	}
}

func TestReaddirBatches(t *testing.T) {
	ts := startServer(t, nil)
	const files = 250
	for i := 0; i < files; i++ {
		ts.write(t, fmt.Sprintf("d/f%03d", i), "")
	}
	rc := ts.raw(t)
	rc.send(&pathReq{Type: fxpOpendir, ID: 1, Path: "/d"})
	h := rc.handle()
	var names []string
	for i := 0; ; i++ {
		rc.send(&handleReq{Type: fxpReaddir, ID: uint32(2 + i), Handle: h})
		p := rc.recv()
		if p[0] == fxpStatus {
			var s statusMsg
			s.unmarshal(p)
			if s.Code != StatusEOF {
				t.Fatalf("READDIR status %+v", s)
			}
			break
		}
		var n nameMsg
		if !n.unmarshal(p) || len(n.Entries) > maxReaddirEntries || len(n.Entries) == 0 {
			t.Fatalf("READDIR batch of %d", len(n.Entries))
		}
		for _, e := range n.Entries {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)
	if len(names) != files+2 || names[0] != "." || names[1] != ".." || names[2] != "f000" {
		t.Fatalf("listed %d names: %v...", len(names), names[:3])
	}
}

func TestUmaskAndModes(t *testing.T) {
	ts := startServer(t, &Options{Umask: 0o027})
	rc := ts.raw(t)
	rc.send(&mkdirReq{ID: 1, Path: "/d", Attrs: Attrs{Flags: AttrPermissions, Permissions: 0o777}})
	rc.expectStatus(StatusOK)
	rc.send(&openReq{ID: 2, Path: "/f", PFlags: fxfWrite | fxfCreat, Attrs: Attrs{Flags: AttrPermissions, Permissions: 0o666}})
	h := rc.handle()
	rc.send(&handleReq{Type: fxpClose, ID: 3, Handle: h})
	rc.expectStatus(StatusOK)
	for name, want := range map[string]os.FileMode{"d": 0o750, "f": 0o640} {
		fi, err := os.Stat(filepath.Join(ts.root, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", name, fi.Mode(), err, want)
		}
	}
	// SETSTAT with times and a setgid bit, which is dropped (see
	// TestSetIDBitsRefused) while the rest applies.
	rc.send(&setstatReq{ID: 4, Path: "/d", Attrs: Attrs{Flags: AttrPermissions | AttrACModTime, Permissions: 0o2755, ATime: 1000, MTime: 2000}})
	rc.expectStatus(StatusOK)
	fi, _ := os.Stat(filepath.Join(ts.root, "d"))
	if fi.Mode()&os.ModeSetgid != 0 || fi.Mode().Perm() != 0o755 || fi.ModTime().Unix() != 2000 {
		t.Errorf("after SETSTAT: %v %v", fi.Mode(), fi.ModTime())
	}
}

func TestLsetstat(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "x")
	os.Symlink("f", filepath.Join(ts.root, "l"))
	rc := ts.raw(t)
	body := appendStr(nil, "/l")
	body = (&Attrs{Flags: AttrUIDGID, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}).appendTo(body)
	rc.send(&extendedReq{ID: 1, Request: "lsetstat@openssh.com", Data: body})
	rc.expectStatus(StatusOK)
	body = (&Attrs{Flags: AttrPermissions, Permissions: 0o600}).appendTo(appendStr(nil, "/l"))
	rc.send(&extendedReq{ID: 2, Request: "lsetstat@openssh.com", Data: body})
	rc.expectStatus(StatusOpUnsupported) // Linux cannot chmod a link
	if fi, _ := os.Stat(filepath.Join(ts.root, "f")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("lsetstat changed the target: %v", fi.Mode())
	}
}

// TestRepliesInRequestOrder: replies to pipelined READs and WRITEs come
// back in the order the requests were sent, although they run
// concurrently. OpenSSH's sftp client before 9.6 (scp's SFTP mode) counts
// only in-order acknowledgements and truncates the file at the first gap.
func TestRepliesInRequestOrder(t *testing.T) {
	ts := startServer(t, nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	ts.write(t, "src", string(data))
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/src", PFlags: fxfRead})
	src := rc.handle()
	rc.send(&openReq{ID: rc.nextID(), Path: "/dst", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	dst := rc.handle()
	const n = 256
	go func() {
		for i := 0; i < n; i++ {
			off := uint64(i%32) * 32 << 10
			// Reads of varying size and writes interleaved; a bad handle
			// in between is answered directly by the dispatcher.
			rc.send(&readReq{ID: uint32(10000 + 3*i), Handle: src, Offset: off, Length: uint32(1+i%7) << 12})
			rc.send(&writeReq{ID: uint32(10000 + 3*i + 1), Handle: dst, Offset: off, Data: data[off : off+4096]})
			rc.send(&readReq{ID: uint32(10000 + 3*i + 2), Handle: []byte("nope"), Offset: 0, Length: 10})
		}
	}()
	for want := uint32(10000); want < 10000+3*n; want++ {
		p := rc.recv()
		got := binary.BigEndian.Uint32(p[1:5])
		if got != want {
			t.Fatalf("reply for request %d arrived where %d was due", got, want)
		}
	}
}

// expectReadsSeeWrites reads the replies to rounds pairs of a WRITE (ID
// 1000+i, writing i as "%08d" at offset 0) and a READ of those 8 bytes
// (ID 5000+i), and fails unless each READ saw the WRITE sent before it.
func expectReadsSeeWrites(t *testing.T, rc *rawClient, rounds int) {
	t.Helper()
	for n := 0; n < 2*rounds; n++ {
		p := rc.recv()
		switch p[0] {
		case fxpStatus:
			var s statusMsg
			if !s.unmarshal(p) || s.Code != StatusOK {
				t.Fatalf("WRITE status %+v", s)
			}
		case fxpData:
			var d dataMsg
			d.unmarshal(p)
			if want := fmt.Sprintf("%08d", d.ID-5000); string(d.Data) != want {
				t.Fatalf("READ %d saw %q, want %q: reordered around a WRITE", d.ID, d.Data, want)
			}
		default:
			t.Fatalf("unexpected reply %x", p)
		}
	}
}
