// Package bench measures ferry against OpenSSH's sshd on the same machine in one run: server CPU
// per byte for SFTP transfers, logins per second, memory per idle session, and throughput over a
// delayed link (issue 8).
//
// It is test tooling, not product code: unlike the rest of the tree it uses
// golang.org/x/crypto/ssh and github.com/pkg/sftp as load generators, and it shells out to the
// OpenSSH client and server.
package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchUser is the dedicated account both servers authenticate.
const benchUser = "ferrybench"

// Server is one SSH server under test, running in its own cgroup when cgroup v2 is usable.
type Server struct {
	Name string // "ferry" or "openssh"
	Port int
	// RemoteDir is the directory holding the test files as the server's SFTP clients name it.
	RemoteDir string
	// LocalDir is the same directory as this process sees it.
	LocalDir string

	argv    []string
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{}
	cgroup  string // cgroup v2 directory, "" when falling back to /proc
	log     *os.File
}

// Env is the prepared machine: a tmpfs work directory, a client key, both servers.
type Env struct {
	Dir       string // work directory (on tmpfs)
	ClientDir string // client-side files
	KeyFile   string // client private key (OpenSSH format)
	Key       []byte // its contents
	BigFile   string // client-side copy of the transfer file
	Servers   []*Server
	// CPUMethod and MemMethod say how usage was measured, for the report.
	CPUMethod string
	MemMethod string

	opts    *Options
	mounted bool
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted, "" if nowhere.
func cgroup2Mount() string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && fs[2] == "cgroup2" {
			return fs[1]
		}
	}
	return ""
}

// freePort asks the kernel for an unused loopback port. Another process could take it before the
// server binds it; the servers' startup then fails loudly rather than measuring the wrong thing.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(port int, exited <-chan struct{}, logf string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf)
			return fmt.Errorf("server exited before listening: %s", bytes.TrimSpace(log))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("port %d not listening after 20s", port)
}

