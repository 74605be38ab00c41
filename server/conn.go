package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport"
)

// Conn is an authenticated SSH connection, as handlers see it.
type Conn struct {
	srv    *Server
	tc     *transport.Conn
	mux    *connection.Mux
	result *auth.Result

	// sessions are the session channels counted against MaxSessions. A
	// slot is released by the channel's onDone, which the mux calls on its
	// read loop before it reads the next message: a client that sees our
	// CLOSE and opens a new session at once finds the slot free, however
	// late the old session's goroutine runs (even if it has not yet
	// returned from AcceptFunc).
	sessionsMu     sync.Mutex
	sessions       []*sessionSlot
	noMoreSessions atomic.Bool

	fwdMu     sync.Mutex
	listeners map[string]net.Listener // forward listeners by "host:port" or socket path

	// activeMu guards active, the channels being served (any type, either
	// direction), which Shutdown waits for before it ends the connection.
	activeMu sync.Mutex
	active   int

	failErr error // guarded by activeMu: why a handler ended the connection (a panic)
	// endedBy, guarded by activeMu, is the first DISCONNECT the server
	// side sent (Shutdown, keepalives, Conn.Disconnect): the read loop
	// then fails with "use of closed network connection", which says
	// nothing of why.
	endedBy *wire.DisconnectError

	// The goroutine serving global requests runs only while some are
	// pending (issue 8: an idle connection should hold no goroutine it
	// does not need). gateSessions counts each GLOBAL_REQUEST the mux will
	// deliver before the mux sees it; the goroutine leaves when the count
	// is back to zero, so none can be left in the queue without it. A
	// request the mux drops after all (queue full) keeps the count above
	// zero and the goroutine waiting, which is how it always ran.
	globalMu      sync.Mutex
	globalPending int
	globalRunning bool
	globalTypes   []string        // the types the mux delivers
	globalCtx     context.Context // the connection's context, for handlers

	cancel   context.CancelFunc // ends the connection's context
	info     *ConnInfo          // what OnConnClosed receives
	handlers sync.WaitGroup     // channelRuns not yet ended
}

// channelStarted and channelDone count channels being served; when the
// server is shutting down, the end of the last one ends the connection.
func (c *Conn) channelStarted() {
	c.activeMu.Lock()
	c.active++
	c.activeMu.Unlock()
}

func (c *Conn) channelDone() {
	c.activeMu.Lock()
	c.active--
	idle := c.active == 0
	c.activeMu.Unlock()
	if idle && c.srv.shuttingDown() {
		c.closeIfIdle()
	}
}

// closeIfIdle ends the connection when no channel is open, for Shutdown.
// A channel opened at the same moment may be cut; the client sees the
// DISCONNECT reason.
func (c *Conn) closeIfIdle() {
	c.activeMu.Lock()
	idle := c.active == 0
	c.activeMu.Unlock()
	if idle {
		c.disconnect(wire.DisconnectByApplication, "server shutting down")
	}
}

// disconnect ends the connection with DISCONNECT, noting the reason for
// ConnInfo.Err.
func (c *Conn) disconnect(reason uint32, message string) error {
	c.activeMu.Lock()
	if c.endedBy == nil {
		c.endedBy = &wire.DisconnectError{Reason: reason, Message: message}
	}
	c.activeMu.Unlock()
	return c.tc.Disconnect(reason, message)
}

