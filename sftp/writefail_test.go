package sftp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestPipelinedWritesPastQuota: an in-place upload whose pipelined
// WRITEs run past the quota logs the refusal once, not once per WRITE
// (psftp's reput wrote some 600 lines in 150 ms), and its transfer record
// says it failed: it said "ok" with the bytes written before the refusal,
// and the file kept only those.
func TestPipelinedWritesPastQuota(t *testing.T) {
	var logs testenv.LockedBuffer
	q := &testQuota{limit: 10000}
	ts := startServer(t, &Options{Quota: q, QuotaLock: new(QuotaLock), DirectUploads: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	const writes = 12
	block := bytes.Repeat([]byte("w"), 4096)
	for i := range writes {
		rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: uint64(i) * 4096, Data: block})
	}
	failed := 0
	for range writes {
		switch s := rc.status(); s.Code {
		case StatusOK:
		case StatusFailure:
			failed++
		default:
			t.Fatalf("WRITE status %d (%q)", s.Code, s.Message)
		}
	}
	if failed == 0 {
		t.Fatalf("all %d WRITEs of 4 KiB succeeded under a 10000-byte quota", writes)
	}
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	if n := strings.Count(logs.String(), "quota refused a write"); n != 1 {
		t.Errorf("%d WRITEs refused, logged %d times; want once:\n%s", failed, n, logs.String())
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.records) != 1 || ts.records[0].Result != "failed: a write failed" {
		t.Errorf("transfer records %+v, want one with result \"failed: a write failed\"", ts.records)
	}
}

// TestFailedUploadFreesItsSpace: an atomic upload whose WRITE failed is
// discarded at CLOSE, and gives its space back at once. It held it until
// CLOSE, so parallel uploads near the quota (rclone's four) each failed
// at a share of what was left, at every retry, though one of them fit.
func TestFailedUploadFreesItsSpace(t *testing.T) {
	q := &testQuota{limit: 10000}
	ts := startServer(t, &Options{Quota: q, QuotaLock: new(QuotaLock)})
	rc := ts.raw(t)
	open := func(name string) []byte {
		rc.send(&openReq{ID: rc.nextID(), Path: name, PFlags: fxfWrite | fxfCreat | fxfTrunc})
		return rc.handle()
	}
	write := func(h []byte, off, n int) statusMsg {
		rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: uint64(off), Data: bytes.Repeat([]byte("x"), n)})
		return rc.status()
	}
	a, b := open("/a"), open("/b")
	if s := write(a, 0, 6000); s.Code != StatusOK {
		t.Fatalf("a's first WRITE: %d %q", s.Code, s.Message)
	}
	if s := write(b, 0, 3000); s.Code != StatusOK {
		t.Fatalf("b's first WRITE: %d %q", s.Code, s.Message)
	}
	if s := write(b, 3000, 3000); s.Code != StatusFailure {
		t.Fatalf("b's WRITE past the quota: %d %q, want failure", s.Code, s.Message)
	}
	// b is doomed; its 3000 bytes are a's now.
	if s := write(a, 6000, 4000); s.Code != StatusOK {
		t.Fatalf("a's WRITE into the space b's failed upload held: %d %q", s.Code, s.Message)
	}
	// Later WRITEs to b are refused and charge nothing.
	if s := write(b, 0, 10); s.Code != StatusFailure {
		t.Fatalf("WRITE to a failed upload: %d %q, want failure", s.Code, s.Message)
	}
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: b})
	rc.expectStatus(StatusFailure)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: a})
	rc.expectStatus(StatusOK)
	if got := len(ts.read(t, "a")); got != 10000 {
		t.Errorf("a holds %d bytes, want 10000", got)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes != 10000 || q.files != 1 {
		t.Errorf("quota counts %d bytes in %d files, want 10000 in 1", q.bytes, q.files)
	}
}
