package server_test

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDebugLinesNameConnection: at debug level the key exchange and
// userauth lines had no remote address, so with many clients at once
// they could not be told apart or matched with the login lines.
func TestDebugLinesNameConnection(t *testing.T) {
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hk}, Logger: log},
		Auth:      auth.Config{Authenticator: passwordOnly{"alice", "secret"}, FailureDelay: -1, Logger: log},
		Handler:   server.HandlerFunc(func(s *server.Session) { s.Exit(0) }),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("secret")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	remote := "remote=" + c.LocalAddr().String()
	c.Close()
	for _, msg := range []string{`msg="key exchange complete"`, `msg="userauth request"`} {
		found := false
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, msg) {
				found = true
				if !strings.Contains(l, remote) {
					t.Errorf("%s line without %s: %s", msg, remote, l)
				}
			}
		}
		if !found {
			t.Errorf("no %s line:\n%s", msg, out.String())
		}
	}
}
