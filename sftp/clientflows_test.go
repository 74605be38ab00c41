package sftp

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Request sequences of the GUI clients hosting customers use, which do
// not run here: WinSCP (source/core/SftpFileSystem.cpp), FileZilla
// (src/putty/psftp.c, its fzsftp helper) and Cyberduck (ssh/.../sftp/,
// over sshj). Each test replays one client's sequence packet by packet and
// checks what the user ends up with: contents, times, modes, and a quota's
// counters against what the home really holds.

// flowChunk is the WRITE size of the replays: WinSCP and Cyberduck send
// 32 KiB blocks at first, FileZilla 16 KiB.
const flowChunk = 32 * 1024

func (rc *rawClient) openFile(p string, pflags uint32, a Attrs) []byte {
	rc.t.Helper()
	rc.send(&openReq{ID: rc.nextID(), Path: p, PFlags: pflags, Attrs: a})
	return rc.handle()
}

// writeAt sends data as pipelined WRITEs from off, as the clients keep
// several in flight, then collects their statuses.
func (rc *rawClient) writeAt(h []byte, off uint64, data []byte) {
	rc.t.Helper()
	n := 0
	for i := 0; i < len(data); i += flowChunk {
		end := min(i+flowChunk, len(data))
		rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: off + uint64(i), Data: data[i:end]})
		n++
	}
	for ; n > 0; n-- {
		rc.expectStatus(StatusOK)
	}
}

func (rc *rawClient) closeHandle(h []byte) {
	rc.t.Helper()
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
}

// pathStat sends LSTAT or STAT and returns the attributes, or the status
// code when there are none.
func (rc *rawClient) pathStat(typ byte, p string) (Attrs, uint32) {
	rc.t.Helper()
	rc.send(&pathReq{Type: typ, ID: rc.nextID(), Path: p})
	b := rc.recv()
	var a attrsMsg
	if a.unmarshal(b) {
		return a.Attrs, StatusOK
	}
	var s statusMsg
	if !s.unmarshal(b) {
		rc.t.Fatalf("expected ATTRS or STATUS, got %x", b)
	}
	return Attrs{}, s.Code
}

func (rc *rawClient) pathOp(typ byte, p string) uint32 {
	rc.t.Helper()
	rc.send(&pathReq{Type: typ, ID: rc.nextID(), Path: p})
	return rc.status().Code
}

func (rc *rawClient) setstat(p string, a Attrs) uint32 {
	rc.t.Helper()
	rc.send(&setstatReq{ID: rc.nextID(), Path: p, Attrs: a})
	return rc.status().Code
}

func (rc *rawClient) rename(from, to string) uint32 {
	rc.t.Helper()
	rc.send(&twoPathReq{Type: fxpRename, ID: rc.nextID(), First: from, Second: to})
	return rc.status().Code
}

