package sftp

import (
	"bytes"
	"testing"
)

// TestInterruptedUploadResumes: FileZilla retries an upload cut off by a
// dropped connection as a resume, on its own: it opens the file for
// writing, takes its size from FSTAT and appends the rest (OpenSSH's
// sftp reput does the same from STAT). With the interrupted atomic
// upload discarded, the server held the previous version, so the file
// became the old version's 100 bytes and the new file's tail, and the
// client reported success. With KeepInterruptedUploads what arrived is
// renamed into place and the resume completes the new file; a failed
// write still keeps the previous version.
func TestInterruptedUploadResumes(t *testing.T) {
	newer := bytes.Repeat([]byte("N"), 300)
	q := &testQuota{limit: 1 << 20}
	opts := &Options{KeepInterruptedUploads: true, Quota: q, QuotaLock: new(QuotaLock)}
	ts := startServer(t, opts)
	rc := ts.raw(t)
	rc.put("/page.php", 100) // charged, as an upload
	old := ts.read(t, "page.php")
	rc.send(&openReq{ID: rc.nextID(), Path: "/page.php", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: newer[:150]})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "page.php"); got != old {
		t.Fatalf("target changed during the upload: %q", got)
	}
	if err := ts.wait(); err != nil { // the connection drops without CLOSE
		t.Fatalf("Serve = %v", err)
	}
	if got := ts.read(t, "page.php"); got != string(newer[:150]) {
		t.Fatalf("after the interruption page.php holds %q", got)
	}
	if tmp := listTemps(t, ts.root); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if len(ts.records) != 2 || ts.records[1].Result != "aborted: what arrived was kept, for the client to resume" {
		t.Fatalf("transfer records %+v", ts.records)
	}

	// FileZilla's resume in a new session.
	rc2 := ts.another(t, opts).raw(t)
	rc2.send(&openReq{ID: rc2.nextID(), Path: "/page.php", PFlags: fxfWrite})
	h2 := rc2.handle()
	rc2.send(&handleReq{Type: fxpFstat, ID: rc2.nextID(), Handle: h2})
	var a attrsMsg
	if p := rc2.recv(); !a.unmarshal(p) || a.Attrs.Size != 150 {
		t.Fatalf("FSTAT for the resume: %x", p)
	}
	rc2.send(&writeReq{ID: rc2.nextID(), Handle: h2, Offset: 150, Data: newer[150:]})
	rc2.expectStatus(StatusOK)
	rc2.send(&handleReq{Type: fxpClose, ID: rc2.nextID(), Handle: h2})
	rc2.expectStatus(StatusOK)
	if got := ts.read(t, "page.php"); got != string(newer) {
		t.Fatalf("after the resume page.php holds %q", got)
	}
	q.wantUsage(t, 300, 1)
}

// TestInterruptedUploadDiscardedWithoutOption: without
// KeepInterruptedUploads (the library's default) an interrupted atomic
// upload leaves the previous version.
func TestInterruptedUploadDiscardedWithoutOption(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "previous")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: []byte("partial")})
	rc.expectStatus(StatusOK)
	if err := ts.wait(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if got := ts.read(t, "f"); got != "previous" {
		t.Fatalf("f = %q", got)
	}
}
