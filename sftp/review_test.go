package sftp

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/vfs"
)

// TestSetIDBitsRefused: the daemon runs as a service user owning every
// home, so a client-given mode must never carry setuid, setgid or sticky
// bits (a user could plant a set-id program): every request that applies
// a mode keeps only the 0777 bits, as scp does.
func TestSetIDBitsRefused(t *testing.T) {
	const special = 0o7000
	ts := startServer(t, nil)
	rc := ts.raw(t)
	ts.write(t, "byname", "x")
	ts.write(t, "byhandle", "x")

	rc.send(&setstatReq{ID: rc.nextID(), Path: "/byname", Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	rc.expectStatus(StatusOK)

	rc.send(&openReq{ID: rc.nextID(), Path: "/byhandle", PFlags: fxfRead | fxfWrite})
	h := rc.handle()
	rc.send(&fsetstatReq{ID: rc.nextID(), Handle: h, Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)

	rc.send(&openReq{ID: rc.nextID(), Path: "/created", PFlags: fxfWrite | fxfCreat | fxfTrunc,
		Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	h = rc.handle()
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)

	rc.send(&mkdirReq{ID: rc.nextID(), Path: "/dir", Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	rc.expectStatus(StatusOK)

	rc.send(&extendedReq{ID: rc.nextID(), Request: "lsetstat@openssh.com",
		Data: (&setstatReq{Path: "/dir", Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}}).appendTo(nil)[5:]})
	rc.expectStatus(StatusOK)

	for _, name := range []string{"byname", "byhandle", "created", "dir"} {
		fi, err := os.Lstat(filepath.Join(ts.root, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); m != 0 {
			t.Errorf("%s has mode %v: set-id or sticky bits applied", name, fi.Mode())
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s has permissions %v, want 0755", name, fi.Mode().Perm())
		}
	}
}

// rawPut uploads n bytes to p with OPEN(CREAT|TRUNC), WRITE and CLOSE.
func (rc *rawClient) put(p string, n int) {
	rc.t.Helper()
	rc.send(&openReq{ID: rc.nextID(), Path: p, PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: bytes.Repeat([]byte("x"), n)})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
}

// wantUsage checks the quota's counters against what the home holds.
func (q *testQuota) wantUsage(t *testing.T, bytes, files int64) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes != bytes || q.files != files {
		t.Fatalf("quota charged %d bytes, %d files; the home holds %d bytes, %d files", q.bytes, q.files, bytes, files)
	}
}

// TestQuotaTruncateByPathThenWrite: SETSTAT by path releases the file's
// real size, so a handle opened before it must be charged again for the
// bytes it writes back (the handle's size cached at OPEN is stale).
func TestQuotaTruncateByPathThenWrite(t *testing.T) {
	q := &testQuota{limit: 1000}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	rc.put("/f", 900)
	q.wantUsage(t, 900, 1)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead | fxfWrite})
	h := rc.handle()
	rc.send(&setstatReq{ID: rc.nextID(), Path: "/f", Attrs: Attrs{Flags: AttrSize, Size: 0}})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 0, 1)
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: bytes.Repeat([]byte("y"), 900)})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
}

// TestQuotaSharedAcrossSessions: a shrink in one session of an account
// (here a truncate) is seen by another session's open handle when both
// share a QuotaLock, as every session of one account must.
func TestQuotaSharedAcrossSessions(t *testing.T) {
	q := &testQuota{limit: 1000}
	opts := &Options{Quota: q, QuotaLock: new(QuotaLock)}
	ts := startServer(t, opts)
	rc := ts.raw(t)
	rc.put("/f", 900)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead | fxfWrite})
	h := rc.handle()

	rc2 := ts.another(t, opts).raw(t)
	rc2.send(&setstatReq{ID: rc2.nextID(), Path: "/f", Attrs: Attrs{Flags: AttrSize, Size: 0}})
	rc2.expectStatus(StatusOK)
	q.wantUsage(t, 0, 1)

	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: bytes.Repeat([]byte("y"), 900)})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 900, Data: bytes.Repeat([]byte("y"), 200)})
	if s := rc.status(); s.Code != StatusFailure || s.Message != "quota exceeded" {
		t.Fatalf("write over the quota: %d %q", s.Code, s.Message)
	}
}

