package daemon

import (
	"bufio"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// TestProxyLocalHealthCheckNotPenalised: a PROXY protocol LOCAL connection
// (HAProxy's check-send-proxy, NLB's health checks) that reads the SSH
// banner and leaves is the load balancer's, not a client's: it earns its
// address no noauth penalty and logs at debug. Penalised, the balancer's
// address was refused after a few checks ("Not allowed at this time"
// instead of the banner), and the balancer marked ferry down. A client's
// connection through the balancer that does the same is still penalised.
func TestProxyLocalHealthCheckNotPenalised(t *testing.T) {
	d, gl, logs := newProxyDaemon(t, "noauth:30s min:5s")
	lb := netip.MustParseAddr("127.0.0.1")
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	for i := range 2 {
		if line := proxyCheck(t, d, gl, local); !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("health check %d read %q, want the SSH banner", i+1, line)
		}
	}
	if d.penalties.Blocked(lb) {
		t.Error("the load balancer's address is penalised after its health checks")
	}
	if strings.Contains(logs.String(), "level=INFO msg=\"connection closed\"") {
		t.Errorf("health checks logged at info:\n%s", logs.String())
	}
	// Counted apart: under "handshake" they set off alerts on
	// connections that fail before authentication.
	rec := httptest.NewRecorder()
	d.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, `ferry_connections_total{result="health_check"} 2`) ||
		strings.Contains(body, `result="handshake"`) {
		t.Errorf("health checks in the metrics:\n%s", grepLines(body, "ferry_connections_total"))
	}

	client := netip.MustParseAddr("192.0.2.9")
	proxyCheck(t, d, gl, proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: client.AsSlice(), Port: 40000}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}))
	if !d.penalties.Blocked(client) {
		t.Error("a client that left before authenticating is not penalised")
	}
}

// TestProxyLocalHealthCheckIgnoresBalancerPenalty: a connection without a
// header (a TCP health check configured without send-proxy, a port
// scanner that reached the listener) is served as its socket peer, the
// load balancer, and penalises that address. A LOCAL health check comes
// from the same address, but it is the balancer speaking for itself:
// refused with "Not allowed at this time", the balancer marked ferry down
// for every client. Whoever can reach the port can claim any source in a
// header anyway, so skipping the check for LOCAL gives nothing away.
func TestProxyLocalHealthCheckIgnoresBalancerPenalty(t *testing.T) {
	d, gl, _ := newProxyDaemon(t, "noauth:30s min:5s")
	lb := netip.MustParseAddr("127.0.0.1")
	if line := proxyCheck(t, d, gl, nil); strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("a connection without a header read %q", line)
	}
	if !d.penalties.Blocked(lb) {
		t.Fatal("a connection without a header did not penalise its socket peer; the test needs it to")
	}
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if line := proxyCheck(t, d, gl, local); !strings.HasPrefix(line, "SSH-2.0-") {
		t.Errorf("v2 LOCAL health check read %q, want the SSH banner", line)
	}
	unknown := &proxyproto.Header{Version: 1, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UNSPEC}
	if line := proxyCheck(t, d, gl, unknown); !strings.HasPrefix(line, "SSH-2.0-") {
		t.Errorf("v1 PROXY UNKNOWN health check read %q, want the SSH banner", line)
	}
}

// newProxyDaemon is a daemon with the PROXY protocol and penalties (in
// per_source_penalties syntax), and its guarded listener on 127.0.0.1.
func newProxyDaemon(t *testing.T, penaltySettings string) (*Daemon, *GuardedListener, *testenv.LockedBuffer) {
	t.Helper()
	cfg := Default()
	if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cfg.ProxyProtocol = true
	penalties, err := ParsePerSourcePenalties(penaltySettings)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PerSourcePenalties = penalties
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := new(testenv.LockedBuffer)
	log, level := newLogger(cfg.Log, logs)
	d := &Daemon{log: log, logLevel: level, conns: make(map[net.Conn]struct{}), metrics: NewMetrics(),
		gate: NewStartupGate(cfg), penalties: NewPenalties(cfg, nil)}
	gen, err := d.newGeneration(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.current.Store(gen)
	lns, err := Listen(cfg.Listen, nil)
	if err != nil {
		t.Fatal(err)
	}
	gl := GuardListener(WrapProxyProtocol(lns[0], true), d.gate, d.penalties, nil)
	t.Cleanup(func() { gl.Close() })
	return d, gl, logs
}

// proxyCheck connects to gl, sends header (none if nil), reads the first
// line and hangs up, while d serves the connection to its end.
func proxyCheck(t *testing.T, d *Daemon, gl *GuardedListener, header *proxyproto.Header) string {
	t.Helper()
	var hdr []byte
	if header != nil {
		var err error
		if hdr, err = header.Format(); err != nil {
			t.Fatal(err)
		}
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := gl.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		d.connWG.Add(1)
		d.serveConn(gl, d.current.Load().srv, nc)
	}()
	c, err := net.Dial("tcp", gl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if hdr != nil {
		c.Write(hdr)
	} else {
		// Not a header: the listener fails the connection at once.
		c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("connection not served to its end")
	}
	return line
}
