package daemon

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

func penaltyConfig(mod func(*Config)) *Config {
	cfg := Default()
	cfg.PerSourcePenalties = PerSourcePenalties{Enabled: true,
		Crash: 90 * time.Second, AuthFail: 5 * time.Second, InvalidUser: 5 * time.Second, NoAuth: time.Second,
		GraceExceeded: 10 * time.Second, RefuseConnection: 10 * time.Second,
		Max: 10 * time.Minute, Min: 15 * time.Second, MaxSources4: 100, MaxSources6: 100}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	addrC = netip.MustParseAddr("192.0.2.3")
	addrD = netip.MustParseAddr("192.0.2.4")
)

func wantBlocked(t *testing.T, p *Penalties, addr netip.Addr, want bool) {
	t.Helper()
	if got := p.Blocked(addr); got != want {
		t.Fatalf("Blocked(%s) = %v, want %v (Check: %v)", addr, got, want, p.Check(addr))
	}
}

func TestPenaltyAccumulates(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(nil), clock.Now)
	for i := range 3 {
		p.Record(addrA, EventAuthFail)
		wantBlocked(t, p, addrA, false) // 5, 10, 15 s: not above min
		if i == 2 && p.Active() != 0 {
			t.Fatalf("Active %d at exactly min", p.Active())
		}
	}
	p.Record(addrA, EventAuthFail) // 20 s > 15 s
	wantBlocked(t, p, addrA, true)
	err := p.Check(addrA)
	if !errors.Is(err, ErrPenalised) || err.Error() != "penalty: authfail for 192.0.2.1/32 (20s left)" {
		t.Fatalf("Check = %q", err)
	}
	wantBlocked(t, p, addrB, false)
	if p.Len() != 1 || p.Active() != 1 {
		t.Fatalf("Len %d Active %d, want 1 1", p.Len(), p.Active())
	}
	clock.Advance(20 * time.Second)
	wantBlocked(t, p, addrA, true) // sshd refuses until expiry < now
	clock.Advance(time.Nanosecond)
	wantBlocked(t, p, addrA, false)
	if p.Len() != 0 || p.Active() != 0 {
		t.Fatalf("after expiry: Len %d Active %d", p.Len(), p.Active())
	}
}

// TestPenaltyDecays: accumulation adds to what is left, not to what was
// ever recorded, so slow offenders stay below min.
func TestPenaltyDecays(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(nil), clock.Now)
	for range 10 {
		p.Record(addrA, EventAuthFail)
		wantBlocked(t, p, addrA, false)
		clock.Advance(4 * time.Second) // 1 s net growth per round
	}
	// 10 s left now (1 s per round); one more reaches exactly min, a
	// second goes over it.
	p.Record(addrA, EventAuthFail)
	wantBlocked(t, p, addrA, false)
	p.Record(addrA, EventAuthFail)
	wantBlocked(t, p, addrA, true)
}

func TestPenaltyMaxCap(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.Max = 100 * time.Second }), clock.Now)
	p.Record(addrA, EventCrash) // 90 s > min: active at once
	wantBlocked(t, p, addrA, true)
	p.Record(addrA, EventCrash)
	p.Record(addrA, EventCrash)
	if err := p.Check(addrA); err == nil || !strings.HasSuffix(err.Error(), "(1m40s left)") {
		t.Fatalf("Check = %v, want capped at 100 s", err)
	}
	clock.Advance(100 * time.Second)
	wantBlocked(t, p, addrA, true)
	clock.Advance(time.Nanosecond)
	wantBlocked(t, p, addrA, false)
}

func TestPenaltyEvents(t *testing.T) {
	for _, tc := range []struct {
		ev      Event
		name    string
		blocked bool // after one event with the defaults above
		left    time.Duration
	}{
		{EventCrash, "crash", true, 90 * time.Second},
		{EventAuthFail, "authfail", false, 5 * time.Second},
		{EventNoAuth, "noauth", false, time.Second},
		{EventGraceExceeded, "grace-exceeded", false, 10 * time.Second},
		{EventInvalidUser, "invaliduser", false, 5 * time.Second},
		{EventRefuseConnection, "refuseconnection", false, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ev.String() != tc.name {
				t.Errorf("String %q", tc.ev.String())
			}
			clock := newFakeClock()
			p := NewPenalties(penaltyConfig(nil), clock.Now)
			p.Record(addrA, tc.ev)
			wantBlocked(t, p, addrA, tc.blocked)
			clock.Advance(tc.left)
			if p.Len() != 1 {
				t.Fatalf("entry gone before %v", tc.left)
			}
			clock.Advance(time.Nanosecond)
			p.Check(addrA)
			if p.Len() != 0 {
				t.Fatalf("entry outlived %v", tc.left)
			}
		})
	}
	if s := Event(99).String(); s != "event(99)" {
		t.Errorf("unknown event %q", s)
	}
}