// homeUsage is what a recount finds in the test home: the regular files'
// sizes and number.
func (ts *testServer) homeUsage(t *testing.T) (bytes, files int64) {
	t.Helper()
	err := filepath.Walk(ts.root, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			bytes += fi.Size()
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bytes, files
}

// wantRealUsage checks the quota's counters against the home.
func (ts *testServer) wantRealUsage(t *testing.T, q *testQuota) {
	t.Helper()
	b, f := ts.homeUsage(t)
	q.wantUsage(t, b, f)
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

// forEachUploadMode runs f with atomic uploads on and off, under a quota.
func forEachUploadMode(t *testing.T, f func(t *testing.T, ts *testServer, q *testQuota)) {
	for _, direct := range []bool{false, true} {
		name := "atomic"
		if direct {
			name = "direct"
		}
		t.Run(name, func(t *testing.T) {
			q := &testQuota{limit: 1 << 30}
			ts := startServer(t, &Options{Quota: q, DirectUploads: direct})
			f(t, ts, q)
		})
	}
}

// TestCyberduckOverwrite: Cyberduck (SFTPWriteFeature) overwrites an
// existing file with OPEN WRITE|TRUNC and no CREAT. With atomic uploads
// the upload is a new file until CLOSE renames it over the old one, which
// then gives back the old file's bytes and its file: the new file must
// have been charged as one, or each overwrite took one file off the
// account's count (and an abandoned one another), letting --quota-files
// be passed by overwriting files.
func TestCyberduckOverwrite(t *testing.T) {
	forEachUploadMode(t, func(t *testing.T, ts *testServer, q *testQuota) {
		rc := ts.raw(t)
		rc.put("/index.html", 1000)
		ts.wantRealUsage(t, q)

		content := payload(70000, 1)
		h := rc.openFile("/index.html", fxfWrite|fxfTrunc, Attrs{})
		rc.writeAt(h, 0, content)
		rc.closeHandle(h)
		if got := ts.read(t, "index.html"); got != string(content) {
			t.Fatalf("after the overwrite the file holds %d bytes, want the %d uploaded", len(got), len(content))
		}
		ts.wantRealUsage(t, q)

		// An overwrite the connection drops before CLOSE.
		h = rc.openFile("/index.html", fxfWrite|fxfTrunc, Attrs{})
		rc.writeAt(h, 0, payload(5000, 2))
		ts.wait()
		ts.wantRealUsage(t, q)
	})
}

// TestWinSCPConnect replays WinSCP's start: INIT asking for version 6,
// limits@openssh.com (WinSCP sizes its packets from max-packet-length
// alone, ignoring max-write-length), REALPATH ".", LSTAT of the home,
// then the listing with the next READDIR sent before the previous reply
// is parsed and the CLOSE's reply never awaited.
func TestWinSCPConnect(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "a file.txt", "hello")
	if err := os.Mkdir(filepath.Join(ts.root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, ts: ts}
	rc.send(&initMsg{Version: 6})
	var v versionMsg
	if p := rc.recv(); !v.unmarshal(p) || v.Version != 3 {
		t.Fatalf("INIT 6 answered %x, want VERSION 3", p)
	}
	exts := map[string]string{}
	for _, e := range v.Extensions {
		exts[e.Name] = e.Data
	}
	// WinSCP uses statvfs for its space display only when it is "2", and
	// hardlink@openssh.com only when it is "1".
	if exts["statvfs@openssh.com"] != "2" || exts["hardlink@openssh.com"] != "1" || exts["limits@openssh.com"] != "1" {
		t.Fatalf("extensions %v", exts)
	}

	rc.send(&extendedReq{ID: rc.nextID(), Request: "limits@openssh.com"})
	var er extendedReplyMsg
	if p := rc.recv(); !er.unmarshal(p) || len(er.Data) < 32 {
		t.Fatalf("limits reply %x", p)
	}
	maxPacketLen := beUint64(er.Data[0:8])
	// WinSCP's largest WRITE: max-packet-length less the WRITE's own
	// fields; it must be accepted.
	big := payload(int(maxPacketLen)-(1+4+4+8+8+4), 3)

	rc.send(&pathReq{Type: fxpRealpath, ID: rc.nextID(), Path: "."})
	var nm nameMsg
	if p := rc.recv(); !nm.unmarshal(p) || len(nm.Entries) != 1 || nm.Entries[0].Name != "/" {
		t.Fatalf("REALPATH . answered %x", p)
	}
	if _, code := rc.pathStat(fxpLstat, "/"); code != StatusOK {
		t.Fatalf("LSTAT / failed: %d", code)
	}

	rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: "/"})
	dh := rc.handle()
	names := map[string]nameEntry{}
	rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: dh})
	for i := 0; ; i++ {
		if i > 10 {
			t.Fatal("listing never ended")
		}
		p := rc.recv()
		// The next READDIR goes out before this reply is parsed.
		rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: dh})
		var n nameMsg
		if !n.unmarshal(p) {
			var s statusMsg
			if !s.unmarshal(p) || s.Code != StatusEOF {
				t.Fatalf("READDIR answered %x", p)
			}
			break
		}
		for _, e := range n.Entries {
			names[e.Name] = e
		}
	}
	rc.expectStatus(StatusEOF) // the READDIR sent after the end
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: dh})
	for _, want := range []string{".", "..", "a file.txt", "dir"} {
		e, ok := names[want]
		if !ok {
			t.Fatalf("listing lacks %q: %v", want, names)
		}
		// WinSCP (SFTP 3) takes type, rights, owner and group from the
		// long name: "rights links owner group size date name".
		f := strings.Fields(e.LongName)
		if len(f) < 9 || !strings.HasSuffix(e.LongName, " "+want) {
			t.Fatalf("long name %q does not parse", e.LongName)
		}
		if wantType := map[bool]byte{true: 'd', false: '-'}[want != "a file.txt"]; f[0][0] != wantType {
			t.Errorf("long name %q has type %c, want %c", e.LongName, f[0][0], wantType)
		}
	}
	rc.expectStatus(StatusOK) // the CLOSE, read late

	h := rc.openFile("/big", fxfWrite|fxfCreat|fxfTrunc, Attrs{})
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: big})
	rc.expectStatus(StatusOK)
	rc.closeHandle(h)
	if got := ts.read(t, "big"); !bytes.Equal([]byte(got), big) {
		t.Fatalf("a WRITE of max-packet-length was stored as %d bytes", len(got))
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// winscpTime is a modification time as WinSCP preserves it: whole
// seconds, sent as both access and modification time in ACMODTIME.
var winscpTime = time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)

