package sftp

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPendingUploadSeenBySession: while an atomic upload is open, its
// session's STAT, LSTAT and SETSTAT of the path act on the upload, as if
// it were written in place. sshfs looks a new file up right after
// creating it and sets its times by path ("touch -d", "cp -p"): on an
// sshfs mount "echo x > new" failed with ENOENT. Other sessions, and the
// directory, still show nothing until CLOSE.
func TestPendingUploadSeenBySession(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/new", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 0, Data: []byte("hello")})
	rc.expectStatus(StatusOK)
	for _, typ := range []byte{fxpLstat, fxpStat} {
		id := rc.nextID()
		rc.send(&pathReq{Type: typ, ID: id, Path: "/new"})
		p := rc.recv()
		var a attrsMsg
		if !a.unmarshal(p) || a.ID != id {
			var st statusMsg
			st.unmarshal(p)
			t.Fatalf("request %d of the pending upload: status %d %q", typ, st.Code, st.Message)
		}
		if a.Attrs.Flags&AttrSize == 0 || a.Attrs.Size != 5 {
			t.Errorf("request %d of the pending upload: %+v, want size 5", typ, a.Attrs)
		}
	}
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	rc.send(&setstatReq{ID: rc.nextID(), Path: "/new", Attrs: Attrs{Flags: AttrACModTime | AttrPermissions,
		ATime: uint32(mtime.Unix()), MTime: uint32(mtime.Unix()), Permissions: 0o600}})
	rc.expectStatus(StatusOK)
	if _, err := os.Lstat(filepath.Join(ts.root, "new")); !os.IsNotExist(err) {
		t.Fatalf("the upload shows at its path before CLOSE: %v", err)
	}
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	fi, err := os.Stat(filepath.Join(ts.root, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o600 || fi.Size() != 5 {
		t.Errorf("after CLOSE: mtime %v, mode %v, size %d; want %v, 0600, 5", fi.ModTime(), fi.Mode(), fi.Size(), mtime)
	}
	// With no upload open, a missing path is missing again.
	rc.send(&pathReq{Type: fxpLstat, ID: rc.nextID(), Path: "/other"})
	rc.expectStatus(StatusNoSuchFile)
}
