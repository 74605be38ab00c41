package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// testDeadline bounds every blocking network step in these tests so a bug
// fails the test instead of hanging it; it is not a timing assertion.
const testDeadline = 10 * time.Second

func haveIPv6Loopback(t *testing.T) bool {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func TestListenLoopback(t *testing.T) {
	addrs := []string{"127.0.0.1:0"}
	v6 := haveIPv6Loopback(t)
	if v6 {
		addrs = append(addrs, "[::1]:0")
	}
	ls, err := Listen(addrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(ls)
	if len(ls) != len(addrs) {
		t.Fatalf("bound %d listeners, want %d", len(ls), len(addrs))
	}
	for _, l := range ls {
		done := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				_, err = c.Write([]byte("hi"))
				c.Close()
			}
			done <- err
		}()
		c, err := net.DialTimeout("tcp", l.Addr().String(), testDeadline)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(testDeadline))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "hi" {
			t.Fatalf("%s: read %q, %v", l.Addr(), got, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if !v6 {
		t.Log("no IPv6 loopback; only 127.0.0.1 tested")
		return
	}
	// The IPv6 socket is IPv6-only, which is what lets [::]:p and
	// 0.0.0.0:p bind side by side.
	raw, err := ls[1].(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v6only int
	var gerr error
	raw.Control(func(fd uintptr) { v6only, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) })
	if gerr != nil || v6only != 1 {
		t.Fatalf("IPV6_V6ONLY = %d (%v), want 1", v6only, gerr)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name  string
		addrs []string
		want  string
	}{
		{"no port", []string{"127.0.0.1"}, "missing port"},
		{"none", nil, "no addresses"},
		// A port in use is an error even when another address bound.
		{"in use", []string{"127.0.0.1:0", busy.Addr().String()}, "address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := Listen(tc.addrs, nil)
			closeAll(ls)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIPv6UnavailableIsSkipped(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "listen", Err: &osSyscallError{unix.EAFNOSUPPORT}}, true},
		{&net.OpError{Op: "listen", Err: &osSyscallError{unix.EADDRNOTAVAIL}}, true},
		{&net.OpError{Op: "listen", Err: &osSyscallError{unix.EADDRINUSE}}, false},
		{errors.New("other"), false},
	} {
		if got := ipv6Unavailable(tc.err); got != tc.want {
			t.Errorf("ipv6Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"[::]:22", true}, {"[::1]:22", true}, {"0.0.0.0:22", false}, {"[::ffff:127.0.0.1]:22", false}, {"localhost:22", false},
	} {
		if got := isIPv6Addr(tc.addr); got != tc.want {
			t.Errorf("isIPv6Addr(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

type osSyscallError struct{ errno unix.Errno }

func (e *osSyscallError) Error() string { return "bind: " + e.errno.Error() }
func (e *osSyscallError) Unwrap() error { return e.errno }

// acceptOne wraps a loopback listener with the PROXY protocol, has the
// client write header+payload, and returns what the server saw.
func acceptOne(t *testing.T, enabled bool, clientWrite []byte) (remote net.Addr, data []byte, readErr error, client net.Conn) {
	t.Helper()
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	ln := WrapProxyProtocol(base, enabled)

	c, err := net.DialTimeout("tcp", base.Addr().String(), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testDeadline))
	if _, err := c.Write(clientWrite); err != nil {
		t.Fatal(err)
	}

	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	sc.SetDeadline(time.Now().Add(testDeadline))
	buf := make([]byte, 64)
	n, readErr := sc.Read(buf)
	return sc.RemoteAddr(), buf[:n], readErr, c
}

func TestProxyProtocolV1(t *testing.T) {
	remote, data, err, _ := acceptOne(t, true, []byte("PROXY TCP4 192.0.2.7 127.0.0.1 40123 2222\r\nSSH-2.0-x\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if remote.String() != "192.0.2.7:40123" {
		t.Errorf("RemoteAddr = %s, want 192.0.2.7:40123", remote)
	}
	if string(data) != "SSH-2.0-x\r\n" {
		t.Errorf("payload = %q, want the SSH identification string", data)
	}
}

func TestProxyProtocolV2(t *testing.T) {
	h := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 50555},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 22})
	hdr, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	remote, data, err, _ := acceptOne(t, true, append(hdr, "SSH-2.0-y\r\n"...))
	if err != nil {
		t.Fatal(err)
	}
	if remote.String() != "[2001:db8::5]:50555" {
		t.Errorf("RemoteAddr = %s, want [2001:db8::5]:50555", remote)
	}
	if string(data) != "SSH-2.0-y\r\n" {
		t.Errorf("payload = %q", data)
	}
}

func TestProxyProtocolRequired(t *testing.T) {
	remote, _, err, client := acceptOne(t, true, []byte("SSH-2.0-OpenSSH_9.9\r\n"))
	if !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		t.Fatalf("read without header: err = %v, want ErrNoProxyProtocol", err)
	}
	// The socket peer is reported, never something the client claimed.
	if remote.String() != client.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want the socket peer %s", remote, client.LocalAddr())
	}
}

func TestProxyProtocolDisabled(t *testing.T) {
	payload := []byte("PROXY TCP4 192.0.2.7 127.0.0.1 40123 2222\r\n")
	remote, data, err, client := acceptOne(t, false, payload)
	if err != nil {
		t.Fatal(err)
	}
	// Disabled: the bytes are the application's, and the address is the
	// socket's.
	if !bytes.Equal(data, payload) {
		t.Errorf("payload = %q, want the raw bytes", data)
	}
	if remote.String() != client.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want %s", remote, client.LocalAddr())
	}
}

func TestListenSkipsUnavailableIPv6(t *testing.T) {
	// 2001:db8::/32 is documentation space (RFC 3849), never assigned
	// here, so binding it fails with EADDRNOTAVAIL like [::] on a host
	// without IPv6.
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ls, err := Listen([]string{"127.0.0.1:0", "[2001:db8::1]:0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(ls)
	if len(ls) != 1 {
		t.Fatalf("bound %d listeners, want 1", len(ls))
	}
	if !strings.Contains(buf.String(), "msg=listening addr=127.0.0.1:") ||
		!strings.Contains(buf.String(), `level=WARN msg="IPv6 listen address unavailable; continuing without it" addr=[2001:db8::1]:0`) {
		t.Errorf("log = %q", buf.String())
	}

	// Nothing bound is an error.
	ls, err = Listen([]string{"[2001:db8::1]:0"}, nil)
	closeAll(ls)
	if err == nil || !strings.Contains(err.Error(), "nothing bound") {
		t.Fatalf("err = %v, want nothing bound", err)
	}
}

// TestListenWildcardPair binds the default pair of wildcard addresses on
// one port, as `ferry serve` does with no configuration: the IPv4 listener
// must not take the IPv6 wildcard too.
func TestListenWildcardPair(t *testing.T) {
	probe, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	addrs := []string{fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("[::]:%d", port)}
	lns, err := Listen(addrs, nil)
	if err != nil {
		t.Fatalf("Listen(%v): %v", addrs, err)
	}
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	if lns[0].Addr().(*net.TCPAddr).IP.To4() == nil {
		t.Errorf("IPv4 wildcard bound as %s", lns[0].Addr())
	}
	for _, target := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		c, err := net.Dial("tcp", target)
		if err != nil {
			if strings.Contains(target, "::1") && len(lns) == 1 {
				continue // no IPv6 on this machine: Listen skipped [::]
			}
			t.Errorf("dial %s: %v", target, err)
			continue
		}
		c.Close()
	}
}

// dialProxied connects to addr as a load balancer would, declaring src
// (an "ip:port") in a PROXY v1 header.
func dialProxied(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testDeadline))
	ap := netip.MustParseAddrPort(src)
	if _, err := fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 %d 2222\r\n", ap.Addr(), ap.Port()); err != nil {
		t.Fatal(err)
	}
	return c
}