// TestQuotaRemoveTargetOfOpenUpload: an atomic upload over an existing
// file releases, when it replaces it, what the target holds then; a
// target removed meanwhile (and released by REMOVE) is not released twice.
func TestQuotaRemoveTargetOfOpenUpload(t *testing.T) {
	q := &testQuota{limit: 2000}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	rc.put("/f", 900)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: bytes.Repeat([]byte("y"), 100)})
	rc.expectStatus(StatusOK)
	rc.send(&pathReq{Type: fxpRemove, ID: rc.nextID(), Path: "/f"})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 100, 1)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); len(got) != 100 {
		t.Fatalf("f holds %d bytes after the upload, want 100", len(got))
	}
	q.wantUsage(t, 100, 1)
}

// TestQuotaWriteRacesTruncate: one session writes a file (pipelined
// writes, run concurrently by the workers) while another session of the
// account truncates it again and again; afterwards the quota holds exactly
// the file's size.
func TestQuotaWriteRacesTruncate(t *testing.T) {
	q := &testQuota{limit: 1 << 30}
	opts := &Options{Quota: q, QuotaLock: new(QuotaLock), DirectUploads: true}
	ts := startServer(t, opts)
	c1 := ts.client(t)
	defer c1.Close()
	c2 := ts.another(t, opts).client(t)
	defer c2.Close()
	// Written in place (atomic uploads off), so the other session sees it.
	f, err := c1.OpenFile("/f", os.O_RDWR|os.O_CREATE|os.O_EXCL)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	truncated := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				truncated <- nil
				return
			default:
			}
			if err := c2.Truncate("/f", 0); err != nil {
				truncated <- err
				return
			}
		}
	}()
	block := bytes.Repeat([]byte("z"), 4096)
	for i := range 300 {
		if _, err := f.WriteAt(block, int64(i%64)*4096); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(ts.root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	q.wantUsage(t, fi.Size(), 1)
}

// TestCopyDataIntoAppendHandle: copy-data into a handle opened with
// APPEND appends, as OpenSSH's sftp-server does (pwrite is refused on an
// O_APPEND descriptor, so the copy has to write, not write at).
func TestCopyDataIntoAppendHandle(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "src", "0123456789")
	ts.write(t, "dst", "head-")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/src", PFlags: fxfRead})
	src := rc.handle()
	rc.send(&openReq{ID: rc.nextID(), Path: "/dst", PFlags: fxfWrite | fxfAppend})
	dst := rc.handle()
	var data []byte
	data = wire.AppendString(data, src)
	data = binary.BigEndian.AppendUint64(data, 2)
	data = binary.BigEndian.AppendUint64(data, 5)
	data = wire.AppendString(data, dst)
	data = binary.BigEndian.AppendUint64(data, 0)
	rc.send(&extendedReq{ID: rc.nextID(), Request: "copy-data", Data: data})
	rc.expectStatus(StatusOK)
	for _, h := range [][]byte{src, dst} {
		rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
		rc.expectStatus(StatusOK)
	}
	if got := ts.read(t, "dst"); got != "head-23456" {
		t.Fatalf("dst = %q, want %q", got, "head-23456")
	}
}

// TestReservedNamesResolved: a client path that becomes a temporary
// upload's name only once cleaned (".ferry-upload-<random>/.") is refused
// by every request that creates or renames a name. A NoDelete account
// could otherwise rename a file to such a name, back-date it, and have
// the next listing delete it as a stale upload.
func TestReservedNamesResolved(t *testing.T) {
	const temp = ".ferry-upload-AAAAAAAAAAAAAAAAAAAAAAAAAA"
	ts := startServer(t, &Options{Permissions: Permissions{NoDelete: true}})
	ts.write(t, "victim", "precious")
	rc := ts.raw(t)
	for _, target := range []string{temp + "/.", "/" + temp + "/", "d/../" + temp + "/."} {
		ext := func(name string, a, b string) {
			t.Helper()
			var data []byte
			data = wire.AppendStringS(data, a)
			data = wire.AppendStringS(data, b)
			rc.send(&extendedReq{ID: rc.nextID(), Request: name, Data: data})
			rc.expectStatus(StatusPermissionDenied)
		}
		rc.send(&twoPathReq{Type: fxpRename, ID: rc.nextID(), First: "/victim", Second: target})
		rc.expectStatus(StatusPermissionDenied)
		ext("posix-rename@openssh.com", "/victim", target)
		ext("hardlink@openssh.com", "/victim", target)
		rc.send(&twoPathReq{Type: fxpSymlink, ID: rc.nextID(), First: "victim", Second: target})
		rc.expectStatus(StatusPermissionDenied)
		rc.send(&mkdirReq{ID: rc.nextID(), Path: target})
		rc.expectStatus(StatusPermissionDenied)
		rc.send(&openReq{ID: rc.nextID(), Path: target, PFlags: fxfWrite | fxfCreat})
		rc.expectStatus(StatusPermissionDenied)
	}
	// A link whose target is a reserved name would let OPEN create it.
	rc.send(&twoPathReq{Type: fxpSymlink, ID: rc.nextID(), First: temp, Second: "/dangling"})
	rc.expectStatus(StatusPermissionDenied)
	if got := ts.read(t, "victim"); got != "precious" {
		t.Fatalf("victim = %q", got)
	}
	entries, err := os.ReadDir(ts.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("home holds %v, want only victim", entries)
	}
}

