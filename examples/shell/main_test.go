package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func dial(t *testing.T, addr string) *ssh.Client {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "carol", Auth: []ssh.AuthMethod{ssh.Password("demo")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestShell(t *testing.T) {
	srv := newServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	sess, err := dial(t, ln.Addr().String()).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	sess.Stdin = strings.NewReader("whoami\recho hello world\rnope\r")
	var out bytes.Buffer
	sess.Stdout = &out
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	// Stdin's EOF ends the shell; then a window change shows in the prompt
	// of a second session that exits with a status.
	if err := sess.Wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	want := "carol@ferry[80x24]$ carol\r\n" +
		"carol@ferry[80x24]$ hello world\r\n" +
		"carol@ferry[80x24]$ nope: command not found\r\n" +
		"carol@ferry[80x24]$ "
	if out.String() != want {
		t.Fatalf("output\n%q\nwant\n%q", out.String(), want)
	}

	sess, _ = dial(t, ln.Addr().String()).NewSession()
	sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{})
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	readPrompt(t, stdout, "carol@ferry[80x24]$ ")
	// window-change with want-reply (ssh's WindowChange sends none): the
	// reply orders it before the next line.
	if _, err := sess.SendRequest("window-change", true, ssh.Marshal(struct{ Cols, Rows, W, H uint32 }{132, 50, 0, 0})); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "echo resized\r")
	readPrompt(t, stdout, "resized\r\n")
	readPrompt(t, stdout, "carol@ferry[132x50]$ ")
	io.WriteString(stdin, "exit 3\r")
	var ee *ssh.ExitError
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("exit: %v", err)
	}
}

func readPrompt(t *testing.T, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
		t.Fatalf("read %q (%v), want %q", got, err, want)
	}
}
