package server_test

import (
	"strconv"
	"strings"
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

// "env" values are bounded in total per session, not only in number: 64
// accepted variables of 200 KiB each (one packet apiece) made a session
// hold 12.5 MiB and a connection's ten sessions 125 MiB, with the
// default AcceptEnv LC_* of ferry serve.
func TestEnvBytesBounded(t *testing.T) {
	environ := make(chan []string, 1)
	ts := startServer(t, &server.Server{
		AcceptEnv: []string{"LC_*"},
		Handler: server.HandlerFunc(func(s *server.Session) {
			environ <- s.Environ()
			s.Exit(0)
		}),
	})
	c := dialRaw(t, ts.addr)
	c.login()
	remote, _, _ := c.openSession(0)
	value := strings.Repeat("x", 200<<10)
	accepted := 0
	for i := range 64 {
		name := "LC_X" + strconv.Itoa(i)
		c.write(channelRequest(remote, "env", true, wire.AppendStringS(wire.AppendStringS(nil, name), value)))
		if p := c.readUntilAny(); p[0] == wire.MsgChannelSuccess {
			accepted++
		}
	}
	// A small variable still fits after the big ones were refused.
	c.write(channelRequest(remote, "env", true, wire.AppendStringS(wire.AppendStringS(nil, "LC_ALL"), "C.UTF-8")))
	if p := c.readUntilAny(); p[0] != wire.MsgChannelSuccess {
		t.Errorf("a small variable after refused big ones: message %d, want SUCCESS", p[0])
	}
	c.write(channelRequest(remote, "exec", true, wire.AppendStringS(nil, "env")))
	total := 0
	for _, e := range <-environ {
		total += len(e)
	}
	if total > 1<<20 {
		t.Errorf("session holds %d bytes of environment (%d big variables accepted), want at most 1 MiB", total, accepted)
	}
}
