package auth

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

func newFake() *fakeAuth {
	return &fakeAuth{users: map[string]*fakeUser{
		"alice": {password: "correct horse", keys: map[string]*Permissions{}, perms: &Permissions{}},
	}}
}

func TestServiceRequest(t *testing.T) {
	tests := []struct {
		name   string
		msg    []byte
		reason uint32
	}{
		{"wrong service", serviceRequest("ssh-connection"), wire.DisconnectServiceNotAvailable},
		{"trailing bytes", append(serviceRequest("ssh-userauth"), 0), wire.DisconnectProtocolError},
		{"userauth before service", noneRequest("alice"), wire.DisconnectProtocolError},
		{"service accept from client", serviceAccept("ssh-userauth"), wire.DisconnectProtocolError},
		{"channel open first", []byte{wire.MsgChannelOpen, 0, 0, 0, 0}, wire.DisconnectProtocolError},
		{"empty message", []byte{}, wire.DisconnectProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFake()
			tc := start(t, testConfig(fa))
			tc.send(tt.msg)
			tc.expectDisconnect(tt.reason, "")
			if c := fa.Calls(); len(c) != 0 {
				t.Fatalf("authenticator called: %v", c)
			}
		})
	}
}

// TestForbiddenMessages checks that nothing but USERAUTH_REQUEST is
// accepted after SERVICE_ACCEPT (CVE-2018-10933: client-sent
// USERAUTH_SUCCESS; CVE-2025-32433: connection protocol messages before
// authentication).
func TestForbiddenMessages(t *testing.T) {
	msgs := []struct {
		name string
		msg  []byte
	}{
		{"GLOBAL_REQUEST", append(append([]byte{wire.MsgGlobalRequest}, str("tcpip-forward")...), 1)},
		{"CHANNEL_OPEN", append(append([]byte{wire.MsgChannelOpen}, str("session")...), 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0x80, 0)},
		{"CHANNEL_REQUEST exec", append(append([]byte{wire.MsgChannelRequest, 0, 0, 0, 0}, str("exec")...), append([]byte{0}, str("id")...)...)},
		{"CHANNEL_DATA", append([]byte{wire.MsgChannelData, 0, 0, 0, 0}, str("x")...)},
		{"USERAUTH_SUCCESS", []byte{wire.MsgUserAuthSuccess}},
		{"USERAUTH_FAILURE", failure(false, "password")},
		{"USERAUTH_BANNER", append(str("hi"), str("")...)},
		{"PK_OK", pkOK("ssh-ed25519", []byte("x"))},
		{"INFO_RESPONSE without challenge", []byte{wire.MsgUserAuthInfoResponse, 0, 0, 0, 0}},
		{"SERVICE_ACCEPT", serviceAccept("ssh-userauth")},
		{"message 79", []byte{79}},
		{"message 255", []byte{255}},
	}
	msgs[6].msg = append([]byte{wire.MsgUserAuthBanner}, msgs[6].msg...)
	for _, when := range []string{"after service accept", "after a failure"} {
		for _, m := range msgs {
			t.Run(when+"/"+m.name, func(t *testing.T) {
				fa := newFake()
				tc := start(t, testConfig(fa))
				tc.service()
				if when == "after a failure" {
					tc.send(passwordRequestMsg("alice", "wrong"))
					tc.expect(failure(false, allMethods...))
				}
				tc.send(m.msg)
				tc.expectDisconnect(wire.DisconnectProtocolError, "")
				for _, c := range fa.Calls() {
					if c != "password alice" {
						t.Fatalf("authenticator called for %q", c)
					}
				}
			})
		}
	}
}

// TestRepeatedServiceRequest: paramiko sends SERVICE_REQUEST
// "ssh-userauth" before each of its auth_* calls, and sshd answers every
// one until authentication succeeds. Other services still end the
// connection, and the repeats count toward the request bound.
func TestRepeatedServiceRequest(t *testing.T) {
	t.Run("accepted between requests", func(t *testing.T) {
		fa := newFake()
		tc := start(t, testConfig(fa))
		tc.service()
		tc.service()
		tc.send(passwordRequestMsg("alice", "wrong"))
		tc.expect(failure(false, allMethods...))
		tc.service()
		tc.service()
		tc.send(passwordRequestMsg("alice", "correct horse"))
		res := tc.expectSuccess()
		if res.User != "alice" || !slices.Equal(res.Methods, []string{"password"}) {
			t.Fatalf("result %+v", res)
		}
	})
	for _, tt := range []struct {
		name   string
		msg    []byte
		reason uint32
	}{
		{"other service", serviceRequest("ssh-connection"), wire.DisconnectServiceNotAvailable},
		{"trailing bytes", append(serviceRequest("ssh-userauth"), 0), wire.DisconnectProtocolError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := start(t, testConfig(newFake()))
			tc.service()
			tc.send(passwordRequestMsg("alice", "wrong"))
			tc.expect(failure(false, allMethods...))
			tc.send(tt.msg)
			tc.expectDisconnect(tt.reason, "")
		})
	}
	t.Run("bounded", func(t *testing.T) {
		tc := start(t, testConfig(newFake()))
		tc.service()
		for range MaxUserAuthRequests {
			tc.service()
		}
		tc.send(serviceRequest("ssh-userauth"))
		tc.expectDisconnect(wire.DisconnectProtocolError, "Too many authentication failures")
	})
}

func TestNoneAndBanner(t *testing.T) {
	fa := newFake()
	cfg := testConfig(fa)
	cfg.Banner = "Welcome\r\n"
	tc := start(t, cfg)
	tc.service()
	tc.send(noneRequest("alice"))
	banner := append([]byte{wire.MsgUserAuthBanner}, str("Welcome\r\n")...)
	banner = append(banner, str("")...)
	tc.expect(banner)
	tc.expect(failure(false, "publickey", "password", "keyboard-interactive"))
	// The banner is sent once.
	tc.send(passwordRequestMsg("alice", "correct horse"))
	res := tc.expectSuccess()
	if res.User != "alice" || !slices.Equal(res.Methods, []string{"password"}) || res.PublicKey != nil {
		t.Fatalf("result %+v", res)
	}
}

