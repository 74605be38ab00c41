package main

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestUppercase(t *testing.T) {
	srv := newServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "dave", Auth: []ssh.AuthMethod{ssh.Password("demo")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.RequestSubsystem("uppercase"); err != nil {
		t.Fatal(err)
	}
	go func() { io.WriteString(stdin, "Hello, Ferry!"); stdin.Close() }()
	got, err := io.ReadAll(stdout)
	if err != nil || string(got) != "HELLO, FERRY!" {
		t.Fatalf("got %q, %v", got, err)
	}
	// Only the subsystem is served.
	sess2, _ := c.NewSession()
	if err := sess2.Run("ls"); err == nil {
		t.Fatal("exec accepted")
	}
	sess3, _ := c.NewSession()
	if err := sess3.RequestSubsystem("sftp"); err == nil {
		t.Fatal("unknown subsystem accepted")
	}
}
