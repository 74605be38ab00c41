package auth

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// holdingConn is a pipeConn that can hold a packet back, like
// transport.Conn's WritePacketMore.
type holdingConn struct {
	*pipeConn
	mu   sync.Mutex
	held [][]byte
}

func (c *holdingConn) WritePacketMore(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = append(c.held, bytes.Clone(p))
	return nil
}

// TestBufferSuccess: with Config.BufferSuccess and a Conn that can hold a
// packet back, USERAUTH_SUCCESS is held for the caller to flush; without
// it, it is written at once.
func TestBufferSuccess(t *testing.T) {
	for _, buffer := range []bool{true, false} {
		conn := &holdingConn{pipeConn: &pipeConn{in: make(chan []byte, pipeDepth), out: make(chan []byte, pipeDepth), sid: testSessionID}}
		conn.hostKey = ed25519Signer(t).PublicKey()
		cfg := testConfig(newFake())
		cfg.BufferSuccess = buffer
		conn.in <- serviceRequest("ssh-userauth")
		conn.in <- passwordRequestMsg("alice", "correct horse")
		peer := Peer{RemoteAddr: testRemote(), LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, ClientVersion: "SSH-2.0-test"}
		res, err := Run(context.Background(), conn, peer, cfg)
		if err != nil || res.User != "alice" {
			t.Fatalf("BufferSuccess=%v: Run: %v %v", buffer, res, err)
		}
		close(conn.out)
		var written [][]byte
		for p := range conn.out {
			written = append(written, p)
		}
		success := []byte{wire.MsgUserAuthSuccess}
		last := written[len(written)-1]
		switch {
		case buffer && (len(conn.held) != 1 || !bytes.Equal(conn.held[0], success) || bytes.Equal(last, success)):
			t.Fatalf("BufferSuccess: held %x, last written %x; want SUCCESS held only", conn.held, last)
		case !buffer && (len(conn.held) != 0 || !bytes.Equal(last, success)):
			t.Fatalf("no BufferSuccess: held %x, last written %x; want SUCCESS written", conn.held, last)
		}
	}
}
