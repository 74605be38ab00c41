package server_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
)

// Protocol-level tests: a client driven by hand over transport.Client
// sends what real clients never do and checks the server's exact answer.

func (c *rawClient) serviceRequest() {
	c.t.Helper()
	c.write(wire.AppendStringS([]byte{wire.MsgServiceRequest}, "ssh-userauth"))
	c.expect(wire.MsgServiceAccept)
}

func userAuthHeader(user, method string) []byte {
	p := wire.AppendStringS([]byte{wire.MsgUserAuthRequest}, user)
	p = wire.AppendStringS(p, "ssh-connection")
	return wire.AppendStringS(p, method)
}

func (c *rawClient) sendPassword(user, pw string) {
	p := userAuthHeader(user, "password")
	p = wire.AppendBool(p, false)
	c.write(wire.AppendStringS(p, pw))
}

// login authenticates alice with the password.
func (c *rawClient) login() {
	c.t.Helper()
	c.serviceRequest()
	c.sendPassword(testUser, testPassword)
	c.expect(wire.MsgUserAuthSuccess)
}

func pubkeyAlg(s keys.Signer) string {
	return keys.SignatureAlgorithmsFor(s.PublicKey().Type())[0]
}

func (c *rawClient) sendPublicKeyQuery(user string, s keys.Signer) {
	p := userAuthHeader(user, "publickey")
	p = wire.AppendBool(p, false)
	p = wire.AppendStringS(p, pubkeyAlg(s))
	c.write(wire.AppendString(p, s.PublicKey().Marshal()))
}

// sendPublicKeySigned sends a publickey request signed per RFC 4252 §7.
func (c *rawClient) sendPublicKeySigned(user string, s keys.Signer) {
	c.t.Helper()
	alg := pubkeyAlg(s)
	p := userAuthHeader(user, "publickey")
	p = wire.AppendBool(p, true)
	p = wire.AppendStringS(p, alg)
	p = wire.AppendString(p, s.PublicKey().Marshal())
	data := wire.AppendString(nil, c.tc.SessionID())
	data = append(data, p...)
	sig, err := s.Sign(rand.Reader, data, alg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(wire.AppendString(p, sig.Marshal()))
}

func channelOpenSession(id, window, maxPacket uint32) []byte {
	p := wire.AppendStringS([]byte{wire.MsgChannelOpen}, "session")
	p = wire.AppendUint32(p, id)
	p = wire.AppendUint32(p, window)
	return wire.AppendUint32(p, maxPacket)
}

// openSession opens a session channel and returns the server's channel id,
// window and maximum packet from OPEN_CONFIRMATION.
func (c *rawClient) openSession(id uint32) (remote, window, maxPacket uint32) {
	c.t.Helper()
	c.write(channelOpenSession(id, 1<<20, 32768))
	p := c.expect(wire.MsgChannelOpenConfirmation)
	r := wire.NewReader(p[1:])
	if got := r.Uint32(); got != id {
		c.t.Fatalf("confirmation for channel %d, want %d", got, id)
	}
	remote, window, maxPacket = r.Uint32(), r.Uint32(), r.Uint32()
	if !r.Ok() {
		c.t.Fatalf("short OPEN_CONFIRMATION % x", p)
	}
	return remote, window, maxPacket
}

// expectDisconnect reads until the server's DISCONNECT and checks its
// reason and that its message contains msg.
func (c *rawClient) expectDisconnect(reason uint32, msg string) {
	c.t.Helper()
	for range 1000 {
		p, err := c.read()
		if err == nil {
			continue // e.g. a hostkeys-00 announcement racing the failure
		}
		var d *wire.DisconnectError
		if !errors.As(err, &d) || !d.Remote {
			c.t.Fatalf("want DISCONNECT %d %q, got %v", reason, msg, err)
		}
		if d.Reason != reason || !strings.Contains(d.Message, msg) {
			c.t.Fatalf("DISCONNECT %d %q, want %d containing %q", d.Reason, d.Message, reason, msg)
		}
		_ = p
		return
	}
	c.t.Fatal("no DISCONNECT after 1000 messages")
}

// countingHandler counts handler runs and records the session's key.
type countingHandler struct {
	runs atomic.Int32
	key  atomic.Pointer[keys.PublicKey]
}

func (h *countingHandler) ServeSSH(s *server.Session) {
	h.runs.Add(1)
	if k := s.PublicKey(); k != nil {
		h.key.Store(&k)
	}
	io.WriteString(s, s.User())
}

func TestBeforeAuthMessagesDisconnect(t *testing.T) {
	execReq := wire.AppendStringS(wire.AppendUint32([]byte{wire.MsgChannelRequest}, 0), "exec")
	execReq = wire.AppendBool(execReq, true)
	execReq = wire.AppendStringS(execReq, "id")
	globalReq := wire.AppendBool(wire.AppendStringS([]byte{wire.MsgGlobalRequest}, "tcpip-forward"), true)
	globalReq = wire.AppendUint32(wire.AppendStringS(globalReq, "127.0.0.1"), 0)
	tests := []struct {
		name           string
		serviceRequest bool
		msg            []byte
	}{
		{"channel open before service request", false, channelOpenSession(0, 1<<20, 32768)},
		{"channel open", true, channelOpenSession(0, 1<<20, 32768)},
		{"client sends USERAUTH_SUCCESS", true, []byte{wire.MsgUserAuthSuccess}},
		{"global request", true, globalReq},
		{"channel request exec", true, execReq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &countingHandler{}
			ts := startServer(t, &server.Server{Handler: h})
			c := dialRaw(t, ts.addr)
			if tt.serviceRequest {
				c.serviceRequest()
			}
			c.write(tt.msg)
			c.expectDisconnect(wire.DisconnectProtocolError, "")
			info := <-ts.closed
			if info.Authenticated || info.Phase != "auth" {
				t.Errorf("conn info: authenticated %v phase %q", info.Authenticated, info.Phase)
			}
			if n := h.runs.Load(); n != 0 {
				t.Errorf("handler ran %d times", n)
			}
		})
	}
}

