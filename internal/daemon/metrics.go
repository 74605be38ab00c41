package daemon

// Prometheus metrics for `ferry serve`, on a registry of their own: no
// package-level collectors, so two daemons (or tests) in one process do
// not share counts, and nothing is exported that ferry did not define.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-sftp/ferry/server"
)

// Metrics holds the registry and its collectors. Its methods are safe for
// concurrent use; the daemon calls them from server hooks.
type Metrics struct {
	reg *prometheus.Registry

	connections     *prometheus.CounterVec
	connsActive     prometheus.Gauge
	auth            *prometheus.CounterVec
	sessionsActive  prometheus.Gauge
	bytes           *liveBytes
	kexDuration     prometheus.Histogram
	penaltiesActive prometheus.GaugeFunc
	// penalties is the table ferry_penalties_active reads at each scrape
	// (WatchPenalties); nil until set.
	penalties       atomic.Pointer[Penalties]
	startupsDropped prometheus.Counter
	transfers       *prometheus.CounterVec
	transferBytes   *prometheus.CounterVec
}

// Label values are chosen by ferry, never copied from the peer (user
// names, client versions, paths): a label value is a time series, and a
// client could otherwise grow the registry without bound.
const (
	// ConnResult label values of ferry_connections_total.
	ConnAuthenticated = "authenticated" // reached the session phase
	ConnAuthFailed    = "auth_failed"   // ended in the auth phase
	ConnHandshake     = "handshake"     // ended before authentication began
	ConnGraceExceeded = "grace_exceeded"
	ConnError         = "error" // panicked
	// A load balancer's PROXY LOCAL health check: counted apart, since
	// one every few seconds under "handshake" set off every alert on
	// connections that failed before authentication.
	ConnHealthCheck = "health_check"
	// Refused at accept, never served (ConnRefused).
	ConnRefusedStartups = "refused_startups"
	ConnRefusedPenalty  = "refused_penalty"
)

// NewMetrics returns metrics registered on a fresh registry, with the Go
// runtime and process collectors alongside.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_connections_total", Help: "SSH connections closed, by how far they got.",
		}, []string{"result"}),
		connsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_connections_active", Help: "SSH connections open now.",
		}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_auth_total", Help: "User authentication attempts, by method and result.",
		}, []string{"method", "result"}),
		sessionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_sessions_active", Help: "Session channels open now.",
		}),
		bytes: &liveBytes{
			desc: prometheus.NewDesc("ferry_bytes_total", "Bytes read (in) and written (out) on SSH connections.",
				[]string{"direction"}, nil),
			live: map[string]*server.Conn{},
		},
		kexDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ferry_kex_duration_seconds", Help: "Duration of each connection's version exchange and first key exchange.",
			// 1 ms (curve25519 on loopback) to 10 s (RSA-8192 host keys,
			// slow links, sntrup/mlkem on small CPUs).
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 11),
		}),
		startupsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_startups_dropped_total", Help: "Connections refused by MaxStartups or PerSourceMaxStartups.",
		}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_transfers_total", Help: "File transfers, by protocol, direction and result.",
		}, []string{"protocol", "direction", "result"}),
		transferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_transfer_bytes_total", Help: "File bytes transferred, by protocol and direction.",
		}, []string{"protocol", "direction"}),
	}
	// Read at each scrape: penalties end with time, not with an event,
	// so a value set when a connection closed stayed at its last count
	// through a quiet night after an attack.
	m.penaltiesActive = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_penalties_active", Help: "Source blocks refused by PerSourcePenalties now.",
	}, func() float64 {
		if p := m.penalties.Load(); p != nil {
			return float64(p.Active())
		}
		return 0
	})
	m.reg.MustRegister(m.connections, m.connsActive, m.auth, m.sessionsActive, m.bytes,
		m.kexDuration, m.penaltiesActive, m.startupsDropped, m.transfers, m.transferBytes,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry, for collectors other packages add.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ConnOpened counts a connection the server started serving.
func (m *Metrics) ConnOpened() { m.connsActive.Inc() }

// ConnClosed accounts for a finished connection (server.Server.OnConnClosed).
func (m *Metrics) ConnClosed(info *server.ConnInfo) {
	m.connsActive.Dec()
	m.connections.WithLabelValues(connResult(info)).Inc()
	if info.HandshakeDuration > 0 {
		m.KexDuration(info.HandshakeDuration)
	}
}

func connResult(info *server.ConnInfo) string {
	if _, ok := info.RemoteAddr.(proxyLocalAddr); ok {
		return ConnHealthCheck
	}
	switch {
	case slicesHasCrash(FromConnInfo(info)):
		return ConnError
	case info.Authenticated:
		return ConnAuthenticated
	case info.GraceExceeded:
		return ConnGraceExceeded
	case info.Phase == "auth":
		return ConnAuthFailed
	}
	return ConnHandshake
}

func slicesHasCrash(evs []Event) bool {
	for _, e := range evs {
		if e == EventCrash {
			return true
		}
	}
	return false
}

// authMethods are the method names ferry counts under their own label;
// anything else a client sends is "other", so the label set stays fixed.
var authMethods = map[string]bool{
	"none": true, "password": true, "publickey": true, "keyboard-interactive": true,
	"publickey-hostbound-v00@openssh.com": true, "hostbased": true,
}

// AuthAttempt counts one authentication request.
func (m *Metrics) AuthAttempt(method string, ok bool) {
	if !authMethods[method] {
		method = "other"
	}
	result := "failure"
	if ok {
		result = "success"
	}
	m.auth.WithLabelValues(method, result).Inc()
}

// SessionStarted and SessionEnded track open session channels.
func (m *Metrics) SessionStarted() { m.sessionsActive.Inc() }
func (m *Metrics) SessionEnded()   { m.sessionsActive.Dec() }

// Bytes adds connection traffic: in is read from clients, out written.
func (m *Metrics) Bytes(info *server.ConnInfo) {
	m.bytes.closed(info)
}

// ConnAuthenticated counts c's bytes in ferry_bytes_total while it runs
// (until Bytes gets its ConnInfo).
func (m *Metrics) ConnAuthenticated(c *server.Conn) { m.bytes.add(c) }

// liveBytes is ferry_bytes_total: what closed connections moved, plus,
// at each scrape, what the authenticated connections still open have
// moved so far. Added only when a connection closed, a transfer of
// hours was one step at its end, and rate() showed nothing while it ran
// and a spike after.
type liveBytes struct {
	desc *prometheus.Desc

	mu      sync.Mutex
	in, out uint64
	live    map[string]*server.Conn // by session ID
}

func (b *liveBytes) add(c *server.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live[string(c.SessionID())] = c
}

// closed moves a connection's final counts into the closed total: they
// are at least what the last scrape read from it, so the sum never goes
// back.
func (b *liveBytes) closed(info *server.ConnInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if info.SessionID != nil {
		delete(b.live, string(info.SessionID))
	}
	b.in += info.BytesIn
	b.out += info.BytesOut
}

func (b *liveBytes) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

func (b *liveBytes) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	in, out := b.in, b.out
	for _, c := range b.live {
		ci, co := c.BytesTransferred()
		in += ci
		out += co
	}
	b.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.CounterValue, float64(in), "in")
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.CounterValue, float64(out), "out")
}

