package shell

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// xcryptoWindow is the channel window x/crypto/ssh's client grants
// (64 packets of 32 KiB); it opens it further only as the session's
// output is read.
const xcryptoWindow = 2 << 20

// TestSlowReaderGetsAllOutput: output the command wrote before it exited
// reaches a client that stops reading for longer than drainTimeout. The
// command writes the client's window and a little more, which fits in
// the server's copy buffer and the pipe (64 KiB) or the terminal (about
// 12 KiB here; a read of it returns at most 4 KiB), so it exits while
// the rest still waits for the window; that rest was dropped
// drainTimeout later, with exit status 0 ("ssh host 'cat file' |
// slow-reader" lost the file's end).
func TestSlowReaderGetsAllOutput(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	for _, withPty := range []bool{false, true} {
		size := xcryptoWindow + 40000
		if withPty {
			size = xcryptoWindow + 8000
		}
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if withPty {
			if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
		}
		out, err := s.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		exited := filepath.Join(h.cfg.Home, fmt.Sprintf("exited-%v", withPty))
		// NUL bytes pass a terminal unchanged.
		if err := s.Start(fmt.Sprintf("head -c %d /dev/zero; touch %s", size, exited)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(exited); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pty=%v: the command did not finish writing", withPty)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The client reads nothing until the drain timeout has passed.
		time.Sleep(drainTimeout + time.Second)
		n, err := io.Copy(io.Discard, out)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(); err != nil {
			t.Errorf("pty=%v: %v", withPty, err)
		}
		if n != int64(size) {
			t.Errorf("pty=%v: client got %d bytes of %d", withPty, n, size)
		}
		s.Close()
	}
}

// TestExitStatusForClientClosingAtEOF: PuTTY sends CLOSE as soon as EOF
// went both ways; EOF must therefore come with the exit status, also
// when the command closed its output before it exits (an EOF sent then
// lost plink's exit status, as the channel ended before it).
func TestExitStatusForClientClosingAtEOF(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	for _, cmd := range []string{"exit 7", "exec >&- 2>&-; sleep 0.2; exit 7"} {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{cmd})); !ok || err != nil {
			t.Fatalf("exec: %v %v", ok, err)
		}
		ch.CloseWrite() // plink's stdin is /dev/null
		if _, err := io.Copy(io.Discard, ch); err != nil {
			t.Fatal(err)
		}
		ch.Close() // what plink does once EOF went both ways
		status := -1
		timeout := time.After(20 * time.Second)
	wait:
		for {
			select {
			case r, ok := <-reqs:
				if !ok {
					break wait
				}
				if r.Type == "exit-status" && len(r.Payload) == 4 {
					status = int(r.Payload[3])
				}
			case <-timeout:
				t.Fatalf("%q: the channel did not close", cmd)
			}
		}
		if status != 7 {
			t.Errorf("%q: exit status %d, want 7", cmd, status)
		}
	}
}

// TestEOWEndsCommand: after OpenSSH's eow@openssh.com ("ssh host yes |
// head -c 10": the client's stdout failed and it discards what arrives),
// the command's stdout is closed and it dies of SIGPIPE, as with sshd;
// it ran on for ever, and ssh with it, sending data nobody read.
func TestEOWEndsCommand(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{"exec yes"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(ch, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.SendRequest("eow@openssh.com", false, nil); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, ch) // as OpenSSH's client: what still comes is dropped
	timeout := time.After(20 * time.Second)
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				t.Fatal("channel closed without an exit status")
			}
			if r.Type == "exit-signal" {
				var sig struct {
					Signal string
					Rest   []byte `ssh:"rest"`
				}
				if err := ssh.Unmarshal(r.Payload, &sig); err != nil || sig.Signal != "PIPE" {
					t.Errorf("exit-signal %q %v, want PIPE", sig.Signal, err)
				}
				return
			}
			if r.Type == "exit-status" {
				t.Fatalf("exit-status %x, want exit-signal PIPE", r.Payload)
			}
		case <-timeout:
			t.Fatal("the command still runs after eow@openssh.com")
		}
	}
}
