package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/shell"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/scp"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/transport"
	"github.com/ferry-sftp/ferry/vfs"
)

// DefaultDrainTimeout is how long SIGTERM lets active connections finish
// before closing them.
const DefaultDrainTimeout = 30 * time.Second

// RunOptions configure Run.
type RunOptions struct {
	// Load returns the configuration, at start and on every SIGHUP.
	Load func() (*Config, error)
	// Version is ferry's version, sent as SSH-2.0-ferry_<version>.
	Version string
	// LogOutput receives logs; nil means os.Stderr.
	LogOutput io.Writer
	// DrainTimeout bounds the SIGTERM drain; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Ready, if set, is called with the bound listener addresses once the
	// server accepts connections (tests use it with port 0).
	Ready func(addrs []net.Addr)
}

// Daemon is a running `ferry serve`.
type Daemon struct {
	opts RunOptions
	log  *slog.Logger
	// logLevel is the log's level, which a reload sets from [log] level.
	logLevel *slog.LevelVar
	st       store.Store
	current  atomic.Pointer[generation]

	connWG sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	// servers counts the connections of each server generation, and
	// sftpLive holds the SFTP sessions: what the drain ends when idle
	// (drain.go; made with their first entries).
	servers  map[*server.Server]int
	sftpLive map[*liveSFTP]struct{}

	accounts accountMemo // per-connection account reads, shared by auth and sessions
	sessMu   sync.Mutex
	sessions map[string]*accountSessions // active sessions per account
	// acctConns counts authenticated connections per account
	// (max_connections).
	acctConns accountConns

	lastLogins *lastLogins // written off the login path (recordLogin)

	recountMu sync.Mutex
	recounts  map[string]*homeRecount // accounts whose home this process recounted (recountOnce)

	// Pre-auth defences and metrics live as long as the process: a reload
	// keeps the penalty table and startup counts.
	gate      *StartupGate
	penalties *Penalties
	metrics   *Metrics
	guarded   []*GuardedListener
}

// generation is one configuration's server; a reload starts a new one
// while connections of the old keep running under it.
type generation struct {
	cfg      *Config
	srv      *server.Server
	hostKeys []keys.Signer
	// hostKeysByPath: the keys loaded from each file, which a reload
	// keeps when run_as can no longer read the file (reloadHostKeys).
	hostKeysByPath map[string]keys.Signer
}

