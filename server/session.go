package server

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/keys"
)

// maxEnv bounds "env" requests accepted per session.
const maxEnv = 64

// maxEnvBytes bounds the names and values of the "env" requests accepted
// per session. Each request may fill a packet (256 KiB), so maxEnv alone
// let a session hold 16 MiB; real clients send LANG and LC_* of a few
// bytes each, and Linux takes no single variable over 128 KiB
// (MAX_ARG_STRLEN) anyway.
const maxEnvBytes = 64 << 10

// Window is a terminal size.
type Window struct {
	Columns, Rows, WidthPx, HeightPx uint32
}

// Pty is the pseudo-terminal a client requested with "pty-req".
type Pty struct {
	Term   string
	Window Window
	Modes  []connection.TerminalMode
}

// Signal is a signal name without "SIG", e.g. "INT" (RFC 4254 §6.10).
type Signal string

// Session is one session channel (RFC 4254 §6) serving a shell, exec or
// subsystem request. Reading returns the client's stdin; writing sends
// stdout. It is safe to Read and Write from different goroutines.
type Session struct {
	conn *Conn
	ch   *connection.Channel
	ctx  context.Context

	mu        sync.Mutex
	env       []string
	envBytes  int // of the variables accepted from "env" requests
	pty       *Pty
	winch     chan Window
	signals   chan<- Signal
	breaks    chan<- uint32
	command   string // what runs: the forced command if any
	rawCmd    string // what the client asked for
	subsystem string
	exited    bool
	detached  bool

	// outputClosed: the client sent eow@openssh.com (see Write).
	outputClosed atomic.Bool

	cancel context.CancelFunc // ends ctx
	run    *channelRun

	// NotifyReadable's: the function to run and the bound callbacks.
	// readable is written before the channel's callback is registered and
	// read after it fired, so the channel's lock orders the two.
	readable                func()
	resumeFn, runReadableFn func()
}

// Read reads the client's input (CHANNEL_DATA); io.EOF after the client's EOF.
func (s *Session) Read(p []byte) (int, error) { return s.ch.Read(p) }

// ErrOutputClosed is what Write returns once the client has said, with
// eow@openssh.com, that it can no longer write the session's output
// anywhere ("ssh host cmd | head" after head exited).
var ErrOutputClosed = errors.New("server: the client closed its output (eow@openssh.com)")

// Write sends output (CHANNEL_DATA). After the client's eow@openssh.com
// it fails with ErrOutputClosed: OpenSSH's client discards what arrives
// then, and sshd closes the command's stdout, so that the command gets
// SIGPIPE instead of running on for nobody.
func (s *Session) Write(p []byte) (int, error) {
	if s.outputClosed.Load() {
		return 0, ErrOutputClosed
	}
	return s.ch.Write(p)
}

// WriteBuffers sends the concatenation of bufs as output, packing
// CHANNEL_DATA packets across buffer boundaries (connection.Channel's
// WriteBuffers); it may change the slice headers in bufs. It fails as
// Write does after eow@openssh.com.
func (s *Session) WriteBuffers(bufs [][]byte) (int, error) {
	if s.outputClosed.Load() {
		return 0, ErrOutputClosed
	}
	return s.ch.WriteBuffers(bufs)
}

// NotifyReadable arranges for f to run once, when a Read would no longer
// block (input, EOF, or the session's or connection's end); it reports
// false, and drops f, when a Read would not block now. f runs on a
// goroutine of its own, which it may keep (it may block); a panic in it is
// handled like one in the handler. With Detach, a handler waiting for
// input so needs no goroutine of its own.
func (s *Session) NotifyReadable(f func()) bool {
	if s.resumeFn == nil {
		// Bound once: a session that parks often does not allocate.
		s.resumeFn, s.runReadableFn = s.resume, s.runReadable
	}
	s.readable = f
	if !s.ch.NotifyReadable(s.resumeFn) {
		s.readable = nil
		return false
	}
	return true
}

// resume is the channel's callback (on the read goroutine): it hands the
// function NotifyReadable got to a pooled goroutine.
func (s *Session) resume() { s.conn.srv.channelWorkers.run(s.runReadableFn) }

func (s *Session) runReadable() {
	f := s.readable
	s.readable = nil
	if !s.runRecovered(f) {
		// A panic ends the session, as one in the handler does: the end
		// function Detach returned may now never be called.
		s.release()
	}
}

// runRecovered runs f, reporting false if it panicked (the panic is
// logged and the connection disconnected, as for a handler's).
func (s *Session) runRecovered(f func()) (returned bool) {
	defer s.conn.recoverHandler("session")
	f()
	return true
}

