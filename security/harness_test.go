package security

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// ferryBin is the `ferry` binary built once in TestMain.
var ferryBin string

// probeConfig is the base configuration for probes. Penalties are off so
// that one probe's failures (which are the point) do not lock the next
// probe, from the same 127.0.0.1, out of the server; max_startups is
// raised because probes open many short unauthenticated connections in a
// row, and the default 10:30:100 randomly drops some while the server is
// still closing the previous ones (TestSlowloris tests the default).
const probeConfig = noPenaltiesConfig + `max_startups = "200:30:1000"
`

// noPenaltiesConfig leaves every other setting at its default.
const noPenaltiesConfig = `per_source_penalties = "no"
`

// Probes wait this long for the server to react; it bounds every read so a
// server that silently hangs fails the test instead of hanging it.
const probeTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ferry-security-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ferryBin = filepath.Join(dir, "ferry")
	cmd := exec.Command("go", "build", "-o", ferryBin, "github.com/ferry-sftp/ferry/cmd/ferry")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "security: building ferry:", err)
		return 1
	}
	return m.Run()
}

// lockedBuffer collects output while the test reads it.
type lockedBuffer = testenv.LockedBuffer

// ferryServer is one running `ferry serve`.
type ferryServer struct {
	t       testing.TB
	dataDir string
	config  string
	addr    string
	cmd     *exec.Cmd
	log     *lockedBuffer
	done    chan struct{}
}

type testUser struct {
	name, password string
	authorizedKeys []string
	extraFlags     []string
}