// Run starts the daemon and serves until ctx is cancelled or SIGTERM/SIGINT
// arrives; SIGHUP reloads the configuration, host keys and algorithm lists
// for new connections.
func Run(ctx context.Context, opts RunOptions) error {
	// Ends the metrics listener when Run returns, on a signal too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// SIGHUP and SIGUSR2 wait until this process serves: their default
	// action ends it, and an upgrade's new process, which starts while
	// the old one serves, died of a reload or upgrade signal sent to
	// every ferry process (pkill -HUP ferry) while it opened the store.
	// SIGTERM keeps ending a start at once.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	cfg, err := opts.Load()
	if err != nil {
		return err
	}
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	log, logLevel := newLogger(cfg.Log, out)
	setProcessUmask(cfg.SFTP.Umask)
	d := &Daemon{opts: opts, log: log, logLevel: logLevel, conns: make(map[net.Conn]struct{}), sessions: make(map[string]*accountSessions),
		recounts: make(map[string]*homeRecount), metrics: NewMetrics()}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	homeRoot, err := cfg.HomeRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(homeRoot, 0o755); err != nil {
		return fmt.Errorf("home directory root: %w", err)
	}
	dbURL, err := cfg.DatabaseURL()
	if err != nil {
		return err
	}
	d.st, err = store.Open(ctx, dbURL, store.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("account store %s: %w", cfg.RedactedDatabaseURL(), err)
	}
	defer d.st.Close()
	d.lastLogins = newLastLogins(d.st, log)
	loginCtx, stopLogins := context.WithCancel(context.WithoutCancel(ctx))
	loginsDone := make(chan struct{})
	go func() {
		defer close(loginsDone)
		d.lastLogins.run(loginCtx)
	}()
	// Before the store closes: the writer's last attempt needs it.
	defer func() {
		stopLogins()
		<-loginsDone
	}()

	gen, err := d.newGeneration(cfg)
	if err != nil {
		return err
	}
	d.current.Store(gen)

	inherited, err := takeInheritedListeners()
	if err != nil {
		return err
	}
	defer inherited.closeRest()
	lns, boundAddrs, err := listenAll(cfg.Listen, log, inherited)
	if err != nil {
		return err
	}
	// What a SIGUSR2 upgrade hands on: the sockets before the guards.
	var upgradeSources []upgradeSource
	for i, ln := range lns {
		upgradeSources = append(upgradeSources, upgradeSource{key: "ssh=" + boundAddrs[i], ln: ln})
	}
	d.gate = NewStartupGate(cfg)
	d.penalties = NewPenalties(cfg, nil)
	d.metrics.WatchPenalties(d.penalties)
	var addrs []net.Addr
	for i, ln := range lns {
		addrs = append(addrs, ln.Addr())
		// The guard must see the client address the PROXY header carries.
		gl := GuardListener(WrapProxyProtocol(ln, cfg.ProxyProtocol), d.gate, d.penalties, func(remote netip.Addr, reason error) {
			d.metrics.ConnRefused(reason)
			log.Debug("connection refused", "remote", remote.String(), "reason", reason.Error())
		})
		gl.OnAdmit = func(netip.Addr) { d.metrics.ConnOpened() }
		d.guarded = append(d.guarded, gl)
		lns[i] = gl
	}
	closeListeners := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	// The metrics listener stops with the process, or at an upgrade
	// (the new process serves it then).
	metricsCtx, stopMetrics := context.WithCancel(ctx)
	defer stopMetrics()
	if cfg.Metrics.Listen != "" {
		// Bound here, as the SSH listeners are: before run_as drops the
		// right to a privileged port, and failing the start when the
		// address is taken, rather than serving without the metrics the
		// monitoring expects and saying so only in the log.
		mln, ok, err := inherited.take("metrics", cfg.Metrics.Listen)
		if !ok && err == nil {
			mln, err = net.Listen("tcp", cfg.Metrics.Listen)
		}
		if err != nil {
			closeListeners()
			return fmt.Errorf("metrics.listen: %w", err)
		}
		upgradeSources = append(upgradeSources, upgradeSource{key: "metrics=" + cfg.Metrics.Listen, ln: mln})
		go func() {
			if err := d.metrics.ServeListener(metricsCtx, mln, cfg.Metrics.Pprof); err != nil {
				log.Error("metrics listener", "address", cfg.Metrics.Listen, "error", err)
			}
		}()
		log.Info("metrics", "address", mln.Addr().String())
	}
	if err := dropPrivileges(cfg, log); err != nil {
		closeListeners()
		return err
	}

	if os.Geteuid() == 0 {
		// Every home's files belong to the server's own user, so the
		// kernel's permission checks are what keep a customer's chmod 0444
		// file or 0555 directory from being overwritten or emptied; root
		// passes them all (OpenSSH's sftp-server never runs as root for a
		// login).
		log.Warn("running as root: file and directory modes do not stop accounts from overwriting or deleting; set run_as or start ferry as an unprivileged user")
	}

	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	var acceptWG sync.WaitGroup
	for _, gl := range d.guarded {
		acceptWG.Add(1)
		go func() {
			defer acceptWG.Done()
			d.acceptLoop(gl)
		}()
	}
	if opts.Ready != nil {
		opts.Ready(addrs)
	}
	// Sockets the old process passed for addresses no longer configured
	// would queue clients nobody accepts.
	inherited.closeRest()
	if inherited == nil {
		sdNotify("READY=1")
	}
	log.Info("ferry started", "version", opts.Version, "data_dir", cfg.DataDir, "database", cfg.RedactedDatabaseURL())
	if inherited != nil {
		// The old process names this one the service's main process
		// (MAINPID) and drains.
		log.Info("upgrade: serving in place of the old process", "pid", os.Getpid(), "parent", os.Getppid())
		inherited.ready()
	}

	// A new process starts (SIGUSR2) while this one goes on handling
	// signals: waiting for it here left SIGTERM unanswered for up to
	// upgradeStartTimeout, past systemd's stop timeout, when the new
	// process was slow to start (a database not answering).
	type upgradeResult struct {
		proc *os.Process
		err  error
	}
	var (
		upgradeDone  chan upgradeResult // non-nil while a new process starts
		abortUpgrade chan struct{}
	)
	// stopUpgrade ends a new process still starting when this one stops.
	stopUpgrade := func() {
		if upgradeDone == nil {
			return
		}
		close(abortUpgrade)
		r := <-upgradeDone
		upgradeDone = nil
		if r.err != nil {
			log.Warn("upgrade abandoned", "error", r.err)
			return
		}
		// It reported that it accepts just as the stop came: it has its
		// signal handlers by then, and stops as this one does.
		r.proc.Signal(syscall.SIGTERM)
		log.Info("upgrade: stopping the new process too", "new_pid", r.proc.Pid)
	}
	for {
		select {
		case <-ctx.Done():
			stopUpgrade()
			return d.shutdown(lns, &acceptWG, 0, true)
		case r := <-upgradeDone:
			upgradeDone = nil
			if r.err != nil {
				log.Error("upgrade failed; this process goes on serving", "error", r.err)
				continue
			}
			sdNotify("MAINPID=" + strconv.Itoa(r.proc.Pid))
			stopMetrics()
			log.Info("upgrade: new process accepts connections; draining this one", "new_pid", r.proc.Pid, "drain_timeout", upgradeDrainTimeout)
			return d.drainAfterUpgrade(ctx, lns, &acceptWG, sigs, r.proc)
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
				continue
			case syscall.SIGUSR2:
				if upgradeDone != nil {
					log.Warn("upgrade already in progress; signal ignored", "signal", sig.String())
					continue
				}
				log.Info("upgrade: starting the new executable", "signal", sig.String())
				upgradeDone, abortUpgrade = make(chan upgradeResult, 1), make(chan struct{})
				go func(done chan<- upgradeResult, abort <-chan struct{}) {
					proc, err := startUpgrade(upgradeSources, opts.LogOutput, abort)
					done <- upgradeResult{proc, err}
				}(upgradeDone, abortUpgrade)
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			stopUpgrade()
			return d.shutdown(lns, &acceptWG, 0, true)
		}
	}
}