// Setup prepares the work directory, user, key, transfer file and starts both servers.
func Setup(o *Options) (_ *Env, err error) {
	e := &Env{opts: o}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	root := os.Geteuid() == 0
	if root {
		if e.Dir, err = os.MkdirTemp("", "ferrybench-"); err != nil {
			return nil, err
		}
		// Room for the transfer file, one upload per server and one download, plus slack.
		size := 3*o.FileSize + 2*o.RelaySize + 512<<20
		if err := run("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", e.Dir); err != nil {
			return nil, err
		}
		e.mounted = true
	} else {
		if e.Dir, err = os.MkdirTemp("/dev/shm", "ferrybench-"); err != nil {
			return nil, err
		}
		if err := os.Chmod(e.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	o.logf("work directory %s (tmpfs)", e.Dir)
	e.ClientDir = filepath.Join(e.Dir, "client")
	if err := os.Mkdir(e.ClientDir, 0o700); err != nil {
		return nil, err
	}
	e.KeyFile = filepath.Join(e.ClientDir, "id_ed25519")
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferrybench", "-f", e.KeyFile); err != nil {
		return nil, err
	}
	if e.Key, err = os.ReadFile(e.KeyFile); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(e.KeyFile + ".pub")
	if err != nil {
		return nil, err
	}
	authLine := strings.TrimSpace(string(pub))

	e.BigFile = filepath.Join(e.ClientDir, "big")
	if err := writeRandom(e.BigFile, o.FileSize); err != nil {
		return nil, err
	}
	if o.RelaySize != o.FileSize {
		if err := writeRandom(filepath.Join(e.ClientDir, "relay"), o.RelaySize); err != nil {
			return nil, err
		}
	}

	userName := benchUser
	if root {
		if err := ensureUser(filepath.Join(e.Dir, "openssh-home")); err != nil {
			return nil, err
		}
	} else {
		// An unprivileged sshd can only log in the user it runs as.
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		userName = u.Username
	}
	o.User = userName

	if mnt := cgroup2Mount(); mnt != "" && root {
		probe := filepath.Join(mnt, fmt.Sprintf("ferrybench-probe-%d", os.Getpid()))
		if err := os.Mkdir(probe, 0o755); err == nil {
			if _, err := os.Stat(filepath.Join(probe, "cpu.stat")); err == nil {
				e.CPUMethod = "cgroup2 " + mnt + " cpu.stat usage_usec"
			}
			os.Remove(probe)
		}
	}
	if e.CPUMethod == "" {
		e.CPUMethod = "/proc/<pid>/stat utime+stime+cutime+cstime summed over the process tree"
	}
	e.MemMethod = "VmRSS (and Pss from smaps_rollup) summed over the server's processes"

	if _, err := e.startOpenSSH(authLine, userName); err != nil {
		return nil, fmt.Errorf("openssh: %w", err)
	}
	if _, err := e.startFerry(authLine, userName); err != nil {
		return nil, fmt.Errorf("ferry: %w", err)
	}
	// ferry first in every table.
	e.Servers[0], e.Servers[1] = e.Servers[1], e.Servers[0]
	return e, nil
}

func writeRandom(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// Incompressible data, so a server that compresses gains nothing it would not get in practice.
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ensureUser creates the dedicated account if missing and points its home at home. The password
// field becomes "*": Debian's useradd leaves "!", which sshd without PAM treats as a locked
// account and refuses even for public keys.
func ensureUser(home string) error {
	if _, err := user.Lookup(benchUser); err != nil {
		if err := run("useradd", "-M", "-d", home, "-s", "/bin/sh", benchUser); err != nil {
			return err
		}
	}
	return run("usermod", "-d", home, "-p", "*", benchUser)
}

func (e *Env) startOpenSSH(authLine, userName string) (*Server, error) {
	dir := filepath.Join(e.Dir, "openssh")
	home := filepath.Join(e.Dir, "openssh-home")
	for _, d := range []string{dir, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if u, err := user.Lookup(userName); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(home, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := os.Link(e.BigFile, filepath.Join(home, "big")); err != nil {
		return nil, err
	}
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_ed25519")); err != nil {
		return nil, err
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(authLine+"\n"), 0o644); err != nil {
		return nil, err
	}
	// Privilege separation needs its empty directory.
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// MaxStartups/MaxSessions as ferry's: the idle-session workload opens 1,000 connections.
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowUsers %s
Subsystem sftp internal-sftp
MaxStartups %s
MaxSessions 10
UseDNS no
LogLevel ERROR
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
`, port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "sshd.pid"), ak, userName, maxStartups)
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s := &Server{Name: "openssh", Port: port, RemoteDir: home, LocalDir: home}
	if err := e.start(s, filepath.Join(dir, "sshd.log"), e.opts.SSHD, "-D", "-e", "-f", cfgFile); err != nil {
		return nil, err
	}
	return s, nil
}

// maxStartups lets the login and idle-session workloads open connections in bursts without the
// servers' early-drop protection refusing them.
const maxStartups = "2000:30:4000"

func (e *Env) startFerry(authLine, userName string) (*Server, error) {
	data := filepath.Join(e.Dir, "ferry-data")
	home := filepath.Join(data, "home", userName)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	add := exec.Command(e.opts.Ferry, "--data-dir", data, "user", "add", userName, "--password-stdin", "--authorized-key", authLine)
	// A random password nobody uses: the workloads authenticate with the key.
	pw := make([]byte, 16)
	rand.Read(pw)
	add.Stdin = strings.NewReader(fmt.Sprintf("%x\n", pw))
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("user add: %v: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Link(e.BigFile, filepath.Join(home, "big")); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Logging as quiet as sshd's LogLevel ERROR; no transfer log, since sshd writes none.
	cfg := fmt.Sprintf(`max_startups = %q
per_source_penalties = "no"
[log]
level = "warn"
transfer_log = false
`, maxStartups)
	if e.opts.FerryMetrics != "" {
		cfg += fmt.Sprintf("[metrics]\nlisten = %q\npprof = true\n", e.opts.FerryMetrics)
	}
	cfgFile := filepath.Join(data, "ferry.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s := &Server{Name: "ferry", Port: port, RemoteDir: "/", LocalDir: home}
	if err := e.start(s, filepath.Join(data, "ferry.log"), e.opts.Ferry, "--data-dir", data, "serve", "--config", cfgFile, "--listen", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		return nil, err
	}
	return s, nil
}

func (e *Env) start(s *Server, logFile, name string, args ...string) error {
	e.Servers = append(e.Servers, s)
	s.argv = append([]string{name}, args...)
	s.logFile = logFile
	return e.launch(s)
}

// Restart stops the server and starts it again with the same settings: a fresh process, so
// memory a previous workload left in it does not hide what the next one allocates.
func (e *Env) Restart(s *Server) error {
	s.stop()
	return e.launch(s)
}

func (e *Env) launch(s *Server) error {
	name, args, logFile := s.argv[0], s.argv[1:], s.logFile
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.log = lf
	s.cmd = exec.Command(name, args...)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	// Its own process group, so our terminal's signals do not reach it before cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	if strings.HasPrefix(e.CPUMethod, "cgroup2") {
		mnt := cgroup2Mount()
		cg := filepath.Join(mnt, fmt.Sprintf("ferrybench-%s-%d", s.Name, os.Getpid()))
		if err := os.Mkdir(cg, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		s.cgroup = cg
		// Children (sshd's per-connection processes) inherit the cgroup.
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(s.cmd.Process.Pid)), 0o644); err != nil {
			return err
		}
	}
	if err := waitPort(s.Port, s.exited, logFile); err != nil {
		return err
	}
	e.opts.logf("%s listening on 127.0.0.1:%d (pid %d, cgroup %q)", s.Name, s.Port, s.cmd.Process.Pid, s.cgroup)
	return nil
}

// Pid is the server's main process.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if s.cgroup != "" {
		// Kill every process of the server, sshd's children included, then drop the cgroup.
		os.WriteFile(filepath.Join(s.cgroup, "cgroup.kill"), []byte("1"), 0o644)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	if s.cgroup != "" {
		for i := 0; i < 100; i++ {
			if os.Remove(s.cgroup) == nil || errors.Is(os.Remove(s.cgroup), os.ErrNotExist) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s.log != nil {
		s.log.Close()
	}
}

// Close stops the servers and removes the work directory.
func (e *Env) Close() {
	for _, s := range e.Servers {
		s.stop()
	}
	if e.Dir == "" {
		return
	}
	if e.mounted {
		if err := run("umount", e.Dir); err != nil {
			e.opts.logf("cleanup: %v", err)
			return
		}
	}
	os.RemoveAll(e.Dir)
}
