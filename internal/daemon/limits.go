package daemon

// MaxStartups and PerSourceMaxStartups as sshd implements them (sshd.c
// should_drop_connection/drop_connection, srclimit.c srclimit_check_allow):
// unauthenticated connections are counted globally and per source block;
// beyond start they are refused at random with a probability rising from
// rate% to 100% at full, and a block over its own limit is refused
// outright, so one flooding source cannot use up everyone's slots.

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"

	proxyproto "github.com/pires/go-proxyproto"
)

var (
	// ErrMaxStartups: the connection lost MaxStartups' random early drop
	// or the gate is full.
	ErrMaxStartups = errors.New("exceeded MaxStartups")
	// ErrPerSourceMaxStartups: the source block already has
	// PerSourceMaxStartups unauthenticated connections.
	ErrPerSourceMaxStartups = errors.New("exceeded PerSourceMaxStartups")
)

// StartupGate counts unauthenticated connections. Its memory is bounded
// by MaxStartups.Full: a per-source entry exists only while that source
// holds an admitted slot, and no more than Full slots are ever held.
type StartupGate struct {
	start, rate, full int
	perSource         int // 0: no per-source limit
	blocks            NetBlockSize

	// randN returns a uniform integer in [0, n). It decides drops only,
	// not secrets, so math/rand/v2 (runtime-seeded ChaCha8) is enough;
	// tests replace it to walk the drop curve deterministically.
	randN func(n int) int

	mu       sync.Mutex
	startups int
	sources  map[netip.Prefix]int
}

// NewStartupGate returns a gate for cfg's MaxStartups,
// PerSourceMaxStartups and PerSourceNetBlockSize. A zero MaxStartups
// (Full 0, which config.go never produces) means no global limit.
func NewStartupGate(cfg *Config) *StartupGate {
	return &StartupGate{
		start:     cfg.MaxStartups.Start,
		rate:      cfg.MaxStartups.Rate,
		full:      cfg.MaxStartups.Full,
		perSource: cfg.PerSourceMaxStartups,
		blocks:    cfg.PerSourceNetBlockSize,
		randN:     rand.IntN,
		sources:   make(map[netip.Prefix]int),
	}
}

// sourceBlock is the "source" of addr for per-source limits and
// penalties: its leading PerSourceNetBlockSize bits. IPv4-mapped IPv6
// addresses (from a dual-stack listener) count as the IPv4 address, so
// one client cannot double its allowance by switching socket families.
func sourceBlock(addr netip.Addr, blocks NetBlockSize) (netip.Prefix, bool) {
	if !addr.IsValid() {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap().WithZone("")
	bits := blocks.IPv6
	if addr.Is4() {
		bits = blocks.IPv4
	}
	p, err := addr.Prefix(bits)
	return p, err == nil
}

// Admit decides whether a new connection from remote may start. When it
// is admitted, release must be called once the connection authenticates
// or ends, whichever comes first; later calls do nothing. An invalid
// remote (not an IP connection) is counted only globally.
func (g *StartupGate) Admit(remote netip.Addr) (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	block, hasBlock := sourceBlock(remote, g.blocks)
	// sshd checks the per-source limit before the random drop.
	if hasBlock && g.perSource > 0 && g.sources[block] >= g.perSource {
		return nil, ErrPerSourceMaxStartups
	}
	if g.shouldDrop(g.startups) {
		return nil, ErrMaxStartups
	}
	g.startups++
	// Whether this slot is in sources is fixed here: a reload may turn
	// the per-source limit on or off (or change the block size) before
	// it is released, and release must undo exactly what Admit did.
	counted := hasBlock && g.perSource > 0
	if counted {
		g.sources[block]++
	}
	var once sync.Once
	return func() {
		once.Do(func() { g.release(block, counted) })
	}, nil
}

// Reconfigure applies a reloaded configuration's MaxStartups,
// PerSourceMaxStartups and PerSourceNetBlockSize to connections admitted
// from now on. Slots already held keep counting against the global limit
// and, under the block they were admitted in, against their source's.
func (g *StartupGate) Reconfigure(cfg *Config) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.start, g.rate, g.full = cfg.MaxStartups.Start, cfg.MaxStartups.Rate, cfg.MaxStartups.Full
	g.perSource = cfg.PerSourceMaxStartups
	g.blocks = cfg.PerSourceNetBlockSize
}

