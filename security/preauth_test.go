package security

import (
	"os"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

const (
	alicePassword = "correct horse battery"
	bobPassword   = "tr0ub4dor&3 bob"
)

// TestPreAuthConnectionProtocol sends connection-protocol messages before
// USERAUTH_SUCCESS, both straight after the key exchange and after the
// ssh-userauth service was accepted. CVE-2025-32433 (Erlang/OTP ssh) ran
// an exec request sent before authentication; the server must disconnect
// with PROTOCOL_ERROR and run nothing.
func TestPreAuthConnectionProtocol(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	marker := s.home("alice") + "/pwned"
	execPayload := wire.AppendStringS(nil, "touch "+marker)
	forward := wire.AppendStringS([]byte{wire.MsgGlobalRequest}, "tcpip-forward")
	forward = wire.AppendBool(forward, true)
	forward = wire.AppendStringS(forward, "127.0.0.1")
	forward = wire.AppendUint32(forward, 0)

	probes := []struct {
		name string
		msgs [][]byte
	}{
		{"channel-open", [][]byte{channelOpenSession(0)}},
		{"channel-request-exec", [][]byte{channelRequest(0, "exec", true, execPayload)}},
		{"open-then-exec", [][]byte{channelOpenSession(0), channelRequest(0, "exec", false, execPayload)}},
		{"global-tcpip-forward", [][]byte{forward}},
		{"channel-data", [][]byte{wire.AppendString(wire.AppendUint32([]byte{wire.MsgChannelData}, 0), []byte("x"))}},
	}
	for _, p := range probes {
		for _, afterService := range []bool{false, true} {
			name := p.name
			if afterService {
				name += "/after-service-accept"
			}
			t.Run(name, func(t *testing.T) {
				c := s.dial(nil)
				if afterService {
					startAuth(t, c)
				}
				for _, m := range p.msgs {
					if err := c.WritePacket(m); err != nil {
						t.Fatal(err)
					}
				}
				expectDisconnect(t, c, wire.DisconnectProtocolError)
			})
		}
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("pre-auth exec ran: %s exists (err %v)", marker, err)
	}
	s.assertServing("alice", alicePassword)
}

// TestClientSendsServerAuthMessages: libssh (CVE-2018-10933) took a
// client's USERAUTH_SUCCESS as proof of authentication. Messages only a
// server may send must end the connection, and a channel opened right
// behind them (pipelined, as the exploit does) must never be confirmed.
func TestClientSendsServerAuthMessages(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	msgs := []struct {
		name string
		msg  []byte
	}{
		{"USERAUTH_SUCCESS", []byte{wire.MsgUserAuthSuccess}},
		{"USERAUTH_FAILURE", wire.AppendBool(wire.AppendNameList([]byte{wire.MsgUserAuthFailure}, []string{"password"}), false)},
		{"USERAUTH_BANNER", wire.AppendStringS(wire.AppendStringS([]byte{wire.MsgUserAuthBanner}, "hi"), "")},
		{"SERVICE_ACCEPT", wire.AppendStringS([]byte{wire.MsgServiceAccept}, "ssh-userauth")},
		{"USERAUTH_PK_OK", wire.AppendStringS([]byte{wire.MsgUserAuthPKOK}, "ssh-ed25519")},
	}
	for _, m := range msgs {
		for _, afterService := range []bool{false, true} {
			name := m.name
			if afterService {
				name += "/after-service-accept"
			}
			t.Run(name, func(t *testing.T) {
				c := s.dial(nil)
				if afterService {
					startAuth(t, c)
				}
				if err := c.WritePacket(m.msg); err != nil {
					t.Fatal(err)
				}
				// The exploit's next step; a vulnerable server confirms it.
				c.WritePacket(channelOpenSession(0))
				c.WritePacket(channelRequest(0, "exec", true, wire.AppendStringS(nil, "id")))
				expectDisconnect(t, c, wire.DisconnectProtocolError)
			})
		}
	}
	s.assertServing("alice", alicePassword)
}