// reload re-reads the configuration and host keys; new connections use
// them, live ones keep theirs. The startup gate and the penalty table
// take the new limits and keep their counts. What Run sets up once
// (restartOnlyChanges) needs a restart, and the log says which keys.
func (d *Daemon) reload() {
	reloading := "RELOADING=1"
	if usec, ok := monotonicUsec(); ok {
		reloading += "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
	}
	sdNotify(reloading)
	defer sdNotify("READY=1")
	cfg, err := d.opts.Load()
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "error", err)
		return
	}
	old := d.current.Load().cfg
	restartKeys := restartOnlyChanges(old, cfg)
	// The database stays the one Run opened; homes and default host keys
	// stay beside it. A new data_dir taken at reload generated new host
	// keys there (every client's known_hosts then refused ferry) and
	// moved new homes away from the accounts' database.
	cfg.DataDir = old.DataDir
	gen, err := d.newGeneration(cfg)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "error", err)
		return
	}
	if d.gate != nil {
		d.gate.Reconfigure(cfg)
	}
	if d.penalties != nil {
		d.penalties.Reconfigure(cfg)
	}
	d.current.Store(gen)
	setProcessUmask(cfg.SFTP.Umask)
	if d.logLevel != nil {
		d.logLevel.Set(cfg.Log.Level)
	}
	if len(restartKeys) > 0 {
		d.log.Warn("these changes take effect after a restart; the running values stay", "keys", restartKeys)
	}
	d.log.Info("configuration reloaded", "kex", cfg.KexAlgorithms, "ciphers", cfg.Ciphers, "macs", cfg.MACs)
}

// restartOnlyChanges names the changed keys that a reload cannot apply:
// the listeners (and the PROXY protocol wrapping them), the data
// directory and database connection, the metrics listener and run_as are
// set up once by Run.
func restartOnlyChanges(old, cfg *Config) []string {
	var keys []string
	newDB, _ := cfg.DatabaseURL()
	oldDB, _ := old.DatabaseURL()
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"listen", !slices.Equal(old.Listen, cfg.Listen)},
		{"data_dir", old.DataDir != cfg.DataDir},
		{"database", newDB != oldDB},
		{"proxy_protocol", old.ProxyProtocol != cfg.ProxyProtocol},
		{"metrics.listen", old.Metrics.Listen != cfg.Metrics.Listen},
		{"metrics.pprof", old.Metrics.Pprof != cfg.Metrics.Pprof},
		{"run_as", old.RunAs != cfg.RunAs},
		{"log.format", old.Log.Format != cfg.Log.Format},
	} {
		if c.changed {
			keys = append(keys, c.key)
		}
	}
	return keys
}

// shutdown stops accepting and drains the connections for up to timeout
// (0: the configured drain timeout); notify tells the service
// manager that the service stops (not when a new process took over).
func (d *Daemon) shutdown(lns []net.Listener, acceptWG *sync.WaitGroup, timeout time.Duration, notify bool) error {
	if notify {
		sdNotify("STOPPING=1")
	}
	for _, ln := range lns {
		ln.Close()
	}
	acceptWG.Wait()
	if timeout == 0 {
		timeout = d.opts.DrainTimeout
	}
	if timeout == 0 {
		timeout = DefaultDrainTimeout
	}
	done := make(chan struct{})
	go func() {
		d.connWG.Wait()
		close(done)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.endIdle(ctx)
	select {
	case <-done:
	case <-time.After(timeout):
		d.log.Warn("drain timeout: closing remaining connections", "timeout", timeout)
		d.closeAllConns()
		<-done
	}
	d.log.Info("ferry stopped")
	return nil
}

// closeAllConns closes every connection's socket.
func (d *Daemon) closeAllConns() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for nc := range d.conns {
		nc.Close()
	}
}

func (d *Daemon) acceptLoop(ln *GuardedListener) {
	var backoff time.Duration
	failures := acceptFailures{log: d.log, addr: ln.Addr().String()}
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// PROXY header errors and EMFILE: keep serving others.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			failures.failed(err, time.Now())
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		failures.succeeded()
		d.mu.Lock()
		d.conns[nc] = struct{}{}
		d.mu.Unlock()
		d.connWG.Add(1)
		go d.serveConn(ln, d.current.Load().srv, nc)
	}
}

// acceptFailureLogInterval spaces the WARN lines of a listener that
// keeps failing to accept for want of descriptors.
const acceptFailureLogInterval = time.Minute

// acceptFailures reports a listener's failed accepts. Out of descriptors
// (EMFILE for the process, ENFILE for the host), ferry leaves every new
// client waiting in the listen backlog until a connection closes, and
// logged that only at DEBUG: the admin saw clients hang and nothing in
// the log. The first such failure is a WARN, later ones at most one a
// minute with their count, and the first accept after them an INFO.
// Other errors (a PROXY header a client botched) stay at DEBUG.
type acceptFailures struct {
	log     *slog.Logger
	addr    string
	count   int // descriptor failures since the last accept
	lastLog time.Time
}

func (a *acceptFailures) failed(err error, now time.Time) {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		a.log.Debug("accept", "addr", a.addr, "error", err)
		return
	}
	a.count++
	if a.count == 1 || now.Sub(a.lastLog) >= acceptFailureLogInterval {
		a.lastLog = now
		a.log.Warn("cannot accept connections: out of file descriptors; new clients wait until some close (raise the open files limit: LimitNOFILE in ferry.service)",
			"addr", a.addr, "error", err, "failed_accepts", a.count)
	}
}

func (a *acceptFailures) succeeded() {
	if a.count > 0 {
		a.log.Info("accepting connections again", "addr", a.addr, "failed_accepts", a.count)
		a.count = 0
	}
}

// serveConn serves one accepted connection, once admitted: a PROXY
// protocol connection is admitted here, after its header, not in
// Accept. Small on purpose: its frame stays under every idle
// connection's read loop (server.startConn).
func (d *Daemon) serveConn(ln *GuardedListener, srv *server.Server, nc net.Conn) {
	defer d.connEnded(nc)
	if ln.AdmitProxied(nc) {
		if proxyLocal(nc) {
			nc = proxyLocalConn{nc}
		}
		defer d.trackServer(srv)()
		srv.ServeConn(nc)
	}
}