// A public key query for key A and a signed request for key B: the
// session's key is B, and only when B itself is authorized
// (CVE-2024-45337 class).
func TestPublicKeyQueryThenOtherKey(t *testing.T) {
	keyA, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := keys.GenerateKey("ecdsa-sha2-nistp256", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, bAllowed := range []bool{true, false} {
		t.Run(map[bool]string{true: "B allowed", false: "B not allowed"}[bAllowed], func(t *testing.T) {
			h := &countingHandler{}
			ts := startServer(t, &server.Server{Handler: h})
			ts.auth.allowKey(testUser, keyA.PublicKey())
			if bAllowed {
				ts.auth.allowKey(testUser, keyB.PublicKey())
			}
			c := dialRaw(t, ts.addr)
			c.serviceRequest()
			c.sendPublicKeyQuery(testUser, keyA)
			c.expect(wire.MsgUserAuthPKOK)
			c.sendPublicKeySigned(testUser, keyB)
			if !bAllowed {
				p := c.expect(wire.MsgUserAuthFailure)
				r := wire.NewReader(p[1:])
				if methods, partial := r.NameList(), r.Bool(); !r.Ok() || partial || len(methods) == 0 {
					t.Fatalf("FAILURE % x", p)
				}
				return
			}
			c.expect(wire.MsgUserAuthSuccess)
			c.openSession(0)
			execReq := wire.AppendStringS(wire.AppendUint32([]byte{wire.MsgChannelRequest}, 0), "exec")
			execReq = wire.AppendStringS(wire.AppendBool(execReq, true), "whoami")
			c.write(execReq)
			c.expect(wire.MsgChannelSuccess)
			c.readUntil(wire.MsgChannelClose) // the handler has run
			k := h.key.Load()
			if k == nil || !keys.Equal(*k, keyB.PublicKey()) {
				t.Fatalf("session key %v, want key B", k)
			}
		})
	}
}

// readUntil reads messages until one of type typ and returns it.
func (c *rawClient) readUntil(typ byte) []byte {
	c.t.Helper()
	for range 10000 {
		p, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for message %d: %v", typ, err)
		}
		if p[0] == typ {
			return p
		}
	}
	c.t.Fatalf("no message %d in 10000", typ)
	return nil
}

func TestTooManyAuthFailures(t *testing.T) {
	h := &countingHandler{}
	ts := startServer(t, &server.Server{Handler: h})
	c := dialRaw(t, ts.addr)
	c.serviceRequest()
	// sshd's MaxAuthTries 6: five FAILUREs, then the sixth disconnects.
	for i := range 5 {
		c.sendPassword(testUser, "wrong")
		if p := c.expect(wire.MsgUserAuthFailure); p == nil {
			t.Fatalf("attempt %d", i+1)
		}
	}
	c.sendPassword(testUser, "wrong")
	c.expectDisconnect(wire.DisconnectProtocolError, "Too many authentication failures")
	if n := h.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times", n)
	}
}

// Data beyond the window the server advertised ends the connection with
// PROTOCOL_ERROR (connection package doc: stricter than OpenSSH).
func TestWindowOverrun(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: &countingHandler{}})
	c := dialRaw(t, ts.addr)
	c.login()
	remote, window, maxPacket := c.openSession(0)
	chunk := make([]byte, min(maxPacket, 32768))
	for sent := uint64(0); sent <= uint64(window); sent += uint64(len(chunk)) {
		p := wire.AppendUint32([]byte{wire.MsgChannelData}, remote)
		if err := c.tc.WritePacket(wire.AppendString(p, chunk)); err != nil {
			break // the server may hang up before we finish
		}
	}
	c.expectDisconnect(wire.DisconnectProtocolError, "window")
}

