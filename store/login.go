package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-sftp/ferry/store/password"
)

// PasswordVerifier is what PasswordLogin needs from package password; a
// *password.Hasher implements it.
type PasswordVerifier interface {
	Verify(hash, password string) (ok, needsRehash bool, err error)
	DummyVerify(password string)
	Hash(password string) (string, error)
}

// ErrLoginFailed is the one error every failed password login wraps,
// whatever the cause, so that callers cannot accidentally tell a client
// which names exist. The wrapped detail is for the server's log only.
var ErrLoginFailed = errors.New("login failed")

// DefaultPasswordVerifier verifies with password.DefaultParams.
func DefaultPasswordVerifier() PasswordVerifier {
	h, err := password.New(password.DefaultParams())
	if err != nil {
		panic(err) // the defaults are within the bounds by construction
	}
	return h
}

// rehashTimeout bounds PasswordLogin's write of an upgraded hash.
const rehashTimeout = 2 * time.Second

// PasswordLogin checks name and pw against the store for RFC 4252 §8
// password (and keyboard-interactive) authentication.
//
// Every attempt costs one argon2id computation: an unknown name, an account
// without a password and an unusable stored hash run v.DummyVerify instead
// of returning early, so response time does not reveal which accounts exist
// or have passwords. A disabled or expired account fails only after the
// password was checked, for the same reason. After a successful login with a
// hash in an imported format or older parameters, the password is rehashed
// with v and stored, unless the stored hash changed meanwhile (best effort: a
// failure only means the next login tries again).
//
// The caller still applies Account.AllowsSource and the account's
// AuthMethods.
func PasswordLogin(ctx context.Context, s Store, v PasswordVerifier, name, pw string, now time.Time) (*Account, error) {
	a, err := s.LookupAccount(ctx, name)
	if err != nil {
		v.DummyVerify(pw)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: no account %q", ErrLoginFailed, name)
		}
		return nil, err // the store itself failed: not a login decision
	}
	if !a.HasPassword() {
		v.DummyVerify(pw)
		return nil, fmt.Errorf("%w: account %q has no password", ErrLoginFailed, name)
	}
	ok, needsRehash, err := v.Verify(a.PasswordHash, pw)
	if err != nil {
		v.DummyVerify(pw)
		return nil, fmt.Errorf("%w: account %q: stored password hash unusable: %v", ErrLoginFailed, name, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: wrong password for %q", ErrLoginFailed, name)
	}
	if !a.Enabled {
		return nil, fmt.Errorf("%w: account %q is disabled", ErrLoginFailed, name)
	}
	if a.Expired(now) {
		return nil, fmt.Errorf("%w: account %q expired at %s", ErrLoginFailed, name, a.ExpiresAt.Format(time.RFC3339))
	}
	if needsRehash {
		// Conditional on the hash just verified: an administrator who
		// changed or removed the password while this login ran (an
		// imported hash takes a bcrypt or crypt run, the new one an
		// argon2id run) must not see the old password come back.
		// Bounded: best effort, and a login must not wait out the
		// database's busy timeout behind another writer (an import).
		if h, err := v.Hash(pw); err == nil {
			rctx, cancel := context.WithTimeout(ctx, rehashTimeout)
			if ok, _ := s.UpgradePasswordHash(rctx, name, a.PasswordHash, h); ok {
				a.PasswordHash = h
			}
			cancel()
		}
	}
	return a, nil
}