// Detach lets the handler return without ending the session: the session
// stays open until end is called, which does what a returning handler's
// Exit does (exit status, EOF, CLOSE) and releases the session. With
// NotifyReadable a handler can then hold no goroutine while it waits for
// input; the sftp subsystem idles so. Call Detach before the handler
// returns; end may be called from any goroutine, and calls after the
// first do nothing. end must be called even when the client closed the
// session or the connection ended (Read fails, Context is done): until
// it is, the connection counts the session as running, so ServeConn does
// not return, OnConnClosed is not called and Shutdown waits for it. A
// handler that panics ends its session, detached or not.
func (s *Session) Detach() (end func(exitStatus int)) {
	s.mu.Lock()
	s.detached = true
	s.mu.Unlock()
	s.run.detached.Store(true)
	return s.endDetached
}

func (s *Session) endDetached(exitStatus int) {
	s.Exit(exitStatus)
	s.release()
}

// Stderr writes to the client's stderr (CHANNEL_EXTENDED_DATA type 1).
func (s *Session) Stderr() io.Writer { return s.ch.Stderr() }

// CloseWrite sends EOF: no more output.
func (s *Session) CloseWrite() error { return s.ch.CloseWrite() }

// Exit sends EOF, the exit status and closes the session (RFC 4254
// §6.10). Further calls do nothing.
func (s *Session) Exit(code int) error {
	s.mu.Lock()
	if s.exited {
		s.mu.Unlock()
		return nil
	}
	s.exited = true
	s.mu.Unlock()
	return s.ch.CloseWithRequest(connection.RequestExitStatus, (&connection.ExitStatus{Status: uint32(code)}).Marshal())
}

// ExitSignal reports that the command was killed by a signal and closes
// the session.
func (s *Session) ExitSignal(sig Signal, coreDumped bool, message string) error {
	s.mu.Lock()
	if s.exited {
		s.mu.Unlock()
		return nil
	}
	s.exited = true
	s.mu.Unlock()
	return s.ch.CloseWithRequest(connection.RequestExitSignal,
		(&connection.ExitSignal{Signal: string(sig), CoreDumped: coreDumped, ErrorMessage: message}).Marshal())
}

// Context is cancelled when the session or connection ends.
func (s *Session) Context() context.Context { return s.ctx }

// User is the authenticated user.
func (s *Session) User() string { return s.conn.User() }

// Permissions are the user's permissions.
func (s *Session) Permissions() *auth.Permissions { return s.conn.Permissions() }

// PublicKey is the key the user authenticated with, or nil.
func (s *Session) PublicKey() keys.PublicKey { return s.conn.PublicKey() }

// Conn is the connection the session belongs to.
func (s *Session) Conn() *Conn { return s.conn }

// Environ returns the variables set with "env" (accepted by AcceptEnv)
// and the key's environment= options, as NAME=value.
func (s *Session) Environ() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.env...)
}

// Command is the command to run for exec; empty for a shell or
// subsystem. A forced command (Permissions.ForceCommand) replaces all
// three: Command is then the forced command, whatever the client asked
// for (see RawCommand).
func (s *Session) Command() string { return s.command }

// RawCommand is the command the client asked for (SSH_ORIGINAL_COMMAND
// when a forced command replaced it).
func (s *Session) RawCommand() string { return s.rawCmd }

// Subsystem is the subsystem name, or empty.
func (s *Session) Subsystem() string { return s.subsystem }

// Pty returns the requested pty and a channel of window changes, or
// ok=false without a pty. The channel holds the latest size not yet
// received (an older one is dropped) and is never closed: a goroutine
// waiting on it should also wait on Context().Done().
func (s *Session) Pty() (pty Pty, windowChanges <-chan Window, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pty == nil {
		return Pty{}, nil, false
	}
	return *s.pty, s.winch, true
}

// Signals registers a channel for "signal" requests; nil unregisters.
// Signals are dropped when c is full, and lost when no channel is
// registered, as before the handler called Signals.
func (s *Session) Signals(c chan<- Signal) {
	s.mu.Lock()
	s.signals = c
	s.mu.Unlock()
}

// Breaks registers a channel for "break" requests (RFC 4335), carrying
// the break length in milliseconds.
func (s *Session) Breaks(c chan<- uint32) {
	s.mu.Lock()
	s.breaks = c
	s.mu.Unlock()
}