// recoverHandler, deferred at the top of every goroutine that runs
// library-user code, turns a panic into the end of this connection only
// (STYLE: a panic in one connection ends only that connection).
func (c *Conn) recoverHandler(what string) {
	r := recover()
	if r == nil {
		return
	}
	err := fmt.Errorf("%w in %s handler: %v", ErrPanic, what, r)
	c.activeMu.Lock()
	if c.failErr == nil {
		c.failErr = err
	}
	c.activeMu.Unlock()
	c.srv.logger().Error("panic in handler", "remote", c.RemoteAddr().String(), "user", c.User(),
		"handler", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	c.tc.Disconnect(wire.DisconnectByApplication, "internal error")
}

// User is the authenticated user name.
func (c *Conn) User() string { return c.result.User }

// Permissions are the authenticated user's permissions.
func (c *Conn) Permissions() *auth.Permissions { return c.result.Permissions }

// PublicKey is the key that authenticated the user, or nil.
func (c *Conn) PublicKey() keys.PublicKey { return c.result.PublicKey }

// Methods are the authentication methods that succeeded.
func (c *Conn) Methods() []string { return c.result.Methods }

// RemoteAddr and LocalAddr are the network addresses.
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }
func (c *Conn) LocalAddr() net.Addr  { return c.tc.LocalAddr() }

// SessionID is the session identifier (RFC 4253 §7.2).
func (c *Conn) SessionID() []byte { return c.tc.SessionID() }

// BytesTransferred returns the message payload bytes received and sent so
// far, as ConnInfo reports them at the end: for metrics of connections
// still running (a long transfer).
func (c *Conn) BytesTransferred() (in, out uint64) { return c.tc.BytesTransferred() }

// ClientVersion is the client's identification string.
func (c *Conn) ClientVersion() string { return c.tc.ClientVersion() }

// Algorithms are the negotiated transport algorithms.
func (c *Conn) Algorithms() transport.Algorithms { return c.tc.Algorithms() }

// OpenChannel opens a channel to the client (e.g. a custom server-initiated
// channel type).
func (c *Conn) OpenChannel(ctx context.Context, chanType string, extra []byte) (*connection.Channel, error) {
	return c.mux.OpenChannel(ctx, chanType, extra)
}

// Reason codes for Conn.Disconnect (RFC 4250 §4.2.2), those a server
// has a use for; any other RFC 4250 code may be passed as a number.
const (
	DisconnectHostNotAllowedToConnect uint32 = wire.DisconnectHostNotAllowedToConnect
	DisconnectProtocolError           uint32 = wire.DisconnectProtocolError
	DisconnectServiceNotAvailable     uint32 = wire.DisconnectServiceNotAvailable
	DisconnectByApplication           uint32 = wire.DisconnectByApplication
	DisconnectTooManyConnections      uint32 = wire.DisconnectTooManyConnections
	DisconnectIllegalUserName         uint32 = wire.DisconnectIllegalUserName
)

// Disconnect ends the connection with an RFC 4253 §11.1 reason code
// (DisconnectByApplication for most reasons a server has) and a message
// for the client; ConnInfo.Err reports them.
func (c *Conn) Disconnect(reason uint32, message string) error {
	return c.disconnect(reason, message)
}

// globalRequestTypes are the global requests the server layer answers.
var globalRequestTypes = []string{
	connection.GlobalTCPIPForward, connection.GlobalCancelTCPIPForward,
	connection.GlobalStreamlocalForward, connection.GlobalCancelStreamlocalForward,
	connection.GlobalNoMoreSessions, connection.GlobalHostKeysProve,
}

// deliveredGlobalTypes are the global request types the mux hands to the
// server: its own and those with a RequestHandler, less
// keepalive@openssh.com, which the mux always refuses itself. Counted as
// coming (gateSessions) but never delivered, a keepalive held the
// goroutine serving global requests until the connection's end.
func deliveredGlobalTypes(handlers map[string]RequestHandler) []string {
	types := slices.Clone(globalRequestTypes)
	for name := range handlers {
		if name != connection.GlobalKeepalive && !slices.Contains(types, name) {
			types = append(types, name)
		}
	}
	return types
}

