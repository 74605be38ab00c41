package daemon

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestStartupGateReconfigure: a reload's max_startups and
// per_source_max_startups apply to the next connections, and a slot
// admitted before the per-source limit was turned on is released
// without taking a count another connection holds.
func TestStartupGateReconfigure(t *testing.T) {
	blocks := NetBlockSize{32, 128}
	g := NewStartupGate(gateConfig(MaxStartups{Start: 100, Rate: 100, Full: 100}, 0, blocks))
	before, err := g.Admit(addrA) // not counted per source: no limit yet
	if err != nil {
		t.Fatal(err)
	}
	g.Reconfigure(gateConfig(MaxStartups{Start: 3, Rate: 100, Full: 3}, 1, blocks))
	after, err := g.Admit(addrA)
	if err != nil {
		t.Fatalf("first connection from %s under the new per-source limit: %v", addrA, err)
	}
	if _, err := g.Admit(addrA); !errors.Is(err, ErrPerSourceMaxStartups) {
		t.Fatalf("second connection from %s with per_source_max_startups 1: %v", addrA, err)
	}
	before()
	if _, err := g.Admit(addrA); !errors.Is(err, ErrPerSourceMaxStartups) {
		t.Fatalf("releasing the uncounted slot freed %s's per-source slot: %v", addrA, err)
	}
	b, err := g.Admit(addrB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit(addrC); err != nil {
		t.Fatal(err) // 3 startups: at Full
	}
	if _, err := g.Admit(addrD); !errors.Is(err, ErrMaxStartups) {
		t.Fatalf("a 4th startup with max_startups 3:100:3: %v", err)
	}
	after()
	b()
	if g.Startups() != 1 || g.sourcesLen() != 1 {
		t.Errorf("after releases: %d startups, %d sources; want 1, 1", g.Startups(), g.sourcesLen())
	}
}

// TestPenaltiesReconfigure: a reload's exempt list and enabled switch
// apply at once, and the penalties already recorded survive it.
func TestPenaltiesReconfigure(t *testing.T) {
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(nil), clock.Now)
	p.Record(addrA, EventCrash)
	wantBlocked(t, p, addrA, true)

	p.Reconfigure(penaltyConfig(func(c *Config) {
		c.PerSourcePenaltyExemptList = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/30")}
	}))
	wantBlocked(t, p, addrA, false) // exempted now
	p.Record(addrB, EventCrash)
	wantBlocked(t, p, addrB, false)

	p.Reconfigure(penaltyConfig(nil))
	wantBlocked(t, p, addrA, true) // the penalty was kept
	p.Reconfigure(penaltyConfig(func(c *Config) { c.PerSourcePenalties.Enabled = false }))
	wantBlocked(t, p, addrA, false)
	p.Reconfigure(penaltyConfig(func(c *Config) { c.PerSourcePenalties.MaxSources4 = 0 }))
	if p.Len() != 0 {
		t.Errorf("%d entries kept in a table of max-sources4 0", p.Len())
	}
}

// TestRestartOnlyChanges: a reload names the keys it cannot apply (it
// said "configuration reloaded" while ignoring them).
func TestRestartOnlyChanges(t *testing.T) {
	old := Default()
	if keys := restartOnlyChanges(old, Default()); len(keys) != 0 {
		t.Errorf("no change: %v", keys)
	}
	cfg := Default()
	cfg.ProxyProtocol = !old.ProxyProtocol
	cfg.Metrics.Listen = "127.0.0.1:9100"
	cfg.Listen = []string{"127.0.0.1:2022"}
	cfg.MaxStartups = MaxStartups{Start: 1, Rate: 100, Full: 1} // applied: not named
	want := []string{"listen", "proxy_protocol", "metrics.listen"}
	if keys := restartOnlyChanges(old, cfg); !slices.Equal(keys, want) {
		t.Errorf("restartOnlyChanges = %v, want %v", keys, want)
	}
}

