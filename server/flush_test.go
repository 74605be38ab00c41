package server_test

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/server"
)

// stallConn is a server-side connection whose writes, once armed, behave
// as if the client had stopped reading: they block until the write
// deadline passes or the connection is closed.
type stallConn struct {
	net.Conn
	mu        sync.Mutex
	armed     bool
	deadline  time.Time
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *stallConn) arm() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

func (c *stallConn) Write(p []byte) (int, error) {
	for {
		c.mu.Lock()
		armed, d := c.armed, c.deadline
		c.mu.Unlock()
		if !armed {
			return c.Conn.Write(p)
		}
		if !d.IsZero() && time.Now().After(d) {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *stallConn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// armingAuth arms the connection's stall when the password is checked.
type armingAuth struct {
	auth.Authenticator
	arm func()
}

func (a *armingAuth) Password(ctx context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	a.arm()
	return a.Authenticator.Password(ctx, m, pw)
}

// TestSuccessFlushHasDeadline: a client that authenticates and then stops
// reading cannot hold the connection (and the pooled goroutine flushing
// USERAUTH_SUCCESS) past the login's write deadline.
func TestSuccessFlushHasDeadline(t *testing.T) {
	var sc *stallConn
	// The Authenticator is set before Serve starts (Serve reads it).
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler), LoginGraceTime: time.Second,
		Auth: auth.Config{Authenticator: &armingAuth{Authenticator: newTestAuth(), arm: func() { sc.arm() }}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		sc = &stallConn{Conn: nc, closed: make(chan struct{})}
		ts.srv.ServeConn(sc)
	}()
	go func() {
		c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
			User: testUser, Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		if err == nil {
			c.Close()
		}
	}()
	select {
	case info := <-ts.closed:
		if !info.Authenticated {
			t.Fatalf("connection ended before authentication: %v", info.Err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the USERAUTH_SUCCESS flush to a client that stopped reading was not cut off")
	}
}