func TestPenaltyDisabledAndZero(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.Enabled = false }), clock.Now)
	p.Record(addrA, EventCrash)
	wantBlocked(t, p, addrA, false)
	if p.Len() != 0 {
		t.Fatal("disabled penalties recorded")
	}
	p = NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.NoAuth = 0 }), clock.Now)
	p.Record(addrA, EventNoAuth)
	p.Record(netip.Addr{}, EventCrash)
	if p.Len() != 0 {
		t.Fatal("zero penalty or invalid address recorded")
	}
}

func TestPenaltyExempt(t *testing.T) {
	clock := newFakeClock()
	cfg := penaltyConfig(func(c *Config) {
		c.PerSourcePenaltyExemptList = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/31"), netip.MustParsePrefix("2001:db8::/32")}
		c.PerSourceNetBlockSize = NetBlockSize{IPv4: 24, IPv6: 64}
	})
	p := NewPenalties(cfg, clock.Now)
	p.Record(netip.MustParseAddr("192.0.2.1"), EventCrash)
	p.Record(netip.MustParseAddr("::ffff:192.0.2.0"), EventCrash)
	p.Record(netip.MustParseAddr("2001:db8:1::1"), EventCrash)
	if p.Len() != 0 {
		t.Fatalf("exempt addresses penalised: Len %d", p.Len())
	}
	// The exempt list matches the address, not its block: 192.0.2.3 is
	// in the same /24 but not exempt, and its penalty does not reach
	// the exempt 192.0.2.1.
	p.Record(addrC, EventCrash)
	wantBlocked(t, p, addrC, true)
	wantBlocked(t, p, addrB, true)
	wantBlocked(t, p, addrA, false)
}

func TestPenaltyBlockSizes(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourceNetBlockSize = NetBlockSize{IPv4: 24, IPv6: 64} }), clock.Now)
	p.Record(netip.MustParseAddr("2001:db8:1:2::1"), EventCrash)
	p.Record(netip.MustParseAddr("198.51.100.7"), EventCrash)
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"fe80::1%eth0", false},
		{"2001:db8:1:3::1", false},
		{"2001:db8:1:1:ffff:ffff:ffff:ffff", false},
		{"198.51.100.255", true},
		{"::ffff:198.51.100.1", true},
		{"198.51.101.7", false},
	} {
		wantBlocked(t, p, netip.MustParseAddr(tc.addr), tc.blocked)
	}
	if err := p.Check(netip.MustParseAddr("2001:db8:1:2::9")); err == nil || !strings.Contains(err.Error(), "2001:db8:1:2::/64") {
		t.Errorf("Check = %v, want the /64 named", err)
	}
}

// TestPenaltyOverflowPermissive: sshd makes room by dropping the
// penalties that would end soonest.
func TestPenaltyOverflowPermissive(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.MaxSources4 = 2 }), clock.Now)
	p.Record(addrA, EventCrash)
	clock.Advance(time.Second)
	p.Record(addrB, EventCrash)
	clock.Advance(time.Second)
	p.Record(addrC, EventCrash)
	if p.Len() != 2 || p.Active() != 2 {
		t.Fatalf("Len %d Active %d, want 2 2", p.Len(), p.Active())
	}
	wantBlocked(t, p, addrA, false) // evicted: its penalty ended first
	wantBlocked(t, p, addrB, true)
	wantBlocked(t, p, addrC, true)
	wantBlocked(t, p, addrD, false)
	// IPv6 has its own table.
	p.Record(netip.MustParseAddr("2001:db8::1"), EventCrash)
	if p.Len() != 3 {
		t.Fatalf("Len %d, want 3", p.Len())
	}
}

