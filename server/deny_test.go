package server_test

import (
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

// With no policy set, everything that reaches beyond the session is
// refused, each with its protocol's answer: x11-req and
// auth-agent-req@openssh.com with CHANNEL_FAILURE (RFC 4254 §6.3.1,
// OpenSSH's agent request), tcpip-forward and
// streamlocal-forward@openssh.com with REQUEST_FAILURE (RFC 4254 §7.1),
// direct-tcpip and direct-streamlocal@openssh.com with
// ADMINISTRATIVELY_PROHIBITED, and the channel types only a server
// opens with UNKNOWN_CHANNEL_TYPE (RFC 4254 §5.1).
func TestForwardingDeniedByDefault(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: &countingHandler{}})
	c := dialRaw(t, ts.addr)
	c.login()
	remote, _, _ := c.openSession(0)
	x11 := wire.AppendBool(nil, false)
	x11 = wire.AppendStringS(x11, "MIT-MAGIC-COOKIE-1")
	x11 = wire.AppendStringS(x11, "00112233445566778899aabbccddeeff")
	x11 = wire.AppendUint32(x11, 0)
	for _, r := range []struct {
		name    string
		payload []byte
	}{{"x11-req", x11}, {"auth-agent-req@openssh.com", nil}} {
		c.write(channelRequest(remote, r.name, true, r.payload))
		c.expect(wire.MsgChannelFailure)
	}

	tcpip := wire.AppendUint32(wire.AppendStringS(nil, "127.0.0.1"), 0)
	for _, r := range []struct {
		name    string
		payload []byte
	}{
		{"tcpip-forward", tcpip},
		{"streamlocal-forward@openssh.com", wire.AppendStringS(nil, t.TempDir()+"/s")},
	} {
		p := wire.AppendStringS([]byte{wire.MsgGlobalRequest}, r.name)
		c.write(append(wire.AppendBool(p, true), r.payload...))
		c.expect(wire.MsgRequestFailure)
	}

	direct := wire.AppendUint32(wire.AppendStringS(nil, "127.0.0.1"), 22)
	direct = wire.AppendUint32(wire.AppendStringS(direct, "127.0.0.1"), 40000)
	streamlocal := wire.AppendUint32(wire.AppendStringS(wire.AppendStringS(nil, "/tmp/x.sock"), ""), 0)
	for i, o := range []struct {
		typ    string
		extra  []byte
		reason uint32
	}{
		{"direct-tcpip", direct, wire.OpenAdministrativelyProhibited},
		{"direct-streamlocal@openssh.com", streamlocal, wire.OpenAdministrativelyProhibited},
		{"x11", direct, wire.OpenUnknownChannelType},
		{"auth-agent@openssh.com", nil, wire.OpenUnknownChannelType},
		{"forwarded-tcpip", direct, wire.OpenUnknownChannelType},
		{"tun@openssh.com", wire.AppendUint32(wire.AppendUint32(nil, 1), 0x7fffffff), wire.OpenUnknownChannelType},
	} {
		id := uint32(10 + i)
		p := wire.AppendStringS([]byte{wire.MsgChannelOpen}, o.typ)
		p = wire.AppendUint32(wire.AppendUint32(wire.AppendUint32(p, id), 1<<20), 32768)
		c.write(append(p, o.extra...))
		f := c.expect(wire.MsgChannelOpenFailure)
		r := wire.NewReader(f[1:])
		if got, reason := r.Uint32(), r.Uint32(); got != id || reason != o.reason {
			t.Errorf("%s: OPEN_FAILURE for channel %d reason %d, want %d reason %d", o.typ, got, reason, id, o.reason)
		}
	}
}
