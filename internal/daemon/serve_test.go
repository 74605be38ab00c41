package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// startDaemon runs Run in-process with cfg adjusted for tests, and returns
// its address and the store it uses.
func startDaemon(t *testing.T, dataDir, database string) string {
	t.Helper()
	return startDaemonWith(t, dataDir, database, nil)
}

// startDaemonWith is startDaemon with configure applied to the
// configuration before it is validated.
func startDaemonWith(t *testing.T, dataDir, database string, configure func(*Config)) string {
	t.Helper()
	addr, _ := startDaemonLogs(t, dataDir, database, configure)
	return addr
}

// startDaemonLogs is startDaemonWith that also returns the daemon's log.
func startDaemonLogs(t *testing.T, dataDir, database string, configure func(*Config)) (string, *testenv.LockedBuffer) {
	t.Helper()
	addr, logs, _ := runTestDaemon(t, dataDir, database, configure, 0)
	return addr, logs
}

// runTestDaemon runs Run in-process with a DrainTimeout of drain (0:
// the default) and returns its address, its log and stop, which ends it as
// SIGTERM would and returns Run's result (later calls return it again;
// the test's cleanup calls it too).
func runTestDaemon(t *testing.T, dataDir, database string, configure func(*Config), drain time.Duration) (string, *testenv.LockedBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	logs := new(testenv.LockedBuffer)
	go func() {
		done <- Run(ctx, RunOptions{
			Load: func() (*Config, error) {
				cfg := Default()
				if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: dataDir, Database: database}); err != nil {
					return nil, err
				}
				if configure != nil {
					configure(cfg)
				}
				return cfg, cfg.Validate()
			},
			Version:      "test",
			LogOutput:    logs,
			DrainTimeout: drain,
			Ready:        func(a []net.Addr) { ready <- a },
		})
	}()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	select {
	case a := <-ready:
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("daemon log:\n%s", logs.String())
			}
		})
		return a[0].String(), logs, stop
	case err := <-done:
		cancel()
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start")
	}
	return "", nil, nil
}

func addAccount(t *testing.T, st store.Store, name, pw string, quota int64, keyLines ...string) {
	t.Helper()
	h, err := password.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	a := &store.Account{Name: name, PasswordHash: h, Enabled: true, QuotaBytes: quota}
	if err := st.CreateAccount(context.Background(), a, keyLines); err != nil {
		t.Fatal(err)
	}
}

func sftpClient(t *testing.T, addr, user string, auth ssh.AuthMethod) *sftp.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{auth},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("login %s at %s: %v", user, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

func upload(sc *sftp.Client, name string, data []byte) error {
	f, err := sc.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestDaemonSFTPWithPasswordAndKey(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromKey(priv)
	addAccount(t, st, "alice", "pw-alice", 0, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))))

	addr := startDaemon(t, dir, "")
	data := make([]byte, 3<<20)
	rand.Read(data)
	byPassword := sftpClient(t, addr, "alice", ssh.Password("pw-alice"))
	if err := upload(byPassword, "up.bin", data); err != nil {
		t.Fatal(err)
	}
	byKey := sftpClient(t, addr, "alice", ssh.PublicKeys(signer))
	f, err := byKey.Open("/up.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded data differs")
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "home", "alice", "up.bin"))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("file in home: %v", err)
	}
	if _, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("wrong")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second}); err == nil {
		t.Fatal("wrong password accepted")
	}
}

