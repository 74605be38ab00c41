package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/store/password"
)

// countingVerifier wraps a real Hasher and counts what PasswordLogin runs.
type countingVerifier struct {
	h              *password.Hasher
	verify, dummy  int
	hashed         int
	lastVerifyHash string
}

func (c *countingVerifier) Verify(hash, pw string) (bool, bool, error) {
	c.verify++
	c.lastVerifyHash = hash
	return c.h.Verify(hash, pw)
}
func (c *countingVerifier) DummyVerify(pw string) { c.dummy++; c.h.DummyVerify(pw) }
func (c *countingVerifier) Hash(pw string) (string, error) {
	c.hashed++
	return c.h.Hash(pw)
}

func TestPasswordLogin(t *testing.T) {
	s := sqliteFactory(t)
	ctx := t.Context()
	h, err := password.New(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	current, _ := h.Hash("right")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, a := range []*Account{
		{Name: "current", PasswordHash: current, Enabled: true},
		{Name: "legacy", PasswordHash: "$1$12345678$o2n/JiO/h5VviOInWJ4OQ/", Enabled: true}, // "password"
		{Name: "nopass", Enabled: true},
		{Name: "disabled", PasswordHash: current, Enabled: false},
		{Name: "expired", PasswordHash: current, Enabled: true, ExpiresAt: now.Add(-time.Hour)},
		{Name: "broken", PasswordHash: "$6$rounds=99999999$x$" + "y", Enabled: true},
	} {
		if err := s.CreateAccount(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, pw      string
		ok            bool
		verify, dummy int
	}{
		{"current", "right", true, 1, 0},
		{"current", "wrong", false, 1, 0},
		// Unknown users, users without a password and unusable hashes
		// cost a dummy argon2id verification.
		{"nobody", "right", false, 0, 1},
		{"nopass", "", false, 0, 1},
		{"broken", "x", false, 1, 1},
		// Disabled and expired accounts fail after the real check.
		{"disabled", "right", false, 1, 0},
		{"expired", "right", false, 1, 0},
	} {
		v := &countingVerifier{h: h}
		a, err := PasswordLogin(ctx, s, v, tc.name, tc.pw, now)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrLoginFailed)) || (tc.ok && a.Name != tc.name) {
			t.Errorf("PasswordLogin(%s, %s) = %v, %v", tc.name, tc.pw, a, err)
		}
		if v.verify != tc.verify || v.dummy != tc.dummy || v.hashed != 0 {
			t.Errorf("PasswordLogin(%s): %d verify, %d dummy, %d hash; want %d, %d, 0", tc.name, v.verify, v.dummy, v.hashed, tc.verify, tc.dummy)
		}
	}

	// A legacy hash is upgraded after a successful login, and not after a
	// failed one.
	v := &countingVerifier{h: h}
	if _, err := PasswordLogin(ctx, s, v, "legacy", "wrong", now); err == nil || v.hashed != 0 {
		t.Fatalf("wrong password: err=%v hashed=%d", err, v.hashed)
	}
	a, err := PasswordLogin(ctx, s, v, "legacy", "password", now)
	if err != nil || v.hashed != 1 {
		t.Fatalf("legacy login: %v, hashed %d", err, v.hashed)
	}
	stored, _ := s.LookupAccount(ctx, "legacy")
	if stored.PasswordHash != a.PasswordHash || h.NeedsRehash(stored.PasswordHash) {
		t.Fatalf("hash not upgraded: %q", stored.PasswordHash)
	}
	if _, err := PasswordLogin(ctx, s, v, "legacy", "password", now); err != nil || v.hashed != 1 {
		t.Fatalf("login with upgraded hash: %v, hashed %d", err, v.hashed)
	}
}

// TestDefaultPasswordVerifier: the production verifier's dummy path is the
// real argon2id with the default parameters (checked structurally in
// package password's TestDummyVerifyCostsAVerify).
func TestDefaultPasswordVerifier(t *testing.T) {
	v, ok := DefaultPasswordVerifier().(*password.Hasher)
	if !ok || v.Params() != password.DefaultParams() {
		t.Fatalf("DefaultPasswordVerifier = %T %+v", v, v)
	}
}

// changingVerifier runs change after verifying, as an administrator's
// `ferry user passwd` or `--clear-password` landing while a login with an
// imported hash is being checked and rehashed.
type changingVerifier struct {
	countingVerifier
	change func()
}

func (c *changingVerifier) Verify(hash, pw string) (bool, bool, error) {
	ok, rehash, err := c.countingVerifier.Verify(hash, pw)
	c.change()
	return ok, rehash, err
}

// TestPasswordLoginKeepsConcurrentChange: the rehash after a login with an
// imported hash must not write the old password back over a password that
// was changed or removed while the login ran; a leaked password the
// administrator just replaced would otherwise be valid again.
func TestPasswordLoginKeepsConcurrentChange(t *testing.T) {
	s := sqliteFactory(t)
	ctx := t.Context()
	h, err := password.New(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	const legacy = "$1$12345678$o2n/JiO/h5VviOInWJ4OQ/" // md5-crypt of "password"
	adminHash, _ := h.Hash("new secret")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, newHash string
	}{
		{"changed", adminHash},
		{"cleared", ""},
	} {
		if err := s.CreateAccount(ctx, &Account{Name: tc.name, PasswordHash: legacy, Enabled: true}, nil); err != nil {
			t.Fatal(err)
		}
		v := &changingVerifier{countingVerifier: countingVerifier{h: h}, change: func() {
			if err := s.SetPasswordHash(ctx, tc.name, tc.newHash); err != nil {
				t.Fatal(err)
			}
		}}
		// The login itself was checked against the hash it read.
		if _, err := PasswordLogin(ctx, s, v, tc.name, "password", now); err != nil || v.hashed != 1 {
			t.Fatalf("%s: login: %v, hashed %d", tc.name, err, v.hashed)
		}
		a, err := s.LookupAccount(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if a.PasswordHash != tc.newHash {
			t.Errorf("%s: stored hash %q after the login, want the administrator's %q", tc.name, a.PasswordHash, tc.newHash)
		}
	}
}

// deadlineStore records the context UpgradePasswordHash is given.
type deadlineStore struct {
	Store
	deadline time.Time
	bounded  bool
}

func (d *deadlineStore) UpgradePasswordHash(ctx context.Context, name, oldHash, newHash string) (bool, error) {
	d.deadline, d.bounded = ctx.Deadline()
	return d.Store.UpgradePasswordHash(ctx, name, oldHash, newHash)
}

// TestPasswordRehashBounded: the rehash of an imported hash is written
// in the login's path, and waited as long as the login's context let it:
// while `ferry user import` held SQLite's write lock, a migrated
// customer's first login stalled up to the database's 10 s busy timeout.
// The write is best effort (the next login tries again), so it gets at
// most rehashTimeout.
func TestPasswordRehashBounded(t *testing.T) {
	s := &deadlineStore{Store: sqliteFactory(t)}
	ctx := t.Context()
	h, err := password.New(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &Account{Name: "legacy", PasswordHash: "$1$12345678$o2n/JiO/h5VviOInWJ4OQ/", Enabled: true}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := PasswordLogin(ctx, s, &countingVerifier{h: h}, "legacy", "password", start); err != nil {
		t.Fatal(err)
	}
	if !s.bounded || s.deadline.Sub(start) > rehashTimeout+time.Second {
		t.Fatalf("rehash written with deadline %v (set %v), want within %v", s.deadline.Sub(start), s.bounded, rehashTimeout)
	}
}