// TestStaleTempRemoval: a listing removes an abandoned upload's temporary
// file, but never for a NoDelete account, and never anything but a
// regular file with one link.
func TestStaleTempRemoval(t *testing.T) {
	const temp = ".ferry-upload-AAAAAAAAAAAAAAAAAAAAAAAAAA"
	old := time.Now().Add(-48 * time.Hour)
	plant := func(ts *testServer) {
		for _, name := range []string{temp, "d/" + temp, "l/" + temp} {
			ts.write(t, name, "stale")
			if err := os.Chtimes(filepath.Join(ts.root, name), old, old); err != nil {
				t.Fatal(err)
			}
		}
		// A second name for l's file: not an upload's temporary file.
		if err := os.Link(filepath.Join(ts.root, "l", temp), filepath.Join(ts.root, "l", "kept")); err != nil {
			t.Fatal(err)
		}
	}
	list := func(ts *testServer) {
		c := ts.client(t)
		defer c.Close()
		for _, d := range []string{"/", "/d", "/l"} {
			if _, err := c.ReadDir(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	exists := func(ts *testServer, name string) bool {
		_, err := os.Lstat(filepath.Join(ts.root, name))
		return err == nil
	}

	ts := startServer(t, &Options{Permissions: Permissions{NoDelete: true}})
	plant(ts)
	list(ts)
	for _, name := range []string{temp, "d/" + temp, "l/" + temp} {
		if !exists(ts, name) {
			t.Errorf("NoDelete: listing removed %s", name)
		}
	}

	ts = startServer(t, nil)
	plant(ts)
	list(ts)
	if exists(ts, temp) || exists(ts, "d/"+temp) {
		t.Error("a stale temporary upload was not removed")
	}
	if !exists(ts, "l/"+temp) {
		t.Error("a file with two links was removed as a stale upload")
	}
}

// TestQuotaLinksAndReplacingRename: a file is charged once however many
// names it has, and given back with its last name; posix-rename gives
// back the file it replaces; links cost nothing and give nothing back.
func TestQuotaLinksAndReplacingRename(t *testing.T) {
	q := &testQuota{limit: 10000}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	ext := func(name, a, b string, want uint32) {
		t.Helper()
		var data []byte
		data = wire.AppendStringS(data, a)
		data = wire.AppendStringS(data, b)
		rc.send(&extendedReq{ID: rc.nextID(), Request: name, Data: data})
		rc.expectStatus(want)
	}
	remove := func(p string) {
		t.Helper()
		rc.send(&pathReq{Type: fxpRemove, ID: rc.nextID(), Path: p})
		rc.expectStatus(StatusOK)
	}

	rc.put("/f", 900)
	ext("hardlink@openssh.com", "/f", "/f2", StatusOK)
	q.wantUsage(t, 900, 1)
	remove("/f")
	q.wantUsage(t, 900, 1) // f2 keeps the data
	remove("/f2")
	q.wantUsage(t, 0, 0)

	rc.put("/a", 100)
	rc.put("/b", 200)
	ext("posix-rename@openssh.com", "/a", "/b", StatusOK)
	q.wantUsage(t, 100, 1)

	rc.put("/c", 50)
	ext("hardlink@openssh.com", "/c", "/c2", StatusOK)
	rc.put("/d", 10)
	ext("posix-rename@openssh.com", "/d", "/c", StatusOK) // c2 keeps c's data
	q.wantUsage(t, 160, 3)
	ext("hardlink@openssh.com", "/b", "/b2", StatusOK)
	ext("posix-rename@openssh.com", "/b", "/b2", StatusOK) // two names of one file: nothing happens
	q.wantUsage(t, 160, 3)
	remove("/b")
	remove("/b2")
	q.wantUsage(t, 60, 2)

	rc.send(&twoPathReq{Type: fxpSymlink, ID: rc.nextID(), First: "a-long-long-long-target", Second: "/l"})
	rc.expectStatus(StatusOK)
	remove("/l")
	q.wantUsage(t, 60, 2)
}

// TestOpenExclIsExclusive: OPEN with CREAT|EXCL creates the target at
// OPEN, so a second OPEN with EXCL (here from another session) fails
// instead of both uploads getting a handle and one being lost at CLOSE.
func TestOpenExclIsExclusive(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc2 := ts.another(t, nil).raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfExcl})
	h := rc.handle()
	rc2.send(&openReq{ID: rc2.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfExcl})
	rc2.expectStatus(StatusFailure) // EEXIST, as OpenSSH answers
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: []byte("first")})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "first" {
		t.Fatalf("f = %q", got)
	}
}