// TestTwoServersOnePostgres: two ferry servers sharing one PostgreSQL
// database see an account added through the store at once, and a quota
// consumed through one is enforced by the other.
func TestTwoServersOnePostgres(t *testing.T) {
	base := os.Getenv("FERRY_TEST_POSTGRES")
	if base == "" {
		testenv.Missing(t, "FERRY_TEST_POSTGRES is not set (see .ci/setup-postgres.sh)")
	}
	schema := fmt.Sprintf("ferry_daemon_%d", time.Now().UnixNano())
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dbURL := u.String()

	addr1 := startDaemon(t, t.TempDir(), dbURL)
	addr2 := startDaemon(t, t.TempDir(), dbURL)

	st, err := store.Open(context.Background(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Added after both servers started: each must see it on the next login.
	addAccount(t, st, "carol", "pw-carol", 1<<20)
	c1 := sftpClient(t, addr1, "carol", ssh.Password("pw-carol"))
	c2 := sftpClient(t, addr2, "carol", ssh.Password("pw-carol"))

	if err := upload(c1, "a.bin", make([]byte, 700<<10)); err != nil {
		t.Fatalf("first upload within quota: %v", err)
	}
	// 700 KiB used of 1 MiB through server 1: 500 KiB more through server
	// 2 must be refused.
	err = upload(c2, "b.bin", make([]byte, 500<<10))
	if err == nil {
		t.Fatal("server 2 let the account exceed the quota consumed on server 1")
	}
	acct, err := st.LookupAccount(context.Background(), "carol")
	if err != nil {
		t.Fatal(err)
	}
	if acct.UsedBytes < 700<<10 || acct.UsedBytes > 1<<20 {
		t.Errorf("used bytes = %d", acct.UsedBytes)
	}
}

// BenchmarkSFTPLogin measures one complete SFTP login against the real
// daemon in-process: TCP connect, key exchange, public key authentication
// against SQLite, sftp subsystem, INIT/VERSION, close. The client runs in
// the same process; profile with -cpuprofile and look at the server side.
func BenchmarkSFTPLogin(b *testing.B) {
	dir := b.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromKey(priv)
	h, _ := password.Hash("x")
	if err := st.CreateAccount(context.Background(), &store.Account{Name: "bench", PasswordHash: h, Enabled: true},
		[]string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}); err != nil {
		b.Fatal(err)
	}
	addr := startDaemonB(b, dir)
	// OpenSSH's host key preference (ed25519 first), not x/crypto/ssh's.
	cfg := &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
		HostKeyAlgorithms: []string{"ssh-ed25519"}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		sc, err := sftp.NewClient(c)
		if err != nil {
			b.Fatal(err)
		}
		sc.Close()
		c.Close()
	}
}

func startDaemonB(b *testing.B, dataDir string) string {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{
			Load: func() (*Config, error) {
				cfg := Default()
				cfg.PerSourcePenalties.Enabled = false
				cfg.MaxStartups = MaxStartups{Start: 1000, Rate: 30, Full: 2000}
				if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: dataDir}); err != nil {
					return nil, err
				}
				return cfg, cfg.Validate()
			},
			Version: "bench", LogOutput: io.Discard, Ready: func(a []net.Addr) { ready <- a },
		})
	}()
	select {
	case a := <-ready:
		b.Cleanup(func() { cancel(); <-done })
		return a[0].String()
	case err := <-done:
		cancel()
		b.Fatal(err)
	}
	return ""
}

// TestMaxSessionsSlotReleased: an account's concurrent-session slot comes
// back when its SFTP session ends, whether the client closes it or drops
// the connection while the session is parked.
func TestMaxSessionsSlotReleased(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := password.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(context.Background(), &store.Account{Name: "solo", PasswordHash: h, Enabled: true, MaxSessions: 1}, nil); err != nil {
		t.Fatal(err)
	}
	addr := startDaemon(t, dir, "")
	dial := func() *ssh.Client {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "solo", Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// openWithin retries until a session gets the slot.
	openWithin := func(what string) (*ssh.Client, *sftp.Client) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c := dial()
			sc, err := sftp.NewClient(c)
			if err == nil {
				return c, sc
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s: no session slot after 10 s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	c1, sc1 := openWithin("first session")
	if _, err := sc1.Getwd(); err != nil {
		t.Fatal(err)
	}
	c2 := dial()
	if sc, err := sftp.NewClient(c2); err == nil {
		sc.Close()
		t.Fatal("a second concurrent session was allowed with max_sessions = 1")
	}
	c2.Close()

	// The connection drops while its session is parked.
	c1.Close()
	c3, sc3 := openWithin("after a dropped connection")
	// The client closes its session.
	sc3.Close()
	c3.Close()
	c4, sc4 := openWithin("after a closed session")
	sc4.Close()
	c4.Close()
}

// TestInvalidUserPenalty: with per_source_penalties
// "invaliduser:2m authfail:1s noauth:1s min:10s", a wrong password for a
// real account leaves the source admitted, and one attempt for a user
// with no account gets it refused (sshd's invaliduser penalty).
func TestInvalidUserPenalty(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addAccount(t, st, "alice", "pw", 0)
	st.Close()
	penalties, err := ParsePerSourcePenalties("invaliduser:2m authfail:1s noauth:1s min:10s")
	if err != nil {
		t.Fatal(err)
	}
	addr := startDaemonWith(t, dir, "", func(cfg *Config) { cfg.PerSourcePenalties = penalties })
	login := func(user, pw string) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pw)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			return err
		}
		return c.Close()
	}

	if err := login("alice", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := login("alice", "pw"); err != nil {
		t.Fatalf("after one wrong password (authfail 1s < min 10s): %v", err)
	}
	if err := login("mallory", "pw"); err == nil {
		t.Fatal("unknown user accepted")
	}
	// The penalty is recorded when the server has seen the connection
	// end; until then a login may still get in. Successful logins are
	// not penalised, so polling with them adds nothing.
	deadline := time.Now().Add(10 * time.Second)
	for login("alice", "pw") == nil {
		if time.Now().After(deadline) {
			t.Fatal("source still admitted 10 s after an unknown-user attempt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != refusedPenaltyMsg {
		t.Errorf("penalised source read %q, %v; want %q", b, err, refusedPenaltyMsg)
	}
}

// TestDaemonReadLimit: [sftp] read_limit reaches the sessions. It was
// parsed and validated but nothing read it: a 4 MiB get with
// read_limit = "1M" took 0.1 s.
func TestDaemonReadLimit(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addAccount(t, st, "gina", "pw-gina", 0)
	const limit, size = 1 << 20, 3 << 19
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.SFTP.ReadLimit = limit })
	c := sftpClient(t, addr, "gina", ssh.Password("pw-gina"))
	data := make([]byte, size)
	rand.Read(data)
	if err := upload(c, "f", data); err != nil {
		t.Fatal(err)
	}
	f, err := c.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
	// 1.5 s at the limit, less the bucket's tenth of a second; generous.
	if d := time.Since(start); d < 1200*time.Millisecond {
		t.Errorf("%d bytes downloaded in %v with read_limit %d B/s", size, d, limit)
	}
}

