package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// errTooManyFailures mirrors sshd's auth_maxtries_exceeded (auth.c): the
// message is "Too many authentication failures" and the reason is the
// PROTOCOL_ERROR that ssh_packet_disconnect always sends.
func errTooManyFailures() error {
	return wire.ProtocolError("Too many authentication failures")
}

// metadata is the ConnMetadata handed to the Authenticator.
type metadata struct {
	user      string
	peer      Peer
	sessionID []byte
}

func (m *metadata) User() string          { return m.user }
func (m *metadata) RemoteAddr() net.Addr  { return m.peer.RemoteAddr }
func (m *metadata) LocalAddr() net.Addr   { return m.peer.LocalAddr }
func (m *metadata) ClientVersion() string { return m.peer.ClientVersion }
func (m *metadata) SessionID() []byte     { return m.sessionID }

// canonicalMethods is the order methods are listed in FAILURE replies,
// sshd's authmethods[] order (auth2.c).
var canonicalMethods = [...]string{methodPublicKey, methodPassword, methodKeyboardInteractive}

// outcomeKind is how one USERAUTH_REQUEST ended.
type outcomeKind int

const (
	// outcomeFailure counts against MaxAuthTries and is answered with
	// FAILURE.
	outcomeFailure outcomeKind = iota
	// outcomeSuccess completes a method (maybe only one step of an
	// AuthenticationMethods list).
	outcomeSuccess
	// outcomePKOK answers a public key query the Authenticator allows; it
	// is not a failure (sshd "postponed").
	outcomePKOK
	// outcomeAbandoned is a keyboard-interactive exchange the client left
	// by sending a new USERAUTH_REQUEST (RFC 4256 §3.4 allows this; sshd
	// auth2_challenge_stop). No reply; the new request is handled next.
	outcomeAbandoned
)

func (k outcomeKind) String() string {
	switch k {
	case outcomeSuccess:
		return "success"
	case outcomePKOK:
		return "pk-ok"
	case outcomeAbandoned:
		return "abandoned"
	}
	return "failure"
}

type outcome struct {
	kind    outcomeKind
	perms   *Permissions
	key     keys.PublicKey // publickey success: the verified key
	keyBlob []byte         // its blob (copied), for the used-keys rule
	pkOK    *userAuthPKOKMsg
}

// serverAuthState is one run of the ssh-userauth service. Its methods run
// in protocol order: serviceRequest, then userAuthRequest until success.
type serverAuthState struct {
	ctx  context.Context
	c    Conn
	cfg  *Config
	auth Authenticator
	log  *slog.Logger

	maxTries     int
	maxRequests  int
	failureDelay time.Duration
	pubkeyAlgs   []string
	caAlgs       []string
	minRSABits   int
	now          func() time.Time

	meta      metadata
	userBytes []byte // the user name as sent, for signed data
	started   bool   // first USERAUTH_REQUEST seen
	service   string
	requests  int
	failures  int
	// lists are the remaining steps of each AuthenticationMethods list.
	lists    [][]string
	usedKeys [][]byte // blobs of keys that completed a publickey step
	done     []string
	pubKeys  []keys.PublicKey
	perms    *Permissions // merged over completed steps

	arrived time.Time // when the message being answered arrived
	// pending is a USERAUTH_REQUEST read while a keyboard-interactive
	// challenge was outstanding, handled next (owned copy).
	pending []byte
}