// shouldDrop is sshd's should_drop_connection: never below start, always
// at full, in between with probability rate% + (100-rate)% ×
// (startups-start)/(full-start), in whole percent as sshd computes it.
func (g *StartupGate) shouldDrop(startups int) bool {
	switch {
	case g.full <= 0, startups < g.start:
		return false
	case startups >= g.full, g.rate >= 100:
		return true
	}
	p := (100-g.rate)*(startups-g.start)/(g.full-g.start) + g.rate
	return g.randN(100) < p
}

func (g *StartupGate) release(block netip.Prefix, counted bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.startups--
	if counted {
		if n := g.sources[block] - 1; n > 0 {
			g.sources[block] = n
		} else {
			delete(g.sources, block)
		}
	}
}

// fullLimit is MaxStartups.Full, which a reload may change.
func (g *StartupGate) fullLimit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.full
}

// Startups is the number of admitted connections not yet authenticated
// or closed.
func (g *StartupGate) Startups() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.startups
}

// sourcesLen is the size of the per-source table (tests check it
// empties).
func (g *StartupGate) sourcesLen() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sources)
}

// Messages sshd writes to a refused connection before closing it
// (sshd.c drop_connection): a best-effort hint to the person behind the
// client, not part of the protocol.
const (
	refusedStartupsMsg = "Exceeded MaxStartups\r\n"
	refusedPenaltyMsg  = "Not allowed at this time\r\n"
)

// GuardedListener applies penalties and MaxStartups to a listener's
// connections. Accept returns only admitted connections, whose startup
// slot is released on Close or, earlier, by Authenticated; the one
// exception is a PROXY protocol connection (see Accept), which must go
// through AdmitProxied before it is served.
type GuardedListener struct {
	net.Listener
	// OnAdmit, if set, is called for each admitted connection (e.g.
	// Metrics.ConnOpened, balancing OnConnClosed's ConnClosed). Set it
	// before Accept is first called.
	OnAdmit func(remote netip.Addr)

	gate      *StartupGate
	penalties *Penalties
	onDrop    func(remote netip.Addr, reason error)

	mu sync.Mutex
	// pending holds admitted connections that have not authenticated.
	// Bounded by MaxStartups.Full: each entry holds a gate slot.
	pending map[connKey]*guardedConn
	// awaitingHeader counts PROXY protocol connections accepted but not
	// yet through AdmitProxied. Bounded by MaxStartups.Full (see
	// Accept): they are unauthenticated connections too, and each holds
	// a socket and a goroutine for up to ProxyHeaderTimeout.
	awaitingHeader int
}

// connKey finds a pending connection from the addresses Authenticated
// is given. An IP connection's (remote, local) pair is unique. A PROXY
// protocol header with a Unix socket source names the same path (often
// "") for every client, so such a connection is found by the identity of
// its address instead: the header's, which its RemoteAddr always returns.
type connKey struct {
	remote, local string
	unix          *net.UnixAddr
}

// keyOf is the connKey of a connection with these addresses, or false
// when it has none (its slot is then released only by Close).
func keyOf(remote, local net.Addr) (connKey, bool) {
	if ua, ok := remote.(*net.UnixAddr); ok && ua != nil {
		return connKey{unix: ua}, true
	}
	if ipOf(remote).IsValid() {
		return connKey{remote: remote.String(), local: local.String()}, true
	}
	return connKey{}, false
}

// GuardListener wraps ln. gate and penalties may be nil (no limit).
// onDrop, if set, is called for every refused connection with
// ErrMaxStartups, ErrPerSourceMaxStartups, or the Penalties.Check error;
// it must not block.
//
// Wire authentication to it with server.Server.ConnContext, which runs
// after authentication: call l.Authenticated(c.RemoteAddr(), c.LocalAddr()).
func GuardListener(ln net.Listener, gate *StartupGate, penalties *Penalties, onDrop func(remote netip.Addr, reason error)) *GuardedListener {
	return &GuardedListener{Listener: ln, gate: gate, penalties: penalties, onDrop: onDrop,
		pending: make(map[connKey]*guardedConn)}
}

