package sftp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// brokenQuota is an account store that cannot record a charge (its
// database is locked or restarting).
type brokenQuota struct{}

func (brokenQuota) Reserve(context.Context, int64, int64) error {
	return errors.New("store: add usage \"alice\": database is locked (5) (SQLITE_BUSY)")
}

func (brokenQuota) Release(context.Context, int64, int64) {}

// TestQuotaStoreFailureIsNotQuotaExceeded: a charge the store could not
// record fails the request as the server's fault, logged once as such;
// it was answered "quota exceeded" and logged at INFO as a refusal, so
// the customer asked for more space and the admin saw no error.
func TestQuotaStoreFailureIsNotQuotaExceeded(t *testing.T) {
	var logs testenv.LockedBuffer
	ts := startServer(t, &Options{Quota: brokenQuota{}, DirectUploads: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ts.write(t, "old", "")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/new", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	if s := rc.status(); s.Code != StatusFailure || s.Message != "Failure" {
		t.Errorf("OPEN of a new file: %d %q, want FAILURE \"Failure\"", s.Code, s.Message)
	}
	rc.send(&openReq{ID: rc.nextID(), Path: "/old", PFlags: fxfWrite})
	h := rc.handle()
	for i := range 3 {
		rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: uint64(i) * 4, Data: []byte("data")})
		if s := rc.status(); s.Code != StatusFailure || s.Message != "Failure" {
			t.Errorf("WRITE: %d %q, want FAILURE \"Failure\"", s.Code, s.Message)
		}
	}
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"sftp: quota usage could not be recorded"); n != 1 || !strings.Contains(out, "SQLITE_BUSY") {
		t.Errorf("store failure logged %d times at WARN (want once, with the store's error):\n%s", n, out)
	}
	if strings.Contains(out, "quota refused") {
		t.Errorf("store failure logged as a quota refusal:\n%s", out)
	}
}
