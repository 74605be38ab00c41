package server_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/server"
)

// detachedEcho is a command that holds no goroutine while it waits for
// input: it detaches, echoes what is buffered whenever NotifyReadable
// calls back, and ends with exit status 9 at EOF.
func detachedEcho(s *server.Session) {
	end := s.Detach()
	var serve func()
	serve = func() {
		buf := make([]byte, 4096)
		for {
			if s.NotifyReadable(serve) {
				return // parked: no goroutine until input arrives
			}
			n, err := s.Read(buf)
			if n > 0 {
				s.Write(buf[:n])
			}
			if err != nil {
				end(9)
				end(1) // later calls do nothing
				return
			}
		}
	}
	serve()
}

// TestDetachedSession: a handler that detaches returns at once, the session
// stays open and is served from NotifyReadable's callbacks, and end
// sends the exit status and closes the channel.
func TestDetachedSession(t *testing.T) {
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(detachedEcho)})
	client := ts.dial(t)
	for round := range 2 { // the connection's second session works too
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		in, _ := sess.StdinPipe()
		out, _ := sess.StdoutPipe()
		if err := sess.Start("echo"); err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte("detached echo "), 20000) // several windows
		go func() {
			for i := 0; i < len(msg); i += 10000 {
				in.Write(msg[i:min(i+10000, len(msg))])
				time.Sleep(time.Millisecond) // let the session park between writes
			}
			in.Close()
		}()
		got, err := io.ReadAll(out)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round %d: echoed %d bytes (%v), want %d", round, len(got), err, len(msg))
		}
		err = sess.Wait()
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 9 {
			t.Fatalf("round %d: Wait = %v, want exit status 9", round, err)
		}
	}
}

// TestDetachedSessionEndsWithConnection: a parked detached session is
// woken when the connection ends, so its end function runs and the
// server's connection accounting finishes (OnConnClosed is reported).
func TestDetachedSessionEndsWithConnection(t *testing.T) {
	ended := make(chan struct{})
	ts := startServer(t, &server.Server{SubsystemHandlers: map[string]server.Handler{
		"park": server.HandlerFunc(func(s *server.Session) {
			end := s.Detach()
			var wait func()
			wait = func() {
				if s.NotifyReadable(wait) {
					return
				}
				if _, err := s.Read(make([]byte, 1)); err != nil {
					end(0)
					close(ended)
					return
				}
				wait()
			}
			wait()
		}),
	}})
	client := ts.dial(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("park"); err != nil {
		t.Fatal(err)
	}
	client.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the parked session was not woken when the connection ended")
	}
	select {
	case <-ts.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection not reported closed after its detached session ended")
	}
}

// TestDetachedSessionPanicInCallback: a panic in a NotifyReadable callback
// of a detached session is handled like one in a handler: the connection
// is disconnected and the session ends, so the connection's accounting
// finishes (OnConnClosed is reported) instead of waiting for an end
// function nobody will call.
func TestDetachedSessionPanicInCallback(t *testing.T) {
	ts := startServer(t, &server.Server{SubsystemHandlers: map[string]server.Handler{
		"boom": server.HandlerFunc(func(s *server.Session) {
			s.Detach()
			if !s.NotifyReadable(func() { panic("callback") }) {
				panic("input before any was sent")
			}
		}),
	}})
	client := ts.dial(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	if err := sess.RequestSubsystem("boom"); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("x")) // wakes the parked session, whose callback panics
	select {
	case <-ts.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection not reported closed after a panic in a detached session's callback")
	}
	client.Close()
}

// TestReadLoopCallbackPanic: a panic in a hook the connection's read loop
// calls (here PtyAllowed) ends that connection, wakes the handler of
// another session blocked in Read, and is reported as ErrPanic.
func TestReadLoopCallbackPanic(t *testing.T) {
	readReturned := make(chan error, 1)
	ts := startServer(t, &server.Server{
		PtyAllowed: func(*server.Conn) bool { panic("pty hook broke") },
		SubsystemHandlers: map[string]server.Handler{
			"reader": server.HandlerFunc(func(s *server.Session) {
				_, err := s.Read(make([]byte, 1))
				readReturned <- err
			}),
		},
	})
	client := ts.dial(t)
	defer client.Close()
	reader, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.RequestSubsystem("reader"); err != nil {
		t.Fatal(err)
	}
	ptySess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	go ptySess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}) // answered by nothing: the connection ends
	select {
	case err := <-readReturned:
		if err == nil {
			t.Fatal("blocked Read returned no error after the read loop panicked")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a handler blocked in Read was not woken after the read loop panicked")
	}
	select {
	case info := <-ts.closed:
		if !errors.Is(info.Err, server.ErrPanic) {
			t.Fatalf("ConnInfo.Err = %v, want ErrPanic", info.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not reported closed after a panic on its read loop")
	}
}