// TestSFTPUmaskOverridesProcessUmask: [sftp] umask decides the modes of
// uploads and new directories whatever umask ferry serve was started with.
// contrib/ferry.service started it with UMask=0077, which the kernel
// applied on top of [sftp] umask = "022": every upload was 0600 and every
// directory 0700, and a web server reading a customer's files got EACCES.
// A reload applies a new [sftp] umask.
func TestSFTPUmaskOverridesProcessUmask(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o077))
	dir := t.TempDir()
	addr := startDaemon(t, dir, "")
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "alice", "pw-alice", 0)
	sc := sftpClient(t, addr, "alice", ssh.Password("pw-alice"))
	if err := upload(sc, "f.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := sc.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home", "alice")
	for name, want := range map[string]os.FileMode{"f.txt": 0o644, "d": 0o755} {
		fi, err := os.Stat(filepath.Join(home, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o ([sftp] umask 022, process started with umask 077)", name, got, want)
		}
	}

	next := Default()
	next.SFTP.Umask = 0o027
	if err := next.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{opts: RunOptions{Load: func() (*Config, error) { return next, nil }}, log: slog.New(slog.DiscardHandler),
		metrics: NewMetrics()}
	gen, err := d.newGeneration(next)
	if err != nil {
		t.Fatal(err)
	}
	d.current.Store(gen)
	d.reload()
	if got := syscall.Umask(0o077); got != 0o027 {
		t.Errorf("process umask after reloading [sftp] umask = \"027\": %#o", got)
	}
}

// TestChownDataDirStaysAtTop: run_as takes over the data directory's top
// level without reading the homes below it; it walked every customer's
// files at each start as root. A directory's access time shows whether it
// was read (relatime updates an access time older than a day).
func TestChownDataDirStaysAtTop(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "home", "alice", "site")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "index.html"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-365 * 24 * time.Hour).Truncate(time.Second)
	setOld := func() {
		if err := os.Chtimes(deep, old, old); err != nil {
			t.Fatal(err)
		}
	}
	atime := func() time.Time {
		var st syscall.Stat_t
		if err := syscall.Stat(deep, &st); err != nil {
			t.Fatal(err)
		}
		return time.Unix(st.Atim.Unix())
	}
	setOld()
	if _, err := os.ReadDir(deep); err != nil {
		t.Fatal(err)
	}
	if atime().Equal(old) {
		t.Skip("the filesystem does not update access times (noatime)")
	}
	setOld()
	if err := chownDataDir(dir, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	if !atime().Equal(old) {
		t.Errorf("chownDataDir read %s, below the data directory's top level", deep)
	}
}

