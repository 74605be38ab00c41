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
	block, hasBlock := sourceBlock(remote, g.blocks)
	g.mu.Lock()
	defer g.mu.Unlock()
	// sshd checks the per-source limit before the random drop.
	if hasBlock && g.perSource > 0 && g.sources[block] >= g.perSource {
		return nil, ErrPerSourceMaxStartups
	}
	if g.shouldDrop(g.startups) {
		return nil, ErrMaxStartups
	}
	g.startups++
	if hasBlock && g.perSource > 0 {
		g.sources[block]++
	}
	var once sync.Once
	return func() {
		once.Do(func() { g.release(block, hasBlock) })
	}, nil
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

func (g *StartupGate) release(block netip.Prefix, hasBlock bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.startups--
	if hasBlock && g.perSource > 0 {
		if n := g.sources[block] - 1; n > 0 {
			g.sources[block] = n
		} else {
			delete(g.sources, block)
		}
	}
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
// connections. Serve a server.Server on it; Accept returns only admitted
// connections, whose startup slot is released on Close or, earlier, by
// Authenticated.
type GuardedListener struct {
	net.Listener
	// OnAdmit, if set, is called for each connection Accept returns
	// (e.g. Metrics.ConnOpened, balancing OnConnClosed's ConnClosed).
	// Set it before Accept is first called.
	OnAdmit func(remote netip.Addr)

	gate      *StartupGate
	penalties *Penalties
	onDrop    func(remote netip.Addr, reason error)

	mu sync.Mutex
	// pending holds admitted connections that have not authenticated.
	// Bounded by MaxStartups.Full: each entry holds a gate slot.
	pending map[connKey]*guardedConn
}

type connKey struct{ remote, local string }

// GuardListener wraps ln. gate and penalties may be nil (no limit).
// onDrop, if set, is called for every refused connection with
// ErrMaxStartups, ErrPerSourceMaxStartups, or the Penalties.Check error;
// it runs on the accept path and must not block.
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
func (l *GuardedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		remote := remoteAddrOf(nc)
		if l.penalties != nil {
			if err := l.penalties.Check(remote); err != nil {
				l.refuse(nc, remote, err, refusedPenaltyMsg)
				continue
			}
		}
		if l.gate == nil {
			if l.OnAdmit != nil {
				l.OnAdmit(remote)
			}
			return nc, nil
		}
		release, err := l.gate.Admit(remote)
		if err != nil {
			l.refuse(nc, remote, err, refusedStartupsMsg)
			continue
		}
		gc := &guardedConn{Conn: nc, l: l, release: release}
		// Only IP connections have a unique (remote, local) pair to find
		// them by in Authenticated; others (Unix sockets) keep their slot
		// until Close.
		if remote.IsValid() {
			gc.key = connKey{nc.RemoteAddr().String(), nc.LocalAddr().String()}
			l.mu.Lock()
			l.pending[gc.key] = gc
			l.mu.Unlock()
		}
		if l.OnAdmit != nil {
			l.OnAdmit(remote)
		}
		return gc, nil
	}
}

func (l *GuardedListener) refuse(nc net.Conn, remote netip.Addr, reason error, msg string) {
	// A fresh socket's send buffer is empty, so this write does not
	// block on the accept path.
	nc.Write([]byte(msg))
	nc.Close()
	if l.onDrop != nil {
		l.onDrop(remote, reason)
	}
}

// Authenticated releases the startup slot of the connection between
// remote and local, as sshd does once a connection authenticates.
func (l *GuardedListener) Authenticated(remote, local net.Addr) {
	l.mu.Lock()
	gc := l.pending[connKey{remote.String(), local.String()}]
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

func remoteAddrOf(nc net.Conn) netip.Addr {
	switch a := nc.RemoteAddr().(type) {
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
	l       *GuardedListener
	key     connKey
	once    sync.Once
	release func()
}

func (c *guardedConn) done() {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.pending[c.key] == c {
			delete(c.l.pending, c.key)
		}
		c.l.mu.Unlock()
		c.release()
	})
}

func (c *guardedConn) Close() error {
	c.done()
	return c.Conn.Close()
}
