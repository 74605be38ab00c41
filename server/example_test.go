package server_test

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

// onePassword is the smallest useful auth.Authenticator: one user, one
// password, no keys.
type onePassword struct{ user, password string }

func (a onePassword) Password(_ context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	// Both compared every time, in constant time: how long a refusal
	// takes must not tell whether the user exists.
	userOK := subtle.ConstantTimeCompare([]byte(m.User()), []byte(a.user))
	pwOK := subtle.ConstantTimeCompare(pw, []byte(a.password))
	if userOK&pwOK == 1 {
		return &auth.Permissions{}, nil
	}
	return nil, auth.ErrDenied
}

func (onePassword) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

func (onePassword) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

// A Server needs a host key and an Authenticator; everything else has a
// secure default (no forwarding, no environment variables, sshd's limits).
// Serve takes a listener the caller made, and Shutdown ends the server
// the way net/http's does.
func ExampleServer() {
	hostKey, err := keys.GenerateKey("ssh-ed25519", 0) // a real server loads a fixed one
	if err != nil {
		log.Fatal(err)
	}
	srv := &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hostKey}},
		Auth:      auth.Config{Authenticator: onePassword{"alice", "correct horse"}},
		Handler: server.HandlerFunc(func(s *server.Session) {
			fmt.Fprintf(s, "hello %s, you ran %q\n", s.User(), s.Command())
			s.Exit(3)
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// A client, here golang.org/x/crypto/ssh: ssh -p PORT alice@127.0.0.1 date
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User:            "alice",
		Auth:            []ssh.AuthMethod{ssh.Password("correct horse")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a real client checks the key
	})
	if err != nil {
		log.Fatal(err)
	}
	session, err := client.NewSession()
	if err != nil {
		log.Fatal(err)
	}
	session.Stdout = os.Stdout
	fmt.Println(session.Run("date"))
	client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx), <-served)
	// Output:
	// hello alice, you ran "date"
	// Process exited with status 3
	// <nil> server: closed
}

// A server stopped by SIGTERM lets running sessions finish for a while,
// then cuts what is left.
func ExampleServer_Shutdown() {
	var srv server.Server // configured as in the Server example
	ln, err := net.Listen("tcp", ":2222")
	if err != nil {
		log.Fatal(err)
	}
	stop, unregister := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer unregister()
	go func() {
		<-stop.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Closes the listener, ends idle and unauthenticated connections
		// at once, refuses new channels, and waits for running handlers
		// until ctx ends; then closes what is left.
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, server.ErrServerClosed) {
		log.Fatal(err)
	}
}

// A shell handler reads the terminal a client asked for and follows its
// size; without a pty it serves plain lines.
func ExampleSession_Pty() {
	handler := server.HandlerFunc(func(s *server.Session) {
		pty, windowChanges, ok := s.Pty()
		if !ok {
			io.WriteString(s.Stderr(), "this service needs a terminal (ssh -t)\n")
			s.Exit(1)
			return
		}
		fmt.Fprintf(s, "%s terminal, %dx%d\r\n", pty.Term, pty.Window.Columns, pty.Window.Rows)
		for {
			select {
			case w := <-windowChanges:
				fmt.Fprintf(s, "resized to %dx%d\r\n", w.Columns, w.Rows)
			case <-s.Context().Done():
				return // the client left
			}
		}
	})
	_ = &server.Server{Handler: handler}
}

// A subsystem that holds no goroutine while it waits for input: it
// detaches, and NotifyReadable calls it back when a Read would not block.
// The end function Detach returns must be called once the session is
// over, also when the client went away (Read fails then), or the
// connection is never done.
func ExampleSession_Detach() {
	echo := server.HandlerFunc(func(s *server.Session) {
		end := s.Detach()
		buf := make([]byte, 32<<10)
		var serve func()
		serve = func() {
			for {
				if s.NotifyReadable(serve) {
					return // parked: serve runs again when input arrives
				}
				n, err := s.Read(buf)
				if _, werr := s.Write(buf[:n]); werr != nil || err != nil {
					end(0)
					return
				}
			}
		}
		serve()
	})
	_ = &server.Server{SubsystemHandlers: map[string]server.Handler{"echo": echo}}
}
