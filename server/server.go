// Package server is ferry's embeddable SSH server API. It ties the layers
// together — transport (RFC 4253), user authentication (RFC 4252/4256) and
// the connection protocol (RFC 4254) — and exposes them the way net/http
// exposes HTTP: a Server value with handlers.
//
//	srv := &server.Server{
//		Transport: transport.Config{HostKeys: hostKeys},
//		Auth:      auth.Config{Authenticator: myAuthenticator},
//		Handler:   server.HandlerFunc(func(s *server.Session) { io.WriteString(s, "hello\n") }),
//		SubsystemHandlers: map[string]server.Handler{"sftp": sftpHandler},
//	}
//	srv.Serve(listener)
//
// Everything a client could use to reach beyond its session is refused:
// TCP and Unix socket forwarding unless a policy callback (LocalForward,
// RemoteForward, LocalSocketForward, RemoteSocketForward) allows it, agent
// and X11 forwarding always.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// Defaults for Server fields left zero.
const (
	// DefaultLoginGraceTime is sshd's LoginGraceTime: the whole
	// unauthenticated phase (version exchange, kex, auth) must fit in it.
	DefaultLoginGraceTime = 120 * time.Second
	// DefaultMaxSessions is sshd's MaxSessions: session channels open at
	// once on one connection.
	DefaultMaxSessions = 10
	// DefaultMaxStartups is the full value of sshd's MaxStartups default
	// (10:30:100): connections Serve lets be unauthenticated at once.
	DefaultMaxStartups = 100
	// maxForwardListeners bounds tcpip-forward/streamlocal-forward
	// listeners per connection.
	maxForwardListeners = 16
	// forwardDialTimeout bounds a direct-tcpip connect.
	forwardDialTimeout = 10 * time.Second
)

