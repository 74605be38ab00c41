package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

// scrape returns the ferry_ samples of the text exposition, keyed as
// printed: `name{label="value",...}`.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ferry_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	m.ConnOpened()
	m.ConnOpened()
	m.ConnOpened()
	m.ConnOpened()
	m.ConnClosed(&server.ConnInfo{Phase: "session", Authenticated: true, HandshakeDuration: 2 * time.Millisecond})
	m.ConnClosed(&server.ConnInfo{Phase: "auth", Err: wire.ProtocolError(tooManyAuthFailures)})
	m.ConnClosed(&server.ConnInfo{Phase: "handshake", Err: io.EOF})
	m.AuthAttempt("password", false)
	m.AuthAttempt("password", false)
	m.AuthAttempt("publickey", true)
	m.AuthAttempt("x-\"evil\"\n", false)
	m.SessionStarted()
	m.SessionStarted()
	m.SessionEnded()
	m.Bytes(&server.ConnInfo{BytesIn: 100, BytesOut: 2000})
	m.Bytes(&server.ConnInfo{BytesIn: 1})
	m.KexDuration(3 * time.Millisecond)
	m.KexDuration(20 * time.Second)
	clock := newFakeClock()
	p := NewPenalties(penaltyConfig(nil), clock.Now)
	for _, a := range []netip.Addr{addrA, addrB, addrA} {
		p.Record(a, EventCrash) // 90 s > min: A and B refused
	}
	m.WatchPenalties(p)
	m.StartupDropped()
	m.ConnRefused(ErrPerSourceMaxStartups)
	m.ConnRefused(ErrMaxStartups)
	m.ConnRefused(fmt.Errorf("%w: crash", ErrPenalised))
	m.ConnRefused(ErrPenaltyTableFull)
	m.Transfer("sftp", "upload", "ok", 1<<20)
	m.Transfer("scp", "download", "error", 0)

	want := map[string]float64{
		`ferry_connections_active`:                                                  1,
		`ferry_connections_total{result="authenticated"}`:                           1,
		`ferry_connections_total{result="auth_failed"}`:                             1,
		`ferry_connections_total{result="handshake"}`:                               1,
		`ferry_auth_total{method="password",result="failure"}`:                      2,
		`ferry_auth_total{method="publickey",result="success"}`:                     1,
		`ferry_auth_total{method="other",result="failure"}`:                         1,
		`ferry_sessions_active`:                                                     1,
		`ferry_bytes_total{direction="in"}`:                                         101,
		`ferry_bytes_total{direction="out"}`:                                        2000,
		`ferry_kex_duration_seconds_count`:                                          3, // two observed, one from ConnClosed
		`ferry_kex_duration_seconds_sum`:                                            20.005,
		`ferry_kex_duration_seconds_bucket{le="0.001"}`:                             0,
		`ferry_kex_duration_seconds_bucket{le="0.0025"}`:                            1,
		`ferry_kex_duration_seconds_bucket{le="0.00625"}`:                           2,
		`ferry_kex_duration_seconds_bucket{le="+Inf"}`:                              3,
		`ferry_penalties_active`:                                                    2,
		`ferry_startups_dropped_total`:                                              3,
		`ferry_connections_total{result="refused_startups"}`:                        2,
		`ferry_connections_total{result="refused_penalty"}`:                         2,
		`ferry_transfers_total{direction="upload",protocol="sftp",result="ok"}`:     1,
		`ferry_transfers_total{direction="download",protocol="scp",result="error"}`: 1,
		`ferry_transfer_bytes_total{direction="upload",protocol="sftp"}`:            1 << 20,
	}
	got := scrape(t, m.Handler())
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	if _, ok := got[`ferry_transfer_bytes_total{direction="download",protocol="scp"}`]; ok {
		t.Error("a transfer of 0 bytes created a bytes series")
	}
	for k := range got {
		if strings.Contains(k, "evil") {
			t.Errorf("client-chosen label value exported: %s", k)
		}
	}
}

// TestMetricsRegistriesIndependent: no default registry, so two Metrics
// in one process neither collide nor share counts.
func TestMetricsRegistriesIndependent(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	a.StartupDropped()
	if got := scrape(t, b.Handler())["ferry_startups_dropped_total"]; got != 0 {
		t.Errorf("b sees a's count: %v", got)
	}
	if got := scrape(t, a.Handler())["ferry_startups_dropped_total"]; got != 1 {
		t.Errorf("a: %v", got)
	}
}

func TestMetricsConnResult(t *testing.T) {
	for _, tc := range []struct {
		info server.ConnInfo
		want string
	}{
		{server.ConnInfo{Phase: "session", Authenticated: true}, ConnAuthenticated},
		{server.ConnInfo{Phase: "session", Authenticated: true, Err: fmt.Errorf("%w: x", server.ErrPanic)}, ConnError},
		{server.ConnInfo{Phase: "auth", GraceExceeded: true}, ConnGraceExceeded},
		{server.ConnInfo{Phase: "auth", Err: io.EOF}, ConnAuthFailed},
		{server.ConnInfo{Phase: "handshake", Err: io.EOF}, ConnHandshake},
	} {
		if got := connResult(&tc.info); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.info, got, tc.want)
		}
	}
}

func TestMetricsServe(t *testing.T) {
	m := NewMetrics()
	m.StartupDropped()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln, false) }()
	url := "http://" + ln.Addr().String() + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "\nferry_startups_dropped_total 1\n") {
		t.Fatalf("GET: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), "\ngo_goroutines ") {
		t.Error("Go runtime collector missing")
	}
	resp, err = http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/heap without pprof: %d, want 404", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if err := m.Serve(context.Background(), "127.0.0.1:notaport", false); err == nil {
		t.Fatal("Serve on a bad address succeeded")
	}
}

// TestMetricsPprof: metrics.pprof = true adds Go's profiles.
func TestMetricsPprof(t *testing.T) {
	m := NewMetrics()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln, true) }()
	defer func() {
		cancel()
		<-done
	}()
	for _, path := range []string{"/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", path, resp.StatusCode, len(body))
		}
	}
}

// TestMetricsListenInUse: a [metrics] listen address that cannot be bound
// fails the start, naming the key, as an SSH listen address does; ferry
// served without metrics and logged the error from a goroutine, after
// run_as could already have dropped the right to bind it.
func TestMetricsListenInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testenv.LockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{
			Load: func() (*Config, error) {
				cfg := Default()
				if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: dir}); err != nil {
					return nil, err
				}
				cfg.Metrics.Listen = taken.Addr().String()
				return cfg, cfg.Validate()
			},
			LogOutput: &logs,
			Ready:     func([]net.Addr) { t.Error("started with its metrics address in use") },
		})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "metrics.listen") || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("Run: %v, want a metrics.listen error with EADDRINUSE", err)
		}
	case <-time.After(30 * time.Second):
		cancel()
		<-done
		t.Fatalf("Run did not fail; log:\n%s", logs.String())
	}
}