// TestPenaltyOverflowDenyAll: a full deny-all table refuses everyone
// (sshd: "too many penalised addresses") and records nothing new, until
// penalties expire.
func TestPenaltyOverflowDenyAll(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) {
		c.PerSourcePenalties.MaxSources4 = 2
		c.PerSourcePenalties.Overflow = OverflowDenyAll
		c.PerSourcePenaltyExemptList = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	}), clock.Now)
	p.Record(addrA, EventAuthFail) // tracked, not yet active
	wantBlocked(t, p, addrD, false)
	p.Record(addrB, EventCrash)
	for _, a := range []netip.Addr{addrA, addrB, addrD} {
		if err := p.Check(a); err != ErrPenaltyTableFull {
			t.Fatalf("Check(%s) = %v, want ErrPenaltyTableFull", a, err)
		}
	}
	wantBlocked(t, p, netip.MustParseAddr("203.0.113.9"), false)
	wantBlocked(t, p, netip.MustParseAddr("2001:db8::1"), false) // IPv6 table: permissive, empty
	p.Record(addrC, EventCrash)
	if p.Len() != 2 {
		t.Fatalf("Len %d, want 2: a full deny-all table takes no new source", p.Len())
	}
	clock.Advance(5*time.Second + time.Nanosecond) // addrA's 5 s run out
	wantBlocked(t, p, addrD, false)
	wantBlocked(t, p, addrB, true)
	wantBlocked(t, p, addrC, false)
}

// TestPenaltyExpireBounded: one call collects at most maxExpirePerCall
// expired entries; Check still ignores those it has not collected.
func TestPenaltyExpireBounded(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.MaxSources4 = 1000 }), clock.Now)
	for i := range 200 {
		p.Record(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)}), EventCrash)
	}
	clock.Advance(91 * time.Second)
	p.Check(addrD)
	if n := p.Len(); n != 200-maxExpirePerCall {
		t.Fatalf("Len %d after one call, want %d", n, 200-maxExpirePerCall)
	}
	wantBlocked(t, p, netip.AddrFrom4([4]byte{10, 0, 0, 199}), false)
	// An uncollected expired entry starts afresh, not from its old total.
	p.Record(netip.AddrFrom4([4]byte{10, 0, 0, 199}), EventAuthFail)
	wantBlocked(t, p, netip.AddrFrom4([4]byte{10, 0, 0, 199}), false)
	for range 10 {
		p.Check(addrD)
	}
	if n, a := p.Len(), p.Active(); n != 1 || a != 0 {
		t.Fatalf("Len %d Active %d, want 1 0", n, a)
	}
}

// TestPenaltyActiveWithoutTraffic: Active (ferry_penalties_active, read at
// each scrape) drops as penalties end, with no Record or Check after the
// attack to collect them; it counted expired entries until the next
// connection came, so a quiet server reported the night's last attackers
// as still refused.
func TestPenaltyActiveWithoutTraffic(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.MaxSources4 = 1000 }), clock.Now)
	p.Record(addrA, EventCrash) // 90 s
	for i := range 200 {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)})
		p.Record(addr, EventAuthFail) // 5 s: tracked, not refused
		if i%2 == 0 {
			p.Record(addr, EventGraceExceeded) // 15 s
			p.Record(addr, EventAuthFail)      // 20 s > min: refused
		}
	}
	if a := p.Active(); a != 101 {
		t.Fatalf("Active %d, want 101", a)
	}
	clock.Advance(21 * time.Second)
	if a := p.Active(); a != 1 {
		t.Fatalf("Active %d after the 10.0.x.x penalties ended, want 1 (192.0.2.1)", a)
	}
	clock.Advance(70 * time.Second)
	if a := p.Active(); a != 0 {
		t.Fatalf("Active %d after every penalty ended, want 0", a)
	}
	wantBlocked(t, p, addrA, false)

	// A reload that turns penalties off refuses nobody: the gauge says so.
	p.Record(addrA, EventCrash)
	cfg := penaltyConfig(nil)
	cfg.PerSourcePenalties.Enabled = false
	p.Reconfigure(cfg)
	if a := p.Active(); a != 0 {
		t.Fatalf("Active %d with penalties off, want 0", a)
	}
}