// proxyLocalConn is a PROXY protocol connection whose header has the
// LOCAL command: the load balancer speaking for itself, as HAProxy's
// "check-send-proxy" and NLB's health checks do, not a client. Its
// RemoteAddr (the balancer's own address) says so to connClosed.
type proxyLocalConn struct{ net.Conn }

func (c proxyLocalConn) RemoteAddr() net.Addr { return proxyLocalAddr{c.Conn.RemoteAddr()} }

// proxyLocalAddr is the socket peer of a proxyLocalConn.
type proxyLocalAddr struct{ net.Addr }

func (d *Daemon) connEnded(nc net.Conn) {
	d.mu.Lock()
	delete(d.conns, nc)
	d.mu.Unlock()
	d.connWG.Done()
}

// newGeneration builds a server for cfg.
func (d *Daemon) newGeneration(cfg *Config) (*generation, error) {
	var previousKeys map[string]keys.Signer
	if prev := d.current.Load(); prev != nil {
		previousKeys = prev.hostKeysByPath
	}
	hostKeys, hostKeysByPath, err := reloadHostKeys(cfg.DataDir, cfg.HostKeys, cfg.HostKeyAlgorithms, d.log, previousKeys, runAsOwner(cfg))
	if err != nil {
		return nil, err
	}
	authn := &accountAuthenticator{st: d.st, memo: &d.accounts, pv: store.DefaultPasswordVerifier(), now: time.Now, log: d.log,
		onAttempt: d.metrics.AuthAttempt}
	var methods []string
	if cfg.PubkeyAuthentication {
		methods = append(methods, "publickey")
	}
	if cfg.PasswordAuthentication {
		methods = append(methods, "password")
	}
	if cfg.KbdInteractiveAuthentication {
		methods = append(methods, "keyboard-interactive")
	}
	var banner string
	if cfg.Banner != "" {
		b, err := readBanner(cfg.Banner)
		if err != nil {
			return nil, fmt.Errorf("banner: %w", err)
		}
		banner = string(b)
	}
	var cas []keys.PublicKey
	if cfg.TrustedUserCAKeys != "" {
		var err error
		if cas, err = loadTrustedUserCAKeys(cfg.TrustedUserCAKeys); err != nil {
			return nil, fmt.Errorf("trusted_user_ca_keys: %w", err)
		}
	}
	authn.trustedCAs = cas
	if cfg.RevokedKeys != "" {
		var err error
		if authn.revoked, err = loadRevokedKeys(cfg.RevokedKeys); err != nil {
			return nil, fmt.Errorf("revoked_keys: %w", err)
		}
	}
	srv := &server.Server{
		Transport: transport.Config{
			HostKeys:          hostKeys,
			KeyExchanges:      cfg.KexAlgorithms,
			HostKeyAlgorithms: cfg.HostKeyAlgorithms,
			Ciphers:           cfg.Ciphers,
			MACs:              cfg.MACs,
			Compressions:      cfg.Compressions,
			RekeyBytes:        cfg.RekeyLimit.Bytes,
			RekeyInterval:     cfg.RekeyLimit.Interval,
			SoftwareVersion:   "ferry_" + d.opts.Version,
			Logger:            d.log,
		},
		Auth: auth.Config{
			Authenticator:               authn,
			MaxAuthTries:                cfg.MaxAuthTries,
			MinRSABits:                  cfg.RequiredRSASize,
			Banner:                      banner,
			Methods:                     methods,
			AuthenticationMethods:       cfg.AuthenticationMethods,
			PubkeyAlgorithms:            cfg.PubkeyAcceptedAlgorithms,
			CASignatureAlgorithms:       cfg.CASignatureAlgorithms,
			TrustedUserCAKeys:           cas,
			KeyboardInteractivePassword: true,
			Logger:                      d.log,
		},
		SubsystemHandlers:   map[string]server.Handler{"sftp": d.sftpHandler(cfg)},
		Handler:             d.execHandler(cfg),
		LoginGraceTime:      cfg.LoginGraceTime,
		MaxSessions:         cfg.MaxSessions,
		ClientAliveInterval: cfg.ClientAliveInterval,
		ClientAliveCountMax: cfg.ClientAliveCountMax,
		AcceptEnv:           cfg.AcceptEnv,
		OnConnClosed:        d.connClosed,
		ConnContext: func(ctx context.Context, c *server.Conn) context.Context {
			// Authenticated: the connection no longer counts as a startup.
			for _, gl := range d.guarded {
				gl.Authenticated(c.RemoteAddr(), c.LocalAddr())
			}
			d.recordLogin(c)
			d.metrics.ConnAuthenticated(c)
			d.admitConn(ctx, cfg, c)
			return ctx
		},
		Logger: d.log,
	}
	if cfg.LoginGraceTime == 0 {
		srv.LoginGraceTime = 100 * 365 * 24 * time.Hour // sshd: 0 means no limit
	}
	if cfg.ClientAliveCountMax == 0 {
		// sshd (since 8.2): keepalives are sent, for NAT and firewalls,
		// but never end the connection. package server reads 0 as its
		// default of 3, which cut the clients of an admin who copied
		// "ClientAliveCountMax 0" from sshd_config after 3 silent
		// intervals.
		srv.ClientAliveCountMax = math.MaxInt
	}
	if cfg.AllowTCPForwarding.AllowsLocal() {
		srv.LocalForward = func(c *server.Conn, host string, port uint32) bool {
			return cfg.PermitOpen.Allows(host, int(port))
		}
	}
	if cfg.AllowTCPForwarding.AllowsRemote() {
		// Never a privileged port: sshd allows those to root only, and
		// ferry's accounts are not system users (0 asks for any free port).
		srv.RemoteForward = func(_ *server.Conn, _ string, port uint32) bool { return port == 0 || port >= 1024 }
		srv.GatewayPorts = cfg.GatewayPorts
	}
	return &generation{cfg: cfg, srv: srv, hostKeys: hostKeys, hostKeysByPath: hostKeysByPath}, nil
}

