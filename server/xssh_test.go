package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/server"
)

// Interop with golang.org/x/crypto/ssh as the client.

func TestXSSHExec(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	client := ts.dial(t)
	for _, tt := range []struct {
		cmd  string
		exit int
	}{
		{"true", 0},
		{"echo hi; exit 7", 7},
		{"exit 255", 255},
	} {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		sess.Stdout, sess.Stderr = &stdout, &stderr
		err = sess.Run(tt.cmd)
		code := 0
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitStatus()
		} else if err != nil {
			t.Fatalf("%q: %v", tt.cmd, err)
		}
		if code != tt.exit || stdout.String() != tt.cmd+"\n" || stderr.String() != "stderr: "+tt.cmd+"\n" {
			t.Errorf("%q: exit %d stdout %q stderr %q", tt.cmd, code, stdout.String(), stderr.String())
		}
	}
}

func TestXSSHSubsystem(t *testing.T) {
	ts := startServer(t, &server.Server{SubsystemHandlers: map[string]server.Handler{
		"echo": server.HandlerFunc(func(s *server.Session) { io.Copy(s, s) }),
	}})
	client := ts.dial(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	if err := sess.RequestSubsystem("echo"); err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("subsystem echo "), 10000) // several windows' worth of packets
	go func() { in.Write(msg); in.Close() }()
	got, err := io.ReadAll(out)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes (%v), want %d", len(got), err, len(msg))
	}
	sess2, _ := client.NewSession()
	if err := sess2.RequestSubsystem("nonexistent"); err == nil {
		t.Fatal("unknown subsystem accepted")
	}
}

func TestXSSHCustomChannel(t *testing.T) {
	ts := startServer(t, &server.Server{ChannelHandlers: map[string]server.ChannelHandler{
		"ferry-test@example.com": server.ChannelHandlerFunc(func(ctx context.Context, c *server.Conn, nc *connection.NewChannel) {
			ch, err := nc.Accept()
			if err != nil {
				return
			}
			io.WriteString(ch, "hello "+c.User()+"\n")
			io.Copy(ch, ch)
			ch.CloseWrite()
			ch.Close()
		}),
	}})
	client := ts.dial(t)
	ch, reqs, err := client.OpenChannel("ferry-test@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	io.WriteString(ch, "ping")
	ch.CloseWrite()
	got, err := io.ReadAll(ch)
	if err != nil || string(got) != "hello alice\nping" {
		t.Fatalf("got %q, %v", got, err)
	}
	_, _, err = client.OpenChannel("unknown@example.com", nil)
	var oe *ssh.OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != ssh.UnknownChannelType {
		t.Fatalf("unknown channel type: %v", err)
	}
}

// startEchoServer serves TCP connections on 127.0.0.1 by echoing them.
func startEchoServer(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(nc, nc); nc.Close() }()
		}
	}()
	return ln
}

// roundTrip writes a pattern through c and checks it comes back.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	msg := make([]byte, 300000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go func() {
		c.Write(msg)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes (%v), want %d identical", len(got), err, len(msg))
	}
}

func TestXSSHLocalForward(t *testing.T) {
	echo := startEchoServer(t)
	t.Run("allowed", func(t *testing.T) {
		var mu sync.Mutex
		var asked []string
		ts := startServer(t, &server.Server{LocalForward: func(c *server.Conn, host string, port uint32) bool {
			mu.Lock()
			asked = append(asked, host)
			mu.Unlock()
			return host == "127.0.0.1"
		}})
		client := ts.dial(t)
		c, err := client.Dial("tcp", echo.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c)
		if _, err := client.Dial("tcp", "localhost:1"); err == nil || !strings.Contains(err.Error(), "administratively prohibited") {
			t.Fatalf("policy refusal: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(asked) != 2 || asked[0] != "127.0.0.1" || asked[1] != "localhost" {
			t.Errorf("policy asked about %q", asked)
		}
	})
	t.Run("denied by default", func(t *testing.T) {
		ts := startServer(t, &server.Server{})
		client := ts.dial(t)
		_, err := client.Dial("tcp", echo.Addr().String())
		if err == nil || !strings.Contains(err.Error(), "administratively prohibited") {
			t.Fatalf("want administratively prohibited, got %v", err)
		}
	})
}

func TestXSSHRemoteForward(t *testing.T) {
	t.Run("allowed", func(t *testing.T) {
		ts := startServer(t, &server.Server{RemoteForward: func(c *server.Conn, host string, port uint32) bool {
			return host == "127.0.0.1"
		}})
		client := ts.dial(t)
		ln, err := client.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c)
		// Cancelling closes the server's listener.
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatal("listener still open after cancel-tcpip-forward")
		}
	})
	t.Run("denied by default", func(t *testing.T) {
		ts := startServer(t, &server.Server{})
		client := ts.dial(t)
		if ln, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
			ln.Close()
			t.Fatal("remote forwarding allowed without a policy")
		}
	})
}

func TestXSSHKeepalive(t *testing.T) {
	ts := startServer(t, &server.Server{})
	client := ts.dial(t)
	ok, payload, err := client.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || ok || len(payload) != 0 {
		t.Fatalf("keepalive: ok %v payload %q err %v, want a FAILURE reply", ok, payload, err)
	}
}
