package shell

import (
	"bytes"
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

// TestIgnoredHangupDoesNotHoldConnection: a command that ignores SIGHUP
// must not keep the server serving a connection whose client is gone.
func TestIgnoredHangupDoesNotHoldConnection(t *testing.T) {
	for _, withPty := range []bool{false, true} {
		h := newHandler(t, Config{User: "alice", AllowShell: true})
		hk, err := keys.GenerateKey("ssh-ed25519", 0)
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{}, 1)
		srv := &server.Server{
			Transport:    transport.Config{HostKeys: []keys.Signer{hk}},
			Auth:         auth.Config{Authenticator: accounts{"alice": h}, FailureDelay: -1},
			Handler:      h,
			OnConnClosed: func(*server.ConnInfo) { closed <- struct{}{} },
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
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
		out, _ := s.StdoutPipe()
		if err := s.Start("trap '' HUP; echo ready; sleep 30"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(out, buf); err != nil || !bytes.Equal(buf, []byte("ready")) {
			t.Fatalf("%q %v", buf, err)
		}
		start := time.Now()
		c.Close()
		select {
		case <-closed:
			t.Logf("pty=%v: connection ended %v after the client left", withPty, time.Since(start))
		case <-time.After(3 * drainTimeout):
			t.Errorf("pty=%v: connection still served %v after the client left", withPty, 3*drainTimeout)
		}
	}
}
