package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

func gateConfig(ms MaxStartups, perSource int, blocks NetBlockSize) *Config {
	cfg := Default()
	cfg.MaxStartups = ms
	cfg.PerSourceMaxStartups = perSource
	cfg.PerSourceNetBlockSize = blocks
	return cfg
}

// TestShouldDropCurve walks sshd's should_drop_connection for 10:30:100:
// the drop threshold p (in percent) at each count, checked by drawing
// r = p-1 (must drop) and r = p (must admit).
func TestShouldDropCurve(t *testing.T) {
	g := NewStartupGate(gateConfig(MaxStartups{Start: 10, Rate: 30, Full: 100}, 0, NetBlockSize{32, 128}))
	for _, tc := range []struct {
		startups int
		p        int // drop iff r < p; 0: never, 100: always without drawing
	}{
		{0, 0}, {9, 0},
		{10, 30},
		{11, 30}, // 30 + 70*1/90 = 30.77, truncated as sshd does
		{55, 65}, // 30 + 70*45/90
		{82, 86}, // 30 + 70*72/90
		{99, 99}, // 30 + 70*89/90 = 99.2
		{100, 100}, {500, 100},
	} {
		var drawn []int
		draw := func(r int) func(int) int {
			return func(n int) int {
				if n != 100 {
					t.Fatalf("randN(%d), want randN(100)", n)
				}
				drawn = append(drawn, r)
				return r
			}
		}
		switch tc.p {
		case 0, 100:
			g.randN = func(int) int { t.Fatalf("startups %d: drew a random number", tc.startups); return 0 }
			if got := g.shouldDrop(tc.startups); got != (tc.p == 100) {
				t.Errorf("startups %d: drop %v", tc.startups, got)
			}
		default:
			g.randN = draw(tc.p - 1)
			if !g.shouldDrop(tc.startups) {
				t.Errorf("startups %d, r=%d: admitted, want drop", tc.startups, tc.p-1)
			}
			g.randN = draw(tc.p)
			if g.shouldDrop(tc.startups) {
				t.Errorf("startups %d, r=%d: dropped, want admit", tc.startups, tc.p)
			}
			if len(drawn) != 2 {
				t.Errorf("startups %d: %d draws", tc.startups, len(drawn))
			}
		}
	}
}

// TestAdmitRate100 checks sshd's "start:100:full" and single-number
// MaxStartups: everything beyond start is refused without a draw.
func TestAdmitRate100(t *testing.T) {
	g := NewStartupGate(gateConfig(MaxStartups{Start: 3, Rate: 100, Full: 3}, 0, NetBlockSize{32, 128}))
	g.randN = func(int) int { t.Fatal("drew a random number"); return 0 }
	var releases []func()
	for i := range 3 {
		rel, err := g.Admit(netip.MustParseAddr("192.0.2.1"))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		releases = append(releases, rel)
	}
	if _, err := g.Admit(netip.MustParseAddr("192.0.2.2")); !errors.Is(err, ErrMaxStartups) {
		t.Fatalf("4th: %v, want ErrMaxStartups", err)
	}
	releases[0]()
	releases[0]() // idempotent: frees one slot, not two
	if _, err := g.Admit(netip.MustParseAddr("192.0.2.2")); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := g.Admit(netip.MustParseAddr("192.0.2.3")); !errors.Is(err, ErrMaxStartups) {
		t.Fatalf("double release freed two slots: %v", err)
	}
	if n := g.Startups(); n != 3 {
		t.Errorf("Startups %d, want 3", n)
	}
}

func TestAdmitNoGlobalLimit(t *testing.T) {
	g := NewStartupGate(gateConfig(MaxStartups{}, 0, NetBlockSize{32, 128}))
	g.randN = func(int) int { t.Fatal("drew a random number"); return 0 }
	for i := range 1000 {
		if _, err := g.Admit(addrA); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
}

func TestAdmitPerSource(t *testing.T) {
	g := NewStartupGate(gateConfig(MaxStartups{Start: 100, Rate: 30, Full: 100}, 2, NetBlockSize{24, 64}))
	g.randN = func(int) int { t.Fatal("drew a random number below start"); return 0 }
	admit := func(addr string, want error) func() {
		t.Helper()
		var a netip.Addr
		if addr != "" {
			a = netip.MustParseAddr(addr)
		}
		rel, err := g.Admit(a)
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("Admit(%s) = %v, want %v", addr, err, want)
		}
		return rel
	}
	r1 := admit("10.0.0.1", nil)
	admit("10.0.0.200", nil)
	admit("10.0.0.3", ErrPerSourceMaxStartups)
	// A dual-stack listener's IPv4-mapped form is the same source.
	admit("::ffff:10.0.0.4", ErrPerSourceMaxStartups)
	admit("10.0.1.1", nil)
	admit("2001:db8:0:1::1", nil)
	r6 := admit("2001:db8:0:1:ffff:ffff:ffff:ffff", nil)
	admit("2001:db8:0:1::2", ErrPerSourceMaxStartups)
	admit("2001:db8:0:2::1", nil)
	// No address (a Unix socket): counted globally only.
	admit("", nil)
	if n := g.sourcesLen(); n != 4 {
		t.Errorf("%d sources, want 4 (10.0.0/24, 10.0.1/24, 2001:db8:0:1::/64, 2001:db8:0:2::/64)", n)
	}
	r1()
	admit("10.0.0.3", nil)
	r6()
	r6()
	admit("2001:db8:0:1::2", nil)
	admit("2001:db8:0:1::3", ErrPerSourceMaxStartups)
	if n := g.Startups(); n != 7 {
		t.Errorf("Startups %d, want 7", n)
	}
}