// Accept returns the next admitted connection. Refused connections get
// sshd's one-line notice and are closed here; they never reach the
// server, so they cost no goroutine and no handshake.
//
// A PROXY protocol connection (*proxyproto.Conn) is returned before it
// is admitted: its source address is in the header, and reading the
// header (RemoteAddr does) waits up to ProxyHeaderTimeout for a silent
// peer, which here would stall every other accept behind it. The caller
// passes it to AdmitProxied on the connection's own goroutine; until
// then its Read and Write fail, so a server that skips that step serves
// nothing on it.
func (l *GuardedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if pc, ok := nc.(*proxyproto.Conn); ok {
			if gc := l.acceptProxied(pc); gc != nil {
				return gc, nil
			}
			continue
		}
		remote := remoteAddrOf(nc)
		release, ok := l.admit(nc, remote, true)
		if !ok {
			continue
		}
		var c net.Conn = nc
		if release != nil {
			gc := &guardedConn{Conn: nc, l: l}
			l.track(gc, remote, release)
			c = gc
		}
		if l.OnAdmit != nil {
			l.OnAdmit(remote)
		}
		return c, nil
	}
}

// acceptProxied wraps a PROXY protocol connection for AdmitProxied, or
// refuses it when MaxStartups.Full connections already wait for their
// header. It must not read the header, so it uses only the socket.
func (l *GuardedListener) acceptProxied(pc *proxyproto.Conn) *guardedConn {
	limit := 0
	if l.gate != nil {
		limit = l.gate.fullLimit()
	}
	l.mu.Lock()
	full := limit > 0 && l.awaitingHeader >= limit
	if !full {
		l.awaitingHeader++
	}
	l.mu.Unlock()
	if full {
		// The socket peer (the load balancer, or whoever reached the
		// port); writing through pc would wait for the header.
		l.refuse(pc.Raw(), remoteAddrOf(pc.Raw()), ErrMaxStartups, refusedStartupsMsg)
		return nil
	}
	return &guardedConn{Conn: pc, l: l, awaitingHeader: true, unadmitted: true}
}

// AdmitProxied reads the PROXY protocol header of a connection Accept
// returned (bounded by the listener's ReadHeaderTimeout), then applies
// the penalties and MaxStartups to the source address it declares. It
// reports whether nc may be served; a refused nc has been told and
// closed. Any other connection is already admitted: AdmitProxied
// returns true at once.
//
// A connection whose header is missing or malformed is admitted as its
// socket peer (what RemoteAddr then reports): the server's first Read
// fails with the header error, which is logged as the connection's end.
func (l *GuardedListener) AdmitProxied(nc net.Conn) bool {
	gc, ok := nc.(*guardedConn)
	if !ok || !gc.unadmitted {
		return true
	}
	remote := remoteAddrOf(gc.Conn) // reads the header
	l.stopAwaitingHeader(gc)
	// A LOCAL header is the load balancer's own health check, and its
	// remote is the balancer's address, which headerless connections
	// (served as their socket peer) may have penalised: refusing it
	// would take ferry out of the pool for every client. Anyone who can
	// reach the port can claim any source in a header, so LOCAL skips
	// nothing a forged PROXY header could not.
	pc, _ := gc.Conn.(*proxyproto.Conn)
	release, ok := l.admit(gc.Conn, remote, pc == nil || !headerIsLocal(pc))
	if !ok {
		return false
	}
	if release != nil && !l.track(gc, remote, release) {
		release() // closed while its header was awaited
		return false
	}
	gc.unadmitted = false
	if l.OnAdmit != nil {
		l.OnAdmit(remote)
	}
	return true
}

// stopAwaitingHeader uncounts gc from awaitingHeader, once.
func (l *GuardedListener) stopAwaitingHeader(gc *guardedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gc.awaitingHeader {
		gc.awaitingHeader = false
		l.awaitingHeader--
	}
}

