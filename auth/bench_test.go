package auth

import (
	"context"
	"testing"
)

// BenchmarkPublicKeyAuth measures a whole ed25519 login: SERVICE_REQUEST,
// query, PK_OK, signed request, verification, SUCCESS.
func BenchmarkPublicKeyAuth(b *testing.B) {
	user, host := fuzzKeys(b)
	fa := newFake()
	fa.users["alice"].keys[string(user.PublicKey().Marshal())] = &Permissions{}
	cfg := testConfig(fa)
	script := [][]byte{
		serviceRequest("ssh-userauth"),
		pkQuery("alice", "ssh-ed25519", user.PublicKey().Marshal()),
		pkSigned(b, user, testSessionID, "alice", "alice", "ssh-ed25519"),
	}
	b.ReportAllocs()
	for b.Loop() {
		conn := &scriptConn{in: script, hostKey: host.PublicKey()}
		if _, err := Run(context.Background(), conn, Peer{}, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFailures measures the cost of the state machine itself: six
// failed passwords and the disconnect, with no failure delay.
func BenchmarkFailures(b *testing.B) {
	cfg := testConfig(&fakeAuth{users: map[string]*fakeUser{}})
	script := [][]byte{serviceRequest("ssh-userauth"), noneRequest("alice")}
	for range DefaultMaxAuthTries + 1 {
		script = append(script, passwordRequestMsg("alice", "wrong"))
	}
	b.ReportAllocs()
	for b.Loop() {
		conn := &scriptConn{in: script}
		if _, err := Run(context.Background(), conn, Peer{}, cfg); err == nil {
			b.Fatal("no error")
		}
	}
}
