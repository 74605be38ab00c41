package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

const (
	testUser     = "alice"
	testPassword = "secret"
)

// testAuth accepts passwords and authorized public keys per user.
type testAuth struct {
	mu        sync.Mutex
	passwords map[string]string
	keys      map[string][]keys.PublicKey
}

func newTestAuth() *testAuth {
	return &testAuth{passwords: map[string]string{testUser: testPassword}, keys: map[string][]keys.PublicKey{}}
}

func (a *testAuth) allowKey(user string, k keys.PublicKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[user] = append(a.keys[user], k)
}

func (a *testAuth) Password(_ context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if want, ok := a.passwords[m.User()]; ok && want == string(pw) {
		return &auth.Permissions{}, nil
	}
	return nil, auth.ErrDenied
}

func (a *testAuth) PublicKey(_ context.Context, m auth.ConnMetadata, k keys.PublicKey) (*auth.Permissions, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ak := range a.keys[m.User()] {
		if keys.Equal(ak, k) {
			return &auth.Permissions{}, nil
		}
	}
	return nil, auth.ErrDenied
}

func (*testAuth) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

// countingListener counts accepted TCP connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return nc, err
}

type testServer struct {
	srv    *server.Server
	auth   *testAuth
	ln     *countingListener
	addr   string
	port   int
	hostFP string // SHA256 fingerprint of the host key
	hostPK keys.PublicKey
	served chan error
	closed chan *server.ConnInfo // OnConnClosed, buffered
}

// startServer fills in a host key, the test authenticator and
// FailureDelay -1 where srv leaves them zero, and serves on 127.0.0.1.
func startServer(t testing.TB, srv *server.Server) *testServer {
	t.Helper()
	ts := &testServer{srv: srv, served: make(chan error, 1), closed: make(chan *server.ConnInfo, 64)}
	if len(srv.Transport.HostKeys) == 0 {
		hk, err := keys.GenerateKey("ssh-ed25519", 0)
		if err != nil {
			t.Fatal(err)
		}
		srv.Transport.HostKeys = []keys.Signer{hk}
	}
	ts.hostPK = srv.Transport.HostKeys[0].PublicKey()
	ts.hostFP = keys.FingerprintSHA256(ts.hostPK)
	if srv.Auth.Authenticator == nil {
		ts.auth = newTestAuth()
		srv.Auth.Authenticator = ts.auth
	}
	if srv.Auth.FailureDelay == 0 {
		srv.Auth.FailureDelay = -1
	}
	if srv.Auth.Methods == nil {
		srv.Auth.Methods = []string{"publickey", "password"}
	}
	if srv.OnConnClosed == nil {
		srv.OnConnClosed = func(info *server.ConnInfo) {
			select {
			case ts.closed <- info:
			default:
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.ln = &countingListener{Listener: ln}
	ts.addr = ln.Addr().String()
	ts.port = ln.Addr().(*net.TCPAddr).Port
	go func() { ts.served <- srv.Serve(ts.ln) }()
	t.Cleanup(func() { srv.Close() })
	return ts
}

// dial logs in as alice with the password using x/crypto/ssh.
func (ts *testServer) dial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoHandler serves exec by echoing the command to stdout, "stderr:
// <command>" to stderr and exiting with N when the command contains "exit
// N" ("cat" copies stdin to stdout); it serves a shell (with a pty) as a line echoer that reports the
// terminal first and exits on "exit N".
func echoHandler(s *server.Session) {
	if s.Command() == "" && s.Subsystem() == "" {
		shellHandler(s)
		return
	}
	cmd := s.Command()
	if cmd == "cat" {
		io.Copy(s, s)
		s.Exit(0)
		return
	}
	fmt.Fprintf(s, "%s\n", cmd)
	fmt.Fprintf(s.Stderr(), "stderr: %s\n", cmd)
	s.Exit(exitCode(cmd))
}

func exitCode(cmd string) int {
	f := strings.Fields(cmd)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "exit" {
			if n, err := strconv.Atoi(f[i+1]); err == nil {
				return n
			}
		}
	}
	return 0
}

func shellHandler(s *server.Session) {
	pty, _, ok := s.Pty()
	if ok {
		fmt.Fprintf(s, "term=%s cols=%d rows=%d\r\n", pty.Term, pty.Window.Columns, pty.Window.Rows)
	} else {
		fmt.Fprintf(s, "no pty\r\n")
	}
	var line []byte
	buf := make([]byte, 1024)
	for {
		n, err := s.Read(buf)
		for _, b := range buf[:n] {
			if b != '\r' && b != '\n' {
				line = append(line, b)
				continue
			}
			if len(line) == 0 {
				continue
			}
			l := string(line)
			line = line[:0]
			if strings.HasPrefix(l, "exit ") {
				s.Exit(exitCode(l))
				return
			}
			fmt.Fprintf(s, "echo: %s\r\n", l)
		}
		if err != nil {
			if err != io.EOF {
				s.Exit(255)
			}
			return
		}
	}
}

// rawClient drives the client side by hand over transport.Client, for
// protocol-level tests.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	tc *transport.Conn
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return dialRawConfig(t, addr, &transport.ClientConfig{})
}

func dialRawConfig(t testing.TB, addr string, cfg *transport.ClientConfig) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Bounds every read in the test: a server that fails to answer or to
	// hang up fails the test instead of hanging it.
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	tc, err := transport.Client(nc, cfg)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return &rawClient{t: t, nc: nc, tc: tc}
}

func (c *rawClient) write(p []byte) {
	c.t.Helper()
	if err := c.tc.WritePacket(p); err != nil {
		c.t.Fatalf("write message %d: %v", p[0], err)
	}
}

// read returns the next message, skipping EXT_INFO and banners.
func (c *rawClient) read() ([]byte, error) {
	for {
		p, err := c.tc.ReadPacket()
		if err != nil {
			return nil, err
		}
		if p[0] == wire.MsgExtInfo || p[0] == wire.MsgUserAuthBanner {
			continue
		}
		if p[0] == wire.MsgGlobalRequest && bytes.HasPrefix(p[1:], wire.AppendStringS(nil, "hostkeys-00@openssh.com")) {
			continue // sent unasked after authentication
		}
		return append([]byte(nil), p...), nil
	}
}

func (c *rawClient) expect(typ byte) []byte {
	c.t.Helper()
	p, err := c.read()
	if err != nil {
		c.t.Fatalf("want message %d, got error %v", typ, err)
	}
	if p[0] != typ {
		c.t.Fatalf("want message %d, got %d (% x)", typ, p[0], p)
	}
	return p
}

// closedInfo returns the OnConnClosed report of the connection from
// client address addr, skipping others.
func (ts *testServer) closedInfo(t testing.TB, addr net.Addr) *server.ConnInfo {
	t.Helper()
	for range 1000 {
		info := <-ts.closed
		if info.RemoteAddr.String() == addr.String() {
			return info
		}
	}
	t.Fatalf("no OnConnClosed for %v", addr)
	return nil
}

// hostPKBase64 is the host key blob as authorized_keys/known_hosts show it.
func (ts *testServer) hostPKBase64() string {
	return string(bytes.Fields(keys.MarshalAuthorizedKey(ts.hostPK))[1])
}
