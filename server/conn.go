package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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

	sessions       atomic.Int32
	noMoreSessions atomic.Bool

	fwdMu     sync.Mutex
	listeners map[string]net.Listener // forward listeners by "host:port" or socket path
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

// ClientVersion is the client's identification string.
func (c *Conn) ClientVersion() string { return c.tc.ClientVersion() }

// Algorithms are the negotiated transport algorithms.
func (c *Conn) Algorithms() transport.Algorithms { return c.tc.Algorithms() }

// OpenChannel opens a channel to the client (e.g. a custom server-initiated
// channel type).
func (c *Conn) OpenChannel(ctx context.Context, chanType string, extra []byte) (*connection.Channel, error) {
	return c.mux.OpenChannel(ctx, chanType, extra)
}

// Disconnect ends the connection with a reason code.
func (c *Conn) Disconnect(reason uint32, message string) error {
	return c.tc.Disconnect(reason, message)
}

// globalRequestTypes are the global requests the server layer answers.
var globalRequestTypes = []string{
	connection.GlobalTCPIPForward, connection.GlobalCancelTCPIPForward,
	connection.GlobalStreamlocalForward, connection.GlobalCancelStreamlocalForward,
	connection.GlobalNoMoreSessions, connection.GlobalHostKeysProve,
}