// ServeConn serves one SSH connection on nc and closes it. A panic while
// serving it is recovered, logged with its stack and ends only this
// connection. A Server Serve would refuse (no host key, no
// Authenticator) closes nc at once, logging why.
func (s *Server) ServeConn(nc net.Conn) {
	info := s.connStarted(nc)
	if info == nil {
		return
	}
	if err := s.checkConfig(); err != nil {
		s.logger().Error("cannot serve connection", "remote", nc.RemoteAddr().String(), "error", err)
		info.Err = err
		s.connEnded(nc, info)
		return
	}
	defer s.connEnded(nc, info)
	if c := s.openConn(nc, info); c != nil {
		info.Err = c.run()
	}
}

// openConn runs the handshake and starts the connection protocol; on
// failure it records why in info, closes the transport and returns nil.
//
// Both run on another goroutine, from a pool (workerPool): the kex and
// signature code grows a goroutine's stack to tens of KiB, and a stack
// only shrinks by half per GC cycle, so the goroutine that then waits on
// this connection for hours would keep it. That one stays at 4 KiB
// (issue 8: 32 KiB per idle session): it only runs the read loop.
//
//go:noinline
func (s *Server) openConn(nc net.Conn, info *ConnInfo) *Conn {
	type result struct {
		tc  *transport.Conn
		c   *Conn
		err error
	}
	rc := make(chan result, 1)
	s.handshakes.run(func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("%w: %v", ErrPanic, p)
				s.logger().Error("panic serving connection", "remote", nc.RemoteAddr().String(), "panic", p, "stack", string(debug.Stack()))
			}
			rc <- r
		}()
		var res *auth.Result
		r.tc, res, r.err = s.handshake(nc, info)
		if r.err == nil {
			r.c, r.err = s.startConn(nc, r.tc, res)
		}
	})
	r := <-rc
	if r.err == nil {
		r.c.info = info
		return r.c
	}
	if r.tc != nil {
		s.transportEnded(r.tc, info)
	}
	info.Err = r.err
	return nil
}

// connStarted records a new connection; nil means the server is closed
// and nc was closed. ServeConn's parts are apart from it, not inlined,
// so that the frames under an idle connection's read loop stay small:
// the runtime halves a parked goroutine's stack only while under a
// quarter of it (with 800 bytes of guard) is in use, and this one should
// shrink to 4 KiB (issue 8's idle budget).
//
//go:noinline
func (s *Server) connStarted(nc net.Conn) *ConnInfo {
	info := &ConnInfo{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr(), Start: time.Now(), Phase: "handshake"}
	if !s.trackNetConn(nc) {
		nc.Close()
		info.Err = ErrServerClosed
		if s.OnConnClosed != nil {
			s.OnConnClosed(info)
		}
		return nil
	}
	return info
}