// Run performs the ssh-userauth service: SERVICE_REQUEST "ssh-userauth" →
// SERVICE_ACCEPT, then the authentication exchange. It returns after
// sending USERAUTH_SUCCESS, or with an error: a *wire.DisconnectError
// (the caller sends DISCONNECT with its reason and closes) or an error from
// c. The caller bounds the whole exchange (sshd's LoginGraceTime) with a
// deadline on the connection and ctx.
func Run(ctx context.Context, c Conn, peer Peer, cfg *Config) (*Result, error) {
	s, err := newServerAuthState(ctx, c, peer, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.serviceRequest(); err != nil {
		return nil, err
	}
	for {
		res, err := s.userAuthRequest()
		if err != nil || res != nil {
			return res, err
		}
	}
}

func newServerAuthState(ctx context.Context, c Conn, peer Peer, cfg *Config) (*serverAuthState, error) {
	if cfg == nil || cfg.Authenticator == nil {
		return nil, wire.Errorf(wire.DisconnectByApplication, "auth: no Authenticator configured")
	}
	s := &serverAuthState{
		ctx:          ctx,
		c:            c,
		cfg:          cfg,
		auth:         cfg.Authenticator,
		log:          cfg.Logger,
		maxTries:     cfg.MaxAuthTries,
		failureDelay: cfg.FailureDelay,
		pubkeyAlgs:   cfg.PubkeyAlgorithms,
		caAlgs:       cfg.CASignatureAlgorithms,
		minRSABits:   cfg.MinRSABits,
		now:          cfg.Now,
	}
	s.meta.peer = peer
	s.meta.sessionID = c.SessionID()
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxTries <= 0 {
		s.maxTries = DefaultMaxAuthTries
	}
	// The request cap must leave room for MaxAuthTries real attempts
	// and the queries between them when a Config raises MaxAuthTries.
	s.maxRequests = max(MaxUserAuthRequests, 2*s.maxTries)
	if s.failureDelay == 0 {
		s.failureDelay = DefaultFailureDelay
	}
	if len(s.pubkeyAlgs) == 0 {
		s.pubkeyAlgs = DefaultPubkeyAlgorithms()
	}
	if len(s.caAlgs) == 0 {
		// SHA-1 stays out even when PubkeyAlgorithms lets old clients
		// sign with ssh-rsa: a CA signature is what a chosen-prefix
		// collision would forge (sshd's CASignatureAlgorithms default
		// has dropped ssh-rsa since 8.2, whatever PubkeyAcceptedAlgorithms
		// says).
		for _, a := range s.pubkeyAlgs {
			if !keys.IsCertificateType(keys.KeyTypeOfAlgorithm(a)) && a != keys.SigRSASHA1 && a != keys.KeyDSA {
				s.caAlgs = append(s.caAlgs, a)
			}
		}
	}
	if s.minRSABits <= 0 {
		s.minRSABits = DefaultMinRSABits
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// readMessage reads the next message and records its arrival. Anything but
// the wanted types ends the connection: before USERAUTH_SUCCESS the client
// may send nothing else (RFC 4252 §6; CVE-2018-10933 and CVE-2025-32433
// were servers acting on other messages here).
func (s *serverAuthState) readMessage(want ...byte) ([]byte, error) {
	p, err := s.c.ReadPacket()
	if err != nil {
		return nil, err
	}
	s.arrived = time.Now()
	if len(p) == 0 {
		return nil, wire.ProtocolError("empty message during user authentication")
	}
	if !slices.Contains(want, p[0]) {
		return nil, wire.ProtocolError("unexpected message type %d during user authentication", p[0])
	}
	return p, nil
}

func (s *serverAuthState) write(p []byte) error {
	return s.c.WritePacket(p)
}

// serviceRequest handles the first message, RFC 4253 §10.
func (s *serverAuthState) serviceRequest() error {
	p, err := s.readMessage(wire.MsgServiceRequest)
	if err != nil {
		return err
	}
	return s.acceptService(p)
}

// acceptService answers a SERVICE_REQUEST for ssh-userauth, the only
// service offered before authentication; any other ends the connection.
func (s *serverAuthState) acceptService(p []byte) error {
	var req serviceRequestMsg
	if !req.unmarshal(p) {
		return wire.ProtocolError("malformed SERVICE_REQUEST")
	}
	if req.Service != serviceUserAuth {
		return wire.Errorf(wire.DisconnectServiceNotAvailable, "bad service request %q", truncate(req.Service))
	}
	accept := serviceAcceptMsg{Service: serviceUserAuth}
	return s.write(accept.marshal())
}

// userAuthRequest handles one USERAUTH_REQUEST. It returns a Result once the
// user is authenticated.
func (s *serverAuthState) userAuthRequest() (*Result, error) {
	var p []byte
	if s.pending != nil {
		p, s.pending = s.pending, nil
	} else {
		var err error
		if p, err = s.readUserAuthRequest(); err != nil {
			return nil, err
		}
	}
	var req userAuthRequestMsg
	if !req.unmarshal(p) {
		return nil, wire.ProtocolError("malformed USERAUTH_REQUEST")
	}
	if err := s.ctx.Err(); err != nil {
		return nil, wire.Errorf(wire.DisconnectByApplication, "authentication cancelled: %v", err)
	}
	s.requests++
	if s.requests > s.maxRequests {
		return nil, errTooManyFailures()
	}
	if err := s.checkUserAndService(&req); err != nil {
		return nil, err
	}
	first := !s.started
	if first {
		if err := s.start(&req); err != nil {
			return nil, err
		}
	}

	var (
		out outcome
		err error
	)
	switch {
	case req.Method == methodNone:
		// "none" never succeeds (RFC 4252 §5.2); clients send it to learn
		// the methods that can continue.
		if !parseNonePayload(req.Payload) {
			return nil, wire.ProtocolError("malformed none request")
		}
		out = outcome{kind: outcomeFailure}
	case !s.methodAllowed(req.Method):
		out = outcome{kind: outcomeFailure}
	case req.Method == methodPublicKey || req.Method == methodPublicKeyHostbound:
		out, err = s.publicKey(&req)
	case req.Method == methodPassword:
		out, err = s.password(&req)
	case req.Method == methodKeyboardInteractive:
		out, err = s.keyboardInteractive(&req)
	default:
		out = outcome{kind: outcomeFailure}
	}
	if err != nil {
		return nil, err
	}
	s.log.LogAttrs(s.ctx, slog.LevelDebug, "userauth request",
		remoteAttr(s.meta.peer.RemoteAddr), slog.String("user", s.meta.user), slog.String("method", truncate(req.Method)),
		slog.String("outcome", out.kind.String()))

	switch out.kind {
	case outcomePKOK:
		return nil, s.write(out.pkOK.marshal())
	case outcomeAbandoned:
		return nil, nil
	case outcomeSuccess:
		return s.stepDone(req.Method, out)
	}
	// sshd (auth2.c userauth_finish) lets the very first request be a free
	// "none" probe; any other failure counts, unknown methods included.
	if !(first && req.Method == methodNone) {
		s.failures++
		if req.Method != methodNone {
			s.log.LogAttrs(s.ctx, slog.LevelInfo, "authentication failed",
				remoteAttr(s.meta.peer.RemoteAddr), slog.String("user", s.meta.user),
				slog.String("method", truncate(req.Method)), slog.Int("failures", s.failures))
		}
	}
	if s.failures >= s.maxTries {
		s.log.LogAttrs(s.ctx, slog.LevelInfo, "too many authentication failures",
			remoteAttr(s.meta.peer.RemoteAddr), slog.String("user", s.meta.user))
		return nil, errTooManyFailures()
	}
	if req.Method == methodNone {
		// Like sshd (auth2.c: ensure_minimum_time_since skips "none"):
		// the reply only lists methods, which are the same for known and
		// unknown users, and clients probe "none" before every login, so
		// delaying it would add FailureDelay to every connection.
		f := userAuthFailureMsg{Methods: s.continuable()}
		return nil, s.write(f.marshal())
	}
	return nil, s.sendFailure(false)
}

// readUserAuthRequest reads the next USERAUTH_REQUEST, answering any
// SERVICE_REQUEST for ssh-userauth before it: paramiko sends one before
// each of its auth_* calls, and sshd keeps accepting them until
// authentication succeeds (auth2.c leaves input_service_request
// registered). Each counts toward the connection's request bound, so a
// client cannot keep the exchange alive with them.
func (s *serverAuthState) readUserAuthRequest() ([]byte, error) {
	for {
		p, err := s.readMessage(wire.MsgUserAuthRequest, wire.MsgServiceRequest)
		if err != nil {
			return nil, err
		}
		if p[0] == wire.MsgUserAuthRequest {
			return p, nil
		}
		s.requests++
		if s.requests > s.maxRequests {
			return nil, errTooManyFailures()
		}
		if err := s.acceptService(p); err != nil {
			return nil, err
		}
	}
}

// checkUserAndService enforces the user name bounds and that neither user
// nor service changes between requests. RFC 4252 §5 would allow a change;
// sshd refuses it ("Change of username or service not allowed") and so do
// we: per-user state (failures, partial success) must not carry over.
func (s *serverAuthState) checkUserAndService(req *userAuthRequestMsg) error {
	if len(req.User) > MaxUserLen || !utf8.Valid(req.User) || slices.Contains(req.User, 0) {
		return wire.Errorf(wire.DisconnectIllegalUserName, "illegal user name")
	}
	if !s.started {
		return nil
	}
	if string(req.User) != s.meta.user || req.Service != s.service {
		return wire.ProtocolError("change of username or service not allowed")
	}
	return nil
}

// start sets up per-user state on the first request.
func (s *serverAuthState) start(req *userAuthRequestMsg) error {
	s.started = true
	s.meta.user = string(req.User)
	s.userBytes = []byte(s.meta.user)
	s.service = req.Service
	if req.Service != serviceConnection {
		return wire.Errorf(wire.DisconnectServiceNotAvailable, "service %q not available", truncate(req.Service))
	}
	lists := s.cfg.AuthenticationMethods
	if mp, ok := s.auth.(MethodsPolicy); ok {
		if l := mp.AuthenticationMethods(s.ctx, &s.meta); len(l) > 0 {
			lists = l
		}
	}
	s.lists = s.setupLists(lists)
	if len(s.lists) == 0 {
		return wire.Errorf(wire.DisconnectNoMoreAuthMethodsAvailable, "no authentication methods enabled")
	}
	if s.cfg.Banner != "" {
		// RFC 4252 §5.4: any time before USERAUTH_SUCCESS; sshd sends it
		// on the first request so the user sees it before any prompt.
		b := userAuthBannerMsg{Message: s.cfg.Banner}
		if err := s.write(b.marshal()); err != nil {
			return err
		}
	}
	return nil
}

// enabled reports whether a method is enabled in Config.Methods.
func (s *serverAuthState) enabled(method string) bool {
	if len(s.cfg.Methods) == 0 {
		return slices.Contains(canonicalMethods[:], method)
	}
	return slices.Contains(s.cfg.Methods, method) && slices.Contains(canonicalMethods[:], method)
}

// setupLists turns AuthenticationMethods into the working lists, dropping
// lists with disabled or unknown methods as sshd does
// (auth2_setup_methods_lists). Without lists every enabled method is a
// one-step list.
func (s *serverAuthState) setupLists(in [][]string) [][]string {
	var out [][]string
	if len(in) == 0 {
		for _, m := range canonicalMethods {
			if s.enabled(m) {
				out = append(out, []string{m})
			}
		}
		return out
	}
	for _, l := range in {
		if len(out) == maxMethodSteps {
			break
		}
		if len(l) == 0 || len(l) > maxMethodSteps {
			continue
		}
		ok := true
		for _, m := range l {
			if !s.enabled(m) {
				ok = false
			}
		}
		if ok {
			out = append(out, slices.Clone(l))
		}
	}
	return out
}

// methodAllowed reports whether method may be tried now: it heads one of
// the remaining lists (sshd auth2_method_allowed).
func (s *serverAuthState) methodAllowed(method string) bool {
	if method == methodPublicKeyHostbound {
		method = methodPublicKey
	}
	for _, l := range s.lists {
		if l[0] == method {
			return true
		}
	}
	return false
}

// continuable is the name-list of a FAILURE reply: the methods that head a
// remaining list, in canonical order. It depends only on configuration and
// progress, never on whether the user exists.
func (s *serverAuthState) continuable() []string {
	var out []string
	for _, m := range canonicalMethods {
		if s.methodAllowed(m) {
			out = append(out, m)
		}
	}
	return out
}

// sendFailure sends USERAUTH_FAILURE no earlier than the failure delay
// after the request arrived.
func (s *serverAuthState) sendFailure(partial bool) error {
	if err := s.waitFailureDelay(); err != nil {
		return err
	}
	f := userAuthFailureMsg{Methods: s.continuable(), PartialSuccess: partial}
	return s.write(f.marshal())
}

// waitFailureDelay sleeps until FailureDelay has passed since the request
// arrived. When the work took longer, the wait is extended to the next
// doubling of the delay (sshd ensure_minimum_time_since), so that the reply
// time falls into coarse steps instead of tracking how long the
// Authenticator took for this user.
func (s *serverAuthState) waitFailureDelay() error {
	d := s.failureDelay
	if d <= 0 {
		return nil
	}
	elapsed := time.Since(s.arrived)
	for i := 0; d < elapsed && i < 16; i++ {
		d *= 2
	}
	if d <= elapsed {
		return nil
	}
	t := time.NewTimer(d - elapsed)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return wire.Errorf(wire.DisconnectByApplication, "authentication cancelled: %v", s.ctx.Err())
	}
}

// stepDone records a successful method and either finishes (a whole list is
// done: USERAUTH_SUCCESS) or reports partial success (RFC 4252 §5.1).
func (s *serverAuthState) stepDone(method string, out outcome) (*Result, error) {
	if method == methodPublicKeyHostbound {
		method = methodPublicKey
	}
	perms, err := mergePermissions(s.perms, out.perms)
	if err != nil {
		s.log.LogAttrs(s.ctx, slog.LevelInfo, "conflicting permissions between methods",
			slog.String("user", s.meta.user), slog.String("err", err.Error()))
		s.failures++
		if s.failures >= s.maxTries {
			return nil, errTooManyFailures()
		}
		return nil, s.sendFailure(false)
	}
	s.perms = perms
	s.done = append(s.done, method)
	if out.key != nil {
		s.usedKeys = append(s.usedKeys, out.keyBlob)
		s.pubKeys = append(s.pubKeys, out.key)
	}
	complete := false
	var next [][]string
	for _, l := range s.lists {
		// sshd auth2_update_methods_lists: the method is removed from the
		// head of every list it heads; the other lists stay as they are,
		// since each of them may still be completed on its own.
		if l[0] != method {
			next = append(next, l)
			continue
		}
		if len(l) == 1 {
			complete = true
		}
		next = append(next, l[1:])
	}
	if complete {
		success := (&userAuthSuccessMsg{}).marshal()
		var err error
		if bc, ok := s.c.(interface{ WritePacketMore([]byte) error }); ok && s.cfg.BufferSuccess {
			err = bc.WritePacketMore(success)
		} else {
			err = s.write(success)
		}
		if err != nil {
			return nil, err
		}
		res := &Result{
			User:        s.meta.user,
			Permissions: s.perms,
			Methods:     s.done,
			PublicKeys:  s.pubKeys,
		}
		if n := len(s.pubKeys); n > 0 {
			res.PublicKey = s.pubKeys[n-1]
		}
		attrs := []slog.Attr{remoteAttr(s.meta.peer.RemoteAddr), slog.String("user", s.meta.user),
			slog.Any("methods", s.done)}
		if res.PublicKey != nil {
			// As sshd's "Accepted publickey ... SHA256:...": which of an
			// account's keys logged in, known while the session lasts.
			attrs = append(attrs, slog.String("key", keys.FingerprintSHA256(res.PublicKey)))
		}
		s.log.LogAttrs(s.ctx, slog.LevelInfo, "user authenticated", attrs...)
		return res, nil
	}
	s.lists = next
	return nil, s.sendFailure(true)
}

// mergePermissions combines the permissions of successive methods of an
// AuthenticationMethods list: every restriction of any step holds, and two
// different forced commands are a conflict (as sshd refuses differing
// command= and certificate force-command).
func mergePermissions(prev, next *Permissions) (*Permissions, error) {
	if prev == nil {
		return next, nil
	}
	m := prev.Clone()
	if next.ForceCommand != "" {
		if m.ForceCommand != "" && m.ForceCommand != next.ForceCommand {
			return nil, errors.New("forced commands differ")
		}
		m.ForceCommand = next.ForceCommand
	}
	m.NoPTY = m.NoPTY || next.NoPTY
	m.NoPortForwarding = m.NoPortForwarding || next.NoPortForwarding
	m.NoAgentForwarding = m.NoAgentForwarding || next.NoAgentForwarding
	m.NoX11Forwarding = m.NoX11Forwarding || next.NoX11Forwarding
	m.NoUserRC = m.NoUserRC || next.NoUserRC
	m.PermitOpen = intersectPermits(m.PermitOpen, next.PermitOpen, false)
	m.PermitListen = intersectPermits(m.PermitListen, next.PermitListen, true)
	m.Environment = append(m.Environment, next.Environment...)
	if !next.ExpiresAt.IsZero() && (m.ExpiresAt.IsZero() || next.ExpiresAt.Before(m.ExpiresAt)) {
		m.ExpiresAt = next.ExpiresAt
	}
	for k, v := range next.Extensions {
		if m.Extensions == nil {
			m.Extensions = make(map[string]string)
		}
		m.Extensions[k] = v
	}
	return m, nil
}

// permitNothing is a permitopen/permitlisten entry that matches no
// request: it keeps a list restricting (an empty list restricts nothing)
// when two steps have no target in common.
const permitNothing = ""

// intersectPermits returns the host:port entries that both lists allow,
// "*" host or port being a wildcard, where an empty list allows anything.
// Taking either list whole (sshd keeps the first step's) would let one
// key's permitopen= undo the other's. In a listen list a bare port means
// "localhost:port", as in permittedListen.
func intersectPermits(a, b []string, listen bool) []string {
	if len(a) == 0 {
		return slices.Clone(b)
	}
	if len(b) == 0 {
		return slices.Clone(a)
	}
	split := func(e string) (host, port string, ok bool) {
		if listen && !strings.Contains(e, ":") {
			e = "localhost:" + e
		}
		host, port, err := net.SplitHostPort(e)
		return host, port, err == nil
	}
	meet := func(x, y string) (string, bool) {
		switch {
		case x == "*":
			return y, true
		case y == "*", x == y:
			return x, true
		}
		return "", false
	}
	var out []string
	for _, ea := range a {
		ha, pa, ok := split(ea)
		if !ok {
			continue
		}
		for _, eb := range b {
			hb, pb, ok := split(eb)
			if !ok {
				continue
			}
			h, okh := meet(ha, hb)
			p, okp := meet(pa, pb)
			if e := net.JoinHostPort(h, p); okh && okp && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return []string{permitNothing}
	}
	return out
}

// authorized turns an Authenticator answer into permissions or a refusal.
// A *wire.DisconnectError from the Authenticator ends the connection.
func (s *serverAuthState) authorized(method string, perms *Permissions, err error) (*Permissions, error) {
	if err != nil {
		var de *wire.DisconnectError
		if errors.As(err, &de) {
			return nil, err
		}
		if !errors.Is(err, ErrDenied) {
			s.log.LogAttrs(s.ctx, slog.LevelWarn, "authenticator error",
				slog.String("user", s.meta.user), slog.String("method", method),
				slog.String("err", err.Error()))
		}
		return nil, nil
	}
	if perms == nil {
		// A nil answer without error is an Authenticator bug; refuse
		// rather than guess.
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "authenticator returned nil permissions",
			slog.String("user", s.meta.user), slog.String("method", method))
		return nil, nil
	}
	return perms.Clone(), nil
}

// password handles method "password", RFC 4252 §8.
func (s *serverAuthState) password(req *userAuthRequestMsg) (outcome, error) {
	var p passwordRequest
	if !p.unmarshal(req.Payload) {
		return outcome{}, wire.ProtocolError("malformed password request")
	}
	if p.Change {
		// A password change request (RFC 4252 §8): ferry's accounts are
		// managed elsewhere, so it is a plain failure.
		return outcome{kind: outcomeFailure}, nil
	}
	if len(p.Password) > MaxPasswordLen || (len(p.Password) == 0 && !s.cfg.PermitEmptyPasswords) {
		return outcome{kind: outcomeFailure}, nil
	}
	perms, err := s.auth.Password(s.ctx, &s.meta, p.Password)
	perms, err = s.authorized(methodPassword, perms, err)
	if err != nil || perms == nil {
		return outcome{kind: outcomeFailure}, err
	}
	return outcome{kind: outcomeSuccess, perms: perms}, nil
}

// truncate shortens a peer-supplied string for an error message.
// remoteAttr is the client's address as the "remote" attribute, first
// after the message on every line about a login: as a string, the same
// "host:port" the daemon's other lines give (slog.Any made a JSON object
// of a *net.TCPAddr), and ahead of the user name, which the client
// chooses, so that a fail2ban filter reading the first remote= of a line
// cannot be handed another address inside a name.
func remoteAttr(a net.Addr) slog.Attr {
	if a == nil {
		return slog.String("remote", "")
	}
	return slog.String("remote", a.String())
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