func (ts *testServer) wantFile(t *testing.T, name string, content []byte, mode os.FileMode, mtime time.Time) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(ts.root, name))
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.read(t, name); got != string(content) {
		t.Fatalf("%s holds %d bytes, want the %d uploaded", name, len(got), len(content))
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("%s modified %v, want %v", name, fi.ModTime(), mtime)
	}
}

// TestWinSCPUploadSmall replays WinSCP's upload of a file below its
// resume threshold (100 KiB) with "preserve timestamp" and overwrite
// confirmation on: OPEN with EXCL (and SIZE in the attributes), which fails
// on an existing file; LSTAT; OPEN again without EXCL; the WRITEs; CLOSE,
// and SETSTAT of the times sent right behind the CLOSE, before its reply.
func TestWinSCPUploadSmall(t *testing.T) {
	forEachUploadMode(t, func(t *testing.T, ts *testServer, q *testQuota) {
		rc := ts.raw(t)
		mt := Attrs{Flags: AttrACModTime, ATime: uint32(winscpTime.Unix()), MTime: uint32(winscpTime.Unix())}
		upload := func(name string, content []byte) {
			t.Helper()
			size := Attrs{Flags: AttrSize, Size: uint64(len(content))}
			rc.send(&openReq{ID: rc.nextID(), Path: name, PFlags: fxfWrite | fxfCreat | fxfTrunc | fxfExcl, Attrs: size})
			p := rc.recv()
			var hm handleMsg
			h := hm.Handle
			if !hm.unmarshal(p) {
				var s statusMsg
				if !s.unmarshal(p) || s.Code != StatusFailure {
					t.Fatalf("OPEN EXCL of an existing file answered %x, want FAILURE", p)
				}
				if _, code := rc.pathStat(fxpLstat, name); code != StatusOK {
					t.Fatalf("LSTAT after a failed EXCL: %d", code)
				}
				h = rc.openFile(name, fxfWrite|fxfCreat|fxfTrunc, size)
			} else {
				h = hm.Handle
			}
			rc.writeAt(h, 0, content)
			rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
			rc.send(&setstatReq{ID: rc.nextID(), Path: name, Attrs: mt})
			rc.expectStatus(StatusOK)
			rc.expectStatus(StatusOK)
		}
		first := payload(40000, 4)
		upload("/f.txt", first)
		ts.wantFile(t, "f.txt", first, 0o644, winscpTime)
		ts.wantRealUsage(t, q)

		if err := os.Chmod(filepath.Join(ts.root, "f.txt"), 0o600); err != nil {
			t.Fatal(err)
		}
		second := payload(30000, 5)
		upload("/f.txt", second)
		// Overwriting keeps the file's mode, as truncating it in place does.
		ts.wantFile(t, "f.txt", second, 0o600, winscpTime)
		ts.wantRealUsage(t, q)
	})
}