// serveSession accepts a session channel and runs the handler for its
// shell/exec/subsystem request in this goroutine. The channel's requests
// are answered on the connection's read goroutine (sessionRequests), so
// an open session costs this one goroutine, before and after its handler
// starts.
func (c *Conn) serveSession(ctx context.Context, nch *connection.NewChannel, slot *sessionSlot, run *channelRun) {
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{conn: c, ctx: ctx, cancel: cancel, run: run}
	s.env = append(s.env, c.Permissions().Environment...)
	rs := &sessionRequests{c: c, s: s, start: make(chan sessionStart, 1)}
	// The channel or connection going away cancels ctx, which ends the
	// wait below or tells a running handler blocked on something other
	// than the channel.
	ch, err := nch.AcceptFunc(rs.handle, func() {
		cancel()
		slot.released.Store(true)
	})
	if err != nil {
		slot.released.Store(true)
		cancel()
		return
	}
	s.ch = ch
	select {
	case st := <-rs.start:
		// Answered here rather than on the read goroutine, whose stack
		// then stays small (issue 8's idle budget); replies still leave
		// in request order.
		st.req.Reply(true)
		returned := s.runRecovered(func() { st.h.ServeSSH(s) })
		s.mu.Lock()
		detached := s.detached
		s.mu.Unlock()
		switch {
		case !returned:
			// A panic ends the session even after Detach (nothing may be
			// left to call the end function), without an exit status: the
			// connection is being disconnected.
		case detached:
			return // the end function Detach returned ends the session
		default:
			s.Exit(0)
		}
	case <-ctx.Done():
	case <-c.srv.closingCh():
		// Nothing runs yet: a client that opened a session and never
		// asked for a program must not hold Shutdown up.
	}
	s.release()
}

// release closes the channel and ends the session's context and run;
// later calls do nothing.
func (s *Session) release() {
	s.ch.Close()
	s.cancel()
	s.run.end()
}

// sessionRequests answers one session channel's requests. Its handle
// method runs on the connection's read goroutine, one request at a time,
// so started needs no lock; it must never block.
type sessionRequests struct {
	c       *Conn
	s       *Session
	started bool
	start   chan sessionStart // receives the one handler to run; buffered
}

// sessionStart is the handler a shell, exec or subsystem request chose,
// with the request, which the session's goroutine answers.
type sessionStart struct {
	h   Handler
	req *connection.Request
}

func (rs *sessionRequests) handle(req *connection.Request) {
	c, s := rs.c, rs.s
	switch req.Type {
	case connection.RequestPtyReq:
		p, err := connection.ParsePtyRequest(req.Payload)
		if err != nil || rs.started || c.Permissions().NoPTY || (c.srv.PtyAllowed != nil && !c.srv.PtyAllowed(c)) {
			req.Reply(false)
			return
		}
		s.mu.Lock()
		s.pty = &Pty{Term: p.Term, Window: Window{p.Columns, p.Rows, p.WidthPx, p.HeightPx}, Modes: p.Modes}
		s.winch = make(chan Window, 1)
		s.mu.Unlock()
		req.Reply(true)
	case connection.RequestWindowChange:
		w, err := connection.ParseWindowChange(req.Payload)
		s.mu.Lock()
		if err == nil && s.pty != nil {
			s.pty.Window = Window{w.Columns, w.Rows, w.WidthPx, w.HeightPx}
			// Keep only the latest size: drop a stale one not yet read.
			select {
			case <-s.winch:
			default:
			}
			s.winch <- s.pty.Window
		}
		s.mu.Unlock()
		req.Reply(err == nil)
	case connection.RequestEnv:
		e, err := connection.ParseEnvRequest(req.Payload)
		accepted := err == nil && !rs.started && c.acceptEnv(e.Name)
		if accepted {
			s.mu.Lock()
			if n := len(e.Name) + 1 + len(e.Value); len(s.env) < maxEnv && s.envBytes+n <= maxEnvBytes {
				s.env = append(s.env, e.Name+"="+e.Value)
				s.envBytes += n
			} else {
				accepted = false
			}
			s.mu.Unlock()
		}
		req.Reply(accepted)
	case connection.RequestSignal:
		sig, err := connection.ParseSignal(req.Payload)
		s.mu.Lock()
		if err == nil && s.signals != nil {
			select {
			case s.signals <- Signal(sig.Name):
			default:
			}
		}
		s.mu.Unlock()
		req.Reply(err == nil)
	case connection.RequestBreak:
		b, err := connection.ParseBreak(req.Payload)
		s.mu.Lock()
		delivered := false
		if err == nil && s.breaks != nil {
			select {
			case s.breaks <- b.LengthMillis:
				delivered = true
			default:
			}
		}
		s.mu.Unlock()
		req.Reply(delivered)
	case connection.RequestShell, connection.RequestExec, connection.RequestSubsystem:
		if rs.started {
			req.Reply(false)
			return
		}
		h := c.chooseHandler(s, req)
		if h == nil {
			req.Reply(false)
			return
		}
		rs.started = true
		rs.start <- sessionStart{h, req} // buffered, sent once
	case connection.RequestEOW:
		// eow@openssh.com (OpenSSH's PROTOCOL §2.1): the client can no
		// longer write our output (its stdout failed) and will discard
		// what we send; sshd then closes the command's stdout
		// (chan_rcvd_eow). Stderr goes on. OpenSSH's ssh sends it only
		// to servers whose version starts "OpenSSH" (its compat flag
		// SSH_NEW_OPENSSH), so not to ferry; other clients may.
		if connection.ParseEmpty(req.Type, req.Payload) != nil {
			req.Reply(false)
			return
		}
		s.outputClosed.Store(true)
		req.Reply(true)
	default:
		// x11-req, auth-agent-req@openssh.com, xon-xoff and anything
		// unknown are refused.
		req.Reply(false)
	}
}

