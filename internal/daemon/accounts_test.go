package daemon

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/store"
)

type testMeta struct{ user string }

func (m testMeta) User() string        { return m.user }
func (testMeta) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (testMeta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222} }
func (testMeta) ClientVersion() string { return "SSH-2.0-test" }
func (m testMeta) SessionID() []byte   { return []byte("session " + m.user) }

// TestAuthenticatorReportsUnknownUser: the account authenticator's
// refusal of a user with no account wraps server.ErrUnknownUser (for the
// invaliduser penalty) as well as auth.ErrDenied; a known user's failure
// does not.
func TestAuthenticatorReportsUnknownUser(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addAccount(t, st, "alice", "pw", 0)
	key, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	a := &accountAuthenticator{st: st, memo: &accountMemo{}, pv: store.DefaultPasswordVerifier(), now: time.Now}
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		attempt     func() error
		wantUnknown bool
	}{
		{"password, unknown user", func() error {
			_, err := a.Password(ctx, testMeta{"mallory"}, []byte("pw"))
			return err
		}, true},
		{"password, wrong password", func() error {
			_, err := a.Password(ctx, testMeta{"alice"}, []byte("wrong"))
			return err
		}, false},
		{"publickey, unknown user", func() error {
			_, err := a.PublicKey(ctx, testMeta{"mallory"}, key.PublicKey())
			return err
		}, true},
		{"publickey, unauthorized key", func() error {
			_, err := a.PublicKey(ctx, testMeta{"alice"}, key.PublicKey())
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.attempt()
			if !errors.Is(err, auth.ErrDenied) {
				t.Fatalf("err = %v, want auth.ErrDenied", err)
			}
			if got := errors.Is(err, server.ErrUnknownUser); got != tc.wantUnknown {
				t.Errorf("errors.Is(%v, ErrUnknownUser) = %v, want %v", err, got, tc.wantUnknown)
			}
		})
	}
	if _, err := a.Password(ctx, testMeta{"alice"}, []byte("pw")); err != nil {
		t.Errorf("alice's own password refused: %v", err)
	}
}
