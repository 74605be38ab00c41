package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

// unknownUserAuth is testAuth, refusing users it has no password for
// with an error that wraps server.ErrUnknownUser.
type unknownUserAuth struct{ *testAuth }

func (a unknownUserAuth) Password(ctx context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	a.mu.Lock()
	_, known := a.passwords[m.User()]
	a.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%w: %w", auth.ErrDenied, server.ErrUnknownUser)
	}
	return a.testAuth.Password(ctx, m, pw)
}

// TestConnInfoUnknownUser: a refusal wrapping ErrUnknownUser sets
// ConnInfo.UnknownUser (sshd's invaliduser penalty needs it) and the
// client gets the same USERAUTH_FAILURE as for a wrong password.
func TestConnInfoUnknownUser(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: &countingHandler{}, Auth: auth.Config{Authenticator: unknownUserAuth{newTestAuth()}}})
	var failures [][]byte
	for _, tc := range []struct {
		user        string
		wantUnknown bool
	}{
		{"mallory", true},
		{testUser, false},
	} {
		c := dialRaw(t, ts.addr)
		c.serviceRequest()
		c.sendPassword(tc.user, "wrong")
		failures = append(failures, c.expect(wire.MsgUserAuthFailure))
		c.tc.Close()
		info := ts.closedInfo(t, c.nc.LocalAddr())
		if info.UnknownUser != tc.wantUnknown || info.AuthFailures != 1 || info.Authenticated {
			t.Errorf("user %s: UnknownUser %v, AuthFailures %d, Authenticated %v; want %v, 1, false",
				tc.user, info.UnknownUser, info.AuthFailures, info.Authenticated, tc.wantUnknown)
		}
		// The log line of a failed login names whom it tried (user=""
		// before, so fail2ban-style rules had to join two lines).
		if info.User != tc.user {
			t.Errorf("user %s: ConnInfo.User %q", tc.user, info.User)
		}
	}
	if !bytes.Equal(failures[0], failures[1]) {
		t.Errorf("unknown user's FAILURE % x differs from a wrong password's % x", failures[0], failures[1])
	}
}
