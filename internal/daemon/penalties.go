package daemon

// PerSourcePenalties as OpenSSH 9.8 introduced them (sshd_config(5)
// PerSourcePenalties, srclimit.c srclimit_penalise and
// srclimit_penalty_check_allow): each misbehaviour of a source block adds
// its duration to the block's penalty, capped at max; once the penalty
// left exceeds min the block is refused until it runs out.

import (
	"container/heap"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

// Event is a misbehaviour that PerSourcePenalties punishes.
type Event int

const (
	// EventCrash: serving the connection panicked (sshd: the session
	// process crashed). A client that can crash the server is probing.
	EventCrash Event = iota + 1
	// EventAuthFail: the client tried to authenticate and failed.
	EventAuthFail
	// EventNoAuth: the client went away without trying to authenticate
	// (scanners, banner grabbers).
	EventNoAuth
	// EventGraceExceeded: LoginGraceTime ran out.
	EventGraceExceeded
	// EventInvalidUser: authentication was attempted for a user that does
	// not exist.
	EventInvalidUser
	// EventRefuseConnection: the configuration refused the connection
	// (sshd's RefuseConnection).
	EventRefuseConnection
)

// String is the event's name in sshd's PerSourcePenalties syntax.
func (e Event) String() string {
	switch e {
	case EventCrash:
		return "crash"
	case EventAuthFail:
		return "authfail"
	case EventNoAuth:
		return "noauth"
	case EventGraceExceeded:
		return "grace-exceeded"
	case EventInvalidUser:
		return "invaliduser"
	case EventRefuseConnection:
		return "refuseconnection"
	}
	return fmt.Sprintf("event(%d)", int(e))
}

var (
	// ErrPenalised wraps the refusal of a penalised source block.
	ErrPenalised = errors.New("penalty")
	// ErrPenaltyTableFull: the table is full and its overflow mode is
	// deny-all (sshd: "too many penalised addresses").
	ErrPenaltyTableFull = errors.New("too many penalised addresses")
)

// maxExpirePerCall bounds the expired entries one Record or Check
// removes, so a burst of expiries never stalls the accept loop. Each
// Record adds at most one entry, so removing up to 64 per call keeps up.
const maxExpirePerCall = 64

// Penalties is the penalty table. Its size is bounded by max-sources4
// plus max-sources6 (config.go bounds those at 1<<24 each).
type Penalties struct {
	// settings are swapped whole by a reload (Reconfigure); each Record
	// or Check works with the one it loaded.
	settings atomic.Pointer[penaltySettings]
	now      func() time.Time

	mu     sync.Mutex
	v4, v6 penaltyTable
}

// penaltySettings are a configuration's PerSourcePenalties,
// PerSourcePenaltyExemptList and PerSourceNetBlockSize.
type penaltySettings struct {
	cfg    PerSourcePenalties
	exempt []netip.Prefix
	blocks NetBlockSize
}

func newPenaltySettings(cfg *Config) *penaltySettings {
	return &penaltySettings{
		cfg:    cfg.PerSourcePenalties,
		exempt: slices.Clone(cfg.PerSourcePenaltyExemptList),
		blocks: cfg.PerSourceNetBlockSize,
	}
}

type penaltyTable struct {
	max      int
	overflow PenaltyOverflow
	byBlock  map[netip.Prefix]*penalty
	byExpiry penaltyHeap
	active   int
}

type penalty struct {
	block  netip.Prefix
	expiry time.Time
	// active: the accumulated penalty once exceeded min. sshd never
	// deactivates an entry; it only expires.
	active bool
	reason Event
	index  int // in byExpiry
}

// NewPenalties returns the table for cfg's PerSourcePenalties,
// PerSourcePenaltyExemptList and PerSourceNetBlockSize. now is the clock
// (time.Now in production; a monotonic reading keeps wall-clock steps
// from lifting or extending penalties).
func NewPenalties(cfg *Config, now func() time.Time) *Penalties {
	if now == nil {
		now = time.Now
	}
	st := newPenaltySettings(cfg)
	p := &Penalties{now: now}
	p.settings.Store(st)
	p.v4 = penaltyTable{max: st.cfg.MaxSources4, overflow: st.cfg.Overflow, byBlock: make(map[netip.Prefix]*penalty)}
	p.v6 = penaltyTable{max: st.cfg.MaxSources6, overflow: st.cfg.Overflow6, byBlock: make(map[netip.Prefix]*penalty)}
	return p
}

// Reconfigure applies a reloaded configuration's PerSourcePenalties,
// PerSourcePenaltyExemptList and PerSourceNetBlockSize; the penalties
// already recorded are kept (a reload must not pardon an attacker). A
// table over its new max-sources drops the penalties ending soonest, as
// a full permissive table does. After a change of block size the old
// entries, keyed by the old blocks, no longer match and expire unused.
func (p *Penalties) Reconfigure(cfg *Config) {
	st := newPenaltySettings(cfg)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settings.Store(st)
	for _, t := range []struct {
		t        *penaltyTable
		max      int
		overflow PenaltyOverflow
	}{{&p.v4, st.cfg.MaxSources4, st.cfg.Overflow}, {&p.v6, st.cfg.MaxSources6, st.cfg.Overflow6}} {
		t.t.max, t.t.overflow = t.max, t.overflow
		for len(t.t.byBlock) > t.t.max {
			t.t.remove(t.t.byExpiry[0])
		}
	}
}

func (st *penaltySettings) duration(e Event) time.Duration {
	switch e {
	case EventCrash:
		return st.cfg.Crash
	case EventAuthFail:
		return st.cfg.AuthFail
	case EventNoAuth:
		return st.cfg.NoAuth
	case EventGraceExceeded:
		return st.cfg.GraceExceeded
	case EventInvalidUser:
		return st.cfg.InvalidUser
	case EventRefuseConnection:
		return st.cfg.RefuseConnection
	}
	return 0
}

// exempted matches the address itself, not its block, against the
// exempt list, as sshd does.
func (st *penaltySettings) exempted(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, e := range st.exempt {
		if e.Contains(addr) {
			return true
		}
	}
	return false
}

func (p *Penalties) table(block netip.Prefix) *penaltyTable {
	if block.Addr().Is4() {
		return &p.v4
	}
	return &p.v6
}

// Record adds event's penalty to addr's source block.
func (p *Penalties) Record(addr netip.Addr, event Event) {
	st := p.settings.Load()
	if !st.cfg.Enabled || st.exempted(addr) {
		return
	}
	d := st.duration(event)
	if d <= 0 {
		return
	}
	block, ok := sourceBlock(addr, st.blocks)
	if !ok {
		return
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.table(block)
	t.expire(now)
	e := t.byBlock[block]
	if e != nil && e.expiry.Before(now) {
		// Expired but not yet collected (maxExpirePerCall): start afresh.
		t.remove(e)
		e = nil
	}
	if e == nil {
		if len(t.byBlock) >= t.max && t.overflow == OverflowDenyAll {
			// sshd cannot penalise it either; Check refuses everyone
			// while the table stays full.
			return
		}
		e = &penalty{block: block, expiry: now.Add(d), reason: event, active: d > st.cfg.Min}
		t.byBlock[block] = e
		heap.Push(&t.byExpiry, e)
		if e.active {
			t.active++
		}
		// Permissive overflow: make room by dropping the penalties that
		// would end soonest (sshd srclimit_early_expire_penalties).
		for len(t.byBlock) > t.max {
			t.remove(t.byExpiry[0])
		}
		return
	}
	e.expiry = e.expiry.Add(d)
	if limit := now.Add(st.cfg.Max); e.expiry.After(limit) {
		e.expiry = limit
	}
	e.reason = event
	if !e.active && e.expiry.Sub(now) > st.cfg.Min {
		e.active = true
		t.active++
	}
	heap.Fix(&t.byExpiry, e.index)
}

// Check returns nil when addr may connect, or why not: an error wrapping
// ErrPenalised, or ErrPenaltyTableFull.
func (p *Penalties) Check(addr netip.Addr) error {
	v := p.check(addr)
	switch {
	case v.full:
		return ErrPenaltyTableFull
	case v.penalised:
		return fmt.Errorf("%w: %s for %s (%s left)", ErrPenalised, v.reason, v.block, v.left.Round(time.Second))
	}
	return nil
}

// Blocked reports whether addr is refused now. Unlike Check it does not
// allocate.
func (p *Penalties) Blocked(addr netip.Addr) bool {
	v := p.check(addr)
	return v.full || v.penalised
}

type verdict struct {
	full, penalised bool
	reason          Event
	block           netip.Prefix
	left            time.Duration
}

func (p *Penalties) check(addr netip.Addr) verdict {
	st := p.settings.Load()
	if !st.cfg.Enabled || st.exempted(addr) {
		return verdict{}
	}
	block, ok := sourceBlock(addr, st.blocks)
	if !ok {
		return verdict{}
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.table(block)
	t.expire(now)
	if len(t.byBlock) >= t.max && t.overflow == OverflowDenyAll {
		return verdict{full: true}
	}
	e := t.byBlock[block]
	if e == nil || e.expiry.Before(now) || !e.active {
		return verdict{}
	}
	return verdict{penalised: true, reason: e.reason, block: block, left: e.expiry.Sub(now)}
}

// Len is the number of tracked source blocks, penalised or not yet.
func (p *Penalties) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.v4.byBlock) + len(p.v6.byBlock)
}

// Active is the number of source blocks being refused now (the
// ferry_penalties_active gauge, read at each scrape). Entries are only
// collected by Record and Check, so after an attack stops nothing else
// removes them: counting those that expired since would report sources
// as refused for as long as the server then stays quiet.
func (p *Penalties) Active() int {
	if !p.settings.Load().cfg.Enabled {
		return 0 // a reload turned penalties off: nobody is refused
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range []*penaltyTable{&p.v4, &p.v6} {
		t.expire(now)
		n += t.active - t.expiredActive(0, now)
	}
	return n
}

func (t *penaltyTable) expire(now time.Time) {
	for i := 0; i < maxExpirePerCall && len(t.byExpiry) > 0 && t.byExpiry[0].expiry.Before(now); i++ {
		t.remove(t.byExpiry[0])
	}
}

// expiredActive counts the active entries that expired before now in
// the subtree of byExpiry rooted at i. A heap's children expire no
// earlier than their parent, so the walk visits only expired entries
// (those expire has not collected yet) and the first live one of each
// branch.
func (t *penaltyTable) expiredActive(i int, now time.Time) int {
	if i >= len(t.byExpiry) || !t.byExpiry[i].expiry.Before(now) {
		return 0
	}
	n := 0
	if t.byExpiry[i].active {
		n = 1
	}
	return n + t.expiredActive(2*i+1, now) + t.expiredActive(2*i+2, now)
}

func (t *penaltyTable) remove(e *penalty) {
	heap.Remove(&t.byExpiry, e.index)
	delete(t.byBlock, e.block)
	if e.active {
		t.active--
	}
}

// penaltyHeap orders penalties by expiry, soonest first.
type penaltyHeap []*penalty

func (h penaltyHeap) Len() int           { return len(h) }
func (h penaltyHeap) Less(i, j int) bool { return h[i].expiry.Before(h[j].expiry) }
func (h penaltyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *penaltyHeap) Push(x any) {
	e := x.(*penalty)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *penaltyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// FromConnInfo maps a finished connection to the events sshd would
// penalise it for (sshd.c child_reap's exit-status mapping):
//   - a recovered panic → crash;
//   - authenticated → nothing;
//   - LoginGraceTime ran out → grace-exceeded;
//   - an attempt named a user with no account (OpenSSH 10.0's
//     invaliduser) → invaliduser, in place of authfail: sshd maps one
//     exit status to one penalty per connection;
//   - authentication failed (too many failures, or the client gave up
//     with NO_MORE_AUTH_METHODS_AVAILABLE / AUTH_CANCELLED_BY_USER) →
//     authfail;
//   - any other end before authentication → noauth.
//
// ConnInfo does not say how many attempts failed, so a client that fails
// and then just closes the socket (OpenSSH's ssh after its password
// prompts) counts as noauth; see the report on adding a failure count.
func FromConnInfo(info *server.ConnInfo) []Event {
	if info == nil {
		return nil
	}
	if errors.Is(info.Err, server.ErrPanic) {
		return []Event{EventCrash}
	}
	if info.Authenticated {
		return nil
	}
	if info.GraceExceeded {
		return []Event{EventGraceExceeded}
	}
	if info.UnknownUser {
		return []Event{EventInvalidUser}
	}
	if info.AuthUnavailable > 0 && info.AuthFailures <= info.AuthUnavailable {
		// Every refusal was the account store's failure, not a wrong
		// credential: the client that then gives up (DISCONNECT "no more
		// authentication methods") did nothing to be penalised for.
		return nil
	}
	if info.AuthFailures > 0 || (info.Phase == "auth" && authFailed(info.Err)) {
		return []Event{EventAuthFail}
	}
	return []Event{EventNoAuth}
}

// tooManyAuthFailures is the message auth sends when MaxAuthTries is
// exceeded (sshd's auth_maxtries_exceeded wording).
const tooManyAuthFailures = "Too many authentication failures"

func authFailed(err error) bool {
	var d *wire.DisconnectError
	if !errors.As(err, &d) {
		return false
	}
	if d.Remote {
		return d.Reason == wire.DisconnectNoMoreAuthMethodsAvailable || d.Reason == wire.DisconnectAuthCancelledByUser
	}
	return d.Reason == wire.DisconnectProtocolError && d.Message == tooManyAuthFailures
}
