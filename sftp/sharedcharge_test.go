package sftp

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	pkgsftp "github.com/pkg/sftp"
)

// TestQuotaTwoHandlesOneFile: two handles writing one file in place (two
// resumed uploads, or a client's parallel chunks with atomic uploads off)
// are charged for the file once. Each handle counted from its own idea of
// the file's end, so the second was charged again for every byte the
// first had already written: 600 bytes stored, 1,200 charged, until a
// recount.
func TestQuotaTwoHandlesOneFile(t *testing.T) {
	q := &testQuota{limit: 1000}
	opts := &Options{Quota: q, QuotaLock: new(QuotaLock), DirectUploads: true}
	ts := startServer(t, opts)
	rc1 := ts.raw(t)
	rc2 := ts.another(t, opts).raw(t)

	rc1.send(&openReq{ID: rc1.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat})
	h1 := rc1.handle()
	rc2.send(&openReq{ID: rc2.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat})
	h2 := rc2.handle()
	chunk := bytes.Repeat([]byte("x"), 600)
	rc1.send(&writeReq{ID: rc1.nextID(), Handle: h1, Data: chunk})
	rc1.expectStatus(StatusOK)
	q.wantUsage(t, 600, 1)
	// The same range again through the other handle: nothing new.
	rc2.send(&writeReq{ID: rc2.nextID(), Handle: h2, Data: chunk})
	rc2.expectStatus(StatusOK)
	q.wantUsage(t, 600, 1)
	// Past the end the first wrote: only the growth.
	rc2.send(&writeReq{ID: rc2.nextID(), Handle: h2, Offset: 300, Data: chunk})
	rc2.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
	// The first handle's own idea of the end (600) is stale: writing at
	// 600 must not be charged again, and 200 more would fit only if so.
	rc1.send(&writeReq{ID: rc1.nextID(), Handle: h1, Offset: 600, Data: chunk[:100]})
	rc1.expectStatus(StatusOK)
	q.wantUsage(t, 900, 1)
	rc1.send(&handleReq{Type: fxpClose, ID: rc1.nextID(), Handle: h1})
	rc1.expectStatus(StatusOK)
	rc2.send(&handleReq{Type: fxpClose, ID: rc2.nextID(), Handle: h2})
	rc2.expectStatus(StatusOK)
	if got := ts.read(t, "f"); len(got) != 900 {
		t.Fatalf("f holds %d bytes, want 900", len(got))
	}
	q.wantUsage(t, 900, 1)
}

// TestQuotaTwoHandlesRemovedFile: a file removed while two handles have
// it open was released as it stood (100 bytes); what the handles wrote
// after is charged once and given back when the last of them closes, not
// while the other still holds the file's blocks.
func TestQuotaTwoHandlesRemovedFile(t *testing.T) {
	q := &testQuota{limit: 1000}
	opts := &Options{Quota: q, QuotaLock: new(QuotaLock), DirectUploads: true}
	ts := startServer(t, opts)
	rc1 := ts.raw(t)
	rc2 := ts.another(t, opts).raw(t)
	rc1.put("/f", 100)
	rc1.send(&openReq{ID: rc1.nextID(), Path: "/f", PFlags: fxfWrite})
	h1 := rc1.handle()
	rc2.send(&openReq{ID: rc2.nextID(), Path: "/f", PFlags: fxfWrite})
	h2 := rc2.handle()
	rc1.send(&pathReq{Type: fxpRemove, ID: rc1.nextID(), Path: "/f"})
	rc1.expectStatus(StatusOK)
	q.wantUsage(t, 0, 0)
	chunk := bytes.Repeat([]byte("x"), 300)
	rc1.send(&writeReq{ID: rc1.nextID(), Handle: h1, Data: chunk})
	rc1.expectStatus(StatusOK)
	rc2.send(&writeReq{ID: rc2.nextID(), Handle: h2, Data: chunk})
	rc2.expectStatus(StatusOK)
	q.wantUsage(t, 200, 0)
	rc1.send(&handleReq{Type: fxpClose, ID: rc1.nextID(), Handle: h1})
	rc1.expectStatus(StatusOK)
	q.wantUsage(t, 200, 0)
	rc2.send(&handleReq{Type: fxpClose, ID: rc2.nextID(), Handle: h2})
	rc2.expectStatus(StatusOK)
	q.wantUsage(t, 0, 0)
}

// TestQuotaTwoSessionsWriteOneFile: two sessions write overlapping blocks
// of one file in place at once (pipelined writes, run concurrently by
// the workers); afterwards the quota holds exactly the file's size.
func TestQuotaTwoSessionsWriteOneFile(t *testing.T) {
	q := &testQuota{limit: 1 << 30}
	opts := &Options{Quota: q, QuotaLock: new(QuotaLock), DirectUploads: true}
	ts := startServer(t, opts)
	c1 := ts.client(t)
	defer c1.Close()
	c2 := ts.another(t, opts).client(t)
	defer c2.Close()
	f1, err := c1.OpenFile("/f", os.O_WRONLY|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := c2.OpenFile("/f", os.O_WRONLY|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte("z"), 4096)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, f := range []*pkgsftp.File{f1, f2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, err := f.WriteAt(block, int64(i)*2048); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, f := range []*pkgsftp.File{f1, f2} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(ts.root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 199*2048+4096 {
		t.Fatalf("f holds %d bytes", fi.Size())
	}
	q.wantUsage(t, fi.Size(), 1)
}
