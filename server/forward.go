package server

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
)

// permitted reports whether host:port is allowed by a key's permitopen=
// list (empty list: unrestricted), sshd's semantics with "*" wildcards for
// host or port.
func permitted(list []string, host string, port uint32) bool {
	if len(list) == 0 {
		return true
	}
	for _, e := range list {
		h, p, err := net.SplitHostPort(e)
		if err != nil {
			continue
		}
		if (h == "*" || h == host) && (p == "*" || p == strconv.FormatUint(uint64(port), 10)) {
			return true
		}
	}
	return false
}

// permittedListen is permitted for a key's permitlisten= list, whose
// entries are "[host:]port": an entry without a host names "localhost",
// the address ssh -R sends when its forward names none (sshd's
// open_listen_match_tcp, through channel_rfwd_bind_host).
func permittedListen(list []string, host string, port uint32) bool {
	if len(list) == 0 {
		return true
	}
	full := make([]string, len(list))
	for i, e := range list {
		if !strings.Contains(e, ":") {
			e = "localhost:" + e
		}
		full[i] = e
	}
	return permitted(full, host, port)
}

// serveDirectTCPIP serves "direct-tcpip" (RFC 4254 §7.2, ssh -L) when the
// server's policy and the user's permissions allow it.
func (c *Conn) serveDirectTCPIP(ctx context.Context, nch *connection.NewChannel) {
	d, err := connection.ParseDirectTCPIP(nch.ExtraData())
	if err != nil {
		nch.Reject(wire.OpenConnectFailed, "malformed request")
		return
	}
	p := c.Permissions()
	if c.srv.LocalForward == nil || p.NoPortForwarding || !permitted(p.PermitOpen, d.HostToConnect, d.PortToConnect) ||
		!c.srv.LocalForward(c, d.HostToConnect, d.PortToConnect) {
		c.logRefusedForward("direct-tcpip", net.JoinHostPort(d.HostToConnect, strconv.FormatUint(uint64(d.PortToConnect), 10)))
		nch.Reject(wire.OpenAdministrativelyProhibited, "port forwarding is not permitted")
		return
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, forwardDialTimeout)
	nc, err := dialer.DialContext(dctx, "tcp", net.JoinHostPort(d.HostToConnect, strconv.FormatUint(uint64(d.PortToConnect), 10)))
	cancel()
	if err != nil {
		nch.Reject(wire.OpenConnectFailed, dialFailure(err))
		return
	}
	ch, err := nch.Accept()
	if err != nil {
		nc.Close()
		return
	}
	splice(ctx, ch, nc)
}

// serveDirectStreamlocal serves "direct-streamlocal@openssh.com" (OpenSSH
// PROTOCOL §2.4) when allowed.
func (c *Conn) serveDirectStreamlocal(ctx context.Context, nch *connection.NewChannel) {
	d, err := connection.ParseDirectStreamlocal(nch.ExtraData())
	if err != nil {
		nch.Reject(wire.OpenConnectFailed, "malformed request")
		return
	}
	if c.srv.LocalSocketForward == nil || c.Permissions().NoPortForwarding || !c.srv.LocalSocketForward(c, d.SocketPath) {
		c.logRefusedForward("direct-streamlocal", d.SocketPath)
		nch.Reject(wire.OpenAdministrativelyProhibited, "socket forwarding is not permitted")
		return
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, forwardDialTimeout)
	nc, err := dialer.DialContext(dctx, "unix", d.SocketPath)
	cancel()
	if err != nil {
		nch.Reject(wire.OpenConnectFailed, dialFailure(err))
		return
	}
	ch, err := nch.Accept()
	if err != nil {
		nc.Close()
		return
	}
	splice(ctx, ch, nc)
}

