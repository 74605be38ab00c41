package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferry-sftp/ferry/store"
)

// accountMemoTTL is how long one connection reuses an account (and its
// authorized keys) it read: long enough to cover its authentication
// exchange and the session that follows at once (a login asked the
// database up to five times for the same row, about a tenth of its server
// CPU), short enough that a change made in the database still applies to
// the next login and to sessions opened later on a long-lived connection.
const accountMemoTTL = 2 * time.Second

// accountMemoMax bounds the memo: connections in authentication are bounded
// by max_startups (hundreds), so this is only reached under a flood, when
// expired entries are swept and, if that is not enough, all are dropped.
const accountMemoMax = 8192

// accountMemoMaxKeys bounds the authorized keys the memo holds in all: a
// flood of connections authenticating to an account with many keys must
// not keep a copy of them per connection. An entry that would go over
// keeps the account only; its connection reads the keys each time.
const accountMemoMaxKeys = 16384

// accountMemo remembers account lookups, with the account's authorized
// keys, per connection (keyed by session ID and user). It never shares a
// read between connections: each connection's first lookup goes to the
// database, for known and unknown users alike, so both still take the
// same path.
type accountMemo struct {
	mu      sync.Mutex
	m       map[string]accountMemoEntry
	keys    int // authorized keys held by the entries of m
	inserts uint64
}

// accountMemoSweep is how many inserts pass between sweeps of expired
// entries.
const accountMemoSweep = 64

type accountMemoEntry struct {
	acct        *store.Account
	keys        []*store.AuthorizedKey
	keysOmitted bool  // over accountMemoMaxKeys: keys not kept
	err         error // nil or store.ErrNotFound
	at          time.Time
}

// lookup returns the account of user; login also returns its authorized
// keys. Authentication's reads are one store.LookupLogin per connection.
func (m *accountMemo) lookup(ctx context.Context, st store.Store, sessionID []byte, user string, now time.Time) (*store.Account, error) {
	e := m.read(ctx, st, sessionID, user, now, false)
	return e.acct, e.err
}

func (m *accountMemo) login(ctx context.Context, st store.Store, sessionID []byte, user string, now time.Time) (*store.Account, []*store.AuthorizedKey, error) {
	e := m.read(ctx, st, sessionID, user, now, false)
	if e.keysOmitted {
		return st.LookupLogin(ctx, user)
	}
	return e.acct, e.keys, e.err
}

// take is lookup for a connection's last read of the login, its first
// session's: it removes the entry, so that idle connections leave nothing
// in the memo (issue 8's idle budget) and later sessions read the
// database again.
func (m *accountMemo) take(ctx context.Context, st store.Store, sessionID []byte, user string, now time.Time) (*store.Account, error) {
	e := m.read(ctx, st, sessionID, user, now, true)
	return e.acct, e.err
}

func (m *accountMemo) read(ctx context.Context, st store.Store, sessionID []byte, user string, now time.Time, take bool) accountMemoEntry {
	key := string(sessionID) + "\x00" + user
	m.mu.Lock()
	if e, ok := m.m[key]; ok {
		if take {
			m.remove(key)
		}
		if now.Sub(e.at) < accountMemoTTL && !now.Before(e.at) {
			m.mu.Unlock()
			return e
		}
	}
	m.mu.Unlock()
	if take {
		// A session needs the account, not the keys.
		acct, err := st.LookupAccount(ctx, user)
		return accountMemoEntry{acct: acct, err: err}
	}
	acct, keys, err := st.LookupLogin(ctx, user)
	e := accountMemoEntry{acct: acct, keys: keys, err: err, at: now}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return e // a failing database is asked again next time
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]accountMemoEntry)
	}
	// Sweep expired entries every accountMemoSweep inserts (and at the
	// bound), so the memo holds about the connections of the last few
	// seconds, not every account read since the last flood.
	m.inserts++
	if m.inserts%accountMemoSweep == 0 || len(m.m) >= accountMemoMax {
		for k, e := range m.m {
			if now.Sub(e.at) >= accountMemoTTL || now.Before(e.at) {
				m.remove(k)
			}
		}
		if len(m.m) >= accountMemoMax {
			clear(m.m)
			m.keys = 0
		}
	}
	m.remove(key) // an expired entry of this connection
	kept := e
	if m.keys+len(e.keys) > accountMemoMaxKeys {
		kept.keys, kept.keysOmitted = nil, true
	}
	m.keys += len(kept.keys)
	m.m[key] = kept
	return e
}

// remove deletes the entry for key, if any; m.mu is held.
func (m *accountMemo) remove(key string) {
	if e, ok := m.m[key]; ok {
		m.keys -= len(e.keys)
		delete(m.m, key)
	}
}