// chooseHandler picks the handler for a shell/exec/subsystem request,
// applying a forced command (authorized_keys command=, certificate
// force-command) over whatever the client asked for.
func (c *Conn) chooseHandler(s *Session, req *connection.Request) Handler {
	switch req.Type {
	case connection.RequestExec:
		e, err := connection.ParseExecRequest(req.Payload)
		if err != nil {
			return nil
		}
		s.rawCmd = e.Command
		s.command = e.Command
	case connection.RequestSubsystem:
		sub, err := connection.ParseSubsystemRequest(req.Payload)
		if err != nil {
			return nil
		}
		s.subsystem = sub.Name
	case connection.RequestShell:
		if connection.ParseEmpty(req.Type, req.Payload) != nil {
			return nil
		}
	}
	if fc := c.Permissions().ForceCommand; fc != "" {
		// sshd: a forced command replaces shell, exec and subsystem alike;
		// the handler sees the original in RawCommand.
		wasSubsystem := s.subsystem != ""
		if wasSubsystem {
			s.rawCmd = s.subsystem
			s.subsystem = ""
		}
		s.command = fc
		s.mu.Lock()
		s.env = append(s.env, "SSH_ORIGINAL_COMMAND="+s.rawCmd)
		s.mu.Unlock()
		switch forcedSFTP(fc) {
		case forcedInternalSFTP:
			// sshd session.c: internal-sftp serves a subsystem request
			// only (SUBSYSTEM_INT_SFTP); a shell or exec gets
			// SUBSYSTEM_INT_SFTP_ERROR's message and exit status 1.
			if !wasSubsystem {
				return HandlerFunc(refuseNonSFTP)
			}
			return c.forcedSFTPHandler(s)
		case forcedSFTPServer:
			// An sftp-server binary is an ordinary command to sshd, run
			// for any request; it speaks SFTP on the channel.
			return c.forcedSFTPHandler(s)
		}
		return c.srv.Handler
	}
	if s.subsystem != "" {
		return c.srv.SubsystemHandlers[s.subsystem]
	}
	return c.srv.Handler
}

// forcedSFTPHandler serves a forced internal-sftp or sftp-server with the
// "sftp" subsystem handler; Command still holds the forced command.
func (c *Conn) forcedSFTPHandler(s *Session) Handler {
	s.subsystem = sftpSubsystem
	return c.srv.SubsystemHandlers[sftpSubsystem]
}

const sftpSubsystem = "sftp"

// refuseNonSFTP answers a shell or exec request under a forced
// internal-sftp with sshd's words and exit status.
func refuseNonSFTP(s *Session) {
	io.WriteString(s, "This service allows sftp connections only.\n")
	s.Exit(1)
}

type forcedSFTPKind int

const (
	forcedNotSFTP forcedSFTPKind = iota
	forcedInternalSFTP
	forcedSFTPServer
)

// forcedSFTP tells whether a forced command names sshd's SFTP server:
// "internal-sftp" (sshd's IS_INTERNAL_SFTP: the word, then the end or a
// blank) or a program whose base name is "sftp-server" (the
// /usr/lib/openssh/sftp-server of Debian, /usr/libexec/openssh/ of
// Fedora). Only arguments that leave the server unrestricted (-e, -f, -l:
// logging) are accepted: -R, -P, -p, -d and -u limit what the session may
// do, and the sftp handler does not read them, so such a command is left
// to Handler (which refuses what it does not know) rather than served
// with more rights than sshd would give.
func forcedSFTP(command string) forcedSFTPKind {
	words := strings.FieldsFunc(command, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(words) == 0 {
		return forcedNotSFTP
	}
	kind := forcedNotSFTP
	switch {
	case words[0] == "internal-sftp":
		kind = forcedInternalSFTP
	case path.Base(words[0]) == "sftp-server":
		kind = forcedSFTPServer
	default:
		return forcedNotSFTP
	}
	for args := words[1:]; len(args) > 0; args = args[1:] {
		switch a := args[0]; {
		case a == "-e":
		case a == "-f" || a == "-l":
			if len(args) < 2 {
				return forcedNotSFTP
			}
			args = args[1:]
		case len(a) > 2 && (a[:2] == "-f" || a[:2] == "-l"):
		default:
			return forcedNotSFTP
		}
	}
	return kind
}

func (c *Conn) acceptEnv(name string) bool {
	for _, p := range c.srv.AcceptEnv {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