func TestAdmitMapCleaned(t *testing.T) {
	g := NewStartupGate(gateConfig(MaxStartups{Start: 1000, Rate: 30, Full: 1000}, 3, NetBlockSize{32, 128}))
	var rels []func()
	for i := range 300 {
		a := netip.AddrFrom4([4]byte{198, 51, byte(i / 100), byte(i % 100)})
		for range 2 {
			rel, err := g.Admit(a)
			if err != nil {
				t.Fatal(err)
			}
			rels = append(rels, rel)
		}
	}
	if n := g.sourcesLen(); n != 300 {
		t.Fatalf("%d sources, want 300", n)
	}
	for _, rel := range rels {
		rel()
		rel()
	}
	if n, s := g.sourcesLen(), g.Startups(); n != 0 || s != 0 {
		t.Errorf("after releases: %d sources, %d startups; want 0, 0", n, s)
	}
}

type passwordAuth struct{ user, pass string }

func (a passwordAuth) Password(_ context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	if m.User() == a.user && string(pw) == a.pass {
		return &auth.Permissions{}, nil
	}
	return nil, auth.ErrDenied
}
func (passwordAuth) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}
func (passwordAuth) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

func newTestServer(t *testing.T, maxTries int) *server.Server {
	t.Helper()
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	return &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hk}},
		Auth:      auth.Config{Authenticator: passwordAuth{"alice", "secret"}, FailureDelay: -1, MaxAuthTries: maxTries},
		Handler: server.HandlerFunc(func(s *server.Session) {
			io.WriteString(s, "hi "+s.User())
			s.Exit(0)
		}),
	}
}

// login runs "true" as alice with password pw from 127.0.0.1.
func login(addr, pw string) error {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice",
		Auth:            []ssh.AuthMethod{ssh.RetryableAuthMethod(ssh.Password(pw), 10)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.Output("true")
	if err != nil {
		return err
	}
	if string(out) != "hi alice" {
		return errors.New("output " + string(out))
	}
	return nil
}

// waitFor polls cond for at most 10 s; it bounds a test that would
// otherwise hang, it does not assert on timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestGuardListenerFlood: 200 silent connections from 127.0.0.2 hold
// their source's PerSourceMaxStartups slots and nothing more, so a
// client from 127.0.0.1 still logs in. The control case, without a
// per-source limit, shows the same flood does lock it out.
func TestGuardListenerFlood(t *testing.T) {
	const flood = 200
	for _, tc := range []struct {
		name      string
		perSource int
		wantLogin bool
	}{
		{"per-source limit", 10, true},
		{"control: no per-source limit", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 20:100:20: every connection beyond 20 is refused, no draw.
			gate := NewStartupGate(gateConfig(MaxStartups{Start: 20, Rate: 100, Full: 20}, tc.perSource, NetBlockSize{32, 128}))
			var mu sync.Mutex
			drops := map[string]int{}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			gl := GuardListener(ln, gate, nil, func(remote netip.Addr, reason error) {
				mu.Lock()
				drops[remote.String()+" "+reason.Error()]++
				mu.Unlock()
			})
			var admits atomic.Int32
			gl.OnAdmit = func(netip.Addr) { admits.Add(1) }
			srv := newTestServer(t, 0)
			srv.ConnContext = func(ctx context.Context, c *server.Conn) context.Context {
				gl.Authenticated(c.RemoteAddr(), c.LocalAddr())
				return ctx
			}
			go srv.Serve(gl)
			defer srv.Close()

			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i := range flood {
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatalf("flood connection %d: %v", i, err)
				}
				held = append(held, c)
			}
			admitted := 20
			if tc.perSource > 0 {
				admitted = tc.perSource
			}
			waitFor(t, "the flood to be accepted", func() bool {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, v := range drops {
					n += v
				}
				return n == flood-admitted
			})
			wantReason := "127.0.0.2 " + ErrMaxStartups.Error()
			if tc.perSource > 0 {
				wantReason = "127.0.0.2 " + ErrPerSourceMaxStartups.Error()
			}
			mu.Lock()
			if len(drops) != 1 || drops[wantReason] != flood-admitted {
				t.Errorf("drops %v, want %d × %q", drops, flood-admitted, wantReason)
			}
			mu.Unlock()
			if n := gate.Startups(); n != admitted {
				t.Errorf("Startups %d, want %d", n, admitted)
			}
			// A refused connection gets sshd's notice, then EOF.
			last := held[len(held)-1]
			last.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, err := io.ReadAll(last); err != nil || string(b) != refusedStartupsMsg {
				t.Errorf("refused connection read %q, %v; want %q", b, err, refusedStartupsMsg)
			}

			err = login(ln.Addr().String(), "secret")
			if tc.wantLogin {
				if err != nil {
					t.Fatalf("login during flood: %v", err)
				}
				// Authenticated released the client's slot before it
				// closed; the flood still holds its own.
				if n, p := gate.Startups(), gl.Pending(); n != admitted || p != admitted {
					t.Errorf("after login: Startups %d, Pending %d; want %d", n, p, admitted)
				}
			} else if err == nil {
				t.Fatal("control: login succeeded, the flood should have filled MaxStartups")
			}
			wantAdmits := int32(admitted)
			if tc.wantLogin {
				wantAdmits++
			}
			if n := admits.Load(); n != wantAdmits {
				t.Errorf("OnAdmit called %d times, want %d", n, wantAdmits)
			}
			for _, c := range held {
				c.Close()
			}
			held = nil
			waitFor(t, "the flood's slots to be released", func() bool { return gate.Startups() == 0 })
			if gl.Pending() != 0 || gate.sourcesLen() != 0 {
				t.Errorf("after the flood: Pending %d, sources %d", gl.Pending(), gate.sourcesLen())
			}
		})
	}
}