func TestMaxSessions(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: &countingHandler{}})
	c := dialRaw(t, ts.addr)
	c.login()
	for i := range uint32(server.DefaultMaxSessions) {
		c.openSession(i)
	}
	c.write(channelOpenSession(server.DefaultMaxSessions, 1<<20, 32768))
	p := c.expect(wire.MsgChannelOpenFailure)
	r := wire.NewReader(p[1:])
	if id, reason := r.Uint32(), r.Uint32(); !r.Ok() || id != server.DefaultMaxSessions || reason != wire.OpenResourceShortage {
		t.Fatalf("OPEN_FAILURE % x: want channel %d, reason RESOURCE_SHORTAGE", p, server.DefaultMaxSessions)
	}
	// Closing one makes room again.
	c.write(wire.AppendUint32([]byte{wire.MsgChannelClose}, 0))
	c.readUntil(wire.MsgChannelClose)
	c.openSession(100)
}

func TestNoMoreSessions(t *testing.T) {
	for _, wantReply := range []bool{true, false} {
		t.Run(map[bool]string{true: "want reply", false: "no reply"}[wantReply], func(t *testing.T) {
			ts := startServer(t, &server.Server{Handler: &countingHandler{}})
			c := dialRaw(t, ts.addr)
			c.login()
			c.openSession(0)
			c.write(wire.AppendBool(wire.AppendStringS([]byte{wire.MsgGlobalRequest}, "no-more-sessions@openssh.com"), wantReply))
			if wantReply {
				c.expect(wire.MsgRequestSuccess)
			}
			// OpenSSH PROTOCOL §2.2: "refuse to open future channels of
			// type session and instead immediately abort the connection",
			// as sshd does.
			c.write(channelOpenSession(1, 1<<20, 32768))
			c.expectDisconnect(wire.DisconnectProtocolError, "no-more-sessions")
		})
	}
}

func TestLoginGraceTime(t *testing.T) {
	t.Run("after version exchange", func(t *testing.T) {
		ts := startServer(t, &server.Server{Handler: &countingHandler{}, LoginGraceTime: 500 * time.Millisecond})
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		io.WriteString(nc, "SSH-2.0-stalled\r\n")
		// Bound for the test, well above the grace time: if the server
		// does not hang up, the read fails with our deadline instead of EOF.
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err = nc.Read(buf); err != nil {
				break
			}
		}
		if !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("server did not hang up: %v", err)
		}
		info := <-ts.closed
		if !info.GraceExceeded || info.Phase != "handshake" {
			t.Errorf("conn info: grace exceeded %v, phase %q", info.GraceExceeded, info.Phase)
		}
	})
	t.Run("after key exchange", func(t *testing.T) {
		// Longer grace: the kex itself must fit in it on a loaded machine.
		ts := startServer(t, &server.Server{Handler: &countingHandler{}, LoginGraceTime: 2 * time.Second})
		c := dialRaw(t, ts.addr)
		c.serviceRequest()
		// Like sshd, which exits on its grace alarm without a DISCONNECT,
		// the connection just ends: the transport latches the read timeout
		// and sends nothing more.
		_, err := c.read()
		if err == nil || isTimeout(err) {
			t.Fatalf("server did not hang up: %v", err)
		}
		info := <-ts.closed
		if !info.GraceExceeded || info.Phase != "auth" {
			t.Errorf("conn info: grace exceeded %v, phase %q", info.GraceExceeded, info.Phase)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && strings.Contains(oe.Err.Error(), "reset")
}

// TestFailedHandshakeInfo: a connection whose key exchange fails (here no
// common kex algorithm) reports the client's identification string and
// the bytes it got in ConnInfo; ferry serve's "connection closed" line
// showed client="" and bytes_in=0, hiding which customer software could
// not connect.
func TestFailedHandshakeInfo(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: &countingHandler{}})
	_, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("x")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		Config: ssh.Config{KeyExchanges: []string{"diffie-hellman-group1-sha1"}}})
	if err == nil {
		t.Fatal("a client offering only diffie-hellman-group1-sha1 connected")
	}
	select {
	case info := <-ts.closed:
		if info.ClientVersion != "SSH-2.0-Go" || info.BytesIn == 0 || info.Phase != "handshake" || info.Err == nil {
			t.Fatalf("ConnInfo: client %q, bytes in %d, phase %q, err %v", info.ClientVersion, info.BytesIn, info.Phase, info.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not reported")
	}
}