// handleTCPIPForward serves "tcpip-forward" and "cancel-tcpip-forward"
// (RFC 4254 §7.1, ssh -R).
func (c *Conn) handleTCPIPForward(ctx context.Context, req *connection.GlobalRequest) {
	f, err := connection.ParseTCPIPForward(req.Payload)
	if err != nil {
		req.Reply(false, nil)
		return
	}
	key := net.JoinHostPort(f.AddressToBind, strconv.FormatUint(uint64(f.PortToBind), 10))
	if req.Type == connection.GlobalCancelTCPIPForward {
		req.Reply(c.closeForward(key), nil)
		return
	}
	p := c.Permissions()
	if c.srv.shuttingDown() {
		req.Reply(false, nil)
		return
	}
	if c.srv.RemoteForward == nil || p.NoPortForwarding || !permittedListen(p.PermitListen, f.AddressToBind, f.PortToBind) ||
		!c.srv.RemoteForward(c, f.AddressToBind, f.PortToBind) {
		c.logRefusedForward("tcpip-forward", key)
		req.Reply(false, nil)
		return
	}
	if f.PortToBind == 0 && !req.WantReply {
		// sshd refuses it too: the client could never learn the port.
		return
	}
	bind := forwardBindAddress(f.AddressToBind, c.srv.GatewayPorts)
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.FormatUint(uint64(f.PortToBind), 10)))
	if err != nil {
		req.Reply(false, nil)
		return
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	if f.PortToBind == 0 {
		// Cancel requests name the port the client asked for (0); the
		// client learns the real port from our reply and uses it later.
		key = net.JoinHostPort(f.AddressToBind, strconv.FormatUint(uint64(port), 10))
	}
	if !c.addForward(key, ln) {
		ln.Close()
		req.Reply(false, nil)
		return
	}
	var reply []byte
	if f.PortToBind == 0 {
		reply = (&connection.TCPIPForwardReply{PortBound: port}).Marshal()
	}
	req.Reply(true, reply)
	go c.acceptForwarded(ctx, ln, func(nc net.Conn) []byte {
		ra, _ := nc.RemoteAddr().(*net.TCPAddr)
		fwd := connection.ForwardedTCPIP{ConnectedAddr: f.AddressToBind, ConnectedPort: port}
		if ra != nil {
			fwd.OriginatorAddr, fwd.OriginatorPort = ra.IP.String(), uint32(ra.Port)
		}
		return fwd.Marshal()
	}, connection.ChannelTypeForwardedTCPIP)
}

// forwardBindAddress is the address a tcpip-forward listener binds for
// the one the client asked for (RFC 4254 §7.1), as sshd's
// channel_fwd_bind_addr does. Without gatewayPorts (sshd's default,
// GatewayPorts no) it is the loopback: "::1" or "127.0.0.1" when asked
// for, else 127.0.0.1, whatever was asked, so that a forward never opens
// a port to other hosts. With it (GatewayPorts clientspecified), "",
// "*" and "0.0.0.0" are every address, "localhost" the loopback, and
// any other address itself.
func forwardBindAddress(requested string, gatewayPorts bool) string {
	switch {
	case requested == "127.0.0.1" || requested == "::1":
		return requested
	case !gatewayPorts || requested == "localhost":
		return "127.0.0.1"
	case requested == "" || requested == "*" || requested == "0.0.0.0":
		return ""
	}
	return requested
}

// handleStreamlocalForward serves streamlocal-forward@openssh.com and its
// cancel (OpenSSH PROTOCOL §2.4).
func (c *Conn) handleStreamlocalForward(ctx context.Context, req *connection.GlobalRequest) {
	f, err := connection.ParseStreamlocalForward(req.Payload)
	if err != nil {
		req.Reply(false, nil)
		return
	}
	if req.Type == connection.GlobalCancelStreamlocalForward {
		req.Reply(c.closeForward("unix:"+f.SocketPath), nil)
		return
	}
	if c.srv.shuttingDown() {
		req.Reply(false, nil)
		return
	}
	if c.srv.RemoteSocketForward == nil || c.Permissions().NoPortForwarding || !c.srv.RemoteSocketForward(c, f.SocketPath) {
		c.logRefusedForward("streamlocal-forward", f.SocketPath)
		req.Reply(false, nil)
		return
	}
	ln, err := net.Listen("unix", f.SocketPath)
	if err != nil {
		req.Reply(false, nil)
		return
	}
	if !c.addForward("unix:"+f.SocketPath, ln) {
		ln.Close()
		req.Reply(false, nil)
		return
	}
	req.Reply(true, nil)
	go c.acceptForwarded(ctx, ln, func(net.Conn) []byte {
		return (&connection.ForwardedStreamlocal{SocketPath: f.SocketPath}).Marshal()
	}, connection.ChannelTypeForwardedStreamlocal)
}

