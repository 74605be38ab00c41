package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

// A ChannelHandler that returns without answering its channel gets it
// rejected; the client's open does not wait forever, and the pending
// opens it held (connection.DefaultMaxPendingOpens) are given back.
func TestChannelHandlerUnansweredIsRejected(t *testing.T) {
	ts := startServer(t, &server.Server{ChannelHandlers: map[string]server.ChannelHandler{
		"forgetful@example.com": server.ChannelHandlerFunc(func(context.Context, *server.Conn, *connection.NewChannel) {}),
	}})
	client := ts.dial(t)
	for i := range connection.DefaultMaxPendingOpens + 4 {
		errc := make(chan error, 1)
		go func() {
			_, _, err := client.OpenChannel("forgetful@example.com", nil)
			errc <- err
		}()
		select {
		case err := <-errc:
			var oe *ssh.OpenChannelError
			if !errors.As(err, &oe) || oe.Reason != ssh.Prohibited {
				t.Fatalf("open %d: %v, want OPEN_ADMINISTRATIVELY_PROHIBITED", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("open %d: no answer", i)
		}
	}
}

// A Server that cannot serve anyone says so from Serve at once, instead of
// accepting connections that each fail (a nil Authenticator as a panic).
func TestServeRefusesUnusableConfig(t *testing.T) {
	hostKey, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, srv := range map[string]*server.Server{
		"no host key":      {Auth: auth.Config{Authenticator: newTestAuth()}},
		"no authenticator": {Transport: transport.Config{HostKeys: []keys.Signer{hostKey}}},
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			select {
			case err := <-served:
				if err == nil || errors.Is(err, server.ErrServerClosed) {
					t.Fatalf("Serve: %v", err)
				}
				t.Log(err)
			case <-time.After(10 * time.Second):
				srv.Close()
				t.Fatal("Serve accepted connections it cannot serve")
			}
		})
	}
}

// Serve closes its listener when it returns, also when Shutdown came
// first (a `go srv.Serve(ln)` that loses the race with Shutdown): the
// listener was left open, and clients connected to a port nobody served.
func TestServeAfterShutdownClosesListener(t *testing.T) {
	srv := &server.Server{}
	ts := startServer(t, srv) // fills in a host key and authenticator
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-ts.served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("first Serve: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(ln); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener still open after Serve returned: Accept: %v", err)
	}
}

// ServeConn on a Server without an Authenticator closes the connection
// and reports why, instead of panicking in authentication.
func TestServeConnWithoutAuthenticator(t *testing.T) {
	hostKey, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	infos := make(chan *server.ConnInfo, 1)
	srv := &server.Server{
		Transport:    transport.Config{HostKeys: []keys.Signer{hostKey}},
		OnConnClosed: func(info *server.ConnInfo) { infos <- info },
	}
	serverSide, clientSide := net.Pipe()
	defer clientSide.Close()
	go func() {
		clientSide.SetDeadline(time.Now().Add(10 * time.Second))
		ssh.NewClientConn(clientSide, "pipe", &ssh.ClientConfig{
			User: testUser, Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		})
	}()
	srv.ServeConn(serverSide)
	info := <-infos
	if errors.Is(info.Err, server.ErrPanic) || info.Err == nil || !strings.Contains(info.Err.Error(), "Authenticator") {
		t.Fatalf("ConnInfo.Err = %v, want the missing Authenticator named", info.Err)
	}
}

// A ChannelHandler outside this module can name the reason it rejects a
// channel with: the codes were only in internal/wire, which it cannot
// import.
func TestChannelHandlerRejectReason(t *testing.T) {
	ts := startServer(t, &server.Server{ChannelHandlers: map[string]server.ChannelHandler{
		"busy@example.com": server.ChannelHandlerFunc(func(_ context.Context, _ *server.Conn, nc *connection.NewChannel) {
			nc.Reject(connection.OpenResourceShortage, "busy")
		}),
	}})
	_, _, err := ts.dial(t).OpenChannel("busy@example.com", nil)
	var oe *ssh.OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != ssh.ResourceShortage || oe.Message != "busy" {
		t.Fatalf("open: %v, want RESOURCE_SHORTAGE busy", err)
	}
}

