package daemon

import (
	"bufio"
	"net"
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
	cfg := Default()
	if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cfg.ProxyProtocol = true
	penalties, err := ParsePerSourcePenalties("noauth:30s min:5s")
	if err != nil {
		t.Fatal(err)
	}
	cfg.PerSourcePenalties = penalties
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs testenv.LockedBuffer
	log, level := newLogger(cfg.Log, &logs)
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
	defer gl.Close()

	// check connects with header, reads the first line and hangs up,
	// while the daemon serves the connection to its end.
	check := func(header *proxyproto.Header) string {
		t.Helper()
		hdr, err := header.Format()
		if err != nil {
			t.Fatal(err)
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
			d.serveConn(gl, gen.srv, nc)
		}()
		c, err := net.Dial("tcp", gl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(hdr)
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		select {
		case <-served:
		case <-time.After(20 * time.Second):
			t.Fatal("connection not served to its end")
		}
		return line
	}
	lb := netip.MustParseAddr("127.0.0.1")
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	for i := range 2 {
		if line := check(local); !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("health check %d read %q, want the SSH banner", i+1, line)
		}
	}
	if d.penalties.Blocked(lb) {
		t.Error("the load balancer's address is penalised after its health checks")
	}
	if strings.Contains(logs.String(), "level=INFO msg=\"connection closed\"") {
		t.Errorf("health checks logged at info:\n%s", logs.String())
	}

	client := netip.MustParseAddr("192.0.2.9")
	check(proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: client.AsSlice(), Port: 40000}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}))
	if !d.penalties.Blocked(client) {
		t.Error("a client that left before authenticating is not penalised")
	}
}
