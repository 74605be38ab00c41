package sftp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// startInterruptedUpload opens an atomic upload of p and writes data
// through it, in a session of its own that the caller ends with wait.
func startInterruptedUpload(t *testing.T, ts *testServer, opts *Options, p string, data []byte) *testServer {
	t.Helper()
	up := ts.another(t, opts)
	rc := up.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: p, PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: data})
	rc.expectStatus(StatusOK)
	return up
}

// TestInterruptedUploadNotKeptOverNewerFile: a client whose connection
// drops reconnects and uploads the file again, often before the server
// has noticed the dead connection (ClientAliveInterval, TCP keepalive),
// and two clients may upload one file at once. The dropped session's
// upload was renamed over the target when its session ended, replacing
// the complete file uploaded since with a partial one. What arrived is
// kept only when the target is still the file that stood at OPEN (or is
// still absent); otherwise the newer file stays.
func TestInterruptedUploadNotKeptOverNewerFile(t *testing.T) {
	complete := bytes.Repeat([]byte("C"), 500)
	partial := bytes.Repeat([]byte("p"), 200)
	cases := []struct {
		name   string
		before string // the target's content at OPEN; "" absent
		change func(t *testing.T, rc *rawClient)
		want   string // "" absent
	}{
		{"replaced by a newer upload", "old", func(t *testing.T, rc *rawClient) {
			rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
			h := rc.handle()
			rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: complete})
			rc.expectStatus(StatusOK)
			rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
			rc.expectStatus(StatusOK)
		}, string(complete)},
		{"created by a newer upload", "", func(t *testing.T, rc *rawClient) {
			rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
			h := rc.handle()
			rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: complete})
			rc.expectStatus(StatusOK)
			rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
			rc.expectStatus(StatusOK)
		}, string(complete)},
		{"written in place", "old", func(t *testing.T, rc *rawClient) {
			rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite})
			h := rc.handle()
			rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 3, Data: complete})
			rc.expectStatus(StatusOK)
			rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
			rc.expectStatus(StatusOK)
		}, "old" + string(complete)},
		{"removed", "old", func(t *testing.T, rc *rawClient) {
			rc.send(&pathReq{Type: fxpRemove, ID: rc.nextID(), Path: "/f"})
			rc.expectStatus(StatusOK)
		}, ""},
		{"unchanged", "old", func(t *testing.T, rc *rawClient) {}, string(partial)},
		{"still absent", "", func(t *testing.T, rc *rawClient) {}, string(partial)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &testQuota{limit: 1 << 20}
			opts := &Options{KeepInterruptedUploads: true, Quota: q, QuotaLock: new(QuotaLock)}
			ts := startServer(t, opts)
			rc := ts.raw(t)
			if tc.before != "" {
				rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
				h := rc.handle()
				rc.send(&writeReq{ID: rc.nextID(), Handle: h, Data: []byte(tc.before)})
				rc.expectStatus(StatusOK)
				rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
				rc.expectStatus(StatusOK)
			}
			dropped := startInterruptedUpload(t, ts, opts, "/f", partial)
			tc.change(t, rc)
			if err := dropped.wait(); err != nil {
				t.Fatalf("Serve = %v", err)
			}
			got, err := os.ReadFile(filepath.Join(ts.root, "f"))
			switch {
			case tc.want == "" && !os.IsNotExist(err):
				t.Fatalf("f holds %q (%v), want it absent", got, err)
			case tc.want != "" && string(got) != tc.want:
				t.Fatalf("f holds %q (%v), want %q", got, err, tc.want)
			}
			if tmp := listTemps(t, ts.root); len(tmp) != 0 {
				t.Fatalf("temporary files left: %v", tmp)
			}
			ts.wantRealUsage(t, q)
		})
	}
}

// TestInterruptedUploadNotKeptUnderNoOverwrite: under NoOverwrite (an
// upload-only drop box) a kept partial file can be neither resumed nor
// replaced (both write to an existing file), and with NoDelete not
// removed either: the customer's retry failed with Permission denied for
// good. Such an upload is discarded, so the retry uploads it anew.
func TestInterruptedUploadNotKeptUnderNoOverwrite(t *testing.T) {
	q := &testQuota{limit: 1 << 20}
	opts := &Options{KeepInterruptedUploads: true, Quota: q, QuotaLock: new(QuotaLock),
		Permissions: Permissions{NoOverwrite: true, NoDelete: true}}
	ts := startServer(t, opts)
	dropped := startInterruptedUpload(t, ts, opts, "/report.pdf", []byte("partial"))
	if err := dropped.wait(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := os.Stat(filepath.Join(ts.root, "report.pdf")); !os.IsNotExist(err) {
		t.Fatalf("the interrupted upload was kept under NoOverwrite: %v", err)
	}
	rc := ts.raw(t)
	rc.put("/report.pdf", 100) // the client's retry
	ts.wantRealUsage(t, q)
}
