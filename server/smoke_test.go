package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

type passwordOnly struct{ user, pass string }

func (a passwordOnly) Password(_ context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	if m.User() == a.user && string(pw) == a.pass {
		return &auth.Permissions{}, nil
	}
	return nil, auth.ErrDenied
}
func (passwordOnly) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}
func (passwordOnly) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

func TestSmokeExec(t *testing.T) {
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hk}},
		Auth:      auth.Config{Authenticator: passwordOnly{"alice", "secret"}, FailureDelay: -1},
		Handler: server.HandlerFunc(func(s *server.Session) {
			fmt.Fprintf(s, "hello %s, you ran %q\n", s.User(), s.Command())
			fmt.Fprintf(s.Stderr(), "to stderr\n")
			s.Exit(3)
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("secret")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	err = sess.Run("ls -l")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("exit: %v", err)
	}
	if got := stdout.String(); got != "hello alice, you ran \"ls -l\"\n" {
		t.Errorf("stdout %q", got)
	}
	if got := stderr.String(); got != "to stderr\n" {
		t.Errorf("stderr %q", got)
	}
	_ = io.EOF
}