// Handler serves a session's shell, exec or subsystem request. When
// ServeSSH returns, the session ends with exit status 0 unless Exit or
// ExitSignal was called (or Detach).
//
// Handlers (and ChannelHandlers, and NotifyReadable callbacks) run on
// goroutines the server reuses once they return, like a worker pool: a
// handler that calls runtime.LockOSThread must unlock it before
// returning, and must not leave other per-goroutine state behind (pprof
// labels, say).
type Handler interface {
	ServeSSH(s *Session)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(s *Session)

// ServeSSH calls f(s).
func (f HandlerFunc) ServeSSH(s *Session) { f(s) }

// ChannelHandler serves a channel type other than "session". It must
// Accept or Reject nc before it returns: one it leaves unanswered is
// rejected then (OPEN_ADMINISTRATIVELY_PROHIBITED), as the client would
// otherwise wait for the answer forever. An accepted channel stays open
// after the handler returns, until it is closed.
type ChannelHandler interface {
	ServeChannel(ctx context.Context, c *Conn, nc *connection.NewChannel)
}

// ChannelHandlerFunc adapts a function to a ChannelHandler.
type ChannelHandlerFunc func(ctx context.Context, c *Conn, nc *connection.NewChannel)

// ServeChannel calls f.
func (f ChannelHandlerFunc) ServeChannel(ctx context.Context, c *Conn, nc *connection.NewChannel) {
	f(ctx, c, nc)
}

// RequestHandler answers a global request with req.Reply before it
// returns; a request it leaves unanswered gets REQUEST_FAILURE then.
// Replies leave in the order the requests came (RFC 4254 §4), so one slow
// handler holds up the replies to later global requests.
type RequestHandler func(ctx context.Context, c *Conn, req *connection.GlobalRequest)

// ForwardPolicy decides whether a connection may forward to or listen on
// host:port. A nil policy denies.
type ForwardPolicy func(c *Conn, host string, port uint32) bool

// SocketPolicy decides whether a connection may connect to or listen on a
// Unix socket path. A nil policy denies.
type SocketPolicy func(c *Conn, path string) bool

// ConnInfo summarises a finished connection for logs, metrics and
// penalties.
type ConnInfo struct {
	RemoteAddr    net.Addr
	LocalAddr     net.Addr
	ClientVersion string
	Algorithms    transport.Algorithms
	// User is the authenticated user or, for a connection that did not
	// authenticate, the user name its last refused attempt named (as the
	// client sent it, cut to 256 bytes; empty if it only tried "none").
	User           string
	Authenticated  bool
	Methods        []string
	KeyFingerprint string
	Start          time.Time
	Duration       time.Duration
	// HandshakeDuration is how long the version exchange and the first
	// key exchange took (zero if they did not complete).
	HandshakeDuration time.Duration
	// Phase is where the connection ended: "handshake", "auth" or
	// "session".
	Phase string
	// GraceExceeded is true when LoginGraceTime cut the connection.
	GraceExceeded bool
	// AuthFailures counts authentication attempts the Authenticator
	// refused (including public keys it does not know).
	AuthFailures int
	// UnknownUser is true when a refused attempt named a user the
	// Authenticator does not know (its error wrapped ErrUnknownUser):
	// sshd's invaliduser penalty. The client saw an ordinary failure.
	UnknownUser bool
	// AuthUnavailable counts the refused attempts (among AuthFailures)
	// the Authenticator could not decide (its error wrapped
	// ErrAuthUnavailable): the server's fault, not the client's.
	AuthUnavailable int
	// BytesIn and BytesOut are the message payload bytes received and
	// sent by the transport.
	BytesIn, BytesOut uint64
	// SessionID is the connection's session identifier (RFC 4253 §7.2),
	// as Conn.SessionID gave it; nil if the first key exchange did not
	// complete.
	SessionID []byte
	// Err is why the connection ended: nil when the client said goodbye
	// (DISCONNECT BY_APPLICATION), a *transport.DisconnectError for a
	// protocol error, another DISCONNECT from the client or one the
	// server sent (Shutdown, Close, ClientAliveCountMax, Conn.Disconnect),
	// an error wrapping ErrPanic after a recovered panic, or the network
	// error (io.EOF: the client closed the socket without a word).
	Err error
}

// Server is an SSH server. Set its fields before calling Serve and do not
// change them afterwards. The zero value of each field means its default.
type Server struct {
	// Transport configures algorithms and host keys.
	Transport transport.Config
	// Auth configures user authentication; Auth.Authenticator is required.
	Auth auth.Config
	// Connection configures windows, packet sizes and channel limits.
	// The Server sets its hooks itself (HandleOpen, HandleMessage,
	// Inspect, GlobalRequestTypes; DiscardExtendedData is always on):
	// values given for them are ignored. Use the handler maps instead.
	Connection connection.Config

	// Handler serves "shell" and "exec" requests; nil refuses them.
	Handler Handler
	// SubsystemHandlers serve "subsystem" requests by name, e.g. "sftp".
	SubsystemHandlers map[string]Handler
	// ChannelHandlers serve channel types other than "session",
	// "direct-tcpip" and "direct-streamlocal@openssh.com".
	ChannelHandlers map[string]ChannelHandler
	// RequestHandlers serve global requests by name, other than those the
	// server answers itself: the forwarding requests (see the policies
	// below), no-more-sessions@openssh.com, hostkeys-prove-00@openssh.com
	// and keepalive@openssh.com (refused at once, as OpenSSH's client
	// expects).
	RequestHandlers map[string]RequestHandler

	// LocalForward allows "direct-tcpip" (ssh -L); RemoteForward allows
	// "tcpip-forward" (ssh -R). Both nil: no TCP forwarding.
	LocalForward  ForwardPolicy
	RemoteForward ForwardPolicy
	// GatewayPorts lets a "tcpip-forward" listen on the address the
	// client asks for (sshd's GatewayPorts clientspecified): "", "*" or
	// "0.0.0.0" for every address. Without it, forwards listen on the
	// loopback only, whatever address the client names, as sshd's
	// default GatewayPorts no: RemoteForward is asked about the address
	// the client named.
	GatewayPorts bool
	// LocalSocketForward allows "direct-streamlocal@openssh.com",
	// RemoteSocketForward "streamlocal-forward@openssh.com".
	LocalSocketForward  SocketPolicy
	RemoteSocketForward SocketPolicy

	// LoginGraceTime bounds the unauthenticated phase.
	LoginGraceTime time.Duration
	// MaxStartups bounds the connections Serve lets be unauthenticated
	// at once (sshd's MaxStartups, as a hard limit): one accepted beyond
	// it is closed at once, and OnConnClosed reports ErrMaxStartups.
	// Zero means DefaultMaxStartups, a negative value no limit. Without
	// it each connection a client opened and left silent held memory
	// and a goroutine for LoginGraceTime, however many it opened.
	// ServeConn does not apply it: its caller admits connections.
	MaxStartups int
	// MaxSessions bounds concurrent session channels per connection.
	MaxSessions int
	// ClientAliveInterval, if set, sends keepalive@openssh.com after that
	// much silence; ClientAliveCountMax unanswered ones end the connection
	// (sshd semantics, default 3).
	ClientAliveInterval time.Duration
	ClientAliveCountMax int
	// AcceptEnv lists the environment variables a client may set with
	// "env" (RFC 4254 §6.4), as sshd's AcceptEnv: names matched with
	// path.Match, so * and ? as in sshd (and [...] classes, which sshd
	// lacks). Nil refuses every one. Accepted variables show in
	// Session.Environ, at most 64 and 64 KiB a session; "env" after the
	// shell, exec or subsystem request is refused, as it could not take
	// effect. What a handler does with them is its own choice.
	AcceptEnv []string
	// PtyAllowed, if set, decides whether a connection may have a pty
	// (in addition to the key's no-pty); nil allows. It runs on the
	// connection's read loop, which waits for it: it must not block.
	PtyAllowed func(c *Conn) bool

	// ConnContext, if set, derives each connection's context.
	ConnContext func(ctx context.Context, c *Conn) context.Context
	// OnConnClosed, if set, is called once per connection when it ends.
	OnConnClosed func(info *ConnInfo)

	// Logger receives connection-level logs; nil discards.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	netConns  map[net.Conn]servedConn // every connection being served, any phase
	conns     map[*Conn]struct{}      // the authenticated ones
	unauth    int                     // netConns not yet authenticated
	shutdown  bool
	// throttled counts the connections MaxStartups refused since it was
	// last reached, for the log line when it is no longer.
	throttled int
	// closing is closed when shutdown is set; made on first use.
	closing chan struct{}

	handshakes workerPool // runs key exchanges and authentication
	// channelWorkers runs channel handlers and sessions resumed by
	// NotifyReadable: a fresh goroutine's stack is copied as it grows
	// through the write path, which a pooled one has done already.
	channelWorkers workerPool

	// hostKeysAnnouncement is the hostkeys-00@openssh.com payload, built
	// once: the host keys do not change while the Server serves.
	hostKeysOnce         sync.Once
	hostKeysAnnouncement []byte
}

// shutdownPollInterval is how often Shutdown checks whether the last
// connection has ended, as net/http's Shutdown polls: connections end on
// their own schedule and a poll costs nothing measurable.
const shutdownPollInterval = 10 * time.Millisecond

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Serve accepts connections on ln and serves each in its own goroutine.
// It returns ErrServerClosed after Shutdown or Close, and at once an
// error saying what is missing if the Server cannot serve anyone (no host
// key, no Authenticator). Like net/http's, it always closes ln when it
// returns, so a Serve that starts after Shutdown does not leave a
// listener accepting connections nobody serves.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if err := s.checkConfig(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.shutdown
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporary) || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.admitStartup() {
			s.refuseStartup(nc)
			continue
		}
		go s.ServeConn(nc)
	}
}

