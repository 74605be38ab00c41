package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/server"
)

// A panicking handler ends its own connection only; the server keeps
// serving, and OnConnClosed reports the panic.
func TestHandlerPanicEndsOnlyItsConnection(t *testing.T) {
	ts := startServer(t, &server.Server{
		Handler: server.HandlerFunc(func(s *server.Session) {
			if s.Command() == "panic" {
				panic("handler bug")
			}
			echoHandler(s)
		}),
		ChannelHandlers: map[string]server.ChannelHandler{
			"panic@example.com": server.ChannelHandlerFunc(func(context.Context, *server.Conn, *connection.NewChannel) {
				panic("channel handler bug")
			}),
		},
		RequestHandlers: map[string]server.RequestHandler{
			"panic@example.com": func(context.Context, *server.Conn, *connection.GlobalRequest) {
				panic("request handler bug")
			},
		},
	})
	bystander := ts.dial(t)
	triggers := map[string]func(c *ssh.Client) error{
		"session": func(c *ssh.Client) error {
			s, err := c.NewSession()
			if err != nil {
				return err
			}
			return s.Run("panic")
		},
		"channel": func(c *ssh.Client) error {
			_, _, err := c.OpenChannel("panic@example.com", nil)
			return err
		},
		"global request": func(c *ssh.Client) error {
			_, _, err := c.SendRequest("panic@example.com", true, nil)
			return err
		},
	}
	for name, trigger := range triggers {
		t.Run(name, func(t *testing.T) {
			victim := ts.dial(t)
			if err := trigger(victim); err == nil {
				t.Fatal("panicking handler reported success")
			}
			victim.Wait() // the server ended the connection
			info := ts.closedInfo(t, victim.LocalAddr())
			if !errors.Is(info.Err, server.ErrPanic) || !strings.Contains(info.Err.Error(), "handler bug") {
				t.Errorf("OnConnClosed error %v, want the panic", info.Err)
			}
			// The other connection and new ones still work.
			for _, c := range []*ssh.Client{bystander, ts.dial(t)} {
				out, err := runCmd(c, "still alive")
				if err != nil || out != "still alive\n" {
					t.Fatalf("after panic: %q, %v", out, err)
				}
			}
		})
	}
}

func runCmd(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output(cmd)
	return string(out), err
}

// Shutdown lets a running session finish, ends idle connections at once,
// refuses new ones and returns when the last connection is gone.
func TestShutdownGraceful(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(func(s *server.Session) {
		close(started)
		<-release
		s.Write([]byte("finished\n"))
		s.Exit(4)
	})})
	busy := ts.dial(t)
	idle := ts.dial(t)
	sess, err := busy.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sess.Stdout = &out
	if err := sess.Start("long"); err != nil {
		t.Fatal(err)
	}
	<-started

	shutdownErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdownErr <- ts.srv.Shutdown(ctx)
	}()
	if err := idle.Wait(); err == nil {
		t.Log("idle connection ended") // Wait returns once the server hung up
	}
	if err := <-ts.served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned %v while a session was running", err)
	default:
	}
	close(release)
	err = sess.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 4 || out.String() != "finished\n" {
		t.Fatalf("session: %v, output %q", err, out.String())
	}
	if err := <-shutdownErr; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := ts.srv.ActiveConns(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

// Close cuts running sessions: the handler's context is cancelled and the
// client gets no exit status.
func TestCloseCutsSessions(t *testing.T) {
	started := make(chan struct{})
	handlerDone := make(chan error, 1)
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(func(s *server.Session) {
		close(started)
		<-s.Context().Done()
		handlerDone <- s.Context().Err()
	})})
	client := ts.dial(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("long"); err != nil {
		t.Fatal(err)
	}
	<-started
	ts.srv.Close()
	err = sess.Wait()
	var ee *ssh.ExitError
	if err == nil || errors.As(err, &ee) {
		t.Fatalf("session after Close: %v, want a cut connection", err)
	}
	if err := <-handlerDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context: %v", err)
	}
}

// Shutdown closes connections that have not authenticated instead of
// waiting for them: one that connected and sent nothing, and one that
// finished the key exchange but not authentication, would otherwise hold
// Shutdown until its context ended (or for LoginGraceTime), though
// authenticated they would be ended at once like idle ones.
func TestShutdownClosesUnauthenticated(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	midAuth := dialRaw(t, ts.addr)
	midAuth.serviceRequest()
	// The silent connection is being served once the server sent its
	// version line.
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v, want nil: unauthenticated connections held it up", err)
	}
	// Shutdown returned after both were reported, in either order.
	got := map[string]error{}
	for len(ts.closed) > 0 {
		info := <-ts.closed
		got[info.RemoteAddr.String()] = info.Err
	}
	for _, addr := range []net.Addr{silent.LocalAddr(), midAuth.nc.LocalAddr()} {
		if err, ok := got[addr.String()]; !ok || !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("connection from %v reported %v (%v), want ErrServerClosed", addr, ok, err)
		}
	}
}