// readBanner reads the banner file, which Validate checked is at most
// maxBannerBytes; one that grew since fails rather than cut every login.
func readBanner(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBannerBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBannerBytes {
		return nil, fmt.Errorf("%s is over %d bytes", path, maxBannerBytes)
	}
	return b, nil
}

// recordLogin notes the account's last login (ferry user list, show) as
// its connection starts: authentication has completed, by whichever
// methods, so a key or certificate login counts and the password step of
// "password,publickey" alone does not. The write happens off the login
// path (lastLogins): a busy or stalled database must not hold the
// connection.
func (d *Daemon) recordLogin(c *server.Conn) {
	if name := c.Permissions().Extensions[extAccount]; name != "" {
		d.lastLogins.note(name, time.Now())
	}
}

// recordLoginTimeout bounds each last-login write.
const recordLoginTimeout = 5 * time.Second

// connClosed logs one line per connection, records penalties and
// metrics.
func (d *Daemon) connClosed(info *server.ConnInfo) {
	// A load balancer's health check connects and leaves without
	// authenticating every few seconds: penalised as noauth, its address
	// was soon refused (and checks expecting the SSH banner marked ferry
	// down), and each one logged a line at info.
	_, healthCheck := info.RemoteAddr.(proxyLocalAddr)
	if d.penalties != nil && !healthCheck {
		ip := remoteIP(info.RemoteAddr)
		for _, ev := range FromConnInfo(info) {
			d.penalties.Record(ip, ev)
		}
	}
	d.metrics.ConnClosed(info)
	d.metrics.Bytes(info)
	attrs := []any{"remote", info.RemoteAddr.String(), "user", info.User, "authenticated", info.Authenticated,
		"methods", info.Methods, "duration", info.Duration.Round(time.Millisecond), "phase", info.Phase,
		"client", info.ClientVersion, "kex", info.Algorithms.Kex, "hostkey", info.Algorithms.HostKey,
		"cipher", info.Algorithms.CipherIn, "mac", info.Algorithms.MACIn,
		"bytes_in", info.BytesIn, "bytes_out", info.BytesOut}
	if info.KeyFingerprint != "" {
		attrs = append(attrs, "key", info.KeyFingerprint)
	}
	if info.GraceExceeded {
		attrs = append(attrs, "grace_exceeded", true)
	}
	if info.UnknownUser {
		attrs = append(attrs, "unknown_user", true)
	}
	if info.Err != nil {
		attrs = append(attrs, "reason", info.Err.Error())
	}
	level := slog.LevelInfo
	if healthCheck {
		attrs = append(attrs, "proxy_local", true)
		level = slog.LevelDebug
	}
	d.log.Log(context.Background(), level, "connection closed", attrs...)
}

// sessionAccount reads the session's account (afresh, unless this
// connection read it within accountMemoTTL, as a login's first session
// does) and takes one of its concurrent-session slots.
func (d *Daemon) sessionAccount(s *server.Session) (*store.Account, func(), error) {
	name := s.Permissions().Extensions[extAccount]
	acct, err := d.accounts.take(s.Context(), d.st, s.Conn().SessionID(), name, time.Now())
	if err != nil {
		return nil, nil, err
	}
	if !acct.CanLogin(time.Now()) {
		return nil, nil, errors.New("account disabled or expired")
	}
	d.sessMu.Lock()
	defer d.sessMu.Unlock()
	as := d.sessions[name]
	if as == nil {
		as = &accountSessions{}
	}
	if acct.MaxSessions > 0 && as.n >= acct.MaxSessions {
		return nil, nil, fmt.Errorf("too many concurrent sessions (max %d)", acct.MaxSessions)
	}
	as.n++
	d.sessions[name] = as
	d.metrics.SessionStarted()
	var once sync.Once
	release := func() {
		once.Do(func() {
			d.metrics.SessionEnded()
			d.sessMu.Lock()
			if as.n--; as.n <= 0 {
				delete(d.sessions, name)
			}
			d.sessMu.Unlock()
		})
	}
	// The slot also goes back when the session ends some other way (a
	// panic, the connection's end) than through its handler's release.
	context.AfterFunc(s.Context(), release)
	return acct, release, nil
}

