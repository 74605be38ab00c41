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