// TestWinSCPUploadResumable replays WinSCP's upload of a file above its
// resume threshold over an existing one: LSTAT of the target and of
// "<target>.filepart" (absent), OPEN of the .filepart with SIZE, WRITEs,
// CLOSE, REMOVE of the target (SFTP 3's RENAME does not replace), RENAME of
// the .filepart, then SETSTAT of the old file's rights and the times.
// Then the same upload interrupted and resumed: with atomic uploads off
// the .filepart keeps what arrived and WinSCP reopens it without TRUNC and
// writes from its size.
func TestWinSCPUploadResumable(t *testing.T) {
	forEachUploadMode(t, func(t *testing.T, ts *testServer, q *testQuota) {
		rc := ts.raw(t)
		rc.put("/big.bin", 150000)
		if err := os.Chmod(filepath.Join(ts.root, "big.bin"), 0o640); err != nil {
			t.Fatal(err)
		}
		content := payload(300000, 6)
		size := Attrs{Flags: AttrSize, Size: uint64(len(content))}
		props := Attrs{Flags: AttrPermissions | AttrACModTime, Permissions: 0o640,
			ATime: uint32(winscpTime.Unix()), MTime: uint32(winscpTime.Unix())}

		if _, code := rc.pathStat(fxpLstat, "/big.bin"); code != StatusOK {
			t.Fatalf("LSTAT target: %d", code)
		}
		if _, code := rc.pathStat(fxpLstat, "/big.bin.filepart"); code != StatusNoSuchFile {
			t.Fatalf("LSTAT .filepart: %d, want NO_SUCH_FILE", code)
		}
		h := rc.openFile("/big.bin.filepart", fxfWrite|fxfCreat|fxfTrunc, size)
		rc.writeAt(h, 0, content)
		rc.closeHandle(h)
		if code := rc.pathOp(fxpRemove, "/big.bin"); code != StatusOK {
			t.Fatalf("REMOVE target: %d", code)
		}
		if code := rc.rename("/big.bin.filepart", "/big.bin"); code != StatusOK {
			t.Fatalf("RENAME .filepart: %d", code)
		}
		if code := rc.setstat("/big.bin", props); code != StatusOK {
			t.Fatalf("SETSTAT: %d", code)
		}
		ts.wantFile(t, "big.bin", content, 0o640, winscpTime)
		ts.wantRealUsage(t, q)

		// Interrupted: the connection ends after part of the data.
		next := payload(400000, 7)
		h = rc.openFile("/big.bin.filepart", fxfWrite|fxfCreat|fxfTrunc, Attrs{Flags: AttrSize, Size: uint64(len(next))})
		rc.writeAt(h, 0, next[:150000])
		ts.wait()
		ts.wantRealUsage(t, q)
	})
}

// TestSymlinkOrderByClient: OpenSSH's sftp-server reads SYMLINK's paths
// reversed (target first, OpenSSH PROTOCOL §4.1), and ferry does too; but
// clients that recognise OpenSSH by its identification string send the
// draft-02 §6.10 order (link path first) to every other server: WinSCP
// (CreateLink: the "symlink bug" workaround only for "OpenSSH..." and
// ProFTPD) and libssh (sftp_symlink: only when ssh_get_openssh_version).
// Their links were made backwards: "ln -s target.txt mylink" in WinSCP
// made target.txt a link to mylink, or failed because target.txt existed.
// Clients that always use OpenSSH's order keep it.
func TestSymlinkOrderByClient(t *testing.T) {
	for _, tc := range []struct {
		client    string
		linkFirst bool
	}{
		{"SSH-2.0-WinSCP_release_6.3.5", true},
		{"SSH-2.0-libssh_0.10.6", true},
		{"SSH-2.0-libssh-0.5.5", true},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", false},
		{"SSH-2.0-PuTTY_Release_0.81", false},
		{"SSH-2.0-paramiko_2.12.0", false},
		{"SSH-2.0-libssh2_1.11.0", false},
		{"SSH-2.0-Go", false},
		{"", false},
	} {
		t.Run(tc.client, func(t *testing.T) {
			ts := startServer(t, &Options{ClientVersion: tc.client})
			ts.write(t, "target.txt", "x")
			rc := ts.raw(t)
			req := &twoPathReq{Type: fxpSymlink, ID: rc.nextID(), First: "target.txt", Second: "/mylink"}
			if tc.linkFirst {
				req.First, req.Second = "/mylink", "target.txt"
			}
			rc.send(req)
			rc.expectStatus(StatusOK)
			got, err := os.Readlink(filepath.Join(ts.root, "mylink"))
			if err != nil || got != "target.txt" {
				t.Fatalf("mylink leads to %q (%v), want target.txt", got, err)
			}
			if fi, err := os.Lstat(filepath.Join(ts.root, "target.txt")); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("target.txt is no longer the regular file: %v", err)
			}
		})
	}
}