// ErrMaxStartups is ConnInfo.Err for a connection Serve closed because
// MaxStartups connections were unauthenticated.
var ErrMaxStartups = errors.New("server: too many unauthenticated connections (MaxStartups)")

// admitStartup reports whether Serve may serve one more unauthenticated
// connection. Connections accepted but not yet tracked by ServeConn are
// not counted, so a burst may pass the limit by the few goroutines not
// yet started.
func (s *Server) admitStartup() bool {
	limit := s.MaxStartups
	if limit == 0 {
		limit = DefaultMaxStartups
	}
	s.mu.Lock()
	unauth, refused := s.unauth, s.throttled
	admit := limit < 0 || unauth < limit
	if admit {
		s.throttled = 0
	} else {
		s.throttled++
	}
	s.mu.Unlock()
	// Once per episode, as sshd logs it: a flood is two lines, not one a
	// connection.
	switch {
	case admit && refused > 0:
		s.logger().Info("exited MaxStartups throttling", "refused", refused)
	case !admit && refused == 0:
		s.logger().Warn("beginning MaxStartups throttling", "unauthenticated", unauth)
	}
	return admit
}

// refuseStartup closes a connection MaxStartups refused, as sshd drops
// one: before the version exchange, without a word.
func (s *Server) refuseStartup(nc net.Conn) {
	nc.Close()
	if s.OnConnClosed != nil {
		s.OnConnClosed(&ConnInfo{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr(), Start: time.Now(),
			Phase: "handshake", Err: ErrMaxStartups})
	}
}

var errTemporary = errors.New("temporary")