// TestReloadAppliesLimits: SIGHUP's reload hands the new max_startups
// and penalty settings to the running gate and table, and warns about
// proxy_protocol, which needs a restart.
func TestReloadAppliesLimits(t *testing.T) {
	dir := t.TempDir()
	configure := func(mod func(*Config)) *Config {
		cfg := Default()
		if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: dir}); err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			mod(cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old := configure(nil)
	next := configure(func(c *Config) {
		c.MaxStartups = MaxStartups{Start: 1, Rate: 100, Full: 1}
		c.PerSourcePenaltyExemptList = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		c.ProxyProtocol = !c.ProxyProtocol
	})
	var logs testenv.LockedBuffer
	log, level := newLogger(old.Log, &logs)
	d := &Daemon{opts: RunOptions{Load: func() (*Config, error) { return next, nil }}, log: log, logLevel: level,
		gate: NewStartupGate(old), penalties: NewPenalties(old, nil), metrics: NewMetrics()}
	gen, err := d.newGeneration(old)
	if err != nil {
		t.Fatal(err)
	}
	d.current.Store(gen)
	d.penalties.Record(addrA, EventCrash)
	wantBlocked(t, d.penalties, addrA, true)

	d.reload()
	if d.current.Load().cfg != next {
		t.Fatalf("reload did not switch configurations; log:\n%s", logs.String())
	}
	if _, err := d.gate.Admit(addrB); err != nil {
		t.Fatal(err)
	}
	if _, err := d.gate.Admit(addrC); !errors.Is(err, ErrMaxStartups) {
		t.Errorf("second startup after reloading max_startups 1:100:1: %v", err)
	}
	wantBlocked(t, d.penalties, addrA, false)
	if !strings.Contains(logs.String(), "keys=[proxy_protocol]") {
		t.Errorf("no restart warning naming proxy_protocol in:\n%s", logs.String())
	}
}

// TestReloadSetsLogLevel: a reload applies [log] level at once (it was
// read only at start, so "level = debug" and SIGHUP changed nothing and
// no warning said so) and names log.format, which needs a restart.
func TestReloadSetsLogLevel(t *testing.T) {
	dir := t.TempDir()
	configure := func(mod func(*Config)) *Config {
		cfg := Default()
		if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: dir}); err != nil {
			t.Fatal(err)
		}
		mod(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old := configure(func(c *Config) { c.Log.Level = slog.LevelWarn })
	next := configure(func(c *Config) { c.Log.Level = slog.LevelDebug; c.Log.Format = "json" })
	var logs testenv.LockedBuffer
	log, level := newLogger(old.Log, &logs)
	d := &Daemon{opts: RunOptions{Load: func() (*Config, error) { return next, nil }}, log: log, logLevel: level,
		metrics: NewMetrics()}
	gen, err := d.newGeneration(old)
	if err != nil {
		t.Fatal(err)
	}
	d.current.Store(gen)
	if log.Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("level warn logs info before the reload")
	}

	d.reload()
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		t.Errorf("after reloading level = debug, debug is not logged; log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "keys=[log.format]") {
		t.Errorf("no restart warning naming log.format in:\n%s", logs.String())
	}
}

// TestReloadKeepsDataDir: a reload naming another data_dir keeps serving
// from the one Run opened, generating no host keys in the new one, and
// warns that data_dir needs a restart. It generated new host keys there,
// which every client's known_hosts refused, and put new homes beside no
// database.
func TestReloadKeepsDataDir(t *testing.T) {
	dir, moved := t.TempDir(), filepath.Join(t.TempDir(), "moved")
	configure := func(dataDir string) *Config {
		cfg := Default()
		if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: dataDir}); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old, next := configure(dir), configure(moved)
	var logs testenv.LockedBuffer
	log, level := newLogger(old.Log, &logs)
	d := &Daemon{opts: RunOptions{Load: func() (*Config, error) { return next, nil }}, log: log, logLevel: level,
		metrics: NewMetrics()}
	gen, err := d.newGeneration(old)
	if err != nil {
		t.Fatal(err)
	}
	d.current.Store(gen)

	d.reload()
	if got := d.current.Load(); got.cfg.DataDir != dir || !slices.Equal(fingerprints(got.hostKeys), fingerprints(gen.hostKeys)) {
		t.Errorf("after reloading data_dir %s: serving from %s with keys %v, want %s with %v",
			moved, got.cfg.DataDir, fingerprints(got.hostKeys), dir, fingerprints(gen.hostKeys))
	}
	if _, err := os.Stat(moved); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reload created the new data_dir: %v", err)
	}
	if !strings.Contains(logs.String(), "keys=\"[data_dir database]\"") && !strings.Contains(logs.String(), "keys=[data_dir") {
		t.Errorf("no restart warning naming data_dir in:\n%s", logs.String())
	}
}