// Once Shutdown began, a connection still running a session gets no new
// channel and its remote forwards stop listening: a client opening
// session after session on one connection (a multiplexed ssh) would
// otherwise hold Shutdown up for as long as it went on.
func TestShutdownRefusesNewChannels(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	ts := startServer(t, &server.Server{
		Handler: server.HandlerFunc(func(s *server.Session) {
			started <- struct{}{}
			<-release
			s.Exit(0)
		}),
		LocalForward:  func(*server.Conn, string, uint32) bool { return true },
		RemoteForward: func(*server.Conn, string, uint32) bool { return true },
	})
	defer close(release)
	client := ts.dial(t)
	fwd, err := client.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	running, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := running.Start("long"); err != nil {
		t.Fatal(err)
	}
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ts.srv.Shutdown(ctx)
	<-ts.served // Serve returns once Shutdown has begun

	_, err = client.NewSession()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited || oce.Message != "server shutting down" {
		t.Errorf("session opened during Shutdown: %v, want it refused", err)
	}
	_, err = client.Dial("tcp", ts.addr)
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Errorf("direct-tcpip during Shutdown: %v, want it refused", err)
	}
	// The remote forward's listener is closed: a connection to it is
	// refused, or accepted by nothing and closed.
	if nc, err := net.DialTimeout("tcp", fwd.Addr().String(), 5*time.Second); err == nil {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("remote forward still relays during Shutdown: %v", err)
		}
		nc.Close()
	}
}

// ferryGoroutines returns the stacks of goroutines running ferry code,
// other than this package's tests.
func ferryGoroutines() []string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "github.com/ferry-sftp/ferry/") && !strings.Contains(g, "ferry/server_test.") {
			out = append(out, g)
		}
	}
	return out
}

// Once Shutdown has returned, the server's goroutines end promptly, as
// net/http's do, pooled workers included: they used to wait for more
// work for 10 s, and a caller's goroutine leak check (goleak) failed.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	client := ts.dial(t)
	for range 3 {
		if out, err := runCmd(client, "hi"); err != nil || out != "hi\n" {
			t.Fatalf("exec: %q, %v", out, err)
		}
	}
	client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	for range 300 { // 3 s, well under the pool's 10 s idle wait
		if left = ferryGoroutines(); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d goroutines left after Shutdown:\n%s", len(left), strings.Join(left, "\n\n"))
}

// A session whose client never asks for a shell, command or subsystem
// does not hold Shutdown up: nothing runs in it.
func TestShutdownClosesSessionWithoutProgram(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	client := ts.dial(t)
	if _, err := client.NewSession(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v, want nil: a session with nothing running held it up", err)
	}
}

// Shutdown returns only after OnConnClosed has returned for every
// connection: a caller that closes what its OnConnClosed uses (a
// database, a metrics sink) once Shutdown returned raced the callbacks,
// since connections were forgotten before their OnConnClosed ran.
func TestShutdownWaitsForOnConnClosed(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, &server.Server{
		Handler: server.HandlerFunc(echoHandler),
		OnConnClosed: func(*server.ConnInfo) {
			entered <- struct{}{}
			<-release
		},
	})
	ts.dial(t)
	shutdownErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownErr <- ts.srv.Shutdown(ctx)
	}()
	<-entered
	select {
	case err := <-shutdownErr:
		close(release)
		t.Fatalf("Shutdown returned (%v) while OnConnClosed was running", err)
	case <-time.After(200 * time.Millisecond): // 20 of Shutdown's polls
	}
	close(release)
	if err := <-shutdownErr; err != nil {
		t.Fatal(err)
	}
}

// dialSilent opens a TCP connection that sends nothing and reports
// whether the server served it (sent its version line) rather than
// closing it at once.
func dialSilent(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = nc.Read(make([]byte, 1))
	return nc, err == nil
}

// Serve bounds the connections it lets be unauthenticated at once
// (sshd's MaxStartups), by default too: without it a client opening
// connections and sending nothing held a goroutine and buffers for each,
// without limit, for LoginGraceTime.
func TestServeMaxStartups(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		want  int
	}{
		{"explicit", 3, 3},
		{"default", 0, server.DefaultMaxStartups},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.LockedBuffer
			ts := startServer(t, &server.Server{
				Handler:     server.HandlerFunc(echoHandler),
				MaxStartups: tc.limit,
				Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
			})
			var silent []net.Conn
			for i := range tc.want {
				nc, served := dialSilent(t, ts.addr)
				if !served {
					t.Fatalf("connection %d of %d refused", i+1, tc.want)
				}
				silent = append(silent, nc)
			}
			if _, served := dialSilent(t, ts.addr); served {
				t.Fatalf("connection %d served past MaxStartups %d", tc.want+1, tc.want)
			}
			for info := range ts.closed {
				if errors.Is(info.Err, server.ErrMaxStartups) {
					break
				}
			}
			// A freed slot lets a client log in.
			silent[0].Close()
			var client *ssh.Client
			for range 500 { // until the server noticed, 5 s at most
				c, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
					User: testUser, Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
					HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
				})
				if err == nil {
					client = c
					defer c.Close()
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if client == nil {
				t.Fatal("no login after a slot was freed")
			}
			if out, err := runCmd(client, "hi"); err != nil || out != "hi\n" {
				t.Fatalf("login after a slot was freed: %q, %v", out, err)
			}
			// Authenticated, it left its slot to another, and no more.
			if _, served := dialSilent(t, ts.addr); !served {
				t.Fatal("an authenticated connection still counts against MaxStartups")
			}
			if _, served := dialSilent(t, ts.addr); served {
				t.Fatal("served past MaxStartups after a login")
			}
			if out := logs.String(); !strings.Contains(out, "beginning MaxStartups throttling") {
				t.Errorf("no throttling log line:\n%s", out)
			}
		})
	}
}