// homeDir resolves the account's home, creating it (0700) on first login.
func (d *Daemon) homeDir(cfg *Config, acct *store.Account) (string, error) {
	home := acct.Home
	if home == "" {
		// The default home: <data_dir>/home/<name>, validated by the config.
		h, err := cfg.HomeDir(acct.Name)
		if err != nil {
			return "", err
		}
		home = h
	}
	home, err := filepath.Abs(home)
	if err != nil {
		return "", err
	}
	if acct.Home != "" {
		// Before MkdirAll too, which would follow a link planted in the
		// path to create directories wherever it pointed.
		if err := checkHomePath(home); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	if acct.Home != "" {
		if err := checkHomePath(home); err != nil {
			return "", err
		}
		if err := checkHome(cfg, home); err != nil {
			return "", err
		}
	}
	return home, nil
}

// userFS opens the account's home confined with os.Root, recounting
// its usage first if this is the account's first session with a quota
// since the daemon started (recountOnce).
func (d *Daemon) userFS(ctx context.Context, cfg *Config, acct *store.Account) (vfs.FS, error) {
	home, err := d.homeDir(cfg, acct)
	if err != nil {
		return nil, err
	}
	d.recountOnce(ctx, acct, home, d.quotaLock(acct.Name))
	fsys, err := d.openHome(acct.Name, home)
	if err != nil || (acct.QuotaBytes <= 0 && acct.QuotaFiles <= 0) {
		return fsys, err
	}
	return &quotaFS{FS: fsys, ctx: ctx, st: d.st, account: acct.Name}, nil
}

// openSession reads the session's account, takes one of its session
// slots and opens its confined home; the func it returns gives both back.
// On failure it has already told the client and ended the session.
func (d *Daemon) openSession(cfg *Config, s *server.Session) (*store.Account, vfs.FS, func(), bool) {
	acct, release, err := d.sessionAccount(s)
	if err != nil {
		// The client sees the reason on stderr; the admin, here, which
		// account hit max_sessions or was disabled while logged in.
		d.log.Info("session refused", "user", s.Permissions().Extensions[extAccount],
			"remote", s.Conn().RemoteAddr().String(), "reason", err.Error())
		fmt.Fprintf(s.Stderr(), "ferry: %v\n", err)
		s.Exit(1)
		return nil, nil, nil, false
	}
	fsys, err := d.userFS(s.Context(), cfg, acct)
	if err != nil {
		release()
		d.log.Error("home directory", "user", acct.Name, "error", err)
		s.Exit(1)
		return nil, nil, nil, false
	}
	// Not closed when the session's context ends, as the slot is: the
	// SFTP server still removes abandoned uploads through it then.
	return acct, fsys, func() {
		fsys.Close()
		release()
	}, true
}

func (d *Daemon) sftpHandler(cfg *Config) server.Handler {
	return server.HandlerFunc(func(s *server.Session) {
		acct, fsys, release, ok := d.openSession(cfg, s)
		if !ok {
			return
		}
		opts := d.sftpOptions(cfg, acct, s.Conn().RemoteAddr())
		opts.ClientVersion = s.Conn().ClientVersion()
		// Detached: while the client sends nothing the session holds no
		// goroutine, only its state (issue 8's idle budget).
		end := s.Detach()
		srv := sftp.NewServer(fsys, opts)
		untrack := d.trackSFTP(&liveSFTP{srv: srv, end: end})
		srv.Start(s.Context(), s, s, func(err error) {
			untrack()
			release()
			if errors.Is(err, context.Canceled) {
				// The client closed the connection without closing the
				// channel first, as libssh2 (curl) and paramiko do: a
				// normal end, which "connection closed" already logs.
				end(1)
				return
			}
			if err != nil {
				d.log.Info("sftp session ended", "user", acct.Name, "error", err)
				end(1)
				return
			}
			end(0)
		})
	})
}

// accountSessions is what an account's live sessions share.
type accountSessions struct {
	n int // sessions holding a slot (max_sessions)
	// home is the confined home the sessions share (openHome).
	home *sharedHome
	// quotaLock orders every session's quota-charged writes against
	// truncates and removals (sftp.QuotaLock), across SFTP and SCP: one
	// per account, as the store's usage counters are.
	quotaLock sftp.QuotaLock
}

// quotaLock returns the account's shared quota lock. The caller holds a
// session slot (sessionAccount), which keeps the entry alive.
func (d *Daemon) quotaLock(name string) *sftp.QuotaLock {
	d.sessMu.Lock()
	defer d.sessMu.Unlock()
	as := d.sessions[name]
	if as == nil {
		// No slot (a caller outside sessionAccount): a lock of its own
		// still orders that session's operations.
		return &sftp.QuotaLock{}
	}
	return &as.quotaLock
}

func (d *Daemon) sftpOptions(cfg *Config, acct *store.Account, remote net.Addr) *sftp.Options {
	p := acct.Permissions
	opts := &sftp.Options{
		ReadOnly: p.ReadOnly,
		Permissions: sftp.Permissions{
			NoDownload:  p.UploadOnly,
			NoDelete:    p.NoDelete,
			NoOverwrite: p.NoOverwrite,
			NoSymlinks:  !p.AllowSymlinks,
		},
		DirectUploads:          !cfg.SFTP.AtomicUploads,
		KeepInterruptedUploads: cfg.SFTP.KeepInterruptedUploads,
		Umask:                  cfg.SFTP.Umask,
		MaxHandles:             cfg.SFTP.MaxHandles,
		ReadLimit:              cfg.SFTP.ReadLimit,
		WriteLimit:             cfg.SFTP.WriteLimit,
		// An account's sessions come from several connections at once
		// (FileZilla opens two, rclone four): its lines name the one.
		Logger: d.log.With("remote", remote.String()),
		User:   acct.Name,
	}
	if acct.QuotaBytes > 0 || acct.QuotaFiles > 0 {
		opts.Quota = d.storeQuota(acct.Name)
		opts.QuotaLock = d.quotaLock(acct.Name)
	}
	opts.TransferLog = d.transferLog(cfg, "sftp", remote)
	return opts
}

// transferLog counts and (with [log] transfer_log) logs each file a
// session moved, labelled with its protocol ("sftp" or "scp") and the
// client's address, so that one line answers who moved what from where.
func (d *Daemon) transferLog(cfg *Config, protocol string, remote net.Addr) func(sftp.TransferRecord) {
	return func(r sftp.TransferRecord) {
		result := "ok"
		if r.Result != "ok" {
			result = "failed"
		}
		// An upload counts whatever it moved: an empty file, or one the
		// quota refused from its first write, is still an upload that
		// succeeded or failed. A file opened for reading and closed
		// unread is no download.
		if r.BytesWritten > 0 || r.Upload && r.BytesRead == 0 {
			d.metrics.Transfer(protocol, "upload", result, r.BytesWritten)
		}
		if r.BytesRead > 0 {
			d.metrics.Transfer(protocol, "download", result, r.BytesRead)
		}
		if cfg.Log.TransferLog {
			d.log.Info("transfer", "protocol", protocol, "user", r.User, "remote", remote.String(), "path", r.Path, "bytes_read", r.BytesRead,
				"bytes_written", r.BytesWritten, "duration", r.Duration.Round(time.Millisecond), "result", r.Result)
		}
	}
}

// execHandler serves shell and exec requests: "scp -t/-f" goes to ferry's
// own SCP server over the same confined filesystem and rules as SFTP;
// everything else to the shell handler, which gives shell accounts a
// login shell and others only the allowed_commands.
func (d *Daemon) execHandler(cfg *Config) server.Handler {
	return server.HandlerFunc(func(s *server.Session) {
		acct, fsys, release, ok := d.openSession(cfg, s)
		if !ok {
			return
		}
		defer release()
		if cmd := s.Command(); cmd != "" && scp.IsSCPCommand(cmd) {
			so := d.sftpOptions(cfg, acct, s.Conn().RemoteAddr())
			scp.NewServer(fsys, &scp.Options{
				ReadOnly:      so.ReadOnly,
				Permissions:   so.Permissions,
				Quota:         so.Quota,
				QuotaLock:     so.QuotaLock,
				DirectUploads: so.DirectUploads,
				Umask:         so.Umask,
				User:          acct.Name,
				Logger:        so.Logger,
				TransferLog:   d.transferLog(cfg, "scp", s.Conn().RemoteAddr()),
				ReadLimit:     so.ReadLimit,
				WriteLimit:    so.WriteLimit,
			}).ServeSSH(s)
			return
		}
		home, err := d.homeDir(cfg, acct)
		if err != nil {
			d.log.Error("home directory", "user", acct.Name, "error", err)
			s.Exit(1)
			return
		}
		uid, gid := acct.UID, acct.GID
		if uid == nil {
			uid, gid = cfg.ShellUID, cfg.ShellGID
		}
		err = commandCredentialsUsable(uid, gid)
		if err == nil && acct.Permissions.AllowShell && uid == nil && os.Geteuid() == 0 {
			// Accounts are not system users: with neither shell_uid nor
			// the account's --uid, a --shell account's shell (and any
			// command through it) would run as ferry's own user, here
			// root, whom no home confines. shell_uid may not be 0 for
			// that reason; an account's explicit --uid 0 still may.
			err = errors.New("a shell account's commands would run as root: set shell_uid and shell_gid, or the account's --uid and --gid")
		}
		if err != nil {
			d.log.Error("command refused", "user", acct.Name, "remote", s.Conn().RemoteAddr().String(), "error", err)
			fmt.Fprintln(s.Stderr(), "ferry: commands cannot run for this account on this server")
			s.Exit(1)
			return
		}
		h, err := shell.New(shell.Config{User: acct.Name, Home: home, AllowShell: acct.Permissions.AllowShell,
			AllowedCommands: cfg.AllowedCommands, UID: uid, GID: gid, Logger: d.log})
		if err != nil {
			d.log.Error("shell", "user", acct.Name, "error", err)
			fmt.Fprintf(s.Stderr(), "ferry: %v\n", err)
			s.Exit(1)
			return
		}
		h.ServeSSH(s)
	})
}

// commandCredentialsUsable reports why commands cannot run with uid and
// gid (the account's, or shell_uid/shell_gid): switching to them needs
// root, which ferry no longer has after run_as or never had under
// contrib/ferry.service's User=. The shell handler then ran the command
// as ferry's own user, silently: an account meant to be confined to uid
// 2000 got a shell that read the database of every password hash and the
// host keys. Credentials equal to ferry's own need no switch.
func commandCredentialsUsable(uid, gid *uint32) error {
	euid, egid := os.Geteuid(), os.Getegid()
	if uid == nil || euid == 0 {
		return nil
	}
	if *uid == uint32(euid) && (gid == nil || *gid == uint32(egid)) {
		return nil
	}
	g := "-"
	if gid != nil {
		g = strconv.FormatUint(uint64(*gid), 10)
	}
	return fmt.Errorf("commands must run as uid %d gid %s, and ferry, running as uid %d, cannot switch to them (start it as root without run_as, or drop shell_uid/the account's uid)",
		*uid, g, euid)
}

// newLogger makes the daemon's log; the returned level is the one
// [log] level sets, changed in place by a reload.
func newLogger(c LogConfig, out io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		opts.ReplaceAttr = escapeUnprintableJSON
		return slog.New(slog.NewJSONHandler(out, opts)), level
	}
	return slog.New(slog.NewTextHandler(out, opts)), level
}