func TestMethodsConfig(t *testing.T) {
	fa := newFake()
	cfg := testConfig(fa)
	cfg.Methods = []string{"password", "publickey", "hostbased"}
	tc := start(t, cfg)
	tc.service()
	tc.send(noneRequest("alice"))
	tc.expect(failure(false, "publickey", "password"))
	// A disabled method is a failure without asking the Authenticator.
	tc.send(userAuthRequest("alice", "ssh-connection", "keyboard-interactive", str(""), str("")))
	tc.expect(failure(false, "publickey", "password"))
	if c := fa.Calls(); len(c) != 0 {
		t.Fatalf("authenticator called: %v", c)
	}
}

func TestPassword(t *testing.T) {
	t.Run("wrong then right", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].perms = &Permissions{Extensions: map[string]string{"home": "/srv/alice"}}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(passwordRequestMsg("alice", "wrong"))
		tc.expect(failure(false, allMethods...))
		tc.send(passwordRequestMsg("alice", "correct horse"))
		res := tc.expectSuccess()
		if res.Permissions.Extensions["home"] != "/srv/alice" {
			t.Fatalf("permissions %+v", res.Permissions)
		}
	})
	t.Run("change request", func(t *testing.T) {
		fa := newFake()
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(userAuthRequest("alice", "ssh-connection", "password", boolean(true), str("correct horse"), str("new")))
		tc.expect(failure(false, allMethods...))
		if c := fa.Calls(); len(c) != 0 {
			t.Fatalf("authenticator called for a change request: %v", c)
		}
		tc.send(passwordRequestMsg("alice", "correct horse"))
		tc.expectSuccess()
	})
	t.Run("change request missing new password", func(t *testing.T) {
		tc := start(t, testConfig(newFake()))
		tc.service()
		tc.send(userAuthRequest("alice", "ssh-connection", "password", boolean(true), str("correct horse")))
		tc.expectDisconnect(wire.DisconnectProtocolError, "malformed")
	})
	t.Run("trailing bytes", func(t *testing.T) {
		tc := start(t, testConfig(newFake()))
		tc.service()
		tc.send(append(passwordRequestMsg("alice", "correct horse"), 0))
		tc.expectDisconnect(wire.DisconnectProtocolError, "malformed")
	})
	t.Run("too long", func(t *testing.T) {
		fa := newFake()
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(passwordRequestMsg("alice", strings.Repeat("x", MaxPasswordLen+1)))
		tc.expect(failure(false, allMethods...))
		if c := fa.Calls(); len(c) != 0 {
			t.Fatalf("authenticator called: %v", c)
		}
	})
}

// TestUnknownUserSameReply checks that a failure for a user that does not
// exist is byte-identical to one for a user that does, and that the
// Authenticator was asked in both cases (it does the dummy work).
func TestUnknownUserSameReply(t *testing.T) {
	k := ed25519Signer(t)
	replies := map[string][][]byte{}
	for _, user := range []string{"alice", "mallory"} {
		fa := newFake()
		cfg := testConfig(fa)
		cfg.Banner = "b"
		tc := start(t, cfg)
		tc.service()
		tc.send(noneRequest(user))
		var got [][]byte
		got = append(got, tc.recv(), tc.recv())
		tc.send(passwordRequestMsg(user, "wrong"))
		got = append(got, tc.recv())
		tc.send(pkQuery(user, "ssh-ed25519", k.PublicKey().Marshal()))
		got = append(got, tc.recv())
		tc.send(pkSigned(t, k, testSessionID, user, user, "ssh-ed25519"))
		got = append(got, tc.recv())
		replies[user] = got
		want := []string{"password " + user, "publickey " + user + " " + keys.FingerprintSHA256(k.PublicKey()),
			"publickey " + user + " " + keys.FingerprintSHA256(k.PublicKey())}
		if c := fa.Calls(); !slices.Equal(c, want) {
			t.Fatalf("%s: calls %v, want %v", user, c, want)
		}
	}
	for i := range replies["alice"] {
		if !bytes.Equal(replies["alice"][i], replies["mallory"][i]) {
			t.Fatalf("reply %d differs: known %x unknown %x", i, replies["alice"][i], replies["mallory"][i])
		}
	}
}

// TestFailureDelay checks the lower bound only: FAILURE never comes before
// FailureDelay has passed. (Upper bounds would be timing assertions.)
func TestFailureDelay(t *testing.T) {
	fa := newFake()
	cfg := testConfig(fa)
	cfg.FailureDelay = 30 * time.Millisecond
	tc := start(t, cfg)
	tc.service()
	for _, user := range []string{"alice", "nobody"} {
		t0 := time.Now()
		tc.send(passwordRequestMsg("alice", "wrong"+user))
		tc.expect(failure(false, allMethods...))
		if d := time.Since(t0); d < cfg.FailureDelay {
			t.Fatalf("FAILURE after %v, before FailureDelay %v", d, cfg.FailureDelay)
		}
	}
}

func TestUserChange(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  []byte
	}{
		{"user", noneRequest("bob")},
		{"service", userAuthRequest("alice", "ssh-foo", "none")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := start(t, testConfig(newFake()))
			tc.service()
			tc.send(noneRequest("alice"))
			tc.expect(failure(false, allMethods...))
			tc.send(tt.msg)
			tc.expectDisconnect(wire.DisconnectProtocolError, "change of username or service not allowed")
		})
	}
}

func TestBadUserOrService(t *testing.T) {
	for _, tt := range []struct {
		name   string
		msg    []byte
		reason uint32
	}{
		{"long user", noneRequest(strings.Repeat("a", MaxUserLen+1)), wire.DisconnectIllegalUserName},
		{"NUL in user", noneRequest("alice\x00root"), wire.DisconnectIllegalUserName},
		{"invalid UTF-8", noneRequest("\xff\xfe"), wire.DisconnectIllegalUserName},
		{"other service", userAuthRequest("alice", "ssh-userauth", "none"), wire.DisconnectServiceNotAvailable},
		{"truncated", []byte{wire.MsgUserAuthRequest, 0, 0, 0, 5, 'a'}, wire.DisconnectProtocolError},
		{"none with payload", append(noneRequest("alice"), 1), wire.DisconnectProtocolError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFake()
			tc := start(t, testConfig(fa))
			tc.service()
			tc.send(tt.msg)
			tc.expectDisconnect(tt.reason, "")
			if c := fa.Calls(); len(c) != 0 {
				t.Fatalf("authenticator called: %v", c)
			}
		})
	}
	t.Run("max length user ok", func(t *testing.T) {
		tc := start(t, testConfig(newFake()))
		tc.service()
		tc.send(noneRequest(strings.Repeat("a", MaxUserLen)))
		tc.expect(failure(false, allMethods...))
	})
}