// newServer creates a data directory with the given users and starts the
// server on a free 127.0.0.1 port with config (TOML, may be "").
func newServer(t testing.TB, config string, users ...testUser) *ferryServer {
	t.Helper()
	s := &ferryServer{t: t, dataDir: t.TempDir()}
	s.config = filepath.Join(s.dataDir, "ferry.toml")
	if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		s.addUser(u)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *ferryServer) addUser(u testUser) {
	s.t.Helper()
	args := []string{"--data-dir", s.dataDir, "user", "add", u.name}
	if u.password != "" {
		args = append(args, "--password-stdin")
	}
	for _, k := range u.authorizedKeys {
		args = append(args, "--authorized-key", k)
	}
	args = append(args, u.extraFlags...)
	cmd := exec.Command(ferryBin, args...)
	cmd.Stdin = strings.NewReader(u.password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("ferry user add %s: %v\n%s", u.name, err, out)
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *ferryServer) start() {
	s.t.Helper()
	s.addr = freePort(s.t)
	s.log = &lockedBuffer{}
	s.cmd = exec.Command(ferryBin, "serve", "--data-dir", s.dataDir, "--listen", s.addr, "--config", s.config)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("ferry serve exited during start-up:\n%s", s.log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ferry serve did not listen on %s: %v\n%s", s.addr, err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server with SIGTERM (SIGKILL after 10 s) and checks its log
// for panics: a panic anywhere, even a recovered one, is a finding.
func (s *ferryServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	if log := s.log.String(); strings.Contains(strings.ToLower(log), "panic") {
		s.t.Errorf("server log mentions a panic:\n%s", log)
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *ferryServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func (s *ferryServer) pid() int { return s.cmd.Process.Pid }

// rssKiB reads VmRSS from /proc.
func (s *ferryServer) rssKiB() int {
	s.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				s.t.Fatal(err)
			}
			return n
		}
	}
	s.t.Fatal("no VmRSS")
	return 0
}

// cpuTicks is the server's user+system CPU time in clock ticks.
func (s *ferryServer) cpuTicks() int {
	s.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid()))
	if err != nil {
		s.t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return u + k
}

func (s *ferryServer) home(user string) string { return filepath.Join(s.dataDir, "home", user) }

// dial opens a raw TCP connection and runs ferry's client transport.
func (s *ferryServer) dial(cfg *transport.ClientConfig) *transport.Conn {
	s.t.Helper()
	c, err := s.tryDial(cfg)
	if err != nil {
		s.t.Fatalf("handshake: %v", err)
	}
	return c
}

func (s *ferryServer) tryDial(cfg *transport.ClientConfig) (*transport.Conn, error) {
	nc, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(probeTimeout))
	if cfg == nil {
		cfg = &transport.ClientConfig{}
	}
	c, err := transport.Client(nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.t.Cleanup(func() { c.Close() })
	return c, nil
}

// sshClient logs in with golang.org/x/crypto/ssh (a test peer).
func (s *ferryServer) sshClient(user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	return ssh.Dial("tcp", s.addr, &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
}

func (s *ferryServer) sftpClient(user, password string) (*sftp.Client, func()) {
	s.t.Helper()
	c, err := s.sshClient(user, ssh.Password(password))
	if err != nil {
		s.t.Fatalf("ssh login as %s: %v", user, err)
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		s.t.Fatalf("sftp: %v", err)
	}
	return sc, func() { sc.Close(); c.Close() }
}

// assertServing proves the server still serves a legitimate client: a
// password login, an SFTP write and a read back.
func (s *ferryServer) assertServing(user, password string) {
	s.t.Helper()
	sc, closeFn := s.sftpClient(user, password)
	defer closeFn()
	name := fmt.Sprintf("/alive-%d", time.Now().UnixNano())
	f, err := sc.Create(name)
	if err != nil {
		s.t.Fatalf("server no longer serves: create: %v", err)
	}
	if _, err := f.Write([]byte("alive")); err != nil {
		s.t.Fatal(err)
	}
	f.Close()
	f, err = sc.Open(name)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "alive" {
		s.t.Fatalf("read back %q", b)
	}
	sc.Remove(name)
}

// expectDisconnect reads until the connection ends and checks it ended
// with a DISCONNECT carrying reason (0 accepts a plain close or any
// reason). It returns the error seen.
func expectDisconnect(t testing.TB, c *transport.Conn, reason uint32) error {
	t.Helper()
	c.SetDeadline(time.Now().Add(probeTimeout))
	for i := 0; i < 1000; i++ {
		p, err := c.ReadPacket()
		if err == nil {
			switch p[0] {
			case wire.MsgUserAuthSuccess, wire.MsgChannelOpenConfirmation, wire.MsgRequestSuccess, wire.MsgChannelSuccess, wire.MsgChannelData:
				t.Fatalf("server answered message %d while it should be disconnecting", p[0])
			}
			t.Logf("message %d while waiting for disconnect", p[0])
			continue
		}
		var de *wire.DisconnectError
		if errors.As(err, &de) && de.Remote {
			if reason != 0 && de.Reason != reason {
				t.Fatalf("DISCONNECT reason %d (%q), want %d", de.Reason, de.Message, reason)
			}
			return err
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server did not end the connection within %v", probeTimeout)
		}
		if reason != 0 {
			t.Fatalf("connection ended with %v, want DISCONNECT reason %d", err, reason)
		}
		return err
	}
	t.Fatal("server kept talking instead of disconnecting")
	return nil
}

// Message builders (RFC 4252, 4254) on internal/wire's helpers.

func serviceRequest(name string) []byte {
	return wire.AppendStringS([]byte{wire.MsgServiceRequest}, name)
}

func passwordRequest(user, password string) []byte {
	b := []byte{wire.MsgUserAuthRequest}
	b = wire.AppendStringS(b, user)
	b = wire.AppendStringS(b, "ssh-connection")
	b = wire.AppendStringS(b, "password")
	b = wire.AppendBool(b, false)
	return wire.AppendStringS(b, password)
}

func noneRequest(user string) []byte {
	b := []byte{wire.MsgUserAuthRequest}
	b = wire.AppendStringS(b, user)
	b = wire.AppendStringS(b, "ssh-connection")
	return wire.AppendStringS(b, "none")
}

// publickeyRequest builds a query (signer's key, no signature) or, with
// sign, a signed request per RFC 4252 §7.
func publickeyRequest(t testing.TB, sessionID []byte, user string, k keys.Signer, sign bool) []byte {
	t.Helper()
	alg := keys.SignatureAlgorithmsFor(k.PublicKey().Type())[0]
	body := []byte{wire.MsgUserAuthRequest}
	body = wire.AppendStringS(body, user)
	body = wire.AppendStringS(body, "ssh-connection")
	body = wire.AppendStringS(body, "publickey")
	body = wire.AppendBool(body, sign)
	body = wire.AppendStringS(body, alg)
	body = wire.AppendString(body, k.PublicKey().Marshal())
	if !sign {
		return body
	}
	data := wire.AppendString(nil, sessionID)
	data = append(data, body...)
	sig, err := k.Sign(nil, data, alg)
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendString(body, sig.Marshal())
}

func channelOpenSession(id uint32) []byte {
	b := wire.AppendStringS([]byte{wire.MsgChannelOpen}, "session")
	b = wire.AppendUint32(b, id)
	b = wire.AppendUint32(b, 1<<21)
	return wire.AppendUint32(b, 32768)
}

func channelRequest(recipient uint32, name string, wantReply bool, extra []byte) []byte {
	b := wire.AppendUint32([]byte{wire.MsgChannelRequest}, recipient)
	b = wire.AppendStringS(b, name)
	b = wire.AppendBool(b, wantReply)
	return append(b, extra...)
}

// startAuth sends the ssh-userauth SERVICE_REQUEST and expects the accept.
func startAuth(t testing.TB, c *transport.Conn) {
	t.Helper()
	if err := c.WritePacket(serviceRequest("ssh-userauth")); err != nil {
		t.Fatal(err)
	}
	p := readSkipping(t, c)
	if p[0] != wire.MsgServiceAccept {
		t.Fatalf("got message %d, want SERVICE_ACCEPT", p[0])
	}
}

// readSkipping reads the next message other than a banner or global request.
func readSkipping(t testing.TB, c *transport.Conn) []byte {
	t.Helper()
	for {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		// Banners, and the hostkeys-00@openssh.com GLOBAL_REQUEST the
		// server sends after authentication, are not what probes wait for.
		if p[0] != wire.MsgUserAuthBanner && p[0] != wire.MsgGlobalRequest {
			return p
		}
	}
}

// login authenticates c with a password.
func login(t testing.TB, c *transport.Conn, user, password string) {
	t.Helper()
	startAuth(t, c)
	if err := c.WritePacket(passwordRequest(user, password)); err != nil {
		t.Fatal(err)
	}
	p := readSkipping(t, c)
	if p[0] != wire.MsgUserAuthSuccess {
		t.Fatalf("login: got message %d, want USERAUTH_SUCCESS", p[0])
	}
}

// testKey is one Ed25519 key as both ferry's signer (for hand-built
// requests) and x/crypto/ssh's (for the test-peer client).
type testKey struct {
	keys.Signer
	ssh ssh.Signer
}

func newEd25519(t testing.TB) *testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{Signer: k, ssh: sk}
}

func authorizedLine(k keys.Signer) string {
	return strings.TrimSpace(string(keys.MarshalAuthorizedKey(k.PublicKey())))
}