// sdNotify sends a state to systemd when run with Type=notify
// (sd_notify(3)); a no-op otherwise.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

// setProcessUmask makes [sftp] umask the process umask, as OpenSSH's
// sftp-server -u (and ferry sftp-server -u) does. The kernel clears the
// process umask from every open(2) and mkdir(2) on top of the mode the
// SFTP and SCP servers ask for, so one inherited from the service manager
// (contrib/ferry.service had UMask=0077) made every upload 0600 and every
// directory 0700 whatever [sftp] umask said, and the web server reading a
// hosting customer's uploads got EACCES. ferry's own secrets (database,
// host keys, data directory) are created with explicit modes.
// allowed_commands inherit it, as a login shell inherits sshd's. A reload
// sets the new value for every session, since the umask is per process.
func setProcessUmask(m fs.FileMode) {
	syscall.Umask(int(m & fs.ModePerm))
}

// chownDataDir gives run_as the data directory and what ferry keeps at
// its top (database, host keys, the home root), which an earlier start as
// root may have created. Only that level: it walked the whole tree before,
// every customer's files included, at every start as root, which for a
// host with millions of files held back READY=1 for minutes (past
// systemd's start timeout) while chowning nothing more.
//
// A chown that fails (root without CAP_CHOWN, as a unit whose
// CapabilityBoundingSet lacks it) fails the start: ignored, ferry ran as
// run_as with a database, host keys and home root it could not write, and
// failed later at every login. Files the user already owns are left
// alone, so a start needs no chown (nor the capability) after the first.
func chownDataDir(dir string, uid, gid int) error {
	chown := func(p string) error {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == uint32(uid) && st.Gid == uint32(gid) {
			return nil
		}
		return os.Lchown(p, uid, gid)
	}
	// The data directory itself through a link the admin made (the data
	// moved to a larger disk): Lchown gave run_as the link and left the
	// directory root's, 0700, which run_as then could not enter.
	top, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if err := chown(top); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := chown(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock
// sd_notify(3) names for MONOTONIC_USEC (systemd compares it with the
// time it sent a Type=notify-reload service its reload signal, to tell
// that reload's RELOADING=1 from an earlier one's); the wall clock, which
// this sent before, is decades ahead of it.
func monotonicUsec() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false
	}
	return ts.Nano() / 1000, true
}

