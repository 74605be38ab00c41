package sftp

import (
	"testing"
)

// TestAppendToOwnPendingUpload: sshfs sends "echo one > f; echo two >> f"
// as an upload and then an OPEN for appending, which may arrive before
// the upload's CLOSE (FUSE releases a file asynchronously). With the
// upload still under its temporary name the OPEN failed with No such
// file for a new file, and for an existing one appended to the previous
// version, which the CLOSE then replaced: the append was lost. The
// upload is put in place for such an OPEN.
func TestAppendToOwnPendingUpload(t *testing.T) {
	for _, existing := range []bool{false, true} {
		q := &testQuota{limit: 1 << 20}
		ts := startServer(t, &Options{Quota: q, QuotaLock: new(QuotaLock)})
		rc := ts.raw(t)
		if existing {
			rc.put("/f", 50)
		}
		rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
		h1 := rc.handle()
		rc.send(&writeReq{ID: rc.nextID(), Handle: h1, Data: []byte("one\n")})
		rc.expectStatus(StatusOK)
		// The second OPEN before the first handle's CLOSE.
		rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfAppend})
		h2 := rc.handle()
		rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h1})
		rc.expectStatus(StatusOK)
		rc.send(&writeReq{ID: rc.nextID(), Handle: h2, Data: []byte("two\n")})
		rc.expectStatus(StatusOK)
		rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h2})
		rc.expectStatus(StatusOK)
		if got := ts.read(t, "f"); got != "one\ntwo\n" {
			t.Fatalf("existing=%v: f = %q, want %q", existing, got, "one\ntwo\n")
		}
		if tmp := listTemps(t, ts.root); len(tmp) != 0 {
			t.Fatalf("temporary files left: %v", tmp)
		}
		q.wantUsage(t, 8, 1)
	}
}