// TestTrailingSlash: a trailing slash requires a directory, as the
// kernel's path resolution does for OpenSSH's sftp-server: "file/" is
// ENOTDIR (NO_SUCH_FILE) instead of acting on "file", and OPEN "new/"
// with CREAT creates nothing. Directories still work with the slash.
func TestTrailingSlash(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "file", "content")
	ts.write(t, "dir/inner", "x")
	rc := ts.raw(t)
	for _, tc := range []struct {
		name string
		req  appender
		want uint32
	}{
		{"STAT file/", &pathReq{Type: fxpStat, Path: "/file/"}, StatusNoSuchFile},
		{"LSTAT file/.", &pathReq{Type: fxpLstat, Path: "file/."}, StatusNoSuchFile},
		{"OPEN file/", &openReq{Path: "/file/", PFlags: fxfRead}, StatusNoSuchFile},
		{"OPEN file/ TRUNC", &openReq{Path: "/file/", PFlags: fxfWrite | fxfCreat | fxfTrunc}, StatusNoSuchFile},
		{"REMOVE file/", &pathReq{Type: fxpRemove, Path: "/file/"}, StatusNoSuchFile},
		{"SETSTAT file/", &setstatReq{Path: "/file/", Attrs: Attrs{Flags: AttrSize}}, StatusNoSuchFile},
		{"RENAME file/", &twoPathReq{Type: fxpRename, First: "/file/", Second: "/moved"}, StatusNoSuchFile},
		{"OPEN newf/ CREAT", &openReq{Path: "/newf/", PFlags: fxfWrite | fxfCreat | fxfTrunc}, StatusFailure},
		{"STAT dir/", &pathReq{Type: fxpStat, Path: "/dir/"}, fxpAttrs},
		{"OPEN dir/inner", &openReq{Path: "/dir/inner", PFlags: fxfRead}, fxpHandle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := rc.nextID()
			switch m := tc.req.(type) {
			case *pathReq:
				m.ID = id
			case *openReq:
				m.ID = id
			case *setstatReq:
				m.ID = id
			case *twoPathReq:
				m.ID = id
			}
			rc.send(tc.req)
			p := rc.recv()
			if tc.want == fxpAttrs || tc.want == fxpHandle {
				if p[0] != byte(tc.want) {
					t.Fatalf("reply type %d, want %d", p[0], tc.want)
				}
				if p[0] == fxpHandle {
					var h handleMsg
					h.unmarshal(p)
					rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h.Handle})
					rc.expectStatus(StatusOK)
				}
				return
			}
			var s statusMsg
			if !s.unmarshal(p) || s.Code != tc.want {
				t.Fatalf("reply %x, want status %d", p, tc.want)
			}
		})
	}
	if got := ts.read(t, "file"); got != "content" {
		t.Fatalf("file = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(ts.root, "newf")); err == nil {
		t.Fatal("OPEN newf/ created newf")
	}
}

