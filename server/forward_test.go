package server_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/server"
)

// A direct-tcpip channel the client closes closes the server's
// connection to the target too, even while the target stays silent
// (sshd frees the channel's socket once both CLOSEs crossed); it used to
// stay open until the target hung up.
func TestLocalForwardClientCloseClosesTarget(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if nc, err := target.Accept(); err == nil {
			accepted <- nc
		}
	}()
	ts := startServer(t, &server.Server{LocalForward: func(*server.Conn, string, uint32) bool { return true }})
	client := ts.dial(t)
	c, err := client.Dial("tcp", target.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var nc net.Conn
	select {
	case nc = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not connect to the target")
	}
	defer nc.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("target read %q, %v", buf, err)
	}
	c.Close() // CHANNEL_CLOSE; the target sends nothing and keeps its end open
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(buf); err != io.EOF {
		t.Fatalf("target connection after the channel closed: %d bytes, %v; want EOF", n, err)
	}
	// The forward is over: a graceful Shutdown finds no channel to wait
	// for.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the forward still runs)", err)
	}
}