func TestPublicKeyQueryThenSign(t *testing.T) {
	signers := map[string]*testSigner{
		"ssh-ed25519":         ed25519Signer(t),
		"ecdsa-sha2-nistp256": ecdsaSigner(t, elliptic.P256()),
		"ecdsa-sha2-nistp384": ecdsaSigner(t, elliptic.P384()),
		"ecdsa-sha2-nistp521": ecdsaSigner(t, elliptic.P521()),
		"rsa-sha2-256":        rsaSigner(t, 2048),
		"rsa-sha2-512":        rsaSigner(t, 2048),
	}
	for alg, k := range signers {
		t.Run(alg, func(t *testing.T) {
			fa := newFake()
			fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{ForceCommand: "internal-sftp"}
			tc := start(t, testConfig(fa))
			tc.service()
			tc.send(pkQuery("alice", alg, k.PublicKey().Marshal()))
			tc.expect(pkOK(alg, k.PublicKey().Marshal()))
			tc.send(pkSigned(t, k, testSessionID, "alice", "alice", alg))
			res := tc.expectSuccess()
			if !keys.Equal(res.PublicKey, k.PublicKey()) || res.Permissions.ForceCommand != "internal-sftp" ||
				!slices.Equal(res.Methods, []string{"publickey"}) {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// TestQueryAThenSignB is the CVE-2024-45337 class: authorization must come
// from the key whose signature was verified, never from an earlier query.
func TestQueryAThenSignB(t *testing.T) {
	a, b := ed25519Signer(t), ed25519Signer(t)
	t.Run("B allowed", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].keys[string(a.PublicKey().Marshal())] = &Permissions{ForceCommand: "as-A"}
		fa.users["alice"].keys[string(b.PublicKey().Marshal())] = &Permissions{ForceCommand: "as-B"}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(pkQuery("alice", "ssh-ed25519", a.PublicKey().Marshal()))
		tc.expect(pkOK("ssh-ed25519", a.PublicKey().Marshal()))
		tc.send(pkSigned(t, b, testSessionID, "alice", "alice", "ssh-ed25519"))
		res := tc.expectSuccess()
		if !keys.Equal(res.PublicKey, b.PublicKey()) || res.Permissions.ForceCommand != "as-B" {
			t.Fatalf("authorized as %s with %q, want B", keys.FingerprintSHA256(res.PublicKey), res.Permissions.ForceCommand)
		}
		calls := fa.Calls()
		if last := calls[len(calls)-1]; last != "publickey alice "+keys.FingerprintSHA256(b.PublicKey()) {
			t.Fatalf("last authenticator call %q, want for B", last)
		}
	})
	t.Run("B not allowed", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].keys[string(a.PublicKey().Marshal())] = &Permissions{}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(pkQuery("alice", "ssh-ed25519", a.PublicKey().Marshal()))
		tc.expect(pkOK("ssh-ed25519", a.PublicKey().Marshal()))
		tc.send(pkSigned(t, b, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expect(failure(false, allMethods...))
	})
	t.Run("authenticator flips after query", func(t *testing.T) {
		// Allowed at query time, refused when asked after the signature:
		// only the second answer counts.
		fa := newFake()
		fa.users["alice"].keys[string(a.PublicKey().Marshal())] = &Permissions{}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(pkQuery("alice", "ssh-ed25519", a.PublicKey().Marshal()))
		tc.expect(pkOK("ssh-ed25519", a.PublicKey().Marshal()))
		delete(fa.users["alice"].keys, string(a.PublicKey().Marshal()))
		tc.send(pkSigned(t, a, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expect(failure(false, allMethods...))
	})
}

func TestPublicKeyRefused(t *testing.T) {
	ed := ed25519Signer(t)
	rsa2048 := rsaSigner(t, 2048)
	rsa1024 := rsaSigner(t, 1024)
	allow := func(fa *fakeAuth, ks ...*testSigner) {
		for _, k := range ks {
			fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		}
	}
	sign := func(t *testing.T, k *testSigner, data []byte, alg string) []byte {
		sig, err := k.Sign(rand.Reader, data, alg)
		if err != nil {
			t.Fatal(err)
		}
		return sig.Marshal()
	}
	tests := []struct {
		name string
		msg  func(t *testing.T) []byte
	}{
		{"wrong session id", func(t *testing.T) []byte {
			return pkSigned(t, ed, []byte("another session"), "alice", "alice", "ssh-ed25519")
		}},
		{"signed for another user", func(t *testing.T) []byte {
			return pkSigned(t, ed, testSessionID, "bob", "alice", "ssh-ed25519")
		}},
		{"ed25519 name with RSA blob", func(t *testing.T) []byte {
			kb := rsa2048.PublicKey().Marshal()
			sig := sign(t, rsa2048, signedData(testSessionID, "alice", "ssh-connection", "publickey", "ssh-ed25519", kb, nil), "rsa-sha2-256")
			return userAuthRequest("alice", "ssh-connection", "publickey", boolean(true), str("ssh-ed25519"), blob(kb), blob(sig))
		}},
		{"rsa-sha2-512 request with rsa-sha2-256 signature", func(t *testing.T) []byte {
			kb := rsa2048.PublicKey().Marshal()
			sig := sign(t, rsa2048, signedData(testSessionID, "alice", "ssh-connection", "publickey", "rsa-sha2-512", kb, nil), "rsa-sha2-256")
			return userAuthRequest("alice", "ssh-connection", "publickey", boolean(true), str("rsa-sha2-512"), blob(kb), blob(sig))
		}},
		{"ssh-rsa SHA-1 not enabled", func(t *testing.T) []byte {
			return pkSigned(t, rsa2048, testSessionID, "alice", "alice", "ssh-rsa")
		}},
		{"RSA 1024 signed", func(t *testing.T) []byte {
			return pkSigned(t, rsa1024, testSessionID, "alice", "alice", "rsa-sha2-512")
		}},
		{"RSA 1024 query", func(t *testing.T) []byte {
			return pkQuery("alice", "rsa-sha2-512", rsa1024.PublicKey().Marshal())
		}},
		{"garbage key blob", func(t *testing.T) []byte {
			return pkQuery("alice", "ssh-ed25519", []byte("\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x01x"))
		}},
		{"garbage signature", func(t *testing.T) []byte {
			kb := ed.PublicKey().Marshal()
			return userAuthRequest("alice", "ssh-connection", "publickey", boolean(true), str("ssh-ed25519"), blob(kb), blob([]byte("junk")))
		}},
		{"signature over query form", func(t *testing.T) []byte {
			kb := ed.PublicKey().Marshal()
			d := signedData(testSessionID, "alice", "ssh-connection", "publickey", "ssh-ed25519", kb, nil)
			d[len(testSessionID)+4+1+4+5+4+14+4+9] = 0 // boolean FALSE
			return userAuthRequest("alice", "ssh-connection", "publickey", boolean(true), str("ssh-ed25519"), blob(kb), blob(sign(t, ed, d, "")))
		}},
		{"query: ed25519 name with RSA blob", func(t *testing.T) []byte {
			return pkQuery("alice", "ssh-ed25519", rsa2048.PublicKey().Marshal())
		}},
		{"query: rsa-sha2-256 name with ed25519 blob", func(t *testing.T) []byte {
			return pkQuery("alice", "rsa-sha2-256", ed.PublicKey().Marshal())
		}},
		{"unknown algorithm", func(t *testing.T) []byte {
			return pkQuery("alice", "ssh-foo", ed.PublicKey().Marshal())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFake()
			allow(fa, ed, rsa2048, rsa1024)
			tc := start(t, testConfig(fa))
			tc.service()
			tc.send(tt.msg(t))
			tc.expect(failure(false, allMethods...))
			for _, c := range fa.Calls() {
				t.Fatalf("authenticator called (%q) for a request that must fail before it", c)
			}
		})
	}
	t.Run("ssh-rsa allowed when listed", func(t *testing.T) {
		fa := newFake()
		allow(fa, rsa2048)
		cfg := testConfig(fa)
		cfg.PubkeyAlgorithms = []string{"ssh-rsa"}
		tc := start(t, cfg)
		tc.service()
		tc.send(pkSigned(t, rsa2048, testSessionID, "alice", "alice", "ssh-rsa"))
		tc.expectSuccess()
	})
	t.Run("RSA 1024 with MinRSABits 1024", func(t *testing.T) {
		fa := newFake()
		allow(fa, rsa1024)
		cfg := testConfig(fa)
		cfg.MinRSABits = 1024
		tc := start(t, cfg)
		tc.service()
		tc.send(pkSigned(t, rsa1024, testSessionID, "alice", "alice", "rsa-sha2-256"))
		tc.expectSuccess()
	})
	t.Run("malformed request", func(t *testing.T) {
		tc := start(t, testConfig(newFake()))
		tc.service()
		tc.send(append(pkQuery("alice", "ssh-ed25519", ed.PublicKey().Marshal()), 0))
		tc.expectDisconnect(wire.DisconnectProtocolError, "malformed")
	})
}

func TestHostbound(t *testing.T) {
	k := ed25519Signer(t)
	const method = "publickey-hostbound-v00@openssh.com"
	req := func(t *testing.T, tc *testClient, hostKey []byte) []byte {
		kb := k.PublicKey().Marshal()
		sig, err := k.Sign(rand.Reader, signedData(testSessionID, "alice", "ssh-connection", method, "ssh-ed25519", kb, hostKey), "")
		if err != nil {
			t.Fatal(err)
		}
		return userAuthRequest("alice", "ssh-connection", method, boolean(true), str("ssh-ed25519"), blob(kb), blob(hostKey), blob(sig.Marshal()))
	}
	t.Run("right host key", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		tc := start(t, testConfig(fa))
		tc.service()
		hk := tc.conn.hostKey.Marshal()
		tc.send(userAuthRequest("alice", "ssh-connection", method, boolean(false), str("ssh-ed25519"), blob(k.PublicKey().Marshal()), blob(hk)))
		tc.expect(pkOK("ssh-ed25519", k.PublicKey().Marshal()))
		tc.send(req(t, tc, hk))
		res := tc.expectSuccess()
		if !slices.Equal(res.Methods, []string{"publickey"}) {
			t.Fatalf("methods %v", res.Methods)
		}
	})
	t.Run("wrong host key", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		tc := start(t, testConfig(fa))
		tc.service()
		other := ed25519Signer(t).PublicKey().Marshal()
		tc.send(req(t, tc, other))
		tc.expect(failure(false, allMethods...))
		tc.send(userAuthRequest("alice", "ssh-connection", method, boolean(false), str("ssh-ed25519"), blob(k.PublicKey().Marshal()), blob(other)))
		tc.expect(failure(false, allMethods...))
	})
	t.Run("plain publickey signature on hostbound request", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		tc := start(t, testConfig(fa))
		tc.service()
		kb := k.PublicKey().Marshal()
		hk := tc.conn.hostKey.Marshal()
		sig, _ := k.Sign(rand.Reader, signedData(testSessionID, "alice", "ssh-connection", "publickey", "ssh-ed25519", kb, nil), "")
		tc.send(userAuthRequest("alice", "ssh-connection", method, boolean(true), str("ssh-ed25519"), blob(kb), blob(hk), blob(sig.Marshal())))
		tc.expect(failure(false, allMethods...))
	})
}

// TestMaxAuthTries: the first "none" is free (sshd auth2.c), then
// MaxAuthTries-1 failures get FAILURE and the MaxAuthTries-th disconnects,
// as sshd's MaxAuthTries does: MaxAuthTries passwords, not one more.
func TestMaxAuthTries(t *testing.T) {
	t.Run("passwords", func(t *testing.T) {
		tc := start(t, testConfig(newFake()))
		tc.service()
		tc.send(noneRequest("alice"))
		tc.expect(failure(false, allMethods...))
		for i := range DefaultMaxAuthTries - 1 {
			tc.send(passwordRequestMsg("alice", "wrong"))
			if got := tc.recv(); !bytes.Equal(got, failure(false, allMethods...)) {
				t.Fatalf("failure %d: got %x", i+1, got)
			}
		}
		tc.send(passwordRequestMsg("alice", "wrong"))
		tc.expectDisconnect(wire.DisconnectProtocolError, "Too many authentication failures")
	})
	t.Run("refused key queries count, PK_OK does not", func(t *testing.T) {
		fa := newFake()
		good := ed25519Signer(t)
		fa.users["alice"].keys[string(good.PublicKey().Marshal())] = &Permissions{}
		cfg := testConfig(fa)
		cfg.MaxAuthTries = 3
		tc := start(t, cfg)
		tc.service()
		for range 2 {
			tc.send(pkQuery("alice", "ssh-ed25519", ed25519Signer(t).PublicKey().Marshal()))
			tc.expect(failure(false, allMethods...))
			tc.send(pkQuery("alice", "ssh-ed25519", good.PublicKey().Marshal()))
			tc.expect(pkOK("ssh-ed25519", good.PublicKey().Marshal()))
		}
		// The successful login still works after MaxAuthTries-1 failures
		// and any number of PK_OK answers.
		tc.send(pkSigned(t, good, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expectSuccess()
	})
	t.Run("second none counts", func(t *testing.T) {
		cfg := testConfig(newFake())
		cfg.MaxAuthTries = 2
		tc := start(t, cfg)
		tc.service()
		tc.send(noneRequest("alice"))
		tc.expect(failure(false, allMethods...))
		tc.send(noneRequest("alice"))
		tc.expect(failure(false, allMethods...))
		tc.send(noneRequest("alice"))
		tc.expectDisconnect(wire.DisconnectProtocolError, "Too many authentication failures")
	})
	t.Run("unknown method counts", func(t *testing.T) {
		cfg := testConfig(newFake())
		cfg.MaxAuthTries = 2
		tc := start(t, cfg)
		tc.service()
		tc.send(userAuthRequest("alice", "ssh-connection", "hostbased"))
		tc.expect(failure(false, allMethods...))
		tc.send(userAuthRequest("alice", "ssh-connection", "gssapi-with-mic"))
		tc.expectDisconnect(wire.DisconnectProtocolError, "Too many authentication failures")
	})
}

// TestQueryFlood: PK_OK answers are not failures, so the total request cap
// is what stops a client from querying forever (CVE-2025-26466 class).
func TestQueryFlood(t *testing.T) {
	fa := newFake()
	k := ed25519Signer(t)
	fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
	tc := start(t, testConfig(fa))
	tc.service()
	for range MaxUserAuthRequests {
		tc.send(pkQuery("alice", "ssh-ed25519", k.PublicKey().Marshal()))
		tc.expect(pkOK("ssh-ed25519", k.PublicKey().Marshal()))
	}
	tc.send(pkQuery("alice", "ssh-ed25519", k.PublicKey().Marshal()))
	tc.expectDisconnect(wire.DisconnectProtocolError, "Too many authentication failures")
}

func TestPartialSuccess(t *testing.T) {
	t.Run("publickey then password", func(t *testing.T) {
		fa := newFake()
		k := ed25519Signer(t)
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{ForceCommand: "sftp", NoPTY: true}
		fa.users["alice"].perms = &Permissions{NoAgentForwarding: true}
		cfg := testConfig(fa)
		cfg.AuthenticationMethods = [][]string{{"publickey", "password"}}
		tc := start(t, cfg)
		tc.service()
		tc.send(noneRequest("alice"))
		tc.expect(failure(false, "publickey"))
		// Password is not allowed before publickey.
		tc.send(passwordRequestMsg("alice", "correct horse"))
		tc.expect(failure(false, "publickey"))
		tc.send(pkSigned(t, k, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expect(failure(true, "password"))
		// The same key cannot be used again, and publickey is over.
		tc.send(pkQuery("alice", "ssh-ed25519", k.PublicKey().Marshal()))
		tc.expect(failure(false, "password"))
		tc.send(passwordRequestMsg("alice", "wrong"))
		tc.expect(failure(false, "password"))
		tc.send(passwordRequestMsg("alice", "correct horse"))
		res := tc.expectSuccess()
		if !slices.Equal(res.Methods, []string{"publickey", "password"}) || !keys.Equal(res.PublicKey, k.PublicKey()) {
			t.Fatalf("result %+v", res)
		}
		p := res.Permissions
		if p.ForceCommand != "sftp" || !p.NoPTY || !p.NoAgentForwarding {
			t.Fatalf("merged permissions %+v", p)
		}
	})
	t.Run("same key twice", func(t *testing.T) {
		fa := newFake()
		k, k2 := ed25519Signer(t), ed25519Signer(t)
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		fa.users["alice"].keys[string(k2.PublicKey().Marshal())] = &Permissions{}
		cfg := testConfig(fa)
		cfg.AuthenticationMethods = [][]string{{"publickey", "publickey"}}
		tc := start(t, cfg)
		tc.service()
		tc.send(pkSigned(t, k, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expect(failure(true, "publickey"))
		tc.send(pkSigned(t, k, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expect(failure(false, "publickey"))
		tc.send(pkSigned(t, k2, testSessionID, "alice", "alice", "ssh-ed25519"))
		res := tc.expectSuccess()
		if len(res.PublicKeys) != 2 || !keys.Equal(res.PublicKey, k2.PublicKey()) {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("alternative lists", func(t *testing.T) {
		fa := newFake()
		k := ed25519Signer(t)
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		cfg := testConfig(fa)
		cfg.AuthenticationMethods = [][]string{{"publickey", "keyboard-interactive"}, {"password"}}
		tc := start(t, cfg)
		tc.service()
		tc.send(noneRequest("alice"))
		tc.expect(failure(false, "publickey", "password"))
		tc.send(pkSigned(t, k, testSessionID, "alice", "alice", "ssh-ed25519"))
		tc.expect(failure(true, "password", "keyboard-interactive"))
		tc.send(passwordRequestMsg("alice", "correct horse"))
		res := tc.expectSuccess()
		if !slices.Equal(res.Methods, []string{"publickey", "password"}) {
			t.Fatalf("methods %v", res.Methods)
		}
	})
	t.Run("per-user policy", func(t *testing.T) {
		fa := &policyAuth{fakeAuth: newFake(), lists: [][]string{{"password", "keyboard-interactive"}}}
		fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
			a, err := ch.Challenge("", "", []Prompt{{Text: "OTP: ", Echo: true}})
			if err != nil {
				return nil, err
			}
			if a[0] != "123456" {
				return nil, ErrDenied
			}
			return &Permissions{}, nil
		}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(passwordRequestMsg("alice", "correct horse"))
		tc.expect(failure(true, "keyboard-interactive"))
		tc.send(userAuthRequest("alice", "ssh-connection", "keyboard-interactive", str(""), str("")))
		tc.expect(infoRequest("", "", Prompt{"OTP: ", true}))
		tc.send(infoResponse("123456"))
		res := tc.expectSuccess()
		if !slices.Equal(res.Methods, []string{"password", "keyboard-interactive"}) {
			t.Fatalf("methods %v", res.Methods)
		}
	})
	t.Run("no usable list", func(t *testing.T) {
		cfg := testConfig(newFake())
		cfg.Methods = []string{"password"}
		cfg.AuthenticationMethods = [][]string{{"publickey", "password"}}
		tc := start(t, cfg)
		tc.service()
		tc.send(noneRequest("alice"))
		tc.expectDisconnect(wire.DisconnectNoMoreAuthMethodsAvailable, "")
	})
}

type policyAuth struct {
	*fakeAuth
	lists [][]string
}

func (p *policyAuth) AuthenticationMethods(ctx context.Context, meta ConnMetadata) [][]string {
	return p.lists
}

func infoRequest(name, instruction string, prompts ...Prompt) []byte {
	b := []byte{wire.MsgUserAuthInfoRequest}
	b = wire.AppendStringS(b, name)
	b = wire.AppendStringS(b, instruction)
	b = wire.AppendStringS(b, "")
	b = wire.AppendUint32(b, uint32(len(prompts)))
	for _, p := range prompts {
		b = wire.AppendStringS(b, p.Text)
		b = wire.AppendBool(b, p.Echo)
	}
	return b
}

func infoResponse(answers ...string) []byte {
	b := []byte{wire.MsgUserAuthInfoResponse}
	b = wire.AppendUint32(b, uint32(len(answers)))
	for _, a := range answers {
		b = wire.AppendStringS(b, a)
	}
	return b
}

func kiRequest(user string) []byte {
	return userAuthRequest(user, "ssh-connection", "keyboard-interactive", str(""), str(""))
}

func TestKeyboardInteractive(t *testing.T) {
	twoPrompts := func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
		a, err := ch.Challenge("Login", "Two factors", []Prompt{{"Password: ", false}, {"Code: ", true}})
		if err != nil {
			return nil, err
		}
		if meta.User() == "alice" && a[0] == "pw" && a[1] == "42" {
			return &Permissions{NoX11Forwarding: true}, nil
		}
		return nil, ErrDenied
	}
	want := infoRequest("Login", "Two factors", Prompt{"Password: ", false}, Prompt{"Code: ", true})
	t.Run("success", func(t *testing.T) {
		fa := newFake()
		fa.ki = twoPrompts
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(want)
		tc.send(infoResponse("pw", "42"))
		res := tc.expectSuccess()
		if !res.Permissions.NoX11Forwarding || !slices.Equal(res.Methods, []string{"keyboard-interactive"}) {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("wrong answers", func(t *testing.T) {
		fa := newFake()
		fa.ki = twoPrompts
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(want)
		tc.send(infoResponse("pw", "41"))
		tc.expect(failure(false, allMethods...))
	})
	for _, n := range []int{1, 3, 0} {
		t.Run("wrong number of responses", func(t *testing.T) {
			fa := newFake()
			fa.ki = twoPrompts
			tc := start(t, testConfig(fa))
			tc.service()
			tc.send(kiRequest("alice"))
			tc.expect(want)
			tc.send(infoResponse(make([]string, n)...))
			tc.expectDisconnect(wire.DisconnectProtocolError, "wrong number of keyboard-interactive responses")
		})
	}
	t.Run("authenticator ignores protocol error", func(t *testing.T) {
		fa := newFake()
		fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
			ch.Challenge("", "", []Prompt{{"x", false}})
			return &Permissions{}, nil // a buggy Authenticator
		}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(infoRequest("", "", Prompt{"x", false}))
		tc.send(infoResponse())
		tc.expectDisconnect(wire.DisconnectProtocolError, "")
	})
	t.Run("other message while pending", func(t *testing.T) {
		fa := newFake()
		fa.ki = twoPrompts
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(want)
		tc.send([]byte{wire.MsgChannelOpen})
		tc.expectDisconnect(wire.DisconnectProtocolError, "unexpected message type 90")
	})
	t.Run("abandoned for password", func(t *testing.T) {
		fa := newFake()
		fa.ki = twoPrompts
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(want)
		tc.send(passwordRequestMsg("alice", "correct horse"))
		res := tc.expectSuccess()
		if !slices.Equal(res.Methods, []string{"password"}) {
			t.Fatalf("methods %v", res.Methods)
		}
	})
	t.Run("abandoned with user change", func(t *testing.T) {
		fa := newFake()
		fa.ki = twoPrompts
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(want)
		tc.send(passwordRequestMsg("root", "x"))
		tc.expectDisconnect(wire.DisconnectProtocolError, "change of username")
	})
	t.Run("too many prompts", func(t *testing.T) {
		fa := newFake()
		fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
			_, err := ch.Challenge("", "", make([]Prompt, MaxPrompts+1))
			return nil, err
		}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(failure(false, allMethods...))
	})
	t.Run("too many rounds", func(t *testing.T) {
		fa := newFake()
		fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
			for {
				if _, err := ch.Challenge("", "", nil); err != nil {
					return &Permissions{}, nil // must still fail
				}
			}
		}
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		for range MaxChallengeRounds {
			tc.expect(infoRequest("", ""))
			tc.send(infoResponse())
		}
		tc.expect(failure(false, allMethods...))
	})
	t.Run("oversized response", func(t *testing.T) {
		fa := newFake()
		fa.ki = twoPrompts
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(want)
		tc.send(infoResponse(strings.Repeat("x", MaxResponseLen+1), "42"))
		tc.expectDisconnect(wire.DisconnectProtocolError, "malformed")
	})
	t.Run("password via keyboard-interactive", func(t *testing.T) {
		for _, user := range []string{"alice", "nobody"} {
			fa := newFake()
			cfg := testConfig(fa)
			cfg.KeyboardInteractivePassword = true
			tc := start(t, cfg)
			tc.service()
			tc.send(kiRequest(user))
			tc.expect(infoRequest("", "", Prompt{"Password: ", false}))
			tc.send(infoResponse("wrong"))
			tc.expect(failure(false, allMethods...))
			tc.send(kiRequest(user))
			tc.expect(infoRequest("", "", Prompt{"Password: ", false}))
			tc.send(infoResponse("correct horse"))
			if user == "alice" {
				tc.expectSuccess()
			} else {
				tc.expect(failure(false, allMethods...))
			}
			if c := fa.Calls(); !slices.Equal(c, []string{"password " + user, "password " + user}) {
				t.Fatalf("calls %v", c)
			}
		}
	})
}

// disconnectingAuth ends the connection from inside the Authenticator.
type disconnectingAuth struct{ *fakeAuth }

func (d disconnectingAuth) Password(ctx context.Context, meta ConnMetadata, pw []byte) (*Permissions, error) {
	return nil, wire.Errorf(wire.DisconnectByApplication, "account locked")
}

func TestAuthenticatorErrors(t *testing.T) {
	t.Run("disconnect error ends connection", func(t *testing.T) {
		tc := start(t, testConfig(disconnectingAuth{newFake()}))
		tc.service()
		tc.send(passwordRequestMsg("alice", "x"))
		tc.expectDisconnect(wire.DisconnectByApplication, "account locked")
	})
	t.Run("nil permissions refused", func(t *testing.T) {
		fa := newFake()
		fa.users["alice"].perms = nil
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(passwordRequestMsg("alice", "correct horse"))
		tc.expect(failure(false, allMethods...))
	})
	t.Run("no authenticator", func(t *testing.T) {
		_, err := Run(context.Background(), &pipeConn{}, Peer{}, &Config{})
		var de *wire.DisconnectError
		if !errors.As(err, &de) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("permissions not aliased", func(t *testing.T) {
		fa := newFake()
		shared := &Permissions{Environment: []string{"A=1"}}
		fa.users["alice"].perms = shared
		tc := start(t, testConfig(fa))
		tc.service()
		tc.send(passwordRequestMsg("alice", "correct horse"))
		res := tc.expectSuccess()
		res.Permissions.Environment[0] = "B=2"
		if shared.Environment[0] != "A=1" {
			t.Fatal("Result shares the Authenticator's Permissions")
		}
	})
}

func TestEmptyPassword(t *testing.T) {
	fa := newFake()
	fa.users["alice"].password = ""
	tc := start(t, testConfig(fa))
	tc.service()
	tc.send(passwordRequestMsg("alice", ""))
	tc.expect(failure(false, allMethods...))
	if c := fa.Calls(); len(c) != 0 {
		t.Fatalf("authenticator asked about an empty password: %v", c)
	}

	fa = newFake()
	cfg := testConfig(fa)
	cfg.PermitEmptyPasswords = true
	tc = start(t, cfg)
	tc.service()
	tc.send(passwordRequestMsg("alice", ""))
	tc.expect(failure(false, allMethods...))
	if c := fa.Calls(); !slices.Equal(c, []string{"password alice"}) {
		t.Fatalf("calls %v", c)
	}

	// The same rule for a password asked by keyboard-interactive.
	for _, permit := range []bool{false, true} {
		fa = newFake()
		cfg = testConfig(fa)
		cfg.KeyboardInteractivePassword = true
		cfg.PermitEmptyPasswords = permit
		tc = start(t, cfg)
		tc.service()
		tc.send(kiRequest("alice"))
		tc.expect(infoRequest("", "", Prompt{"Password: ", false}))
		tc.send(infoResponse(""))
		tc.expect(failure(false, allMethods...))
		want := []string(nil)
		if permit {
			want = []string{"password alice"}
		}
		if c := fa.Calls(); !slices.Equal(c, want) {
			t.Fatalf("PermitEmptyPasswords %v: calls %v", permit, c)
		}
	}
}

func TestChallengerClosedAfterAttempt(t *testing.T) {
	fa := newFake()
	kept := make(chan Challenger, 1)
	fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
		kept <- ch
		return nil, ErrDenied
	}
	tc := start(t, testConfig(fa))
	tc.service()
	tc.send(kiRequest("alice"))
	tc.expect(failure(false, allMethods...))
	if _, err := (<-kept).Challenge("", "", []Prompt{{"late", true}}); err == nil {
		t.Fatal("Challenger worked after KeyboardInteractive returned")
	}
	tc.send(passwordRequestMsg("alice", "correct horse"))
	tc.expectSuccess()
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	conn := &scriptConn{in: [][]byte{serviceRequest("ssh-userauth"), noneRequest("alice")}}
	cancel()
	_, err := Run(ctx, conn, Peer{}, testConfig(newFake()))
	var de *wire.DisconnectError
	if !errors.As(err, &de) || de.Reason != wire.DisconnectByApplication {
		t.Fatalf("err %v", err)
	}
}

func TestRaisedMaxAuthTries(t *testing.T) {
	cfg := testConfig(newFake())
	cfg.MaxAuthTries = MaxUserAuthRequests
	var in [][]byte
	in = append(in, serviceRequest("ssh-userauth"))
	for range MaxUserAuthRequests + 1 {
		in = append(in, passwordRequestMsg("alice", "wrong"))
	}
	conn := &scriptConn{in: in}
	_, err := Run(context.Background(), conn, Peer{}, cfg)
	var de *wire.DisconnectError
	if !errors.As(err, &de) || de.Message != "Too many authentication failures" {
		t.Fatalf("err %v", err)
	}
	// Every failure before the MaxAuthTries-th was answered.
	if n := len(conn.out) - 1; n != MaxUserAuthRequests-1 {
		t.Fatalf("%d FAILURE replies, want %d", n, MaxUserAuthRequests-1)
	}
}

// TestLogsNoSecrets: the logger sees decisions, never passwords or answers.
func TestLogsNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	fa := newFake()
	fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
		ch.Challenge("", "", []Prompt{{"Code: ", true}})
		return nil, errors.New("backend down")
	}
	cfg := testConfig(fa)
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn := &scriptConn{in: [][]byte{
		serviceRequest("ssh-userauth"),
		passwordRequestMsg("alice", "hunter2-secret"),
		kiRequest("alice"), infoResponse("otp-secret-991"),
		passwordRequestMsg("alice", "correct horse"),
	}}
	if _, err := Run(context.Background(), conn, Peer{RemoteAddr: testRemote()}, cfg); err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	for _, secret := range []string{"hunter2-secret", "otp-secret-991", "correct horse"} {
		if strings.Contains(log, secret) {
			t.Fatalf("log contains %q:\n%s", secret, log)
		}
	}
	for _, want := range []string{"authentication failed", "backend down", "user authenticated"} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestServerSigAlgs(t *testing.T) {
	got := (&Config{}).ServerSigAlgs()
	want := []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512", "rsa-sha2-256"}
	if !slices.Equal(got, want) {
		t.Fatalf("ServerSigAlgs() = %v, want %v", got, want)
	}
	got = (&Config{PubkeyAlgorithms: []string{"rsa-sha2-256-cert-v01@openssh.com", "ssh-rsa", "rsa-sha2-256"}}).ServerSigAlgs()
	if !slices.Equal(got, []string{"ssh-rsa", "rsa-sha2-256"}) {
		t.Fatalf("got %v", got)
	}
}

// TestResultOutlivesPackets: the transport reuses its packet buffer, so
// nothing in the Result may alias a packet.
func TestResultOutlivesPackets(t *testing.T) {
	k := ed25519Signer(t)
	fa := newFake()
	fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
	in := [][]byte{serviceRequest("ssh-userauth"), pkSigned(t, k, testSessionID, "alice", "alice", "ssh-ed25519")}
	res, err := Run(context.Background(), &scriptConn{in: slices.Clone(in)}, Peer{}, testConfig(fa))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range in {
		for i := range p {
			p[i] = 0xAA
		}
	}
	if res.User != "alice" || !bytes.Equal(res.PublicKey.Marshal(), k.PublicKey().Marshal()) {
		t.Fatalf("result changed with the packet buffer: %q %x", res.User, res.PublicKey.Marshal())
	}
	if err := res.PublicKey.Verify([]byte("x"), &keys.Signature{Format: "ssh-ed25519", Blob: make([]byte, 64)}); err == nil {
		t.Fatal("zero signature verified")
	}
}

// queryRecorder notes, for each PublicKey call, whether IsKeyQuery saw a
// query without a signature.
type queryRecorder struct {
	*fakeAuth
	queries []bool
}

func (q *queryRecorder) PublicKey(ctx context.Context, meta ConnMetadata, key keys.PublicKey) (*Permissions, error) {
	q.queries = append(q.queries, IsKeyQuery(ctx))
	return q.fakeAuth.PublicKey(ctx, meta, key)
}

// TestIsKeyQuery: the Authenticator can tell the PK_OK query from the
// signed attempt that follows it (a daemon counts the login once).
func TestIsKeyQuery(t *testing.T) {
	fa := newFake()
	good := ed25519Signer(t)
	fa.users["alice"].keys[string(good.PublicKey().Marshal())] = &Permissions{}
	rec := &queryRecorder{fakeAuth: fa}
	cfg := testConfig(fa)
	cfg.Authenticator = rec
	tc := start(t, cfg)
	tc.service()
	tc.send(pkQuery("alice", "ssh-ed25519", good.PublicKey().Marshal()))
	tc.expect(pkOK("ssh-ed25519", good.PublicKey().Marshal()))
	tc.send(pkSigned(t, good, testSessionID, "alice", "alice", "ssh-ed25519"))
	tc.expectSuccess()
	if len(rec.queries) != 2 || !rec.queries[0] || rec.queries[1] {
		t.Fatalf("IsKeyQuery per call = %v, want [true false]", rec.queries)
	}
}

// answerChallenger answers every challenge with its answers.
type answerChallenger []string

func (a answerChallenger) Challenge(name, instruction string, prompts []Prompt) ([]string, error) {
	return a, nil
}

// TestPasswordChallengeRefusesEmpty: an Authenticator passing its
// Password method to PasswordChallenge must not admit an account without
// a password on an empty answer, which a "password" request with an
// empty password does not either (PermitEmptyPasswords is off by default).
func TestPasswordChallengeRefusesEmpty(t *testing.T) {
	var checked []string
	check := func(ctx context.Context, meta ConnMetadata, password []byte) (*Permissions, error) {
		checked = append(checked, string(password))
		return &Permissions{}, nil
	}
	if _, err := PasswordChallenge(context.Background(), nil, answerChallenger{""}, check); !errors.Is(err, ErrDenied) || len(checked) != 0 {
		t.Fatalf("empty answer: err %v, checked %q", err, checked)
	}
	if p, err := PasswordChallenge(context.Background(), nil, answerChallenger{"pw"}, check); err != nil || p == nil || !slices.Equal(checked, []string{"pw"}) {
		t.Fatalf("answer pw: %v, %v, checked %q", p, err, checked)
	}
}
