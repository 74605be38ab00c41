package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/store"
)

type lookupCounter struct {
	store.Store
	calls int
	err   error
	nkeys int // keys of every account; 0 means 1
}

func (c *lookupCounter) LookupLogin(ctx context.Context, name string) (*store.Account, []*store.AuthorizedKey, error) {
	acct, err := c.LookupAccount(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	keys := []*store.AuthorizedKey{{Account: name, Line: "key of " + name}}
	for len(keys) < c.nkeys {
		keys = append(keys, keys[0])
	}
	return acct, keys, nil
}

func (c *lookupCounter) LookupAccount(ctx context.Context, name string) (*store.Account, error) {
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	if name == "nobody" {
		return nil, store.ErrNotFound
	}
	return &store.Account{Name: name}, nil
}

// TestAccountMemo: one connection reads its account once within the TTL,
// for known and unknown users alike; other connections, later reads and
// failing databases go to the store.
func TestAccountMemo(t *testing.T) {
	st := &lookupCounter{}
	var m accountMemo
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	sidA, sidB := []byte("session-a"), []byte("session-b")

	for range 3 {
		if a, err := m.lookup(ctx, st, sidA, "alice", t0); err != nil || a.Name != "alice" {
			t.Fatalf("lookup: %v %v", a, err)
		}
	}
	if st.calls != 1 {
		t.Fatalf("%d store reads for one connection, want 1", st.calls)
	}
	for range 2 {
		if _, err := m.lookup(ctx, st, sidA, "nobody", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	}
	if st.calls != 2 {
		t.Fatalf("unknown user: %d store reads in total, want 2 (memoized like a known one)", st.calls)
	}
	m.lookup(ctx, st, sidB, "alice", t0)
	if st.calls != 3 {
		t.Fatal("another connection reused the first one's read")
	}
	m.lookup(ctx, st, sidA, "alice", t0.Add(accountMemoTTL))
	if st.calls != 4 {
		t.Fatal("a read older than accountMemoTTL was reused")
	}
	st.err = errors.New("database down")
	m.lookup(ctx, st, []byte("session-c"), "alice", t0)
	st.err = nil
	if a, err := m.lookup(ctx, st, []byte("session-c"), "alice", t0); err != nil || a == nil || st.calls != 6 {
		t.Fatalf("a database error was memoized: %v %v, %d reads", a, err, st.calls)
	}
}

// TestAccountMemoBounded: a flood of connections cannot grow the memo past
// accountMemoMax.
func TestAccountMemoBounded(t *testing.T) {
	st := &lookupCounter{}
	var m accountMemo
	t0 := time.Unix(1000, 0)
	for i := range accountMemoMax + 100 {
		m.lookup(context.Background(), st, []byte{byte(i), byte(i >> 8), byte(i >> 16)}, "alice", t0)
	}
	if len(m.m) > accountMemoMax {
		t.Fatalf("memo holds %d entries, bound %d", len(m.m), accountMemoMax)
	}
}

// TestAccountMemoSweeps: expired entries go within accountMemoSweep
// inserts, so the memo does not keep every account read.
func TestAccountMemoSweeps(t *testing.T) {
	st := &lookupCounter{}
	var m accountMemo
	t0 := time.Unix(1000, 0)
	for i := range 100 {
		m.lookup(context.Background(), st, []byte{byte(i)}, "alice", t0)
	}
	later := t0.Add(accountMemoTTL)
	for i := range accountMemoSweep {
		m.lookup(context.Background(), st, []byte{byte(i), 1}, "alice", later)
	}
	if len(m.m) > accountMemoSweep {
		t.Fatalf("memo holds %d entries after a sweep, want at most %d", len(m.m), accountMemoSweep)
	}
}

// TestAccountMemoTake: take reuses the connection's memoized read and
// removes it, so an idle connection leaves nothing in the memo; a take
// without an entry reads the store and memoizes nothing.
func TestAccountMemoTake(t *testing.T) {
	st := &lookupCounter{}
	var m accountMemo
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	sid := []byte("session-a")
	m.lookup(ctx, st, sid, "alice", t0)
	if a, err := m.take(ctx, st, sid, "alice", t0); err != nil || a.Name != "alice" || st.calls != 1 {
		t.Fatalf("take: %v %v, %d store reads, want the memoized one", a, err, st.calls)
	}
	if len(m.m) != 0 {
		t.Fatalf("%d entries left after take", len(m.m))
	}
	if a, err := m.take(ctx, st, sid, "alice", t0); err != nil || a.Name != "alice" || st.calls != 2 {
		t.Fatalf("second take: %v %v, %d store reads, want a fresh read", a, err, st.calls)
	}
	if len(m.m) != 0 {
		t.Fatalf("take memoized a read: %d entries", len(m.m))
	}
	// An expired entry is removed too, and not used.
	m.lookup(ctx, st, sid, "alice", t0)
	m.take(ctx, st, sid, "alice", t0.Add(accountMemoTTL))
	if st.calls != 4 || len(m.m) != 0 {
		t.Fatalf("expired entry: %d store reads, %d entries", st.calls, len(m.m))
	}
}

// TestAccountMemoLogin: the methods query, the key query and the signed
// request of one authentication share one read of account and keys.
func TestAccountMemoLogin(t *testing.T) {
	st := &lookupCounter{}
	var m accountMemo
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	sid := []byte("session-a")
	if _, err := m.lookup(ctx, st, sid, "alice", t0); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		acct, keys, err := m.login(ctx, st, sid, "alice", t0)
		if err != nil || acct.Name != "alice" || len(keys) != 1 || keys[0].Line != "key of alice" {
			t.Fatalf("login: %v %v %v", acct, keys, err)
		}
	}
	if st.calls != 1 {
		t.Fatalf("%d store reads, want 1", st.calls)
	}
	if _, keys, err := m.login(ctx, st, sid, "nobody", t0); !errors.Is(err, store.ErrNotFound) || keys != nil {
		t.Fatalf("unknown user: %v %v", keys, err)
	}
}

// TestAccountMemoKeysBounded: the memo holds at most accountMemoMaxKeys
// authorized keys in all; a connection whose keys would go over keeps only
// its account and reads the keys from the store each time.
func TestAccountMemoKeysBounded(t *testing.T) {
	st := &lookupCounter{nkeys: accountMemoMaxKeys/2 + 1}
	var m accountMemo
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	a, b := []byte("session-a"), []byte("session-b")
	for range 2 {
		if _, keys, err := m.login(ctx, st, a, "alice", t0); err != nil || len(keys) != st.nkeys {
			t.Fatalf("login a: %d keys, %v", len(keys), err)
		}
	}
	if st.calls != 1 {
		t.Fatalf("%d store reads for the first connection, want 1", st.calls)
	}
	for range 2 {
		if _, keys, err := m.login(ctx, st, b, "alice", t0); err != nil || len(keys) != st.nkeys {
			t.Fatalf("login b: %d keys, %v", len(keys), err)
		}
	}
	if st.calls != 3 {
		t.Fatalf("%d store reads in all, want 3 (the second connection's keys are not kept)", st.calls)
	}
	if m.keys > accountMemoMaxKeys {
		t.Fatalf("memo holds %d keys, bound %d", m.keys, accountMemoMaxKeys)
	}
	// take frees the first connection's keys: the next one keeps its own.
	m.take(ctx, st, a, "alice", t0)
	if m.keys != 0 {
		t.Fatalf("%d keys held after take, want 0", m.keys)
	}
	m.login(ctx, st, []byte("session-c"), "alice", t0)
	if m.keys != st.nkeys {
		t.Fatalf("%d keys held, want the third connection's %d", m.keys, st.nkeys)
	}
}
