package server_test

import (
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

func channelRequest(remote uint32, name string, wantReply bool, payload []byte) []byte {
	p := wire.AppendUint32([]byte{wire.MsgChannelRequest}, remote)
	p = wire.AppendStringS(p, name)
	p = wire.AppendBool(p, wantReply)
	return append(p, payload...)
}

// Once a session runs its program, another shell, exec or subsystem
// request on the channel, and pty-req and env, are refused (sshd's
// session_input_channel_req: one program per session); requests without
// want-reply get no reply; the session ends with EOF, exit-status and
// CLOSE in that order (RFC 4254 §6.10).
func TestSessionRequestsAfterStart(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(func(s *server.Session) {
		<-release
		s.Write([]byte("out"))
		s.Exit(3)
	})})
	c := dialRaw(t, ts.addr)
	c.login()
	remote, _, _ := c.openSession(0)
	c.write(channelRequest(remote, "env", false, wire.AppendStringS(wire.AppendStringS(nil, "X"), "y")))
	c.write(channelRequest(remote, "exec", true, wire.AppendStringS(nil, "first")))
	if p := c.expect(wire.MsgChannelSuccess); len(p) != 5 {
		t.Fatalf("exec reply % x", p)
	}
	for _, r := range []struct {
		name    string
		payload []byte
	}{
		{"exec", wire.AppendStringS(nil, "second")},
		{"shell", nil},
		{"subsystem", wire.AppendStringS(nil, "sftp")},
		{"pty-req", (&ptyReq{term: "xterm"}).marshal()},
		{"env", wire.AppendStringS(wire.AppendStringS(nil, "LANG"), "C")},
	} {
		c.write(channelRequest(remote, r.name, false, r.payload)) // no reply
		c.write(channelRequest(remote, r.name, true, r.payload))
		if p := c.expect(wire.MsgChannelFailure); wire.NewReader(p[1:]).Uint32() != 0 {
			t.Fatalf("%s: reply % x", r.name, p)
		}
	}
	close(release)
	var got []byte
	for range 10 {
		p := c.readUntilAny()
		got = append(got, p[0])
		if p[0] == wire.MsgChannelRequest {
			r := wire.NewReader(p[1:])
			r.Uint32()
			if name, want, status := r.String(), r.Bool(), r.Uint32(); name != "exit-status" || want || status != 3 {
				t.Fatalf("request %q want-reply %v status %d", name, want, status)
			}
		}
		if p[0] == wire.MsgChannelClose {
			break
		}
	}
	want := []byte{wire.MsgChannelData, wire.MsgChannelEOF, wire.MsgChannelRequest, wire.MsgChannelClose}
	if string(got) != string(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
}

type ptyReq struct{ term string }

func (p *ptyReq) marshal() []byte {
	b := wire.AppendStringS(nil, p.term)
	for range 4 {
		b = wire.AppendUint32(b, 0)
	}
	return wire.AppendString(b, []byte{0})
}

// readUntilAny returns the next message other than a WINDOW_ADJUST.
func (c *rawClient) readUntilAny() []byte {
	c.t.Helper()
	for range 1000 {
		p, err := c.read()
		if err != nil {
			c.t.Fatal(err)
		}
		if p[0] != wire.MsgChannelWindowAdjust {
			return p
		}
	}
	c.t.Fatal("only WINDOW_ADJUSTs")
	return nil
}