// checkConfig reports a Server every connection of which would fail:
// without it, each failed alone (a nil Authenticator as a recovered
// panic), and Serve ran on, looking healthy.
func (s *Server) checkConfig() error {
	switch {
	case len(s.Transport.HostKeys) == 0:
		return errors.New("server: no host key (Transport.HostKeys is empty)")
	case s.Auth.Authenticator == nil:
		return errors.New("server: no Auth.Authenticator")
	}
	return nil
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Shutdown stops accepting connections, ends authenticated connections
// as soon as they have no open channel (an idle one at once), and waits
// for every connection to end until ctx is done; then it closes the
// remaining ones with Close and returns ctx.Err(). Connections not yet
// authenticated are closed at once (ConnInfo.Err is ErrServerClosed):
// authenticated, they would be ended like idle ones anyway, and waiting
// for them let one client that connected and sent nothing (a scanner, a
// half-open socket) hold Shutdown up for LoginGraceTime. Once Shutdown
// began, connections get no new channel (refused with "server shutting
// down", as net/http serves no new request on a connection then) and
// their remote forwards (ssh -R) stop listening, and a session whose
// client has not yet asked for a shell, command or subsystem is closed.
// A channel counts as open while its handler runs (for a
// detached session, until its end function is called) and while a
// forwarded connection is being relayed; one a ChannelHandler left open
// after returning, or one opened with Conn.OpenChannel, does not hold the
// connection up. Handlers are not told that Shutdown began: their
// contexts end with their connections, as net/http's do.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.beginShutdownLocked()
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	var unauthenticated []net.Conn
	for nc, st := range s.netConns {
		if !st.authenticated {
			st.cutByShutdown = true
			s.netConns[nc] = st
			unauthenticated = append(unauthenticated, nc)
		}
	}
	s.mu.Unlock()
	s.handshakes.stop()
	s.channelWorkers.stop()
	for _, nc := range unauthenticated {
		nc.Close()
	}
	for _, c := range conns {
		c.closeForwards()
		c.closeIfIdle()
	}
	t := time.NewTicker(shutdownPollInterval)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.netConns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops accepting and closes every connection at once, sending
// DISCONNECT to authenticated ones. It does not wait for handlers to
// return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.beginShutdownLocked()
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	netConns := make([]net.Conn, 0, len(s.netConns))
	for nc := range s.netConns {
		netConns = append(netConns, nc)
	}
	s.mu.Unlock()
	s.handshakes.stop()
	s.channelWorkers.stop()
	for _, c := range conns {
		c.disconnect(wire.DisconnectByApplication, "server shutting down")
	}
	for _, nc := range netConns {
		nc.Close()
	}
	return nil
}

// beginShutdownLocked marks the server shutting down; s.mu is held.
func (s *Server) beginShutdownLocked() {
	if s.shutdown {
		return
	}
	s.shutdown = true
	if s.closing != nil {
		close(s.closing)
	}
}

// closingCh returns a channel closed once Shutdown or Close began.
func (s *Server) closingCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing == nil {
		s.closing = make(chan struct{})
		if s.shutdown {
			close(s.closing)
		}
	}
	return s.closing
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// servedConn is what the Server knows of a connection it serves.
type servedConn struct {
	// authenticated: startConn registered its Conn (track), after which
	// Shutdown ends it through the connection protocol.
	authenticated bool
	// cutByShutdown: Shutdown closed it before it authenticated.
	cutByShutdown bool
}

// trackNetConn registers a connection being served; it reports false
// (and registers nothing) once the server is shutting down.
func (s *Server) trackNetConn(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	if s.netConns == nil {
		s.netConns = make(map[net.Conn]servedConn)
	}
	s.netConns[nc] = servedConn{}
	s.unauth++
	return true
}

// netConnState returns what the Server knows of a connection it serves.
func (s *Server) netConnState(nc net.Conn) servedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.netConns[nc]
}

// untrackNetConn forgets a connection that ended.
func (s *Server) untrackNetConn(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.netConns[nc]; ok && !st.authenticated {
		s.unauth--
	}
	delete(s.netConns, nc)
}

// ActiveConns returns the number of authenticated connections being
// served.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// track registers an authenticated connection served on nc (add) or
// forgets it; on add it reports whether the server is shutting down.
func (s *Server) track(c *Conn, nc net.Conn, add bool) (shuttingDown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	if add {
		s.conns[c] = struct{}{}
		if st, ok := s.netConns[nc]; ok && !st.authenticated {
			st.authenticated = true
			s.netConns[nc] = st
			s.unauth--
		}
	} else {
		delete(s.conns, c)
	}
	return s.shutdown
}
