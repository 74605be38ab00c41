package scp

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// lockedQuota is an account store that cannot record a charge.
type lockedQuota struct{}

func (lockedQuota) Reserve(context.Context, int64, int64) error {
	return errors.New("store: add usage \"alice\": database is locked (5) (SQLITE_BUSY)")
}

func (lockedQuota) Release(context.Context, int64, int64) {}

// TestSinkQuotaStoreFailure: an upload whose charge the store could not
// record fails with "Failure", not "Disk quota exceeded", which sent
// customers to ask for more space while the database was restarting.
func TestSinkQuotaStoreFailure(t *testing.T) {
	root := t.TempDir()
	out, _, st := run(t, root, "scp -t .", "C0644 3 f\nabc\x00", &Options{Quota: lockedQuota{}})
	if want := "\x00\x01scp: /f: Failure\n"; out != want || st != 1 {
		t.Errorf("out %q status %d, want %q status 1", out, st, want)
	}
	noTemps(t, root)
	if _, err := os.Lstat(filepath.Join(root, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused upload left f: %v", err)
	}
}
