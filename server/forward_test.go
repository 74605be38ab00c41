package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
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

// Without GatewayPorts a remote forward listens on the loopback,
// 127.0.0.1, whatever address the client names (here 127.0.0.2, which
// the old code bound as asked, as it bound "0.0.0.0" to every address).
func TestRemoteForwardBindsLoopback(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	ts := startServer(t, &server.Server{RemoteForward: func(_ *server.Conn, host string, _ uint32) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, host)
		return true
	}})
	client := ts.dial(t)
	ln, err := client.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if c, err := net.DialTimeout("tcp", "127.0.0.2:"+port, 5*time.Second); err == nil {
		c.Close()
		t.Fatal("the forward listens on 127.0.0.2")
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		t.Fatalf("the forward does not listen on 127.0.0.1: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "hi" {
		t.Fatalf("through the forward: %q, %v", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != "127.0.0.2" {
		t.Errorf("policy asked about %q, want the address the client named", asked)
	}
}

// A direct-tcpip channel whose target refuses is refused with the reason,
// as sshd does ("open failed: connect failed: Connection refused"), not
// with "connect failed" again.
func TestLocalForwardFailureSaysWhy(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	ts := startServer(t, &server.Server{LocalForward: func(*server.Conn, string, uint32) bool { return true }})
	client := ts.dial(t)
	_, err = client.Dial("tcp", addr)
	if err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Fatalf("forward to a closed port: %v; want the reason, Connection refused", err)
	}
}

// A forward the policy refuses is logged with who asked and for what, as
// sshd logs "...but the request was denied"; it left no line at all.
func TestRefusedForwardLogged(t *testing.T) {
	var logs testenv.LockedBuffer
	ts := startServer(t, &server.Server{
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		LocalForward: func(_ *server.Conn, host string, _ uint32) bool { return host == "allowed.example" },
	})
	client := ts.dial(t)
	if _, err := client.Dial("tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("a forward the policy refuses was opened")
	}
	if _, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("a remote forward with no RemoteForward policy was opened")
	}
	socket := filepath.Join(t.TempDir(), "fwd.sock")
	if _, err := client.ListenUnix(socket); err == nil {
		t.Fatal("a remote socket forward with no RemoteSocketForward policy was opened")
	}
	out := logs.String()
	for _, want := range []string{"kind=direct-tcpip target=127.0.0.1:9", "kind=tcpip-forward target=127.0.0.1:0",
		"kind=streamlocal-forward target=" + socket} {
		if !strings.Contains(out, "msg=\"forward refused\" remote=127.0.0.1:") || !strings.Contains(out, want) {
			t.Errorf("log lacks a refusal with %s:\n%s", want, out)
		}
	}
}
