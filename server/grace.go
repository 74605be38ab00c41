package server

import (
	"net"
	"sync"
	"time"
)

// graceConn clamps every deadline set on the connection to the login
// grace deadline until lift is called. The transport replaces the
// connection's deadline with its own key exchange timeout during a kex
// (KexTimeout, longer than a short LoginGraceTime) and knows nothing of a
// deadline set on the net.Conn before transport.Server, so without the
// clamp a client that stalls inside the first kex outlives LoginGraceTime.
type graceConn struct {
	net.Conn
	mu    sync.Mutex
	limit time.Time // zero after lift
}

func (g *graceConn) clamp(t time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.limit.IsZero() && (t.IsZero() || g.limit.Before(t)) {
		return g.limit
	}
	return t
}

func (g *graceConn) SetDeadline(t time.Time) error { return g.Conn.SetDeadline(g.clamp(t)) }
func (g *graceConn) SetReadDeadline(t time.Time) error {
	return g.Conn.SetReadDeadline(g.clamp(t))
}
func (g *graceConn) SetWriteDeadline(t time.Time) error {
	return g.Conn.SetWriteDeadline(g.clamp(t))
}

// lift ends the clamp: authentication is over (or failed and the
// connection is about to send its DISCONNECT, which needs a fresh write
// deadline).
func (g *graceConn) lift() {
	g.mu.Lock()
	g.limit = time.Time{}
	g.mu.Unlock()
}
