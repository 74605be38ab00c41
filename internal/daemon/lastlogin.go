package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ferry-sftp/ferry/store"
)

// lastLogins writes accounts' last-login times (ferry user list, show)
// off the login path. Written as each connection started, a login waited
// for the database: while `ferry user import` held SQLite's write lock
// every login stalled up to recordLoginTimeout, and the time was then
// dropped. Logins now only note the time; one goroutine writes what is
// noted, the latest time per account, and keeps what a stalled or
// failing database refused for the next attempt.
type lastLogins struct {
	st  store.Store
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]time.Time
	wake    chan struct{} // one token: something is pending
}

// maxPendingLogins bounds the times kept while the database refuses
// them: beyond it, logins of further accounts are not recorded (logged).
const maxPendingLogins = 100_000

// lastLoginRetry is how long the writer waits after a failed write
// before it tries again.
const lastLoginRetry = 2 * time.Second

func newLastLogins(st store.Store, log *slog.Logger) *lastLogins {
	return &lastLogins{st: st, log: log, pending: make(map[string]time.Time), wake: make(chan struct{}, 1)}
}

// note records that name logged in at at, to be written by run.
func (l *lastLogins) note(name string, at time.Time) {
	l.mu.Lock()
	prev, ok := l.pending[name]
	switch {
	case !ok && len(l.pending) >= maxPendingLogins:
		l.mu.Unlock()
		l.log.Warn("account store behind; last login not recorded", "user", name)
		return
	case !ok || at.After(prev):
		l.pending[name] = at
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run writes noted logins until ctx ends, then tries once more, bounded,
// for what is still pending.
func (l *lastLogins) run(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordLoginTimeout)
			l.writePending(flush)
			cancel()
			return
		case <-l.wake:
		}
		err := l.writePending(ctx)
		switch {
		case err != nil && !failing:
			failing = true
			l.log.Warn("account store failed; last login not recorded yet, will retry", "error", err)
		case err == nil && failing:
			failing = false
			l.log.Info("account store recovered; last logins recorded")
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(lastLoginRetry):
			}
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}
}

// writePending writes every pending login, each bounded by
// recordLoginTimeout; what fails stays pending unless a later login of
// the account was noted meanwhile. It returns the first error.
func (l *lastLogins) writePending(ctx context.Context) error {
	l.mu.Lock()
	batch := l.pending
	l.pending = make(map[string]time.Time, len(batch))
	l.mu.Unlock()
	var first error
	for name, at := range batch {
		if first == nil {
			wctx, cancel := context.WithTimeout(ctx, recordLoginTimeout)
			err := l.st.RecordLogin(wctx, name, at)
			cancel()
			if err == nil || errors.Is(err, store.ErrNotFound) {
				// A deleted account has no last login to keep.
				continue
			}
			first = err
		}
		// After one failure the rest wait for the retry rather than
		// each wait out its own timeout against the same database.
		l.mu.Lock()
		if prev, ok := l.pending[name]; !ok || at.After(prev) {
			l.pending[name] = at
		}
		l.mu.Unlock()
	}
	return first
}
