package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestEchoChannel(t *testing.T) {
	srv := newServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "erin", Auth: []ssh.AuthMethod{ssh.Password("demo")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, reqs, err := c.OpenChannel("echo@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	msg := bytes.Repeat([]byte("echo "), 100000) // more than one window
	go func() { ch.Write(msg); ch.CloseWrite() }()
	got, err := io.ReadAll(ch)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes (%v), want %d", len(got), err, len(msg))
	}
	if _, _, err := c.OpenChannel("other@example.com", nil); err == nil {
		t.Fatal("unregistered channel type opened")
	}
}