// readdirAll lists dir as FileZilla's fzsftp does: OPENDIR, then four
// READDIRs in flight, one more sent for each NAME received, until EOF;
// the READDIRs still in flight are answered and discarded, then CLOSE.
func (rc *rawClient) readdirAll(dir string) []nameEntry {
	rc.t.Helper()
	rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: dir})
	dh := rc.handle()
	for i := 0; i < 4; i++ {
		rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: dh})
	}
	var all []nameEntry
	outstanding := 4
	for i := 0; ; i++ {
		if i > 1000 {
			rc.t.Fatal("listing never ended")
		}
		p := rc.recv()
		outstanding--
		var n nameMsg
		if !n.unmarshal(p) {
			var s statusMsg
			if !s.unmarshal(p) || s.Code != StatusEOF {
				rc.t.Fatalf("READDIR answered %x", p)
			}
			break
		}
		all = append(all, n.Entries...)
		rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: dh})
		outstanding++
	}
	for ; outstanding > 0; outstanding-- {
		var s statusMsg
		if p := rc.recv(); !s.unmarshal(p) || s.Code != StatusEOF {
			rc.t.Fatalf("READDIR after the end answered %x, want EOF", p)
		}
	}
	rc.closeHandle(dh)
	return all
}

// TestFileZillaFlows replays FileZilla's listing of a directory of more
// than one READDIR reply (four READDIRs in flight), its upload (OPEN
// WRITE|CREAT|TRUNC, 16 KiB WRITEs, CLOSE) followed by "chmtime" (STAT,
// then SETSTAT of ACMODTIME with the access time STAT gave), and its
// resume of an upload ("reput": OPEN WRITE alone, FSTAT for the size,
// WRITEs from there).
func TestFileZillaFlows(t *testing.T) {
	forEachUploadMode(t, func(t *testing.T, ts *testServer, q *testQuota) {
		rc := ts.raw(t)
		if err := os.Mkdir(filepath.Join(ts.root, "many"), 0o755); err != nil {
			t.Fatal(err)
		}
		const n = 250
		for i := 0; i < n; i++ {
			ts.write(t, filepath.Join("many", "f"+strings.Repeat("x", i%7)+strconv.Itoa(i)), "x")
		}
		q.mu.Lock()
		q.bytes, q.files = q.bytes+n, q.files+n // put there by hand, not charged
		q.mu.Unlock()
		seen := map[string]int{}
		for _, e := range rc.readdirAll("/many") {
			seen[e.Name]++
		}
		if len(seen) != n+2 {
			t.Fatalf("listing has %d distinct names, want %d", len(seen), n+2)
		}
		for name, c := range seen {
			if c != 1 {
				t.Fatalf("%q listed %d times", name, c)
			}
		}

		content := payload(100000, 8)
		h := rc.openFile("/up.bin", fxfWrite|fxfCreat|fxfTrunc, Attrs{})
		for off := 0; off < len(content); off += 16384 {
			end := min(off+16384, len(content))
			rc.writeAt(h, uint64(off), content[off:end])
		}
		rc.closeHandle(h)
		st, code := rc.pathStat(fxpStat, "/up.bin")
		if code != StatusOK || st.Flags&AttrACModTime == 0 {
			t.Fatalf("STAT: %d %+v", code, st)
		}
		mt := uint32(winscpTime.Unix())
		if code := rc.setstat("/up.bin", Attrs{Flags: AttrACModTime, ATime: st.ATime, MTime: mt}); code != StatusOK {
			t.Fatalf("chmtime: %d", code)
		}
		ts.wantFile(t, "up.bin", content, 0o644, winscpTime)
		ts.wantRealUsage(t, q)

		// reput of a file of which the first 40000 bytes arrived.
		next := payload(90000, 9)
		h = rc.openFile("/part.bin", fxfWrite|fxfCreat|fxfTrunc, Attrs{})
		rc.writeAt(h, 0, next[:40000])
		rc.closeHandle(h)
		h = rc.openFile("/part.bin", fxfWrite, Attrs{})
		rc.send(&handleReq{Type: fxpFstat, ID: rc.nextID(), Handle: h})
		var am attrsMsg
		if p := rc.recv(); !am.unmarshal(p) || am.Attrs.Flags&AttrSize == 0 || am.Attrs.Size != 40000 {
			t.Fatalf("FSTAT for reput answered %x", p)
		}
		rc.writeAt(h, am.Attrs.Size, next[am.Attrs.Size:])
		rc.closeHandle(h)
		if got := ts.read(t, "part.bin"); got != string(next) {
			t.Fatalf("after reput the file holds %d bytes, want %d", len(got), len(next))
		}
		ts.wantRealUsage(t, q)
	})
}

