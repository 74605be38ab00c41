package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Cipher is one algorithm choice for the transfer workloads; MAC is empty for AEAD ciphers.
type Cipher struct {
	Name string
	MAC  string
}

func (c Cipher) String() string {
	if c.MAC == "" {
		return c.Name
	}
	return c.Name + "+" + c.MAC
}

// DefaultCiphers returns the suites issue 8 names.
func DefaultCiphers() []Cipher {
	return []Cipher{
		{Name: "aes128-gcm@openssh.com"},
		{Name: "chacha20-poly1305@openssh.com"},
		{Name: "aes128-ctr", MAC: "hmac-sha2-256-etm@openssh.com"},
	}
}

// Options configure a run.
type Options struct {
	Ferry string // ferry binary
	SSHD  string // OpenSSH server binary
	SFTP  string // OpenSSH sftp client binary
	Runs  int    // repetitions of each measurement; the report shows the median

	FileSize int64 // bytes per SFTP get/put
	Ciphers  []Cipher

	Logins       int // logins per run
	LoginClients int // concurrent login clients

	IdleSessions int

	RelaySize  int64         // bytes uploaded through the delaying relay
	RelayDelay time.Duration // one-way delay of the relay

	// Workloads to run: "transfer", "logins", "idle", "relay"; empty means all.
	Workloads []string
	// PerfDir, when set, records `perf record -g` of ferry during the first aes128-gcm get and
	// put into this directory.
	PerfDir string

	// FerryOnly measures ferry alone: OpenSSH still starts, but no workload runs against it.
	// For sizes OpenSSH cannot reach here, such as 10,000 idle sessions (about 19 MiB each).
	FerryOnly bool

	// FerryMetrics, when set, is a loopback address for ferry's Prometheus endpoint; the idle
	// workload then logs the Go runtime's view (goroutines, heap, stacks) around each run.
	FerryMetrics string

	Logf func(format string, args ...any)
	User string // set by Setup
}