func (c *Conn) addForward(key string, ln net.Listener) bool {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	if c.listeners == nil {
		c.listeners = make(map[string]net.Listener)
	}
	if _, dup := c.listeners[key]; dup || len(c.listeners) >= maxForwardListeners {
		return false
	}
	c.listeners[key] = ln
	return true
}

func (c *Conn) closeForward(key string) bool {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	ln, ok := c.listeners[key]
	if ok {
		ln.Close()
		delete(c.listeners, key)
	}
	return ok
}

func (c *Conn) closeForwards() {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	for k, ln := range c.listeners {
		ln.Close()
		delete(c.listeners, k)
	}
}

// acceptForwarded opens a channel to the client for each connection to a
// forwarded listener.
func (c *Conn) acceptForwarded(ctx context.Context, ln net.Listener, extra func(net.Conn) []byte, chanType string) {
	for {
		nc, err := acceptRetrying(ctx, ln)
		if err != nil {
			return
		}
		if c.srv.shuttingDown() {
			// Shutdown closes the listeners; this one was accepted first.
			nc.Close()
			continue
		}
		c.channelStarted()
		go func() {
			defer c.channelDone()
			ch, err := c.mux.OpenChannel(ctx, chanType, extra(nc))
			if err != nil {
				nc.Close()
				return
			}
			splice(ctx, ch, nc)
		}()
	}
}

// acceptRetrying accepts from a forward's listener. An error other than
// the listener's close (EMFILE when the process is out of descriptors, a
// connection reset before it was accepted) is waited out, with a backoff
// of 5 ms to 1 s, as net/http's Serve does: returning on it ended the
// forward silently for the rest of the connection while ssh -R still
// believed it was listening. It returns an error once ln is closed or ctx
// is done.
func acceptRetrying(ctx context.Context, ln net.Listener) (net.Conn, error) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err == nil {
			return nc, nil
		}
		if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return nil, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// splice copies both ways, propagating EOF, until both directions are
// done or the peer has closed the channel and what it sent before has
// been written out (sshd's CHAN_OUTPUT_WAIT_DRAIN): after its CLOSE
// nothing more can go to the peer, and a silent target must not keep
// the socket and goroutines of a channel that is gone.
func splice(ctx context.Context, ch *connection.Channel, nc net.Conn) {
	toTarget, fromTarget := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(toTarget)
		io.Copy(nc, ch)
		if tc, ok := nc.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
	}()
	go func() {
		defer close(fromTarget)
		io.Copy(ch, nc)
		ch.CloseWrite()
	}()
	select {
	case <-toTarget:
		select {
		case <-fromTarget:
		case <-ch.Done():
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	nc.Close()
	ch.Close()
}

// dialFailure is the description of a failed forward's OPEN_FAILURE. ssh
// prints it after "open failed: connect failed: ", so a bare "connect
// failed" told the user nothing; like sshd it is the reason, in the
// words of strerror(3), and never the dialer's whole message (which
// names the server's own source address).
func dialFailure(err error) string {
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &dnsErr):
		return "Name or service not known"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "Connection timed out"
	case errors.As(err, &errno):
		msg := errno.Error()
		return strings.ToUpper(msg[:1]) + msg[1:]
	}
	return "connect failed"
}

// logRefusedForward records a forward the policy refused, as sshd logs
// "Received request to connect to host H port P, but the request was
// denied": the line an admin looks for when a customer's ssh -L fails.
// The target is the client's text, cut short.
func (c *Conn) logRefusedForward(kind, target string) {
	const maxTarget = 256
	if len(target) > maxTarget {
		target = target[:maxTarget] + "..."
	}
	c.srv.logger().Info("forward refused", "remote", c.RemoteAddr().String(), "user", c.User(),
		"kind", kind, "target", target)
}