// admit applies the penalties (if checkPenalties) and MaxStartups to nc
// from remote. It returns the startup slot's release (nil without a
// gate), or false when nc was refused and closed.
func (l *GuardedListener) admit(nc net.Conn, remote netip.Addr, checkPenalties bool) (release func(), ok bool) {
	if l.penalties != nil && checkPenalties {
		if err := l.penalties.Check(remote); err != nil {
			l.refuse(nc, remote, err, refusedPenaltyMsg)
			return nil, false
		}
	}
	if l.gate == nil {
		return nil, true
	}
	release, err := l.gate.Admit(remote)
	if err != nil {
		l.refuse(nc, remote, err, refusedStartupsMsg)
		return nil, false
	}
	return release, true
}

// track gives gc its startup slot and makes it findable by
// Authenticated. It reports false, keeping nothing, if gc was closed.
func (l *GuardedListener) track(gc *guardedConn, remote netip.Addr, release func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gc.closed {
		return false
	}
	gc.release = release
	if key, ok := keyOf(gc.Conn.RemoteAddr(), gc.Conn.LocalAddr()); ok {
		gc.key = key
		l.pending[key] = gc
	}
	return true
}

func (l *GuardedListener) refuse(nc net.Conn, remote netip.Addr, reason error, msg string) {
	// A fresh socket's send buffer is empty, so this write does not
	// block (on the accept path, or AdmitProxied's goroutine).
	nc.Write([]byte(msg))
	// Counted before the close the peer sees: a client (or test) that
	// reads the refusal to its end finds it in the metrics already.
	if l.onDrop != nil {
		l.onDrop(remote, reason)
	}
	nc.Close()
}

// Authenticated releases the startup slot of the connection between
// remote and local, as sshd does once a connection authenticates.
func (l *GuardedListener) Authenticated(remote, local net.Addr) {
	key, ok := keyOf(remote, local)
	if !ok {
		return
	}
	l.mu.Lock()
	gc := l.pending[key]
	l.mu.Unlock()
	if gc != nil {
		gc.done()
	}
}

// Pending is the number of admitted connections not yet authenticated
// or closed.
func (l *GuardedListener) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

func remoteAddrOf(nc net.Conn) netip.Addr { return ipOf(nc.RemoteAddr()) }

// ipOf is a's IP address, or the zero Addr when a is not an IP address.
func ipOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case nil:
		return netip.Addr{}
	default:
		// e.g. a PROXY protocol wrapper's address type.
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr()
		}
		return netip.Addr{}
	}
}

type guardedConn struct {
	net.Conn
	l    *GuardedListener
	once sync.Once

	// Guarded by l.mu: a PROXY protocol connection is admitted on its own
	// goroutine, which a Close (the daemon's drain) may race.
	key     connKey
	release func() // nil: no startup slot (no gate, or not admitted)
	closed  bool
	// awaitingHeader: counted in l.awaitingHeader.
	awaitingHeader bool

	// unadmitted: a PROXY protocol connection AdmitProxied has not
	// admitted. Written only by AdmitProxied, on the goroutine that then
	// serves the connection.
	unadmitted bool
}

// errNotAdmitted fails I/O on a PROXY protocol connection that was
// served without AdmitProxied: no limit or penalty was applied to it.
var errNotAdmitted = errors.New("daemon: PROXY protocol connection served without AdmitProxied")

func (c *guardedConn) Read(b []byte) (int, error) {
	if c.unadmitted {
		return 0, errNotAdmitted
	}
	return c.Conn.Read(b)
}

func (c *guardedConn) Write(b []byte) (int, error) {
	if c.unadmitted {
		return 0, errNotAdmitted
	}
	return c.Conn.Write(b)
}

func (c *guardedConn) done() {
	c.once.Do(func() {
		l := c.l
		l.mu.Lock()
		c.closed = true
		if c.awaitingHeader {
			c.awaitingHeader = false
			l.awaitingHeader--
		}
		if l.pending[c.key] == c {
			delete(l.pending, c.key)
		}
		release := c.release
		c.release = nil
		l.mu.Unlock()
		if release != nil {
			release()
		}
	})
}

func (c *guardedConn) Close() error {
	c.done()
	return c.Conn.Close()
}