// TestTrailingSlashOnDirLink: "ldir/", ldir a symbolic link to a
// directory, names the directory, as the kernel resolves it for OpenSSH's
// sftp-server. LSTAT gave the link's attributes (sftp's `ls -l ldir/`
// printed the link), REMOVE removed the link and READLINK read it;
// now LSTAT answers the directory, REMOVE and RENAME fail with ENOTDIR
// and READLINK with EINVAL, and the link is kept. READDIR of the
// directory opened through the link lists "." as a directory.
func TestTrailingSlashOnDirLink(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "real/inner", "x")
	if err := os.Symlink("real", filepath.Join(ts.root, "ldir")); err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	wantDir := func(what string, p []byte) {
		t.Helper()
		var a attrsMsg
		if !a.unmarshal(p) {
			t.Fatalf("%s: reply %x, want ATTRS", what, p)
		}
		if a.Attrs.Permissions&modeTypeMask != modeDir {
			t.Errorf("%s: mode %o, want a directory", what, a.Attrs.Permissions)
		}
	}
	rc.send(&pathReq{Type: fxpLstat, ID: rc.nextID(), Path: "/ldir/"})
	wantDir("LSTAT ldir/", rc.recv())
	rc.send(&pathReq{Type: fxpRemove, ID: rc.nextID(), Path: "/ldir/"})
	rc.expectStatus(StatusNoSuchFile)
	rc.send(&pathReq{Type: fxpReadlink, ID: rc.nextID(), Path: "/ldir/"})
	rc.expectStatus(StatusBadMessage)
	rc.send(&twoPathReq{Type: fxpRename, ID: rc.nextID(), First: "/ldir/", Second: "/moved"})
	rc.expectStatus(StatusNoSuchFile)
	rc.send(&extendedReq{ID: rc.nextID(), Request: "posix-rename@openssh.com",
		Data: appendStr(appendStr(nil, "/ldir/"), "/moved")})
	rc.expectStatus(StatusNoSuchFile)
	if fi, err := os.Lstat(filepath.Join(ts.root, "ldir")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("ldir after the requests: %v, %v", fi, err)
	}
	// Without the slash the requests act on the link, as before.
	rc.send(&pathReq{Type: fxpReadlink, ID: rc.nextID(), Path: "/ldir"})
	var n nameMsg
	if p := rc.recv(); !n.unmarshal(p) || len(n.Entries) != 1 || n.Entries[0].Name != "real" {
		t.Fatalf("READLINK ldir: %x", p)
	}

	rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: "/ldir"})
	h := rc.handle()
	rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: h})
	if p := rc.recv(); !n.unmarshal(p) {
		t.Fatalf("READDIR: %x", p)
	}
	found := false
	for _, e := range n.Entries {
		if e.Name == "." {
			found = true
			if e.Attrs.Permissions&modeTypeMask != modeDir || !strings.HasPrefix(e.LongName, "d") {
				t.Errorf(`"." listed as %o %q, want a directory`, e.Attrs.Permissions, e.LongName)
			}
		}
	}
	if !found {
		t.Error(`READDIR lacks "."`)
	}
}

// TestQuotaCreateThroughDanglingLink: OPEN with CREAT through a symbolic
// link to nothing creates a file, which is charged like any new file.
// The link's existence made OPEN take the file for an existing one: no
// file was charged, and without TRUNC the link's length in bytes was taken
// for the file's size, while REMOVE of the file released both, so each
// round of link, create, remove left the account one file and up to a
// path's length of bytes beyond its quota.
func TestQuotaCreateThroughDanglingLink(t *testing.T) {
	q := &testQuota{limit: 10000}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	target := strings.Repeat("./", 100) + "f"
	for _, flags := range []uint32{fxfWrite | fxfCreat, fxfWrite | fxfCreat | fxfTrunc, fxfRead | fxfWrite | fxfCreat} {
		rc.send(&twoPathReq{Type: fxpSymlink, ID: rc.nextID(), First: target, Second: "/l"})
		rc.expectStatus(StatusOK)
		rc.send(&openReq{ID: rc.nextID(), Path: "/l", PFlags: flags})
		h := rc.handle()
		rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: bytes.Repeat([]byte("x"), 100)})
		rc.expectStatus(StatusOK)
		rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
		rc.expectStatus(StatusOK)
		q.wantUsage(t, 100, 1)
		for _, p := range []string{"/f", "/l"} {
			rc.send(&pathReq{Type: fxpRemove, ID: rc.nextID(), Path: p})
			rc.expectStatus(StatusOK)
		}
		q.wantUsage(t, 0, 0)
	}
}