// dropPrivileges switches to run_as after the ports are bound when
// started as root. Go applies setuid/setgid to every thread (Linux,
// Go ≥ 1.16), so no thread keeps root.
func dropPrivileges(cfg *Config, log *slog.Logger) error {
	if cfg.RunAs == "" {
		return nil
	}
	if euid := os.Geteuid(); euid != 0 {
		if msg := runAsIgnored(cfg.RunAs, euid); msg != "" {
			log.Warn(msg)
		}
		return nil
	}
	uid, gid, groups, err := runAsIdentity(cfg.RunAs)
	if err != nil {
		return fmt.Errorf("run_as: %w", err)
	}
	if err := checkStateDirectory(cfg.DataDir, os.Getenv("STATE_DIRECTORY")); err != nil {
		return fmt.Errorf("run_as: %w", err)
	}
	if err := chownDataDir(cfg.DataDir, uid, gid); err != nil {
		return fmt.Errorf("run_as: giving the data directory to %s: %w (as root, ferry needs CAP_CHOWN for it)", cfg.RunAs, err)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("run_as setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("run_as setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("run_as setuid: %w", err)
	}
	log.Info("dropped privileges", "user", cfg.RunAs, "uid", uid, "gid", gid, "groups", groups)
	return nil
}

// runAsIgnored explains, for ferry started as euid (not root), why
// run_as has no effect, or returns "" when ferry already runs as that
// user. Started as another user (systemd's User=ferry with run_as =
// "sftp"), run_as was ignored without a word and the admin believed
// customers' files belonged to the run_as user.
func runAsIgnored(runAs string, euid int) string {
	uid, _, _, err := runAsIdentity(runAs)
	if err == nil && int(uid) == euid {
		return ""
	}
	return fmt.Sprintf("run_as = %q ignored: ferry runs as uid %d, not root, and cannot change user", runAs, euid)
}

// checkStateDirectory refuses run_as for a data directory that systemd
// manages as the unit's StateDirectory= ($STATE_DIRECTORY, colon-separated)
// while ferry starts as root. For a system unit without User=, systemd
// gives each state directory to root "under all conditions" before every
// start, and one whose top it finds owned by someone else (run_as, which
// chownDataDir gave it) it gives to root recursively: at the second start
// every customer's home and file was root's, 0700 homes that run_as could
// no longer enter, and every login failed. Refused at the first start, no
// customer file is at stake yet.
func checkStateDirectory(dataDir, stateDirs string) error {
	if stateDirs == "" {
		return nil
	}
	data, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return err
	}
	for _, sd := range strings.Split(stateDirs, ":") {
		if sd == "" {
			continue
		}
		if r, err := filepath.EvalSymlinks(sd); err == nil && r == data {
			return fmt.Errorf("data directory %s is the unit's StateDirectory=, which systemd gives back to root (every file in it) at each start of a unit without User=: "+
				"remove StateDirectory= and StateDirectoryMode= and create the directory yourself (install -d -m 0700 %s), or drop run_as and set User= (contrib/ferry.service)", dataDir, dataDir)
		}
	}
	return nil
}

// runAsIdentity is the uid, primary gid and group list (the primary and
// every supplementary group, as initgroups(3) sets them) run_as takes.
// The supplementary groups were dropped before: an admin who gave ferry's
// user the web server's group so that homes under /srv/www are writable
// found it worked under the unit's User= (systemd sets every group) and
// failed with "permission denied" for every upload under run_as.
func runAsIdentity(name string) (uid, gid int, groups []int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, nil, err
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return 0, 0, nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("user %s: groups: %w", name, err)
	}
	groups = []int{gid}
	for _, s := range ids {
		g, err := strconv.Atoi(s)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("user %s: group %q: %w", name, s, err)
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return uid, gid, groups, nil
}
