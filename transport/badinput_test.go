package transport_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// plainPacket frames payload as an unencrypted binary packet (RFC 4253 §6)
// with padding to a multiple of 8.
func plainPacket(payload []byte) []byte {
	pad := 8 - (5+len(payload))%8
	if pad < 4 {
		pad += 8
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+pad))
	b = append(b, byte(pad))
	b = append(b, payload...)
	return append(b, make([]byte, pad)...)
}

// minimalKexInit is a client KEXINIT the default server can accept.
func minimalKexInit() []byte {
	b := []byte{wire.MsgKexInit}
	b = append(b, make([]byte, 16)...)
	for _, l := range [][]string{{"curve25519-sha256"}, {"ssh-ed25519"}, {"aes128-ctr"}, {"aes128-ctr"},
		{"hmac-sha2-256"}, {"hmac-sha2-256"}, {"none"}, {"none"}, nil, nil} {
		b = wire.AppendNameList(b, l)
	}
	b = wire.AppendBool(b, false)
	return wire.AppendUint32(b, 0)
}

// corruptingConn flips one bit of the first byte written after arm().
type corruptingConn struct {
	net.Conn
	armed atomic.Bool
}

func (c *corruptingConn) Write(p []byte) (int, error) {
	if len(p) > 0 && c.armed.CompareAndSwap(true, false) {
		q := append([]byte(nil), p...)
		q[len(q)-1] ^= 0x01 // inside the MAC or AEAD tag
		return c.Conn.Write(q)
	}
	return c.Conn.Write(p)
}