func TestFromConnInfo(t *testing.T) {
	tooMany := wire.ProtocolError(tooManyAuthFailures)
	for _, tc := range []struct {
		name string
		info server.ConnInfo
		want []Event
	}{
		{"scanner", server.ConnInfo{Phase: "handshake", Err: io.EOF}, []Event{EventNoAuth}},
		{"bad version", server.ConnInfo{Phase: "handshake", Err: wire.ProtocolError("bad version")}, []Event{EventNoAuth}},
		{"grace in handshake", server.ConnInfo{Phase: "handshake", GraceExceeded: true}, []Event{EventGraceExceeded}},
		{"grace in auth", server.ConnInfo{Phase: "auth", GraceExceeded: true}, []Event{EventGraceExceeded}},
		{"too many failures", server.ConnInfo{Phase: "auth", Err: tooMany}, []Event{EventAuthFail}},
		{"too many failures, wrapped", server.ConnInfo{Phase: "auth", Err: fmt.Errorf("auth: %w", tooMany)}, []Event{EventAuthFail}},
		{"client gave up", server.ConnInfo{Phase: "auth", Err: &wire.DisconnectError{Reason: wire.DisconnectNoMoreAuthMethodsAvailable, Remote: true}}, []Event{EventAuthFail}},
		{"client cancelled", server.ConnInfo{Phase: "auth", Err: &wire.DisconnectError{Reason: wire.DisconnectAuthCancelledByUser, Remote: true}}, []Event{EventAuthFail}},
		{"peer says too many", server.ConnInfo{Phase: "auth", Err: &wire.DisconnectError{Reason: wire.DisconnectProtocolError, Message: tooManyAuthFailures, Remote: true}}, []Event{EventNoAuth}},
		{"closed in auth", server.ConnInfo{Phase: "auth", Err: io.EOF}, []Event{EventNoAuth}},
		{"panic in auth", server.ConnInfo{Phase: "auth", Err: fmt.Errorf("%w: boom", server.ErrPanic)}, []Event{EventCrash}},
		{"panic in session", server.ConnInfo{Phase: "session", Authenticated: true, Err: fmt.Errorf("%w: boom", server.ErrPanic)}, []Event{EventCrash}},
		{"failed password then client closed", server.ConnInfo{Phase: "auth", AuthFailures: 1, Err: io.EOF}, []Event{EventAuthFail}},
		{"unknown user", server.ConnInfo{Phase: "auth", AuthFailures: 1, UnknownUser: true, Err: io.EOF}, []Event{EventInvalidUser}},
		{"unknown user, too many failures", server.ConnInfo{Phase: "auth", AuthFailures: 6, UnknownUser: true, Err: tooMany}, []Event{EventInvalidUser}},
		{"unknown user, grace", server.ConnInfo{Phase: "auth", AuthFailures: 1, UnknownUser: true, GraceExceeded: true}, []Event{EventGraceExceeded}},
		{"session", server.ConnInfo{Phase: "session", Authenticated: true, Err: io.EOF}, nil},
		{"session, clean", server.ConnInfo{Phase: "session", Authenticated: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromConnInfo(&tc.info)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if FromConnInfo(nil) != nil {
		t.Error("nil info")
	}
}

// BenchmarkPenaltyCheck is the per-accept cost with a full table.
func BenchmarkPenaltyCheck(b *testing.B) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenalties.MaxSources4 = 65536 }), clock.Now)
	for i := range 65536 {
		p.Record(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), EventCrash)
	}
	a, blocked := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.0.1.1")
	b.ReportAllocs()
	for b.Loop() {
		if p.Blocked(a) || !p.Blocked(blocked) {
			b.Fatal("wrong verdict")
		}
	}
}

// TestPenaltyExemptMappedCIDR: penalties match addresses unmapped (a
// dual-stack listener's ::ffff:192.0.2.1 is 192.0.2.1), so an exempt
// block written IPv4-mapped, as a dual-stack netstat shows it, must mean
// the IPv4 block; kept as an IPv6 prefix it never matched and the
// monitoring it exempted was penalised.
func TestPenaltyExemptMappedCIDR(t *testing.T) {
	cfg, err := ParseConfig("exempt.toml", []byte("per_source_penalty_exempt_list = [\"::ffff:198.51.100.0/120\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.PerSourcePenaltyExemptList, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}; !slices.Equal(got, want) {
		t.Errorf("exempt list %v, want %v", got, want)
	}
	p := NewPenalties(penaltyConfig(func(c *Config) { c.PerSourcePenaltyExemptList = cfg.PerSourcePenaltyExemptList }), newFakeClock().Now)
	p.Record(netip.MustParseAddr("::ffff:198.51.100.7"), EventCrash)
	if p.Len() != 0 {
		t.Error("an address in the mapped exempt block was penalised")
	}
}
