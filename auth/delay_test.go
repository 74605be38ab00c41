package auth

import (
	"testing"
	"time"
)

// TestNoneIsNotDelayed: sshd does not delay the reply to "none" (auth2.c),
// which every client sends before logging in; only real failures wait.
// With an hour-long FailureDelay the "none" FAILURE must still arrive (recv
// fails the test after hangLimit otherwise), while a wrong password's
// FAILURE must not arrive within a second.
func TestNoneIsNotDelayed(t *testing.T) {
	cfg := testConfig(&fakeAuth{})
	cfg.FailureDelay = time.Hour
	tc := start(t, cfg)
	tc.service()
	tc.send(userAuthRequest("alice", "ssh-connection", "none"))
	tc.expect(failure(false, "publickey", "password", "keyboard-interactive"))

	tc.send(userAuthRequest("alice", "ssh-connection", "password", []byte{0}, str("wrong")))
	select {
	case p := <-tc.conn.out:
		t.Fatalf("password FAILURE was not delayed: %x", p)
	case <-time.After(time.Second):
	}
}