// ServeConn serves one SSH connection on nc and closes it. A panic while
// serving it is recovered, logged with its stack and ends only this
// connection.
func (s *Server) ServeConn(nc net.Conn) {
	info := &ConnInfo{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr(), Start: time.Now(), Phase: "handshake"}
	log := s.logger()
	defer func() {
		if r := recover(); r != nil {
			info.Err = fmt.Errorf("panic: %v", r)
			log.Error("panic serving connection", "remote", nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		}
		nc.Close()
		info.Duration = time.Since(info.Start)
		if s.OnConnClosed != nil {
			s.OnConnClosed(info)
		}
	}()
	info.Err = s.serveConn(nc, info)
}

func (s *Server) serveConn(nc net.Conn, info *ConnInfo) error {
	grace := s.LoginGraceTime
	if grace == 0 {
		grace = DefaultLoginGraceTime
	}
	deadline := time.Now().Add(grace)
	nc.SetDeadline(deadline)

	tcfg := s.Transport
	if tcfg.ServerSigAlgs == nil {
		tcfg.ServerSigAlgs = s.Auth.ServerSigAlgs()
	}
	tc, err := transport.Server(nc, &tcfg)
	if err != nil {
		info.GraceExceeded = isTimeout(err)
		return err
	}
	defer tc.Close()
	tc.SetDeadline(deadline)
	info.ClientVersion = tc.ClientVersion()
	info.Algorithms = tc.Algorithms()
	info.Phase = "auth"

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	res, err := auth.Run(ctx, tc, auth.Peer{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr(), ClientVersion: tc.ClientVersion()}, &s.Auth)
	cancel()
	if err != nil {
		info.GraceExceeded = isTimeout(err) || errors.Is(err, context.DeadlineExceeded)
		var d *wire.DisconnectError
		if errors.As(err, &d) && !d.Remote {
			tc.Disconnect(d.Reason, d.Message)
		} else if info.GraceExceeded {
			tc.Disconnect(wire.DisconnectByApplication, "login grace time exceeded")
		}
		return err
	}
	tc.SetDeadline(time.Time{})
	tc.SetAuthenticated()
	info.Phase = "session"
	info.Authenticated = true
	info.User = res.User
	info.Methods = res.Methods
	if res.PublicKey != nil {
		info.KeyFingerprint = keys.FingerprintSHA256(res.PublicKey)
	}

	c := &Conn{srv: s, tc: tc, result: res}
	mcfg := s.Connection
	mcfg.DiscardExtendedData = true
	mcfg.GlobalRequestTypes = slices.Clone(globalRequestTypes)
	for name := range s.RequestHandlers {
		mcfg.GlobalRequestTypes = append(mcfg.GlobalRequestTypes, name)
	}
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
	mux, err := connection.New(tc, &mcfg)
	if err != nil {
		return err
	}
	c.mux = mux
	s.track(c, true)
	defer s.track(c, false)

	ctx, cancel = context.WithCancel(context.Background())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, c)
	}
	defer cancel()
	defer c.closeForwards()

	var handlers sync.WaitGroup
	runErr := make(chan error, 1)
	go func() { runErr <- mux.Run() }()
	go c.sendHostKeys()
	if s.ClientAliveInterval > 0 {
		go c.clientAlive(ctx)
	}
	go c.serveGlobalRequests(ctx)

	for {
		nch, err := mux.Accept(ctx)
		if err != nil {
			break
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			c.serveChannel(ctx, nch)
		}()
	}
	err = <-runErr
	cancel()
	var d *wire.DisconnectError
	if errors.As(err, &d) && !d.Remote {
		tc.Disconnect(d.Reason, d.Message)
	}
	tc.Close()
	handlers.Wait()
	if d != nil && d.Remote && d.Reason == wire.DisconnectByApplication {
		return nil // the client said goodbye
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveChannel dispatches one CHANNEL_OPEN.
func (c *Conn) serveChannel(ctx context.Context, nch *connection.NewChannel) {
	s := c.srv
	switch t := nch.ChannelType(); t {
	case connection.ChannelTypeSession:
		if c.noMoreSessions.Load() {
			nch.Reject(wire.OpenAdministrativelyProhibited, "no more sessions")
			return
		}
		max := s.MaxSessions
		if max == 0 {
			max = DefaultMaxSessions
		}
		if int(c.sessions.Add(1)) > max {
			c.sessions.Add(-1)
			nch.Reject(wire.OpenResourceShortage, "too many sessions")
			return
		}
		defer c.sessions.Add(-1)
		ch, err := nch.Accept()
		if err != nil {
			return
		}
		c.serveSession(ctx, ch)
	case connection.ChannelTypeDirectTCPIP:
		c.serveDirectTCPIP(ctx, nch)
	case connection.ChannelTypeDirectStreamlocal:
		c.serveDirectStreamlocal(ctx, nch)
	default:
		if h, ok := s.ChannelHandlers[t]; ok {
			h.ServeChannel(ctx, c, nch)
			return
		}
		nch.Reject(wire.OpenUnknownChannelType, "unknown channel type")
	}
}

// serveGlobalRequests answers the global requests the mux delivers.
func (c *Conn) serveGlobalRequests(ctx context.Context) {
	for req := range c.mux.GlobalRequests() {
		switch req.Type {
		case connection.GlobalNoMoreSessions:
			c.noMoreSessions.Store(true)
			req.Reply(true, nil)
		case connection.GlobalHostKeysProve:
			c.proveHostKeys(req)
		case connection.GlobalTCPIPForward, connection.GlobalCancelTCPIPForward:
			c.handleTCPIPForward(ctx, req)
		case connection.GlobalStreamlocalForward, connection.GlobalCancelStreamlocalForward:
			c.handleStreamlocalForward(ctx, req)
		default:
			if h, ok := c.srv.RequestHandlers[req.Type]; ok {
				h(ctx, c, req)
			}
			req.Reply(false, nil) // no-op if the handler answered
		}
	}
}

// clientAlive implements sshd's ClientAliveInterval/ClientAliveCountMax:
// a keepalive@openssh.com with want-reply after each quiet interval; any
// reply (OpenSSH answers FAILURE) proves the client is alive.
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-replies:
			outstanding = false
			missed = 0
		case <-t.C:
			if outstanding {
				missed++
				if missed >= max {
					c.tc.Disconnect(wire.DisconnectByApplication, "client not responding to keepalives")
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
