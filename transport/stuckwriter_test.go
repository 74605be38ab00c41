package transport_test

import (
	"net"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// TestDisconnectPastStuckWriter: a peer that keeps its socket open but
// stops reading leaves a writer blocked in write(2), holding the
// connection's write lock. Disconnect (which ClientAliveInterval, a
// protocol error and a handler's panic all end in) must still end the
// connection within its write timeout; it used to wait for that lock
// forever, so the connection lived as long as the peer wished.
func TestDisconnectPastStuckWriter(t *testing.T) {
	client, server := pipePair(t, &transport.Config{HostKeys: testHostKeys()}, &transport.ClientConfig{})
	authenticated(t, client, server)

	// The client never reads again. Fill its receive buffer and our send
	// buffer until a write blocks.
	data := make([]byte, 1+32<<10)
	data[0] = wire.MsgChannelData
	wrote := make(chan error, 1)
	go func() {
		for {
			if err := server.WritePacket(data); err != nil {
				wrote <- err
				return
			}
		}
	}()
	// Blocked once no write completes for a while (loopback buffers are
	// a few MiB: filled in well under a second).
	var out uint64
	for {
		time.Sleep(300 * time.Millisecond)
		_, now := server.BytesTransferred()
		if now == out {
			break
		}
		out = now
	}
	select {
	case err := <-wrote:
		t.Fatalf("writer ended before the test: %v", err)
	default:
	}

	done := make(chan struct{})
	start := time.Now()
	go func() {
		server.Disconnect(wire.DisconnectByApplication, "client not responding to keepalives")
		close(done)
	}()
	// disconnectWriteTimeout (5 s) and some slack for a loaded machine.
	select {
	case <-done:
	case <-time.After(12 * time.Second):
		t.Fatal("Disconnect still blocked 12 s behind a writer stuck on a peer that does not read")
	}
	t.Logf("Disconnect returned after %v", time.Since(start).Round(time.Millisecond))
	if err := <-wrote; err == nil {
		t.Fatal("stuck writer returned no error")
	}
	// The socket is closed: the client sees the end once it reads again.
	if err := client.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := client.ReadPacket(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection still open after Disconnect")
			}
			break
		}
	}
}