// TestWinSCPResumeAndDelete replays, with atomic uploads off (the only
// way a .filepart keeps what arrived before a broken connection), WinSCP
// resuming an upload in a new session: LSTAT of the .filepart for its
// size, OPEN WRITE|CREAT without TRUNC, WRITEs from that size, CLOSE,
// RENAME, SETSTAT. Then its duplicate (copy-data into OPEN
// WRITE|CREAT|EXCL, SETSTAT of rights and time) and its recursive delete
// (listing, REMOVE of each file, RMDIR of each directory, deepest first).
func TestWinSCPResumeAndDelete(t *testing.T) {
	q := &testQuota{limit: 1 << 30}
	opts := &Options{Quota: q, DirectUploads: true}
	ts := startServer(t, opts)
	rc := ts.raw(t)
	content := payload(500000, 10)
	h := rc.openFile("/up.filepart", fxfWrite|fxfCreat|fxfTrunc, Attrs{Flags: AttrSize, Size: uint64(len(content))})
	rc.writeAt(h, 0, content[:200000])
	ts.wait()
	ts.wantRealUsage(t, q)

	ts2 := ts.another(t, opts)
	rc = ts2.raw(t)
	if _, code := rc.pathStat(fxpLstat, "/up"); code != StatusNoSuchFile {
		t.Fatalf("LSTAT target: %d", code)
	}
	part, code := rc.pathStat(fxpLstat, "/up.filepart")
	if code != StatusOK || part.Size != 200000 {
		t.Fatalf("LSTAT .filepart: %d, size %d; want the 200000 bytes that arrived", code, part.Size)
	}
	h = rc.openFile("/up.filepart", fxfWrite|fxfCreat, Attrs{})
	rc.writeAt(h, part.Size, content[part.Size:])
	rc.closeHandle(h)
	if code := rc.rename("/up.filepart", "/up"); code != StatusOK {
		t.Fatalf("RENAME: %d", code)
	}
	mt := uint32(winscpTime.Unix())
	if code := rc.setstat("/up", Attrs{Flags: AttrACModTime, ATime: mt, MTime: mt}); code != StatusOK {
		t.Fatalf("SETSTAT: %d", code)
	}
	ts2.wantFile(t, "up", content, 0o644, winscpTime)
	ts2.wantRealUsage(t, q)

	// Duplicate "up" as "dir/sub/copy".
	for _, d := range []string{"/dir", "/dir/sub"} {
		rc.send(&mkdirReq{ID: rc.nextID(), Path: d})
		rc.expectStatus(StatusOK)
	}
	src := rc.openFile("/up", fxfRead, Attrs{Flags: AttrSize, Size: uint64(len(content))})
	dst := rc.openFile("/dir/sub/copy", fxfWrite|fxfCreat|fxfExcl, Attrs{Flags: AttrSize, Size: uint64(len(content))})
	data := appendCopyData(nil, src, 0, 0, dst, 0)
	rc.send(&extendedReq{ID: rc.nextID(), Request: "copy-data", Data: data})
	rc.expectStatus(StatusOK)
	if code := rc.setstat("/dir/sub/copy", Attrs{Flags: AttrPermissions | AttrACModTime, Permissions: 0o644, ATime: mt, MTime: mt}); code != StatusOK {
		t.Fatalf("SETSTAT of the copy: %d", code)
	}
	rc.closeHandle(src)
	rc.closeHandle(dst)
	ts2.wantFile(t, "dir/sub/copy", content, 0o644, winscpTime)
	ts2.wantRealUsage(t, q)

	// Delete "dir" recursively.
	var del func(dir string)
	del = func(dir string) {
		for _, e := range rc.readdirAll(dir) {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			p := dir + "/" + e.Name
			if e.Attrs.Permissions&0o170000 == 0o040000 {
				del(p)
				continue
			}
			if code := rc.pathOp(fxpRemove, p); code != StatusOK {
				t.Fatalf("REMOVE %s: %d", p, code)
			}
		}
		if code := rc.pathOp(fxpRmdir, dir); code != StatusOK {
			t.Fatalf("RMDIR %s: %d", dir, code)
		}
	}
	del("/dir")
	if _, err := os.Lstat(filepath.Join(ts2.root, "dir")); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
	ts2.wantRealUsage(t, q)
}