// measured lists the servers the workloads run against: both, or ferry alone with FerryOnly.
func (e *Env) measured() []*Server {
	if !e.opts.FerryOnly {
		return e.Servers
	}
	var only []*Server
	for _, s := range e.Servers {
		if s.Name == "ferry" {
			only = append(only, s)
		}
	}
	return only
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

func (o *Options) want(w string) bool {
	if len(o.Workloads) == 0 {
		return true
	}
	for _, x := range o.Workloads {
		if x == w {
			return true
		}
	}
	return false
}

// sample is one measurement of one server.
type sample struct {
	wall time.Duration
	cpu  time.Duration
}

// measure runs f against s and returns wall-clock and server CPU time. settleTo is how many
// processes the server has when idle (sshd's per-connection children must have exited, and so
// been accounted, before the CPU counter is read again).
func measure(s *Server, settleTo int, f func() error) (sample, error) {
	s.settle(settleTo)
	c0, err := s.CPU()
	if err != nil {
		return sample{}, err
	}
	t0 := time.Now()
	if err := f(); err != nil {
		return sample{}, err
	}
	wall := time.Since(t0)
	s.settle(settleTo)
	c1, err := s.CPU()
	if err != nil {
		return sample{}, err
	}
	return sample{wall: wall, cpu: c1 - c0}, nil
}

// sftpBatch runs the OpenSSH sftp client with one batch command.
// sftpBatch runs one sftp batch command. It returns the CPU time of the
// client: sftp and the ssh it runs (wait4 counts a process's reaped
// children), so a workload bounded by the client shows as such.
func (e *Env) sftpBatch(port int, c Cipher, extra []string, command string) (time.Duration, error) {
	args := []string{"-q", "-b", "-", "-F", "/dev/null", "-i", e.KeyFile,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "Compression=no",
		"-o", "Ciphers=" + c.Name}
	if c.MAC != "" {
		args = append(args, "-o", "MACs="+c.MAC)
	}
	args = append(args, extra...)
	args = append(args, "-P", fmt.Sprint(port), e.opts.User+"@127.0.0.1")
	cmd := exec.Command(e.opts.SFTP, args...)
	cmd.Stdin = bytes.NewBufferString(command + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("sftp %q: %v: %s", command, err, bytes.TrimSpace(out))
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func checkSize(p string, want int64) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Size() != want {
		return fmt.Errorf("%s: %d bytes, want %d", p, fi.Size(), want)
	}
	return nil
}

// startPerf records the server's call stacks until the returned stop is called.
func startPerf(pid int, out string) (stop func(), err error) {
	cmd := exec.Command("perf", "record", "-g", "-F", "999", "-e", "cpu-clock", "-o", out, "-p", fmt.Sprint(pid))
	log, err := os.Create(out + ".log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	time.Sleep(300 * time.Millisecond) // perf attaches before the workload starts
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		log.Close()
	}, nil
}

// transfer runs SFTP get and put of the transfer file for each cipher, alternating servers.
func (e *Env) transfer(r *Results) error {
	size := e.opts.FileSize
	gib := float64(size) / (1 << 30)
	for _, c := range e.opts.Ciphers {
		for _, dir := range []string{"get", "put"} {
			cpu := map[string][]float64{}
			mbps := map[string][]float64{}
			client := map[string][]float64{} // the same client's CPU against each server
			for i := 0; i < e.opts.Runs; i++ {
				for _, s := range e.measured() {
					local := filepath.Join(e.ClientDir, "download")
					remoteBig := path.Join(s.RemoteDir, "big")
					remoteUp := path.Join(s.RemoteDir, "upload")
					cmdline := fmt.Sprintf("get %s %s", remoteBig, local)
					src := e.BigFile
					if dir == "put" {
						cmdline = fmt.Sprintf("put %s %s", src, remoteUp)
					}
					var stop func()
					if e.opts.PerfDir != "" && i == 0 && s.Name == "ferry" && c.Name == "aes128-gcm@openssh.com" {
						var err error
						if stop, err = startPerf(s.Pid(), filepath.Join(e.opts.PerfDir, "ferry-"+dir+".perf.data")); err != nil {
							return err
						}
					}
					var clientCPU time.Duration
					sm, err := measure(s, 1, func() (err error) {
						clientCPU, err = e.sftpBatch(s.Port, c, nil, cmdline)
						return err
					})
					if stop != nil {
						stop()
					}
					if err != nil {
						return fmt.Errorf("%s %s %s: %w", s.Name, c, dir, err)
					}
					check, want := local, size
					if dir == "put" {
						check = filepath.Join(s.LocalDir, "upload")
					}
					if err := checkSize(check, want); err != nil {
						return fmt.Errorf("%s %s %s: %w", s.Name, c, dir, err)
					}
					os.Remove(check)
					cpu[s.Name] = append(cpu[s.Name], sm.cpu.Seconds()/gib)
					mbps[s.Name] = append(mbps[s.Name], float64(size)/1e6/sm.wall.Seconds())
					client[s.Name] = append(client[s.Name], clientCPU.Seconds()/gib)
					e.opts.logf("%-8s %-4s %-45s run %d: %6.2f s wall, %6.2f s server CPU, %6.2f s client CPU", s.Name, dir, c, i+1, sm.wall.Seconds(), sm.cpu.Seconds(), clientCPU.Seconds())
				}
			}
			w := fmt.Sprintf("sftp %s %s", dir, c)
			r.add(w, "server CPU", "s/GiB", cpu, true)
			r.add(w, "throughput", "MB/s", mbps, false)
			r.add(w, "client CPU (sftp+ssh)", "s/GiB", client, true)
		}
	}
	return nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// parallel runs f(i) for i in [0,n) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("#%d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// Key exchanges of the login workload. OpenSSH 9.2, the sshd here, has no
// mlkem768x25519-sha256 and picks curve25519-sha256 from a client's
// default list, so the side-by-side rows offer only that to both servers
// (equivalent settings); ferry's own default, mlkem768x25519-sha256 (ML-KEM
// encapsulation on top of the X25519 exchange), gets rows of its own.
const (
	loginKex   = "curve25519-sha256"
	loginPQKex = "mlkem768x25519-sha256"
)

// logins measures complete SFTP logins: TCP connect, kex, publickey auth, sftp subsystem,
// INIT/VERSION, close.
func (e *Env) logins(r *Results) error {
	cfg, err := e.clientConfig()
	if err != nil {
		return err
	}
	rate := map[string][]float64{}
	cpu := map[string][]float64{}
	pqRate := map[string][]float64{}
	pqCPU := map[string][]float64{}
	run := func(s *Server, kex string, i int) (wall, serverCPU time.Duration, err error) {
		c := *cfg
		c.kex = kex
		sm, err := measure(s, 1, func() error {
			return parallel(e.opts.Logins, e.opts.LoginClients, func(int) error {
				ss, err := dialSFTP(s.Port, &c)
				if err != nil {
					return err
				}
				ss.Close()
				return nil
			})
		})
		if err != nil {
			return 0, 0, fmt.Errorf("%s logins (%s): %w", s.Name, kex, err)
		}
		e.opts.logf("%-8s logins %-22s run %d: %d in %.2f s, %.2f s server CPU", s.Name, kex, i+1, e.opts.Logins, sm.wall.Seconds(), sm.cpu.Seconds())
		return sm.wall, sm.cpu, nil
	}
	perLogin := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(e.opts.Logins) }
	for i := 0; i < e.opts.Runs; i++ {
		for _, s := range e.measured() {
			wall, c, err := run(s, loginKex, i)
			if err != nil {
				return err
			}
			rate[s.Name] = append(rate[s.Name], float64(e.opts.Logins)/wall.Seconds())
			cpu[s.Name] = append(cpu[s.Name], perLogin(c))
			if s.Name != "ferry" {
				continue
			}
			if wall, c, err = run(s, loginPQKex, i); err != nil {
				return err
			}
			pqRate[s.Name] = append(pqRate[s.Name], float64(e.opts.Logins)/wall.Seconds())
			pqCPU[s.Name] = append(pqCPU[s.Name], perLogin(c))
		}
	}
	w := fmt.Sprintf("sftp logins, %d clients, %s", e.opts.LoginClients, loginKex)
	r.add(w, "rate", "logins/s", rate, false)
	r.add(w, "server CPU", "ms/login", cpu, true)
	w = fmt.Sprintf("sftp logins, %d clients, %s (ferry only)", e.opts.LoginClients, loginPQKex)
	r.add(w, "rate", "logins/s", pqRate, false)
	r.add(w, "server CPU", "ms/login", pqCPU, true)
	return nil
}

// idle measures the memory 1,000 (IdleSessions) authenticated, idle SFTP sessions hold.
func (e *Env) idle(r *Results) error {
	cfg, err := e.clientConfig()
	if err != nil {
		return err
	}
	// ferry holds a socket per session and its account's home; the sessions here a socket each.
	raiseNoFile(uint64(4*e.opts.IdleSessions + 1024))
	rss := map[string][]float64{}
	pss := map[string][]float64{}
	n := e.opts.IdleSessions
	for i := 0; i < e.opts.Runs; i++ {
		for _, s := range e.measured() {
			// A fresh server each run: Go's runtime keeps freed heap for minutes and glibc's
			// malloc keeps arenas, so a reused process would hide what the sessions allocate.
			if err := e.Restart(s); err != nil {
				return fmt.Errorf("%s restart: %w", s.Name, err)
			}
			time.Sleep(time.Second) // start-up allocations done before the baseline
			before := s.Mem()
			if s.Name == "ferry" && e.opts.FerryMetrics != "" {
				e.opts.logf("ferry runtime before: %s", goMetrics(e.opts.FerryMetrics))
			}
			sessions := make([]*sftpSession, n)
			err := parallel(n, 16, func(i int) error {
				ss, err := dialSFTP(s.Port, cfg)
				sessions[i] = ss
				return err
			})
			if err == nil {
				// Everything a session allocates at start-up has happened; measure what stays.
				time.Sleep(2 * time.Second)
			}
			after := s.Mem()
			if s.Name == "ferry" && e.opts.FerryMetrics != "" {
				e.opts.logf("ferry runtime with %d idle sessions: %s", n, goMetrics(e.opts.FerryMetrics))
				if dir := e.opts.PerfDir; dir != "" {
					saveProfile(e.opts.FerryMetrics, "heap", filepath.Join(dir, "ferry-idle.heap"))
					saveProfile(e.opts.FerryMetrics, "goroutine", filepath.Join(dir, "ferry-idle.goroutine"))
				}
			}
			for _, ss := range sessions {
				if ss != nil {
					ss.Close()
				}
			}
			if err != nil {
				return fmt.Errorf("%s idle sessions: %w", s.Name, err)
			}
			rss[s.Name] = append(rss[s.Name], float64(after.RSS-before.RSS)/float64(n))
			pss[s.Name] = append(pss[s.Name], float64(after.PSS-before.PSS)/float64(n))
			e.opts.logf("%-8s idle run %d: %d sessions: RSS %d -> %d KiB, PSS %d -> %d KiB, %d -> %d processes",
				s.Name, i+1, n, before.RSS, after.RSS, before.PSS, after.PSS, before.Procs, after.Procs)
		}
	}
	w := fmt.Sprintf("%d idle sftp sessions", n)
	r.add(w, "memory (RSS)", "KiB/session", rss, true)
	r.add(w, "memory (PSS)", "KiB/session", pss, true)
	return nil
}

// saveProfile saves one of ferry's pprof profiles (metrics.pprof) to file,
// for diagnosis; failures are logged nowhere, since it is optional.
func saveProfile(addr, name, file string) {
	resp, err := http.Get("http://" + addr + "/debug/pprof/" + name)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(file); err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}

// goMetrics returns the Go runtime gauges of a Prometheus endpoint, for diagnosis.
func goMetrics(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, name := range []string{"go_goroutines ", "go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes ", "go_memstats_heap_objects ", "go_memstats_sys_bytes "} {
			if strings.HasPrefix(line, name) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, ", ")
}

func raiseNoFile(need uint64) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	if l.Max < need {
		// As root the hard limit can be raised too (CAP_SYS_RESOURCE); the servers restarted
		// after this inherit it, as they would a systemd LimitNOFILE.
		raised := syscall.Rlimit{Cur: need, Max: need}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return
		}
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// relayBuffer is the sftp client's -B for the relay workload. Issue 8 asks for 262144, but
// OpenSSH's sftp client then builds WRITE packets over its own SFTP_MAX_MSG_LENGTH (256 KiB) and
// exits with "Outbound message too long 262169" (an explicit -B overrides limits@openssh.com).
// 261120 = 256 KiB - 1024 is what the client picks itself from either server's limits reply.
const relayBuffer = 256<<10 - 1024

// relay measures upload throughput over a link with 2*RelayDelay of round-trip time.
func (e *Env) relay(r *Results) error {
	c := DefaultCiphers()[0]
	size := e.opts.RelaySize
	mbps := map[string][]float64{}
	cpu := map[string][]float64{}
	for _, s := range e.measured() {
		rl, err := StartRelay(fmt.Sprintf("127.0.0.1:%d", s.Port), e.opts.RelayDelay)
		if err != nil {
			return err
		}
		for i := 0; i < e.opts.Runs; i++ {
			remote := path.Join(s.RemoteDir, "upload")
			cmdline := fmt.Sprintf("put %s %s", e.relayFile(), remote)
			sm, err := measure(s, 1, func() error {
				_, err := e.sftpBatch(rl.Port(), c, []string{"-R", "256", "-B", fmt.Sprint(relayBuffer)}, cmdline)
				return err
			})
			if err == nil {
				err = checkSize(filepath.Join(s.LocalDir, "upload"), size)
			}
			if err != nil {
				rl.Close()
				return fmt.Errorf("%s relay put: %w", s.Name, err)
			}
			os.Remove(filepath.Join(s.LocalDir, "upload"))
			mbps[s.Name] = append(mbps[s.Name], float64(size)/1e6/sm.wall.Seconds())
			cpu[s.Name] = append(cpu[s.Name], sm.cpu.Seconds()/(float64(size)/(1<<30)))
			e.opts.logf("%-8s relay put run %d: %d MiB in %.2f s", s.Name, i+1, size>>20, sm.wall.Seconds())
		}
		rl.Close()
	}
	w := fmt.Sprintf("sftp put %d MiB via %v RTT relay, -R 256 -B %d, %s", size>>20, 2*e.opts.RelayDelay, relayBuffer, c)
	r.add(w, "throughput", "MB/s", mbps, false)
	r.add(w, "server CPU", "s/GiB", cpu, true)
	return nil
}

// relayFile returns a client-side file of RelaySize bytes.
func (e *Env) relayFile() string {
	if e.opts.FileSize == e.opts.RelaySize {
		return e.BigFile
	}
	return filepath.Join(e.ClientDir, "relay")
}

// Run sets up the environment, runs the chosen workloads and returns the results.
func Run(ctx context.Context, o *Options) (*Results, error) {
	if o.Runs < 1 {
		return nil, errors.New("bench: Runs must be at least 1")
	}
	e, err := Setup(o)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	r := newResults(e)
	steps := []struct {
		name string
		f    func(*Results) error
	}{
		{"transfer", e.transfer},
		{"logins", e.logins},
		{"idle", e.idle},
		{"relay", e.relay},
	}
	for _, st := range steps {
		if !o.want(st.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
		if err := st.f(r); err != nil {
			return r, err
		}
	}
	return r, nil
}
