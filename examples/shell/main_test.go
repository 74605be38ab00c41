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
	sess.Stdin = strings.NewReader("whoami\recho hello world\rnope\rwhi\x7fo\x15who\x7f\x7fhoami\r")
	var out, errOut bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errOut
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	// Stdin's EOF ends the shell; then a window change shows in the prompt
	// of a second session that exits with a status.
	if err := sess.Wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	// The terminal is raw: the shell echoes what is typed, and erases.
	want := "carol@ferry[80x24]$ whoami\r\ncarol\r\n" +
		"carol@ferry[80x24]$ echo hello world\r\nhello world\r\n" +
		"carol@ferry[80x24]$ nope\r\n" +
		"carol@ferry[80x24]$ whi\b \bo\b \b\b \b\b \bwho\b \b\b \bhoami\r\ncarol\r\n" +
		"carol@ferry[80x24]$ "
	if out.String() != want || errOut.String() != "nope: command not found\r\n" {
		t.Fatalf("output\n%q\nwant\n%q\nstderr %q", out.String(), want, errOut.String())
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
	readPrompt(t, stdout, "echo resized\r\nresized\r\n")
	readPrompt(t, stdout, "carol@ferry[132x50]$ ")
	io.WriteString(stdin, "exit 3\r")
	var ee *ssh.ExitError
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("exit: %v", err)
	}
}

// exec runs one command line, as ssh host 'exit 3' does; the old shell
// ignored the command and ran its interpreter on stdin instead.
func TestExec(t *testing.T) {
	srv := newServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c := dial(t, ln.Addr().String())
	for _, tt := range []struct {
		cmd, stdout, stderr string
		status              int
	}{
		{"exit 3", "", "", 3},
		{"echo hi there", "hi there\n", "", 0},
		{"whoami", "carol\n", "", 0},
		{"nope", "", "nope: command not found\n", 127},
	} {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		sess.Stdout, sess.Stderr = &out, &errOut
		// Stdin the command must not read ("exit 9" would change the
		// status). Written through a pipe, whose errors are ours to
		// ignore: the command may have ended, and its channel closed,
		// first (sess.Stdin's copy made Run fail with EOF then).
		stdin, err := sess.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Start(tt.cmd); err != nil {
			t.Fatalf("%q: %v", tt.cmd, err)
		}
		stdin.Write([]byte("exit 9\n"))
		stdin.Close()
		err = sess.Wait()
		status := 0
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitStatus()
		} else if err != nil {
			t.Fatalf("%q: %v", tt.cmd, err)
		}
		if status != tt.status || out.String() != tt.stdout || errOut.String() != tt.stderr {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want %d %q %q", tt.cmd, status, out.String(), errOut.String(), tt.status, tt.stdout, tt.stderr)
		}
	}
	// A shell without a pty reads LF-terminated lines, the last one
	// without its LF too, and echoes nothing.
	sess, _ := c.NewSession()
	var out bytes.Buffer
	sess.Stdout = &out
	sess.Stdin = strings.NewReader("echo a\r\nexit 4")
	err = sess.Shell()
	if err == nil {
		err = sess.Wait()
	}
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 4 || out.String() != "carol@ferry$ a\ncarol@ferry$ " {
		t.Errorf("shell without pty: %v, output %q", err, out.String())
	}
}

func readPrompt(t *testing.T, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
		t.Fatalf("read %q (%v), want %q", got, err, want)
	}
}
