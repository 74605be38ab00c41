package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/store"
)

// lockedUsageStore fails usage changes while locked is set, as SQLite
// does behind another process's write lock (SQLITE_BUSY after the busy
// timeout) and PostgreSQL while it restarts.
type lockedUsageStore struct {
	store.Store
	locked atomic.Bool
}

func (s *lockedUsageStore) AddUsage(ctx context.Context, name string, bytes, files int64) (bool, error) {
	if s.locked.Load() {
		return false, errors.New("database is locked (5) (SQLITE_BUSY)")
	}
	return s.Store.AddUsage(ctx, name, bytes, files)
}

// TestQuotaReleaseLostIsRecounted: a removal whose release the store
// could not record left the account charged for the removed file, with
// no log line, until the daemon restarted or an admin ran a recount; the
// failure is now logged and the account's next session recounts the
// home.
func TestQuotaReleaseLostIsRecounted(t *testing.T) {
	dir := t.TempDir()
	st := &lockedUsageStore{Store: openSQLiteStore(t, dir)}
	addAccount(t, st, "fay", "pw-fay", 1<<20)
	home := filepath.Join(dir, "home", "fay")
	writeFile(t, filepath.Join(home, "f"), 1000)
	var logs testenv.LockedBuffer
	d := &Daemon{st: st, log: slog.New(slog.NewTextHandler(&logs, nil)), recounts: make(map[string]*homeRecount)}
	ctx := context.Background()
	acct, err := st.LookupAccount(ctx, "fay")
	if err != nil {
		t.Fatal(err)
	}
	lock := new(sftp.QuotaLock)
	d.recountOnce(ctx, acct, home, lock) // the first session: 1000 bytes in 1 file

	// A session removes f while the database is locked.
	if err := os.Remove(filepath.Join(home, "f")); err != nil {
		t.Fatal(err)
	}
	st.locked.Store(true)
	d.storeQuota("fay").Release(ctx, 1000, 1)
	st.locked.Store(false)
	if !strings.Contains(logs.String(), "level=WARN msg=\"quota usage not given back") {
		t.Errorf("lost release not logged:\n%s", logs.String())
	}

	d.recountOnce(ctx, acct, home, lock) // the next session
	acct, err = st.LookupAccount(ctx, "fay")
	if err != nil {
		t.Fatal(err)
	}
	if acct.UsedBytes != 0 || acct.UsedFiles != 0 {
		t.Errorf("after the next session: %d bytes in %d files charged for an empty home", acct.UsedBytes, acct.UsedFiles)
	}
}

// TestStoreQuotaRefusal: the store's refusal reaches sftp and scp as
// sftp.ErrQuotaExceeded ("quota exceeded"), and its failures do not.
func TestStoreQuotaRefusal(t *testing.T) {
	dir := t.TempDir()
	st := &lockedUsageStore{Store: openSQLiteStore(t, dir)}
	addAccount(t, st, "gil", "pw-gil", 100)
	d := &Daemon{st: st, log: slog.New(slog.DiscardHandler), recounts: make(map[string]*homeRecount)}
	q := d.storeQuota("gil")
	if err := q.Reserve(context.Background(), 101, 1); !errors.Is(err, sftp.ErrQuotaExceeded) {
		t.Errorf("Reserve past the quota: %v, want sftp.ErrQuotaExceeded", err)
	}
	st.locked.Store(true)
	if err := q.Reserve(context.Background(), 1, 1); err == nil || errors.Is(err, sftp.ErrQuotaExceeded) {
		t.Errorf("Reserve with the store locked: %v, want the store's error", err)
	}
}

// stalledUsageStore never answers a usage change before its context
// ends, as PostgreSQL waits behind LOCK TABLE accounts in another session.
type stalledUsageStore struct{ store.Store }

func (stalledUsageStore) AddUsage(ctx context.Context, _ string, _, _ int64) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

// TestStoreQuotaBounded: a charge or release against a stalled store
// ends with the quota's timeout. A charge waited as long as the stall,
// holding the account's QuotaLock, so every write and removal of the
// account in all its sessions waited with it.
func TestStoreQuotaBounded(t *testing.T) {
	var lost atomic.Int32
	q := storeQuota{st: stalledUsageStore{}, account: "hal", timeout: time.Millisecond,
		releaseFailed: func(int64, int64, error) { lost.Add(1) }}
	done := make(chan error, 1)
	go func() {
		err := q.Reserve(context.Background(), 1, 1)
		q.Release(context.Background(), 1, 1)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sftp.ErrQuotaExceeded) {
			t.Errorf("Reserve against a stalled store: %v, want the deadline's error", err)
		}
		if lost.Load() != 1 {
			t.Errorf("a release that timed out was reported %d times, want once", lost.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reserve against a stalled store did not return")
	}
	if dq := (&Daemon{}).storeQuota("hal"); dq.timeout != quotaStoreTimeout {
		t.Errorf("the daemon's quota has timeout %v, want %v", dq.timeout, quotaStoreTimeout)
	}
}