// TestUsersGroupsByIDHidesHostAccounts: users-groups-by-id@openssh.com
// names the server's own user and group and the owners of files the
// session listed, not any id asked for: a confined account could read
// every host account and group name, which a chrooted sftp-server does
// not reveal.
func TestUsersGroupsByIDHidesHostAccounts(t *testing.T) {
	other := uint32(1) // daemon on Debian; any host id that owns nothing here
	if uint32(os.Getuid()) == other || uint32(os.Getgid()) == other {
		t.Skip("the test runs as uid or gid 1")
	}
	ownUser, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skipf("own uid has no name: %v", err)
	}
	if _, err := user.LookupId("1"); err != nil {
		t.Skipf("uid 1 has no name here: %v", err)
	}
	ts := startServer(t, nil)
	rc := ts.raw(t)
	ask := func(uids ...uint32) []string {
		t.Helper()
		var ub []byte
		for _, u := range uids {
			ub = binary.BigEndian.AppendUint32(ub, u)
		}
		rc.send(&extendedReq{ID: rc.nextID(), Request: "users-groups-by-id@openssh.com",
			Data: wire.AppendString(wire.AppendString(nil, ub), nil)})
		p := rc.recv()
		var r extendedReplyMsg
		if !r.unmarshal(p) {
			t.Fatalf("reply %x", p)
		}
		users := wire.NewReader(wire.NewReader(r.Data).Bytes())
		var names []string
		for range uids {
			names = append(names, users.String())
		}
		if !users.Done() {
			t.Fatalf("reply %x", p)
		}
		return names
	}
	got := ask(uint32(os.Getuid()), other)
	if got[0] != ownUser.Username || got[1] != "" {
		t.Fatalf("names %q, want [%q \"\"]", got, ownUser.Username)
	}

	// Once a listing showed a file of uid 1, its name is known.
	ts.write(t, "owned", "x")
	if err := os.Lchown(filepath.Join(ts.root, "owned"), int(other), -1); err != nil {
		t.Skipf("cannot give a file to uid 1: %v", err)
	}
	rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: "/"})
	h := rc.handle()
	rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: h})
	rc.recv()
	if got := ask(other); got[0] == "" {
		t.Errorf("uid 1, owner of a listed file, has no name")
	}
}

// TestHomeModeAndOwnerKept: the home's permissions and owner cannot be
// changed, by name, through a link to it or by handle (a chroot
// directory is root's for sftp-server): mode 000 locked an account out
// of its home for good, since the server's user could then look nothing
// up in it. Its times may still be set, and files in it keep working.
func TestHomeModeAndOwnerKept(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "x")
	if err := os.Symlink(".", filepath.Join(ts.root, "self")); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(ts.root)
	if err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	perm := Attrs{Flags: AttrPermissions, Permissions: 0}
	for _, p := range []string{"/", ".", "/self", "/self/"} {
		rc.send(&setstatReq{ID: rc.nextID(), Path: p, Attrs: perm})
		rc.expectStatus(StatusPermissionDenied)
	}
	// "" names nothing, as for sftp-server's chmod("").
	rc.send(&setstatReq{ID: rc.nextID(), Path: "", Attrs: perm})
	rc.expectStatus(StatusNoSuchFile)
	rc.send(&extendedReq{ID: rc.nextID(), Request: "lsetstat@openssh.com",
		Data: (&setstatReq{Path: "/", Attrs: perm}).appendTo(nil)[5:]})
	rc.expectStatus(StatusPermissionDenied)
	rc.send(&setstatReq{ID: rc.nextID(), Path: "/", Attrs: Attrs{Flags: AttrUIDGID, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}})
	rc.expectStatus(StatusPermissionDenied)
	rc.send(&openReq{ID: rc.nextID(), Path: "/", PFlags: fxfRead})
	h := rc.handle()
	rc.send(&fsetstatReq{ID: rc.nextID(), Handle: h, Attrs: perm})
	rc.expectStatus(StatusPermissionDenied)
	rc.send(&setstatReq{ID: rc.nextID(), Path: "/", Attrs: Attrs{Flags: AttrACModTime, ATime: 1e9, MTime: 1e9}})
	rc.expectStatus(StatusOK)
	after, err := os.Stat(ts.root)
	if err != nil {
		t.Fatal(err)
	}
	if after.Mode() != before.Mode() {
		t.Fatalf("home mode %v, was %v", after.Mode(), before.Mode())
	}
	// Files in the home and the link itself are still the account's.
	rc.send(&setstatReq{ID: rc.nextID(), Path: "/f", Attrs: Attrs{Flags: AttrPermissions, Permissions: 0o600}})
	rc.expectStatus(StatusOK)
	rc.send(&extendedReq{ID: rc.nextID(), Request: "lsetstat@openssh.com",
		Data: (&setstatReq{Path: "/self", Attrs: Attrs{Flags: AttrUIDGID, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}}).appendTo(nil)[5:]})
	rc.expectStatus(StatusOK)
}