// connEnded is ServeConn's deferred end: it recovers a panic, closes nc
// and reports the connection. nc is forgotten last, so that Shutdown
// returns only after OnConnClosed has.
func (s *Server) connEnded(nc net.Conn, info *ConnInfo) {
	defer s.untrackNetConn(nc)
	if st := s.netConnState(nc); st.cutByShutdown && !info.Authenticated {
		info.Err = ErrServerClosed // not the read error the close caused
	}
	if r := recover(); r != nil {
		info.Err = fmt.Errorf("%w: %v", ErrPanic, r)
		s.logger().Error("panic serving connection", "remote", nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
	}
	nc.Close()
	info.Duration = time.Since(info.Start)
	if s.OnConnClosed != nil {
		s.OnConnClosed(info)
	}
}

// handshake runs the key exchange and authentication within the login
// grace time. It returns the transport whenever the key exchange
// succeeded, for the caller to close.
func (s *Server) handshake(nc net.Conn, info *ConnInfo) (*transport.Conn, *auth.Result, error) {
	grace := s.LoginGraceTime
	if grace == 0 {
		grace = DefaultLoginGraceTime
	}
	deadline := time.Now().Add(grace)

	tcfg := s.Transport
	if tcfg.ServerSigAlgs == nil {
		tcfg.ServerSigAlgs = s.Auth.ServerSigAlgs()
	}
	// The grace deadline bounds the version exchange and every key
	// exchange until authentication ends: a client stalling inside the
	// first kex cannot outlive it on the kex timeout.
	tcfg.Deadline = deadline
	started := time.Now()
	if l := tcfg.Logger; l != nil && l.Enabled(context.Background(), slog.LevelDebug) {
		// Its lines (key exchanges) name the connection, as the auth
		// and connection lines do; only at debug level, where the
		// logger's copy per connection is worth it.
		tcfg.Logger = l.With("remote", nc.RemoteAddr().String())
	}
	tc, err := transport.Server(nc, &tcfg)
	if err != nil {
		info.GraceExceeded = isTimeout(err)
		if he := (*transport.HandshakeError)(nil); errors.As(err, &he) {
			info.ClientVersion = he.PeerVersion
			info.BytesIn, info.BytesOut = he.BytesIn, he.BytesOut
		}
		return nil, nil, err
	}
	info.HandshakeDuration = time.Since(started)
	info.ClientVersion = tc.ClientVersion()
	info.Algorithms = tc.Algorithms()
	info.Phase = "auth"

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	acfg := s.Auth
	acfg.BufferSuccess = true // serveConn's host key announcement (or Flush) carries it
	counter := &countingAuthenticator{Authenticator: acfg.Authenticator}
	acfg.Authenticator = counter
	res, err := auth.Run(ctx, tc, auth.Peer{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr(), ClientVersion: tc.ClientVersion()}, &acfg)
	cancel()
	info.AuthFailures = int(counter.failures.Load())
	info.UnknownUser = counter.unknownUser.Load()
	info.AuthUnavailable = int(counter.unavailable.Load())
	if u := counter.user.Load(); u != nil {
		info.User = *u // replaced by the authenticated user on success
	}
	if err == nil {
		// Authentication succeeded: the deadline stays until startConn
		// has flushed USERAUTH_SUCCESS, so a client that stopped reading
		// cannot pin the connection there, but one that authenticated
		// just in time still gets successFlushTimeout for it.
		tc.SetDeadline(later(deadline, time.Now().Add(successFlushTimeout)))
	} else {
		// A DISCONNECT below sets its own write deadline.
		tc.SetDeadline(time.Time{})
	}
	if err != nil {
		info.GraceExceeded = isTimeout(err) || errors.Is(err, context.DeadlineExceeded)
		var d *wire.DisconnectError
		if errors.As(err, &d) && !d.Remote {
			tc.Disconnect(d.Reason, d.Message)
		} else if info.GraceExceeded {
			// Reached only when auth noticed ctx's deadline first; after a
			// read timeout the transport sends nothing more (as sshd, whose
			// grace alarm exits without DISCONNECT).
			tc.Disconnect(wire.DisconnectByApplication, "login grace time exceeded")
		}
		return tc, nil, err
	}
	tc.SetAuthenticated()
	info.Phase = "session"
	info.Authenticated = true
	info.User = res.User
	info.Methods = res.Methods
	if res.PublicKey != nil {
		info.KeyFingerprint = keys.FingerprintSHA256(res.PublicKey)
	}
	return tc, res, nil
}

// successFlushTimeout is the least time an authenticated client has to
// take USERAUTH_SUCCESS and the host key announcement off the socket.
const successFlushTimeout = 5 * time.Second

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// transportEnded records the connection's byte counts and closes tc.
func (s *Server) transportEnded(tc *transport.Conn, info *ConnInfo) {
	info.BytesIn, info.BytesOut = tc.BytesTransferred()
	info.SessionID = tc.SessionID()
	tc.Close()
}

// startConn starts the connection protocol on an authenticated
// transport (on openConn's pooled goroutine).
func (s *Server) startConn(nc net.Conn, tc *transport.Conn, res *auth.Result) (*Conn, error) {
	c := &Conn{srv: s, tc: tc, result: res}
	mcfg := s.Connection
	mcfg.DiscardExtendedData = true
	mcfg.GlobalRequestTypes = deliveredGlobalTypes(s.RequestHandlers)
	mcfg.HandleMessage = func(p []byte) error {
		// RFC 4252 §5.1: requests after success are ignored. Anything
		// else outside the connection protocol is unknown to us.
		if p[0] >= wire.MsgUserAuthRequest && p[0] < wire.MsgGlobalRequest {
			return nil
		}
		return tc.Unimplemented()
	}
	if mcfg.Logger == nil {
		mcfg.Logger = s.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Each channel open gets a goroutine of its own, started from the read
	// loop, which run's goroutine runs: an idle connection costs that
	// goroutine plus what its channels hold (a detached sftp session holds
	// none while idle; issue 8's idle budget).
	mcfg.HandleOpen = func(nch *connection.NewChannel) {
		c.handlers.Add(1)
		c.channelStarted()
		r := &channelRun{c: c, wg: &c.handlers}
		s.channelWorkers.run(func() {
			defer func() {
				// A detached session's end function ends its run.
				if !r.detached.Load() {
					r.end()
				}
			}()
			defer c.recoverHandler("channel " + nch.ChannelType())
			c.serveChannel(ctx, nch, r)
		})
	}
	mcfg.Inspect = c.gateSessions
	mux, err := connection.New(tc, &mcfg)
	if err != nil {
		cancel()
		return nil, err
	}
	c.mux = mux
	// What the client may send during a key re-exchange, and the server
	// holds until it ends, is bounded by the windows the mux granted.
	tc.SetChannelCredit(mux.ReceiveCredit)
	shuttingDown := s.track(c, nc, true)
	started := false
	defer func() {
		// Undone on an error and on a panic (in ConnContext, say), which
		// openConn recovers: nothing else would untrack the connection.
		if !started {
			c.closeForwards()
			s.track(c, nil, false)
			cancel()
		}
	}()

	if s.ConnContext != nil {
		// ConnContext may wrap ctx; HandleOpen reads ctx only once the
		// read loop runs.
		ctx = s.ConnContext(ctx, c)
	}
	c.globalTypes = mcfg.GlobalRequestTypes
	c.globalCtx = ctx
	// Before any channel is confirmed, so a client whose session ends at
	// once still receives it (OpenSSH's sshd also sends it right after
	// authentication).
	c.sendHostKeys()
	// USERAUTH_SUCCESS went out with the announcement, or goes now, under
	// the deadline handshake left; the session has none.
	if err := tc.Flush(); err != nil {
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	started = true
	if s.ClientAliveInterval > 0 {
		go c.clientAlive(ctx)
	}
	if shuttingDown {
		c.closeIfIdle()
	}
	return c, nil
}

// run reads the connection until it ends, then waits for its channels'
// handlers.
func (c *Conn) run() (err error) {
	defer c.runEnded()
	return c.afterRun(c.mux.Run())
}

// runEnded undoes startConn and closes the transport, also after a panic.
func (c *Conn) runEnded() {
	c.closeForwards()
	c.srv.track(c, nil, false)
	c.cancel()
	c.srv.transportEnded(c.tc, c.info)
}

// afterRun ends the connection once its read loop returned err, waits for
// the channels' handlers and returns ServeConn's error.
//
//go:noinline
func (c *Conn) afterRun(err error) error {
	tc := c.tc
	c.cancel()
	var d *wire.DisconnectError
	var pe *connection.PanicError
	switch {
	case errors.As(err, &d) && !d.Remote:
		tc.Disconnect(d.Reason, d.Message)
	case errors.As(err, &pe):
		// A callback on the read loop (PtyAllowed, a NotifyReadable
		// function, Inspect) panicked; the mux has ended every channel.
		err = fmt.Errorf("%w on the connection's read loop: %v", ErrPanic, pe.Value)
		c.srv.logger().Error("panic on the read loop", "remote", c.RemoteAddr().String(), "user", c.User(),
			"panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		tc.Disconnect(wire.DisconnectByApplication, "internal error")
	}
	tc.Close()
	c.handlers.Wait()
	c.activeMu.Lock()
	failErr, endedBy := c.failErr, c.endedBy
	c.activeMu.Unlock()
	if failErr != nil {
		return failErr
	}
	if d != nil && d.Remote && d.Reason == wire.DisconnectByApplication {
		return nil // the client said goodbye
	}
	if d == nil && endedBy != nil {
		return endedBy // we hung up; err is the read that followed
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// channelRun accounts one served channel: the connection waits for every
// run to end before it returns, and graceful shutdown counts them. A run
// ends when its goroutine returns, or, for a detached session
// (Session.Detach), when the session's end function is called.
type channelRun struct {
	c        *Conn
	wg       *sync.WaitGroup
	detached atomic.Bool
	ended    atomic.Bool
}

// end ends the run; later calls do nothing.
func (r *channelRun) end() {
	if r.ended.CompareAndSwap(false, true) {
		r.c.channelDone()
		r.wg.Done()
	}
}

// serveChannel dispatches one CHANNEL_OPEN.
func (c *Conn) serveChannel(ctx context.Context, nch *connection.NewChannel, r *channelRun) {
	s := c.srv
	if s.shuttingDown() {
		// Like net/http, which serves no new request on a connection once
		// Shutdown began: a client opening channel after channel (sessions
		// of a multiplexed ssh, ssh -L connections) would otherwise hold
		// Shutdown up for as long as it went on.
		nch.Reject(wire.OpenAdministrativelyProhibited, "server shutting down")
		return
	}
	switch t := nch.ChannelType(); t {
	case connection.ChannelTypeSession:
		// no-more-sessions@openssh.com is enforced in gateSessions, in
		// message order.
		slot := c.reserveSession()
		if slot == nil {
			nch.Reject(wire.OpenResourceShortage, "too many sessions")
			return
		}
		c.serveSession(ctx, nch, slot, r)
	case connection.ChannelTypeDirectTCPIP:
		c.serveDirectTCPIP(ctx, nch)
	case connection.ChannelTypeDirectStreamlocal:
		c.serveDirectStreamlocal(ctx, nch)
	default:
		if h, ok := s.ChannelHandlers[t]; ok {
			h.ServeChannel(ctx, c, nch)
			// Does nothing if the handler answered. Unanswered, the
			// client's open would wait forever and hold one of
			// MaxPendingOpens for the connection's life.
			nch.Reject(wire.OpenAdministrativelyProhibited, "channel not accepted")
			return
		}
		nch.Reject(wire.OpenUnknownChannelType, "unknown channel type")
	}
}

// globalRequestComing counts a global request the mux is about to
// deliver and starts serveGlobalRequests if it is not running.
func (c *Conn) globalRequestComing() {
	c.globalMu.Lock()
	defer c.globalMu.Unlock()
	c.globalPending++
	if !c.globalRunning {
		c.globalRunning = true
		go c.serveGlobalRequests(c.globalCtx)
	}
}

// globalRequestDone uncounts a served request and reports whether the
// goroutine serving them should leave.
func (c *Conn) globalRequestDone() bool {
	c.globalMu.Lock()
	defer c.globalMu.Unlock()
	c.globalPending--
	if c.globalPending > 0 {
		return false
	}
	c.globalRunning = false
	return true
}

// serveGlobalRequests answers the global requests the mux delivers, until
// none is pending or the mux closes the queue.
func (c *Conn) serveGlobalRequests(ctx context.Context) {
	for req := range c.mux.GlobalRequests() {
		c.serveGlobalRequest(ctx, req)
		if c.globalRequestDone() {
			return
		}
	}
}

func (c *Conn) serveGlobalRequest(ctx context.Context, req *connection.GlobalRequest) {
	switch req.Type {
	case connection.GlobalNoMoreSessions:
		req.Reply(true, nil) // gateSessions has acted on it
	case connection.GlobalHostKeysProve:
		c.proveHostKeys(req)
	case connection.GlobalTCPIPForward, connection.GlobalCancelTCPIPForward:
		c.handleTCPIPForward(ctx, req)
	case connection.GlobalStreamlocalForward, connection.GlobalCancelStreamlocalForward:
		c.handleStreamlocalForward(ctx, req)
	default:
		if h, ok := c.srv.RequestHandlers[req.Type]; ok {
			c.runRequestHandler(ctx, h, req)
		}
		req.Reply(false, nil) // no-op if the handler answered
	}
}

// clientAlive implements sshd's ClientAliveInterval/ClientAliveCountMax:
// a keepalive@openssh.com with want-reply after each interval in which
// the client sent nothing; any reply (OpenSSH answers FAILURE) proves the
// client is alive. As in sshd, only silent intervals count: a client
// busy downloading over a slow link keeps sending window adjusts, while
// a probe (and so its reply) waits behind the data queued for it, which
// can take longer than ClientAliveCountMax intervals.
func (c *Conn) clientAlive(ctx context.Context) {
	max := c.srv.ClientAliveCountMax
	if max == 0 {
		max = 3
	}
	replies := make(chan struct{}, 1)
	missed := 0
	t := time.NewTicker(c.srv.ClientAliveInterval)
	defer t.Stop()
	outstanding := false
	lastIn, _ := c.tc.BytesTransferred()
	for {
		select {
		case <-ctx.Done():
			return
		case <-replies:
			outstanding = false
			missed = 0
		case <-t.C:
			if in, _ := c.tc.BytesTransferred(); in != lastIn {
				lastIn = in
				continue // not silent
			}
			if outstanding {
				missed++
				if missed >= max {
					c.disconnect(wire.DisconnectByApplication, "client not responding to keepalives")
					return
				}
				continue
			}
			outstanding = true
			go func() {
				if _, _, err := c.mux.SendGlobalRequest("keepalive@openssh.com", true, nil); err == nil {
					select {
					case replies <- struct{}{}:
					default:
					}
				}
			}()
		}
	}
}

func (c *Conn) runRequestHandler(ctx context.Context, h RequestHandler, req *connection.GlobalRequest) {
	defer c.recoverHandler("global request " + req.Type)
	h(ctx, c, req)
}

// gateSessions applies no-more-sessions@openssh.com (OpenSSH PROTOCOL
// §2.2: a session open after it aborts the connection, as sshd does) in
// message order (connection.Config.Inspect), and counts each
// GLOBAL_REQUEST the mux will deliver. The mux hands global requests and
// channel opens to different goroutines, so a flag set when the request is
// served could miss a session open sent right after it (OpenSSH sends the
// request without want-reply), or act on one sent before it. Seeing both
// in the transport's order, before the mux handles them, cannot.
//
// OpenSSH's client sends no-more-sessions for ssh -N and ssh -W, and after
// the first session unless it multiplexes (ControlMaster): a later session
// open means someone else drives the connection (a compromised forwarded
// client, a hijacked multiplexer), so the connection ends rather than
// refusing the one channel.
func (c *Conn) gateSessions(p []byte) (refused bool, err error) {
	switch p[0] {
	case wire.MsgGlobalRequest:
		r := wire.NewReader(p[1:])
		name := r.String()
		if r.Ok() && name == connection.GlobalNoMoreSessions {
			c.noMoreSessions.Store(true)
		}
		if r.Ok() && slices.Contains(c.globalTypes, name) {
			c.globalRequestComing()
		}
	case wire.MsgChannelOpen:
		if !c.noMoreSessions.Load() {
			break
		}
		r := wire.NewReader(p[1:])
		if chanType := r.String(); !r.Ok() || chanType != connection.ChannelTypeSession {
			break // malformed ones are the mux's to refuse
		}
		return false, wire.ProtocolError("possible attack: session opened after no-more-sessions@openssh.com")
	}
	return false, nil
}

// ErrPanic wraps the value of a panic recovered while serving a connection
// (ConnInfo.Err), so callers can tell crashes apart (sshd's crash penalty).
var ErrPanic = errors.New("panic")

// ErrUnknownUser, wrapped by an Authenticator's refusal together with
// auth.ErrDenied, says the user does not exist. It changes nothing for
// the client (the auth layer sees ErrDenied); it sets
// ConnInfo.UnknownUser, for sshd's invaliduser penalty.
var ErrUnknownUser = errors.New("unknown user")

// ErrAuthUnavailable, wrapped by an Authenticator's refusal together with
// auth.ErrDenied, says it could not decide: its account store failed
// (down, restarting, out of connections). The client
// sees an ordinary failure; ConnInfo.AuthUnavailable counts the attempt,
// so that a server's own outage is not held against the client's address
// (sshd's authfail penalty).
var ErrAuthUnavailable = errors.New("authentication backend unavailable")

// countingAuthenticator counts refused attempts of one connection for
// ConnInfo.AuthFailures (and AuthUnavailable), and notes
// ConnInfo.UnknownUser, passing the
// optional interfaces through.
type countingAuthenticator struct {
	auth.Authenticator
	failures    atomic.Int32
	unavailable atomic.Int32
	unknownUser atomic.Bool
	user        atomic.Pointer[string] // the last attempt's, for ConnInfo.User
}

// maxLoggedUser bounds the user name ConnInfo carries for a failed login.
const maxLoggedUser = 256

func (c *countingAuthenticator) count(m auth.ConnMetadata, p *auth.Permissions, err error) (*auth.Permissions, error) {
	u := m.User()
	if len(u) > maxLoggedUser {
		u = u[:maxLoggedUser]
	}
	c.user.Store(&u)
	if err != nil || p == nil {
		c.failures.Add(1)
	}
	if errors.Is(err, ErrUnknownUser) {
		c.unknownUser.Store(true)
	}
	if errors.Is(err, ErrAuthUnavailable) {
		c.unavailable.Add(1)
	}
	return p, err
}

func (c *countingAuthenticator) Password(ctx context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	p, err := c.Authenticator.Password(ctx, m, pw)
	return c.count(m, p, err)
}

func (c *countingAuthenticator) PublicKey(ctx context.Context, m auth.ConnMetadata, k keys.PublicKey) (*auth.Permissions, error) {
	p, err := c.Authenticator.PublicKey(ctx, m, k)
	return c.count(m, p, err)
}

func (c *countingAuthenticator) KeyboardInteractive(ctx context.Context, m auth.ConnMetadata, ch auth.Challenger) (*auth.Permissions, error) {
	p, err := c.Authenticator.KeyboardInteractive(ctx, m, ch)
	return c.count(m, p, err)
}

func (c *countingAuthenticator) AuthenticationMethods(ctx context.Context, m auth.ConnMetadata) [][]string {
	if p, ok := c.Authenticator.(auth.MethodsPolicy); ok {
		return p.AuthenticationMethods(ctx, m)
	}
	return nil
}

func (c *countingAuthenticator) IsUserCA(ctx context.Context, m auth.ConnMetadata, ca keys.PublicKey) bool {
	if u, ok := c.Authenticator.(auth.UserCAChecker); ok {
		return u.IsUserCA(ctx, m, ca)
	}
	return false
}

type sessionSlot struct{ released atomic.Bool }

// reserveSession takes a MaxSessions slot, or returns nil when all are in
// use.
func (c *Conn) reserveSession() *sessionSlot {
	max := c.srv.MaxSessions
	if max == 0 {
		max = DefaultMaxSessions
	}
	c.sessionsMu.Lock()
	defer c.sessionsMu.Unlock()
	live := slices.DeleteFunc(c.sessions, func(sl *sessionSlot) bool { return sl.released.Load() })
	c.sessions = live
	if len(live) >= max {
		return nil
	}
	sl := &sessionSlot{}
	c.sessions = append(c.sessions, sl)
	return sl
}
