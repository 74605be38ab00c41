package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
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