// TestCommandCredentialsNotSwitchable: unprivileged (contrib/ferry.service
// runs ferry as User=ferry), ferry refuses a command that must run as
// another uid instead of running it as itself, and runs one whose uid is
// its own. As root every uid is reachable: e2e's
// TestRunAsCommandCredentials drops privileges for real.
func TestCommandCredentialsNotSwitchable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can switch to any uid; e2e TestRunAsCommandCredentials covers run_as")
	}
	if _, err := exec.LookPath("id"); err != nil {
		t.Skip("no id(1)")
	}
	dir := t.TempDir()
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.AllowedCommands = []string{"id"} })
	st := openSQLiteStore(t, dir)
	own, other := uint32(os.Geteuid()), uint32(os.Geteuid()+1)
	ownGID := uint32(os.Getegid())
	for _, tc := range []struct {
		name     string
		uid, gid uint32
		ok       bool
	}{{"other", other, other, false}, {"own", own, ownGID, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a := &store.Account{Name: "u" + tc.name, UID: &tc.uid, GID: &tc.gid}
			out, err := runAsNewAccount(t, st, addr, a, "id -u")
			ran := err == nil && strings.TrimSpace(string(out)) == fmt.Sprint(own)
			if ran != tc.ok {
				t.Errorf("id -u as uid %d (ferry runs as %d): %v, %q; want it run: %v", tc.uid, own, err, out, tc.ok)
			}
		})
	}
}

// TestClientAliveCountMaxZero: client_alive_count_max = 0 sends
// keepalives but never ends the connection for want of replies, as sshd
// (8.2+) does with ClientAliveCountMax 0; it ended it after 3 silent
// intervals, package server's default. With 1, the same client is cut.
func TestClientAliveCountMaxZero(t *testing.T) {
	const interval = 50 * time.Millisecond
	for _, tc := range []struct {
		countMax int
		cut      bool
	}{{1, true}, {0, false}} {
		t.Run(fmt.Sprint(tc.countMax), func(t *testing.T) {
			dir := t.TempDir()
			addr, logs := startDaemonLogs(t, dir, "", func(c *Config) {
				c.ClientAliveInterval = interval
				c.ClientAliveCountMax = tc.countMax
			})
			addAccount(t, openSQLiteStore(t, dir), "alice", "pw-alice", 0)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// The global requests channel is never read, so the client
			// answers no keepalive (x/crypto/ssh stops reading the
			// connection while one waits).
			_, _, _, err = ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw-alice")},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			const notResponding = "client not responding to keepalives"
			// 40 silent intervals: ten times what count max 1 needs.
			deadline := time.Now().Add(40 * interval)
			if tc.cut {
				deadline = time.Now().Add(10 * time.Second)
			}
			for !strings.Contains(logs.String(), notResponding) && time.Now().Before(deadline) {
				time.Sleep(interval)
			}
			if cut := strings.Contains(logs.String(), notResponding); cut != tc.cut {
				t.Errorf("client_alive_count_max = %d: connection cut for unanswered keepalives: %v, want %v", tc.countMax, cut, tc.cut)
			}
		})
	}
}

// TestShellAccountNeverRootByDefault: ferry started as root, without
// shell_uid, ran a --shell account's shell as root (accounts are not
// system users: commands take ferry's own uid), a root shell for any
// customer given shell access. It is refused now; an account's explicit
// --uid 0 is the admin's choice and still runs.
func TestShellAccountNeverRootByDefault(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: commands run as ferry's own, unprivileged, user")
	}
	dir := t.TempDir()
	addr := startDaemonWith(t, dir, "", nil)
	st := openSQLiteStore(t, dir)
	root := uint32(0)
	for _, tc := range []struct {
		name string
		uid  *uint32
		ok   bool
	}{{"default", nil, false}, {"uid0", &root, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a := &store.Account{Name: "sh" + tc.name, UID: tc.uid, GID: tc.uid, Permissions: store.Permissions{AllowShell: true}}
			out, err := runAsNewAccount(t, st, addr, a, "id -u")
			ran := err == nil && strings.TrimSpace(string(out)) == "0"
			if ran != tc.ok {
				t.Errorf("id -u: %v, %q; want it run as root: %v", err, out, tc.ok)
			}
			if !tc.ok && !strings.Contains(string(out), "ferry: commands cannot run for this account on this server") {
				t.Errorf("refusal not explained: %q", out)
			}
		})
	}
}

// runAsNewAccount creates a (enabled, password "pw") in st, logs in to the
// daemon at addr as it and runs cmd, returning its combined output.
func runAsNewAccount(t *testing.T, st store.Store, addr string, a *store.Account, cmd string) ([]byte, error) {
	t.Helper()
	h, err := password.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	a.PasswordHash, a.Enabled = h, true
	if err := st.CreateAccount(context.Background(), a, nil); err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: a.Name, Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	return sess.CombinedOutput(cmd)
}
