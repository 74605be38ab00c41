package security

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// What one authenticated account can make the server hold. A hosting
// provider's customers are semi-trusted: a compromised account must not
// take the server's memory from the thousands of others.

// loginAlice opens an authenticated connection with a deadline long
// enough for a probe that stalls on purpose.
func loginAlice(t *testing.T, s *ferryServer) *transport.Conn {
	t.Helper()
	c := s.dial(nil)
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	login(t, c, "alice", alicePassword)
	return c
}

// openSessionChannel opens one session channel and returns the server's
// channel number.
func openSessionChannel(t *testing.T, c *transport.Conn) uint32 {
	t.Helper()
	if err := c.WritePacket(channelOpenSession(0)); err != nil {
		t.Fatal(err)
	}
	m := readSkipping(t, c)
	if m[0] != wire.MsgChannelOpenConfirmation {
		t.Fatalf("got %d, want CHANNEL_OPEN_CONFIRMATION", m[0])
	}
	r := wire.NewReader(m[1:])
	r.Uint32()
	return r.Uint32()
}

// sendChannelData sends n bytes of CHANNEL_DATA in 32 KiB packets.
func sendChannelData(c *transport.Conn, serverChan uint32, n int) error {
	chunk := make([]byte, 32<<10)
	for sent := 0; sent < n; sent += len(chunk) {
		msg := wire.AppendUint32([]byte{wire.MsgChannelData}, serverChan)
		if err := c.WritePacket(wire.AppendString(msg, chunk[:min(len(chunk), n-sent)])); err != nil {
			return err
		}
	}
	return nil
}

// TestHeldDuringRekeyBoundedByWindow: messages a client sends during a
// key re-exchange it started are held until the exchange ends (AsyncSSH
// 2.10 sends channel data after its KEXINIT). The hold was bounded only
// by 16 MiB and 4,096 packets per connection, whatever the windows: a
// client that sent KEXINIT, never continued the exchange and streamed
// CHANNEL_DATA made the server hold 16 MiB for the 60 s kex timeout on
// each of its connections (20 connections of one account: +400 MiB of
// RSS). The held data is now bounded by the windows the client was
// granted (RFC 4254 §5.2): data within them is still held, and data
// beyond them ends the connection with a protocol error.
func TestHeldDuringRekeyBoundedByWindow(t *testing.T) {
	s := newServer(t, probeConfig,
		testUser{name: "alice", password: alicePassword},
		testUser{name: "bob", password: alicePassword})
	s.assertServing("alice", alicePassword)
	const window = connection.DefaultInitialWindow
	const conns = 8
	base := s.rssKiB()

	var cs []*transport.Conn
	for range conns {
		c := loginAlice(t, s)
		ch := openSessionChannel(t, c)
		// Start a key exchange and never continue it: the server's
		// KEXINIT and everything after it stay unread.
		if err := c.WritePacket(kexInit(strictKexClient)); err != nil {
			t.Fatal(err)
		}
		// Within the window: held, the connection stays.
		if err := sendChannelData(c, ch, window-64<<10); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		// Past it: the window is overrun.
		if err := sendChannelData(c, ch, 4<<20); err != nil {
			t.Logf("write past the window: %v", err)
		}
	}
	peak := s.rssKiB()
	var ended int
	for range 200 {
		ended = strings.Count(s.log.String(), "exceeds the windows granted")
		if ended == conns {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d connections each sent %d KiB during a stalled key exchange (window %d KiB): RSS %+d KiB; %d ended for overrunning the window",
		conns, (window-64<<10+4<<20)>>10, window>>10, peak-base, ended)
	if ended != conns {
		t.Fatalf("%d of %d connections that overran their window during a key exchange were ended; server log:\n%s", ended, conns, s.log)
	}
	line := waitLogLine(t, s, "exceeds the windows granted")
	if !strings.Contains(line, "reason 2") {
		t.Errorf("want a PROTOCOL_ERROR (reason 2): %s", line)
	}
	s.assertServing("bob", alicePassword)
}

// TestMaxConnectionsPerAccount: an account's authenticated connections
// were unbounded (max_sessions bounds sessions per connection, not
// connections), and each connection can be made to hold tens of MiB:
// ten session channels whose 2 MiB windows the client fills without
// starting anything held 26 MiB of RSS per connection. With
// --max-connections N the account's connection past N is ended right
// after authentication with TOO_MANY_CONNECTIONS, and its slot comes back
// when a connection ends; other accounts are not affected.
func TestMaxConnectionsPerAccount(t *testing.T) {
	s := newServer(t, probeConfig,
		testUser{name: "alice", password: alicePassword, extraFlags: []string{"--max-connections", "2"}},
		testUser{name: "bob", password: alicePassword})
	first, second := loginAlice(t, s), loginAlice(t, s)
	openSessionChannel(t, second)

	third := loginAlice(t, s)
	err := expectDisconnect(t, third, wire.DisconnectTooManyConnections)
	if !strings.Contains(err.Error(), "too many connections for alice (max 2)") {
		t.Fatalf("disconnect %v, want the account and its limit named", err)
	}
	waitLogLine(t, s, "too many connections for alice (max 2)")
	if !strings.Contains(s.log.String(), "connection refused") {
		t.Errorf("no \"connection refused\" line for the admin:\n%s", s.log)
	}
	s.assertServing("bob", alicePassword)

	// A connection that ends gives its slot back.
	first.Close()
	for i := 0; ; i++ {
		c := loginAlice(t, s)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WritePacket(channelOpenSession(0)); err != nil {
			t.Fatal(err)
		}
		p, err := c.ReadPacket()
		for err == nil && p[0] == wire.MsgGlobalRequest {
			p, err = c.ReadPacket()
		}
		if err == nil && p[0] == wire.MsgChannelOpenConfirmation {
			break
		}
		if i == 50 {
			t.Fatalf("no connection admitted after one of the two ended: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