// ConnInfo.Err says why the server hung up: it was the read error that
// followed ("use of closed network connection"), which ferry serve logged
// as the reason a connection closed after a keepalive timeout, a
// Shutdown or a handler's Disconnect.
func TestConnInfoErrNamesServerDisconnect(t *testing.T) {
	srv := &server.Server{Handler: server.HandlerFunc(func(s *server.Session) {
		if s.Command() == "kick" {
			s.Conn().Disconnect(server.DisconnectByApplication, "kicked by handler")
		}
	})}
	ts := startServer(t, srv)
	wantReason := func(c *ssh.Client, want string) {
		t.Helper()
		info := ts.closedInfo(t, c.LocalAddr())
		var d *transport.DisconnectError
		if !errors.As(info.Err, &d) || d.Remote || d.Message != want {
			t.Fatalf("ConnInfo.Err = %v, want our DISCONNECT %q", info.Err, want)
		}
	}

	c := ts.dial(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Run("kick")
	wantReason(c, "kicked by handler")

	c = ts.dial(t)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantReason(c, "server shutting down")
}

// The same for a client cut after unanswered keepalives
// (ClientAliveInterval, ClientAliveCountMax).
func TestConnInfoErrNamesKeepaliveTimeout(t *testing.T) {
	ts := startServer(t, &server.Server{ClientAliveInterval: 50 * time.Millisecond, ClientAliveCountMax: 2})
	c := dialRaw(t, ts.addr)
	c.login()
	// Read but never answer: the keepalives go unanswered.
	for {
		if _, err := c.read(); err != nil {
			break
		}
	}
	info := ts.closedInfo(t, c.nc.LocalAddr())
	var d *transport.DisconnectError
	if !errors.As(info.Err, &d) || d.Remote || d.Message != "client not responding to keepalives" {
		t.Fatalf("ConnInfo.Err = %v, want our keepalive DISCONNECT", info.Err)
	}
}

// ClientAliveInterval probes only a client that has been silent, as
// sshd does: a client downloading over a slow link keeps sending
// WINDOW_ADJUSTs, but the probe waits behind the megabytes its window lets
// the server queue, so its reply can take longer than
// ClientAliveInterval × ClientAliveCountMax. Probing on every tick cut
// such a client in the middle of its transfer.
func TestClientAliveSparesBusyClientOnSlowLink(t *testing.T) {
	const size = 2 << 20
	ts := startServer(t, &server.Server{
		// The client adjusts its window every ~100 KB, about every 0.2 s
		// here: no interval is silent.
		ClientAliveInterval: 500 * time.Millisecond,
		ClientAliveCountMax: 3,
		Handler: server.HandlerFunc(func(s *server.Session) {
			s.Write(make([]byte, size))
		}),
	})
	// A link that carries 0.5 MB/s from server to client: what the
	// client's 2 MiB window allows queues in front of the probe, for
	// seconds.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		cc, err := ln.Accept()
		if err != nil {
			return
		}
		defer cc.Close()
		sc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			return
		}
		defer sc.Close()
		go func() { io.Copy(sc, cc); sc.Close() }()
		buf := make([]byte, 16<<10)
		for {
			n, err := sc.Read(buf)
			if n > 0 {
				if _, werr := cc.Write(buf[:n]); werr != nil {
					return
				}
				time.Sleep(32 * time.Millisecond)
			}
			if err != nil {
				return
			}
		}
	}()
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("download")
	if err != nil || len(out) != size {
		t.Fatalf("got %d of %d bytes, %v: the server hung up on a client that was reading", len(out), size, err)
	}
}