func appendCopyData(b []byte, src []byte, off, length uint64, dst []byte, woff uint64) []byte {
	b = appendString(b, src)
	b = appendU64(b, off)
	b = appendU64(b, length)
	b = appendString(b, dst)
	return appendU64(b, woff)
}

func appendString(b, s []byte) []byte {
	n := len(s)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, s...)
}

func appendU64(b []byte, v uint64) []byte {
	for i := 56; i >= 0; i -= 8 {
		b = append(b, byte(v>>i))
	}
	return b
}

// TestCyberduckTouch replays Cyberduck's "New File": OPEN with CREAT|TRUNC
// and neither READ nor WRITE, the permissions in the attributes, then
// CLOSE, for a new file and over an existing one, on an ordinary account
// and an upload-only one (which may create files, but read none).
func TestCyberduckTouch(t *testing.T) {
	for _, uploadOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "read-write", true: "upload-only"}[uploadOnly], func(t *testing.T) {
			q := &testQuota{limit: 1 << 30}
			ts := startServer(t, &Options{Quota: q, Permissions: Permissions{NoDownload: uploadOnly}})
			rc := ts.raw(t)
			perm := Attrs{Flags: AttrPermissions, Permissions: 0o640}
			h := rc.openFile("/new.txt", fxfCreat|fxfTrunc, perm)
			if uploadOnly {
				// The handle reads nothing.
				rc.send(&readReq{ID: rc.nextID(), Handle: h, Offset: 0, Length: 10})
				if s := rc.status(); s.Code == StatusOK {
					t.Fatalf("READ on an upload-only account's touch handle: %d %q", s.Code, s.Message)
				}
			}
			rc.closeHandle(h)
			ts.wantFile(t, "new.txt", nil, 0o640, mustModTime(t, ts, "new.txt"))
			ts.wantRealUsage(t, q)
		})
	}
}

func mustModTime(t *testing.T, ts *testServer, name string) time.Time {
	t.Helper()
	fi, err := os.Stat(filepath.Join(ts.root, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// fileQuota is a testQuota that also bounds the number of files, as
// --quota-files does.
type fileQuota struct {
	testQuota
	fileLimit int64
}

func (q *fileQuota) Reserve(ctx context.Context, bytes, files int64) error {
	q.mu.Lock()
	over := files > 0 && q.files+files > q.fileLimit
	q.mu.Unlock()
	if over {
		return ErrQuotaExceeded
	}
	return q.testQuota.Reserve(ctx, bytes, files)
}

// TestOverwriteAtFileQuota: an account holding as many files as
// --quota-files allows may still replace one. An atomic upload's
// temporary file is one file more until its CLOSE, and every client's
// overwrite (WinSCP's and FileZilla's OPEN WRITE|CREAT|TRUNC, Cyberduck's
// WRITE|TRUNC) was refused with "quota exceeded", though it adds no file
// and sftp-server, writing in place, allows it.
func TestOverwriteAtFileQuota(t *testing.T) {
	q := &fileQuota{testQuota: testQuota{limit: 1 << 30}, fileLimit: 2}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	rc.put("/a.html", 100)
	rc.put("/b.html", 100)
	ts.wantRealUsage(t, &q.testQuota)
	for i, pflags := range []uint32{fxfWrite | fxfCreat | fxfTrunc, fxfWrite | fxfTrunc} {
		content := payload(5000+i, byte(20+i))
		h := rc.openFile("/a.html", pflags, Attrs{})
		rc.writeAt(h, 0, content)
		rc.closeHandle(h)
		if got := ts.read(t, "a.html"); got != string(content) {
			t.Fatalf("overwrite %d: a.html holds %d bytes, want %d", i, len(got), len(content))
		}
		ts.wantRealUsage(t, &q.testQuota)
	}
	// A third file is still refused.
	rc.send(&openReq{ID: rc.nextID(), Path: "/c.html", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	if s := rc.status(); s.Code != StatusFailure || s.Message != "quota exceeded" {
		t.Fatalf("a file past --quota-files: %d %q", s.Code, s.Message)
	}
}