func TestBadInputOneServer(t *testing.T) {
	cfg := allAlgorithmsConfig()
	addr, results := startServer(t, cfg)

	rawConn := func(t *testing.T) net.Conn {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		return nc
	}
	// drain reads whatever the server sends until it closes.
	drain := func(nc net.Conn) string {
		b, _ := io.ReadAll(io.LimitReader(nc, 1<<20))
		return string(b)
	}
	expectErr := func(t *testing.T, want string) {
		t.Helper()
		r := waitResult(t, results)
		if r.err == nil || !strings.Contains(r.err.Error(), want) {
			t.Fatalf("server error = %v, want containing %q", r.err, want)
		}
		t.Logf("server ended the connection: %v", r.err)
	}

	cases := []struct {
		name string
		send func(t *testing.T) // drives one hostile connection
		want string
	}{
		{"garbage banner", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			drain(nc)
		}, "did not send an SSH identification"},
		{"overlong banner", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-" + strings.Repeat("A", 1000)))
			drain(nc)
		}, "longer than 255"},
		{"ssh1 banner", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-1.5-old\r\n"))
			if out := drain(nc); !strings.Contains(out, "Protocol major versions differ.") {
				t.Errorf("SSH-1 client got %q", out)
			}
		}, "Protocol major versions differ"},
		{"oversized packet length", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			nc.Write([]byte{0x7f, 0xff, 0xff, 0xff, 4, 0, 0, 0})
			drain(nc)
		}, "disconnect"},
		{"bad padding length", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			p := plainPacket(minimalKexInit())
			p[4] = 255 // padding longer than the packet
			nc.Write(p)
			drain(nc)
		}, "disconnect"},
		{"truncated packet", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			p := plainPacket(minimalKexInit())
			nc.Write(p[:len(p)/2])
			nc.(*net.TCPConn).CloseWrite()
			drain(nc)
		}, "EOF"},
		{"message before KEXINIT", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			nc.Write(plainPacket([]byte{wire.MsgServiceRequest, 0, 0, 0, 0}))
			drain(nc)
		}, "before KEXINIT"},
		{"second KEXINIT mid-kex", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			nc.Write(plainPacket(minimalKexInit()))
			nc.Write(plainPacket(minimalKexInit()))
			drain(nc)
		}, "unexpected message 20 during key exchange"},
		{"no common algorithm", func(t *testing.T) {
			nc := rawConn(t)
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			b := []byte{wire.MsgKexInit}
			b = append(b, make([]byte, 16)...)
			for _, l := range [][]string{{"kex-from-the-future@example.org"}, {"ssh-ed25519"}, {"aes128-ctr"}, {"aes128-ctr"},
				{"hmac-sha2-256"}, {"hmac-sha2-256"}, {"none"}, {"none"}, nil, nil} {
				b = wire.AppendNameList(b, l)
			}
			b = wire.AppendUint32(wire.AppendBool(b, false), 0)
			nc.Write(plainPacket(b))
			if out := drain(nc); !strings.Contains(out, "no matching key exchange") {
				t.Errorf("client did not get a DISCONNECT naming the failure: %q", out)
			}
		}, "no matching key exchange"},
		{"bad MAC", func(t *testing.T) {
			nc := &corruptingConn{Conn: rawConn(t)}
			c, err := transport.Client(nc, &transport.ClientConfig{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}})
			if err != nil {
				t.Fatal(err)
			}
			nc.armed.Store(true)
			c.WritePacket(wire.AppendStringS([]byte{wire.MsgServiceRequest}, "ssh-userauth"))
			_, err = c.ReadPacket()
			var d *transport.DisconnectError
			if !errors.As(err, &d) || d.Reason != wire.DisconnectMACError || !d.Remote {
				t.Errorf("client saw %v, want DISCONNECT MAC_ERROR", err)
			}
		}, "reason 5"},
		{"bad AEAD tag", func(t *testing.T) {
			nc := &corruptingConn{Conn: rawConn(t)}
			c, err := transport.Client(nc, &transport.ClientConfig{Ciphers: []string{"chacha20-poly1305@openssh.com"}})
			if err != nil {
				t.Fatal(err)
			}
			nc.armed.Store(true)
			c.WritePacket(wire.AppendStringS([]byte{wire.MsgServiceRequest}, "ssh-userauth"))
			c.ReadPacket()
		}, "reason 5"},
		{"connection message before auth", func(t *testing.T) {
			c, err := transport.Client(rawConn(t), &transport.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			c.WritePacket(append([]byte{wire.MsgChannelOpen}, wire.AppendStringS(nil, "session")...))
			c.ReadPacket()
		}, "message 90 before authentication"},
		{"unknown transport message then disconnect", func(t *testing.T) {
			c, err := transport.Client(rawConn(t), &transport.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			// RFC 4253 §11.4: answered with UNIMPLEMENTED, the
			// connection goes on; the client then says goodbye.
			c.WritePacket([]byte{15, 1, 2, 3})
			c.Disconnect(wire.DisconnectByApplication, "bye")
		}, "peer disconnect (reason 11)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.send(t)
			expectErr(t, tc.want)
		})
	}

	// The same server still serves a well-behaved client.
	_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("x")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("good client after bad ones: %v", err)
	}
	if r := waitResult(t, results); !r.sawAuthReq {
		t.Fatalf("good client did not reach authentication: %+v", r)
	}
}

// TestConfigDeadlineBoundsFirstKex: Config.Deadline bounds the version
// exchange and the first key exchange although KexTimeout is longer, so a
// client that sends its version and stalls ends at the deadline (the
// server's LoginGraceTime), not at the kex timeout.
func TestConfigDeadlineBoundsFirstKex(t *testing.T) {
	cfg := allAlgorithmsConfig()
	cfg.KexTimeout = time.Minute
	cfg.Deadline = time.Now().Add(300 * time.Millisecond)
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		io.WriteString(client, "SSH-2.0-stalled\r\n")
		io.Copy(io.Discard, client) // read the server's version and KEXINIT
	}()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := transport.Server(server, cfg)
		server.Close()
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Server returned %v, want a timeout", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("took %v", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first key exchange outlived Config.Deadline by 30 s (KexTimeout is a minute)")
	}
}