// TestQuotaRemovedWhileOpen: a file removed while a handle holds it open
// was released as it stood by REMOVE; what the handle writes to it
// afterwards is charged while it is open (it fills the disk) and given
// back at CLOSE, when the data goes. It stayed charged for good: each
// rclone or lftp retry that reopened a file another session replaced
// left the account more used than its home, up to refusing uploads to an
// empty home.
func TestQuotaRemovedWhileOpen(t *testing.T) {
	q := &testQuota{limit: 2000}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	rc.put("/f", 900)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead | fxfWrite})
	h := rc.handle()
	rc.send(&pathReq{Type: fxpRemove, ID: rc.nextID(), Path: "/f"})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 0, 0)
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 900, Data: bytes.Repeat([]byte("y"), 500)})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 500, 0)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 0, 0)
}

// TestQuotaTruncateRemovedFile: truncating (FSETSTAT) a file whose last
// name was removed gives back only what was charged since the removal:
// REMOVE already released the rest. It released the file's whole size a
// second time, so "upload, open, remove, truncate to 0" took an account's
// other files off its usage and let it upload past its quota without end.
func TestQuotaTruncateRemovedFile(t *testing.T) {
	q := &testQuota{limit: 2000}
	opts := &Options{Quota: q, QuotaLock: new(QuotaLock)}
	ts := startServer(t, opts)
	rc := ts.raw(t)
	rc.put("/kept", 900)
	rc.put("/f", 900)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead | fxfWrite})
	h := rc.handle()
	// Removed by another session of the account, as a client's retry
	// or a second client would.
	rc2 := ts.another(t, opts).raw(t)
	rc2.send(&pathReq{Type: fxpRemove, ID: rc2.nextID(), Path: "/f"})
	rc2.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 900, Data: bytes.Repeat([]byte("y"), 300)})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 1200, 1)
	rc.send(&fsetstatReq{ID: rc.nextID(), Handle: h, Attrs: Attrs{Flags: AttrSize, Size: 100}})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
	rc.send(&fsetstatReq{ID: rc.nextID(), Handle: h, Attrs: Attrs{Flags: AttrSize, Size: 400}})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 1200, 1)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
}

// refuseWriteFS refuses to open one path for writing, as a 0444 file
// does when ferry does not run as root.
type refuseWriteFS struct {
	vfs.FS
	path string
}

func (f *refuseWriteFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if name == f.path && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.FS.OpenFile(name, flag, perm)
}

// TestQuotaRefusedOverwriteChargesNothing: an upload over a file that
// may not be written (the atomic upload's probe fails) is refused and
// charges nothing. It kept the file it had reserved for the upload, one
// more at each refused attempt.
func TestQuotaRefusedOverwriteChargesNothing(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "ro"), []byte("keep"), 0o444); err != nil {
		t.Fatal(err)
	}
	base, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	q := &testQuota{limit: 1 << 20, bytes: 4, files: 1}
	ts := serveWithFS(t, root, &refuseWriteFS{FS: base, path: "/ro"}, &Options{Quota: q})
	rc := ts.raw(t)
	for range 3 {
		rc.send(&openReq{ID: rc.nextID(), Path: "/ro", PFlags: fxfWrite | fxfCreat | fxfTrunc})
		if s := rc.status(); s.Code != StatusPermissionDenied {
			t.Fatalf("OPEN over a read-only file: %d %q", s.Code, s.Message)
		}
	}
	q.wantUsage(t, 4, 1)
}
