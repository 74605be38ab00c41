package sftp

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/vfs"
)

// removeHookFS runs beforeRemove inside Remove, i.e. after the REMOVE handler's
// Lstat and before the unlink: what another session can do in that window.
type removeHookFS struct {
	vfs.FS
	once         sync.Once
	beforeRemove func(name string)
}

func (h *removeHookFS) Remove(name string) error {
	if h.beforeRemove != nil {
		h.once.Do(func() { h.beforeRemove(name) })
	}
	return h.FS.Remove(name)
}

// serveWithFS is harness's serve with a given FS.
func serveWithFS(t *testing.T, root string, fsys vfs.FS, opts *Options) *testServer {
	ts := &testServer{root: root, done: make(chan error, 1)}
	srv := NewServer(fsys, opts)
	sr, cw := io.Pipe()
	cr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ts.cr, ts.cw = cr, cw
	go func() {
		err := srv.Serve(context.Background(), sr, sw)
		sw.Close()
		sr.Close()
		ts.done <- err
	}()
	t.Cleanup(func() { cw.Close(); cr.Close(); <-ts.done })
	return ts
}

// TestHardlinkOrderedWithRemove: hardlink@openssh.com is not ordered by
// the QuotaLock, so a link made by another session between REMOVE's Lstat
// (nlink 1) and its unlink makes REMOVE release the file although the new
// name keeps its data; removing that name releases it a second time.
func TestHardlinkOrderedWithRemove(t *testing.T) {
	root := t.TempDir()
	base, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	q := &testQuota{limit: 1 << 20}
	lock := new(QuotaLock)
	hfs := &removeHookFS{FS: base}
	ts1 := serveWithFS(t, root, hfs, &Options{Quota: q, QuotaLock: lock})
	ts2 := serveWithFS(t, root, base, &Options{Quota: q, QuotaLock: lock})
	rc1, rc2 := ts1.raw(t), ts2.raw(t)
	rc1.put("/f", 1000)
	q.wantUsage(t, 1000, 1)

	linked := make(chan uint32, 1)
	hfs.beforeRemove = func(string) {
		// Session 2 links /f -> /g while session 1's REMOVE is between
		// its Lstat and its unlink.
		go func() {
			rc2.send(&extendedReq{ID: rc2.nextID(), Request: "hardlink@openssh.com",
				Data: appendStr(appendStr(nil, "/f"), "/g")})
			linked <- rc2.status().Code
		}()
		select {
		case c := <-linked:
			t.Logf("hardlink answered %d inside REMOVE's window", c)
			linked <- c
		case <-time.After(2 * time.Second):
			t.Logf("hardlink waits for REMOVE (ordered)")
		}
	}
	rc1.send(&pathReq{Type: fxpRemove, ID: rc1.nextID(), Path: "/f"})
	rc1.expectStatus(StatusOK)
	<-linked
	if fi, err := os.Stat(filepath.Join(root, "g")); err == nil {
		t.Logf("home holds /g of %d bytes", fi.Size())
		q.wantUsage(t, fi.Size(), 1)
	} else {
		q.wantUsage(t, 0, 0)
	}
}