// fakeClock is a settable clock for Penalties.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestGuardListenerPenalties: a source that fails authentication until
// its penalty exceeds min is refused at accept, and admitted again once
// the penalty has run out.
func TestGuardListenerPenalties(t *testing.T) {
	cfg := Default()
	cfg.PerSourcePenalties = PerSourcePenalties{Enabled: true, AuthFail: 5 * time.Second, NoAuth: time.Second,
		Min: 15 * time.Second, Max: 10 * time.Minute, MaxSources4: 100, MaxSources6: 100}
	clock := newFakeClock()
	pen := NewPenalties(cfg, clock.Now)
	var dropped atomic.Int32
	var lastDrop atomic.Value
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := GuardListener(ln, NewStartupGate(cfg), pen, func(_ netip.Addr, reason error) {
		lastDrop.Store(reason)
		dropped.Add(1)
	})
	closed := make(chan []Event, 1)
	srv := newTestServer(t, 2)
	srv.OnConnClosed = func(info *server.ConnInfo) {
		evs := FromConnInfo(info)
		for _, ev := range evs {
			pen.Record(info.RemoteAddr.(*net.TCPAddr).AddrPort().Addr(), ev)
		}
		closed <- evs
	}
	go srv.Serve(gl)
	defer srv.Close()
	addr := ln.Addr().String()
	lo := netip.MustParseAddr("127.0.0.1")

	// 5 s per failure: the 4th takes the penalty to 20 s > min 15 s.
	for i := range 4 {
		if pen.Blocked(lo) {
			t.Fatalf("blocked after %d failures (%v)", i, pen.Check(lo))
		}
		err := login(addr, "wrong")
		if err == nil || !strings.Contains(err.Error(), `reason 2: "Too many authentication failures"`) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if evs := <-closed; len(evs) != 1 || evs[0] != EventAuthFail {
			t.Fatalf("attempt %d: events %v, want [authfail]", i, evs)
		}
	}
	if err := pen.Check(lo); !errors.Is(err, ErrPenalised) || !strings.Contains(err.Error(), "authfail for 127.0.0.1/32") {
		t.Fatalf("Check = %v, want an authfail penalty", err)
	}
	if err := login(addr, "secret"); err == nil {
		t.Fatal("penalised source logged in")
	}
	if n := dropped.Load(); n != 1 {
		t.Fatalf("%d drops, want 1", n)
	}
	if r, _ := lastDrop.Load().(error); !errors.Is(r, ErrPenalised) {
		t.Errorf("drop reason %v", r)
	}
	clock.Advance(20*time.Second + time.Nanosecond)
	if err := login(addr, "secret"); err != nil {
		t.Fatalf("after the penalty ran out: %v", err)
	}
	if evs := <-closed; len(evs) != 0 {
		t.Errorf("successful login penalised: %v", evs)
	}
	if n := pen.Len(); n != 0 {
		t.Errorf("Len %d after expiry", n)
	}
}

func BenchmarkAdmitRelease(b *testing.B) {
	g := NewStartupGate(gateConfig(MaxStartups{Start: 10, Rate: 30, Full: 100}, 10, NetBlockSize{32, 128}))
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		rel, err := g.Admit(a)
		if err != nil {
			b.Fatal(err)
		}
		rel()
	}
}