// dialSilent connects to addr and sends nothing: no PROXY header.
func dialSilent(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stillOpen reports whether the server has not closed c: a short read
// times out instead of ending with EOF.
func stillOpen(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestProxyProtocolSilentPeersDoNotStallAccept: with proxy_protocol on,
// peers that connect and never send their PROXY header (each would hold
// Accept for ProxyHeaderTimeout if Accept read the header) do not delay a
// load balancer's connection: it gets the SSH identification string
// while they are all still waiting.
func TestProxyProtocolSilentPeersDoNotStallAccept(t *testing.T) {
	addr := startDaemonWith(t, t.TempDir(), "", func(cfg *Config) { cfg.ProxyProtocol = true })
	var silent []net.Conn
	for range 6 {
		silent = append(silent, dialSilent(t, addr))
	}
	c := dialProxied(t, addr, "192.0.2.7:40123")
	// Well under ProxyHeaderTimeout: the banner must come before the
	// first silent peer's header wait ends, not after all of them.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no identification string while %d peers are silent: %v", len(silent), err)
	}
	if !strings.HasPrefix(line, "SSH-2.0-ferry_test") {
		t.Fatalf("identification string %q", line)
	}
	for i, s := range silent {
		if !stillOpen(s) {
			t.Errorf("silent peer %d was closed before the banner was read; the test proves nothing", i)
		}
	}
}

// serveAdmitted accepts on gl as the daemon does: each connection is
// admitted on its own goroutine, and the admitted ones are sent on out.
func serveAdmitted(gl *GuardedListener, out chan<- net.Conn) {
	for {
		nc, err := gl.Accept()
		if err != nil {
			return
		}
		go func() {
			if gl.AdmitProxied(nc) {
				out <- nc
			}
		}()
	}
}

// TestProxyProtocolGuardUsesDeclaredSource: behind a load balancer every
// connection comes from one socket address, so penalties and
// PerSourceMaxStartups must apply to the source the PROXY header
// declares, after that header is read.
func TestProxyProtocolGuardUsesDeclaredSource(t *testing.T) {
	cfg := Default()
	cfg.MaxStartups = MaxStartups{Start: 10, Rate: 100, Full: 10}
	cfg.PerSourceMaxStartups = 1
	cfg.PerSourcePenalties = PerSourcePenalties{Enabled: true, AuthFail: time.Minute, Min: 10 * time.Second,
		Max: 10 * time.Minute, MaxSources4: 100, MaxSources6: 100}
	pen := NewPenalties(cfg, nil)
	pen.Record(netip.MustParseAddr("192.0.2.7"), EventAuthFail)
	gate := NewStartupGate(cfg)
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var drops []string
	gl := GuardListener(WrapProxyProtocol(base, true), gate, pen, func(remote netip.Addr, reason error) {
		mu.Lock()
		drops = append(drops, remote.String()+" "+reason.Error())
		mu.Unlock()
	})
	defer gl.Close()
	admitted := make(chan net.Conn, 8)
	go serveAdmitted(gl, admitted)
	addr := base.Addr().String()
	next := func(want string) net.Conn {
		t.Helper()
		select {
		case sc := <-admitted:
			t.Cleanup(func() { sc.Close() })
			if got := sc.RemoteAddr().String(); got != want {
				t.Fatalf("admitted %s, want %s", got, want)
			}
			return sc
		case <-time.After(testDeadline):
			t.Fatalf("%s not admitted", want)
		}
		return nil
	}
	refused := func(c net.Conn, want string) {
		t.Helper()
		if b, err := io.ReadAll(c); err != nil || string(b) != want {
			t.Errorf("refused connection read %q, %v; want %q", b, err, want)
		}
	}

	silent := dialSilent(t, addr) // must not hold up the rest
	refused(dialProxied(t, addr, "192.0.2.7:40001"), refusedPenaltyMsg)
	dialProxied(t, addr, "192.0.2.8:40002")
	first := next("192.0.2.8:40002")
	refused(dialProxied(t, addr, "192.0.2.8:40003"), refusedStartupsMsg)
	dialProxied(t, addr, "192.0.2.9:40004")
	next("192.0.2.9:40004")
	mu.Lock()
	if len(drops) != 2 || !strings.HasPrefix(drops[0], "192.0.2.7 "+ErrPenalised.Error()) ||
		drops[1] != "192.0.2.8 "+ErrPerSourceMaxStartups.Error() {
		t.Errorf("drops %q, want the penalised 192.0.2.7 and 192.0.2.8's second connection", drops)
	}
	mu.Unlock()
	if n, p := gate.Startups(), gl.Pending(); n != 2 || p != 2 {
		t.Errorf("Startups %d, Pending %d; want 2, 2", n, p)
	}
	gl.Authenticated(first.RemoteAddr(), first.LocalAddr())
	if n, p := gate.Startups(), gl.Pending(); n != 1 || p != 1 {
		t.Errorf("after Authenticated: Startups %d, Pending %d; want 1, 1", n, p)
	}
	if !stillOpen(silent) {
		t.Error("the silent peer was closed early")
	}
}

// TestProxyProtocolAwaitingHeaderBounded: connections waiting for their
// PROXY header count against MaxStartups.Full, so silent peers cannot
// pile up sockets and goroutines without limit; one that sends its
// header frees its place.
func TestProxyProtocolAwaitingHeaderBounded(t *testing.T) {
	cfg := Default()
	cfg.MaxStartups = MaxStartups{Start: 2, Rate: 100, Full: 2}
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := GuardListener(WrapProxyProtocol(base, true), NewStartupGate(cfg), nil, nil)
	defer gl.Close()
	admitted := make(chan net.Conn, 8)
	go serveAdmitted(gl, admitted)
	addr := base.Addr().String()

	dialSilent(t, addr)
	late := dialSilent(t, addr)
	waitFor(t, "two connections awaiting their header", func() bool {
		gl.mu.Lock()
		defer gl.mu.Unlock()
		return gl.awaitingHeader == 2
	})
	over := dialSilent(t, addr)
	over.SetReadDeadline(time.Now().Add(testDeadline))
	if b, err := io.ReadAll(over); err != nil || string(b) != refusedStartupsMsg {
		t.Errorf("third silent connection read %q, %v; want %q", b, err, refusedStartupsMsg)
	}
	late.Write([]byte("PROXY TCP4 192.0.2.8 127.0.0.1 40002 2222\r\n"))
	select {
	case sc := <-admitted:
		sc.Close()
	case <-time.After(testDeadline):
		t.Fatal("a connection that sent its header was not admitted")
	}
	waitFor(t, "the admitted connection's place to be free", func() bool {
		gl.mu.Lock()
		defer gl.mu.Unlock()
		return gl.awaitingHeader == 1
	})
}

// TestProxyProtocolUnixSourceReleasedOnAuth: a PROXY v2 header whose
// source is a Unix socket (HAProxy's "bind unix@..." frontends send one,
// its path usually empty and the same for every client) carries no IP to
// limit per source, but its connection still takes a MaxStartups slot,
// and that slot must go back when it authenticates. Found by (remote,
// local) strings, which such connections share, it went back only when
// the connection closed: MaxStartups.Full logged-in SFTP sessions then
// refused every new client.
func TestProxyProtocolUnixSourceReleasedOnAuth(t *testing.T) {
	cfg := Default()
	cfg.MaxStartups = MaxStartups{Start: 10, Rate: 100, Full: 10}
	gate := NewStartupGate(cfg)
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := GuardListener(WrapProxyProtocol(base, true), gate, nil, nil)
	defer gl.Close()
	admitted := make(chan net.Conn, 8)
	go serveAdmitted(gl, admitted)
	hdr, err := (&proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
		SourceAddr:      &net.UnixAddr{Name: "", Net: "unix"},
		DestinationAddr: &net.UnixAddr{Name: "/run/ferry.sock", Net: "unix"}}).Format()
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 2 {
		c, err := net.DialTimeout("tcp", base.Addr().String(), testDeadline)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		select {
		case sc := <-admitted:
			defer sc.Close()
			conns = append(conns, sc)
		case <-time.After(testDeadline):
			t.Fatal("connection with a Unix source not admitted")
		}
	}
	if n := gate.Startups(); n != 2 {
		t.Fatalf("Startups %d, want 2", n)
	}
	for _, sc := range conns {
		gl.Authenticated(sc.RemoteAddr(), sc.LocalAddr())
	}
	if n, p := gate.Startups(), gl.Pending(); n != 0 || p != 0 {
		t.Errorf("after both authenticated: Startups %d, Pending %d; want 0, 0", n, p)
	}
}