// KexDuration observes one connection's version exchange and first key
// exchange.
func (m *Metrics) KexDuration(d time.Duration) { m.kexDuration.Observe(d.Seconds()) }

// WatchPenalties makes ferry_penalties_active report p.Active.
func (m *Metrics) WatchPenalties(p *Penalties) { m.penalties.Store(p) }

// StartupDropped counts a connection refused by the StartupGate.
func (m *Metrics) StartupDropped() { m.startupsDropped.Inc() }

// ConnRefused counts a connection GuardedListener refused with reason
// (its onDrop argument): MaxStartups refusals also count in
// ferry_startups_dropped_total.
func (m *Metrics) ConnRefused(reason error) {
	if errors.Is(reason, ErrMaxStartups) || errors.Is(reason, ErrPerSourceMaxStartups) {
		m.startupsDropped.Inc()
		m.connections.WithLabelValues(ConnRefusedStartups).Inc()
		return
	}
	m.connections.WithLabelValues(ConnRefusedPenalty).Inc()
}

// Transfer counts one file transfer: protocol "sftp" or "scp",
// direction "upload" or "download", result "ok" or "failed", and
// the file bytes it moved.
func (m *Metrics) Transfer(protocol, direction, result string, bytes int64) {
	m.transfers.WithLabelValues(protocol, direction, result).Inc()
	if bytes > 0 {
		m.transferBytes.WithLabelValues(protocol, direction).Add(float64(bytes))
	}
}

// Timeouts of the metrics endpoint: a scrape is one small request, so
// anything slower is a stuck or hostile client holding a socket.
const (
	metricsReadHeaderTimeout = 5 * time.Second
	metricsReadTimeout       = 10 * time.Second
	metricsWriteTimeout      = 30 * time.Second // a large registry on a slow scraper
	metricsIdleTimeout       = 60 * time.Second
	metricsMaxHeaderBytes    = 16 << 10 // scrapers send a few hundred bytes
	metricsShutdownTimeout   = 5 * time.Second
)

// Serve serves /metrics on addr until ctx is done, and with withPprof Go's
// profiles under /debug/pprof/.
func (m *Metrics) Serve(ctx context.Context, addr string, withPprof bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return m.ServeListener(ctx, ln, withPprof)
}

// ServeListener is Serve on an existing listener, which it closes.
func (m *Metrics) ServeListener(ctx context.Context, ln net.Listener, withPprof bool) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadHeaderTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		err := hs.Shutdown(sctx)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
}
