package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// ProxyHeaderTimeout bounds how long an accepted connection may take to send
// its PROXY protocol header. A load balancer sends it with the first
// segment; a peer that connects and stays silent only ties up a goroutine
// and a socket this long. The header is read on the connection's own
// goroutine (GuardedListener.AdmitProxied), never in Accept: anything that
// reads it there, RemoteAddr included, would hold up every accept behind
// one silent peer. The LoginGraceTime still bounds the rest.
const ProxyHeaderTimeout = 5 * time.Second

// Listen binds every address. Like sshd, it sets IPV6_V6ONLY on IPv6
// sockets, so "[::]:2222" and "0.0.0.0:2222" bind side by side instead of
// the IPv6 wildcard also claiming IPv4 (Linux's default bindv6only=0) and
// the IPv4 bind failing with EADDRINUSE.
//
// An IPv6 address that cannot be bound because the machine has no IPv6
// (EAFNOSUPPORT, EADDRNOTAVAIL, EPROTONOSUPPORT) is logged and skipped, as
// long as something else bound. Any other failure closes what was bound and
// returns the error: a port already in use is a mistake to report, not to
// work around. A host name is resolved and bound on its first address only
// (net.Listen); list IP addresses to bind several.
func Listen(addrs []string, log *slog.Logger) ([]net.Listener, error) {
	lns, _, err := listenAll(addrs, log, nil)
	return lns, err
}

// listenAll is Listen taking the sockets an upgrading parent passed
// (inherited) for the addresses it had bound.
// It also returns the configured address of each listener.
func listenAll(addrs []string, log *slog.Logger, inherited *inheritedListeners) ([]net.Listener, []string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		out     []net.Listener
		bound   []string
		skipped []error
	)
	closeAll := func() {
		for _, l := range out {
			l.Close()
		}
	}
	for _, a := range addrs {
		if err := checkListenAddr(a); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("listen: %w", err)
		}
		l, ok, err := inherited.take("ssh", a)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if !ok {
			l, err = listenOne(a)
		}
		if err != nil {
			if isIPv6Addr(a) && ipv6Unavailable(err) {
				log.Warn("IPv6 listen address unavailable; continuing without it", "addr", a, "err", err)
				skipped = append(skipped, err)
				continue
			}
			closeAll()
			return nil, nil, listenError(a, err)
		}
		log.Info("listening", "addr", l.Addr().String())
		out = append(out, l)
		bound = append(bound, a)
	}
	if len(out) == 0 {
		if len(skipped) > 0 {
			return nil, nil, fmt.Errorf("listen: nothing bound: %w", errors.Join(skipped...))
		}
		return nil, nil, errors.New("listen: no addresses")
	}
	return out, bound, nil
}

// listenError is a failed bind's error, which for a privileged port says
// how to get the right to it: "bind: permission denied" alone left an
// admin who moved ferry to port 22 without root to guess.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("listen %s: %w (ports below 1024 need root or CAP_NET_BIND_SERVICE: "+
			"AmbientCapabilities=CAP_NET_BIND_SERVICE, as contrib/ferry.service has, or start ferry as root with run_as)", addr, err)
	}
	return fmt.Errorf("listen %s: %w", addr, err)
}

// listenOne binds one address. The network names the address family:
// with plain "tcp", Go binds the IPv4 wildcard 0.0.0.0 as a dual-stack
// IPv6 socket, which takes [::] too, and sshd's default pair of listen
// addresses ("0.0.0.0:2222" and "[::]:2222") then collides.
func listenOne(addr string) (net.Listener, error) {
	lc := net.ListenConfig{}
	network := "tcp"
	switch {
	case isIPv6Addr(addr):
		network = "tcp6"
		lc.Control = setIPv6Only
	case isIPv4Addr(addr):
		network = "tcp4"
	}
	return lc.Listen(context.Background(), network, addr)
}

func isIPv4Addr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is4()
}

func setIPv6Only(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func isIPv6Addr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is6() && !ip.Is4In6()
}

func ipv6Unavailable(err error) bool {
	return errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EPROTONOSUPPORT)
}

// WrapProxyProtocol makes ln expect a PROXY protocol (v1 or v2) header on
// every connection when enabled, so RemoteAddr is the client's address as
// the load balancer saw it. A connection without a valid header fails its
// first Read with proxyproto.ErrNoProxyProtocol (REQUIRE policy: the spec
// forbids guessing whether a header is present) and must be closed.
//
// Every peer that can reach ln can claim any source address, so a listener
// with the PROXY protocol must be reachable only from the load balancer
// (firewall it); otherwise per-source limits and logs are meaningless.
func WrapProxyProtocol(ln net.Listener, enabled bool) net.Listener {
	if !enabled {
		return ln
	}
	return &proxyproto.Listener{
		Listener: ln,
		// Set explicitly: proxyproto.DefaultPolicy is a package variable
		// any importer may change.
		ConnPolicy:        func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil },
		ReadHeaderTimeout: ProxyHeaderTimeout,
	}
}

// proxyLocal reports whether nc, admitted by GuardedListener.AdmitProxied,
// carried a PROXY protocol header with the LOCAL command (a v2 LOCAL, or
// v1's "PROXY UNKNOWN"): a connection the proxy made on its own behalf,
// whose source is the proxy itself.
func proxyLocal(nc net.Conn) bool {
	gc, ok := nc.(*guardedConn)
	if !ok {
		return false
	}
	pc, ok := gc.Conn.(*proxyproto.Conn)
	return ok && headerIsLocal(pc)
}

// headerIsLocal reports whether pc's PROXY protocol header has the LOCAL
// command. It reads the header if that was not done yet.
func headerIsLocal(pc *proxyproto.Conn) bool {
	h := pc.ProxyHeader()
	return h != nil && h.Command.IsLocal()
}
