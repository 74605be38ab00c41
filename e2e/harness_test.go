package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// ferryBin and hostKeyTemplate are written once by TestMain before any test
// runs and only read afterwards: building the binary and generating an RSA
// host key take seconds, too long to repeat for each of the tests.
var (
	ferryBin        string
	hostKeyTemplate string
)

// Bounds on how long the harness waits for the server; generous because a
// loaded CI machine can be slow, and none of them is a timing assertion.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second // SIGTERM, then SIGKILL, as the brief for a service manager
	toolTimeout  = 2 * time.Minute  // one client invocation
	logTimeout   = 10 * time.Second // an event the server logs after the client saw it
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "ferry-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go env GOMOD:", err)
		return 1
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	ferryBin = filepath.Join(tmp, "ferry")
	build := exec.Command("go", "build", "-o", ferryBin, "./cmd/ferry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building ferry: %v\n%s", err, out)
		return 1
	}
	hostKeyTemplate = filepath.Join(tmp, "hostkeys")
	if err := makeHostKeys(hostKeyTemplate); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: generating host keys:", err)
		return 1
	}
	return m.Run()
}

// makeHostKeys lets ferry generate its default host keys in dir by starting
// it once and stopping it as soon as it has started.
func makeHostKeys(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var stderr lockedBuffer
	cmd := exec.Command(ferryBin, "--data-dir", dir, "serve", "--listen", "127.0.0.1:0")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(stderr.String(), "ferry started") {
		if time.Now().After(deadline) {
			return fmt.Errorf("ferry did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	return cmd.Wait()
}

// lockedBuffer collects output while the test reads it.
type lockedBuffer = testenv.LockedBuffer

// server is one running "ferry serve" process.
type server struct {
	t       *testing.T
	dataDir string
	config  string // --config path, "" for none
	port    int
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{}
	waitErr error
	bin     string // the executable; "" = ferryBin
}

type serverOpts struct {
	config   string // TOML text written to <tmp>/ferry.toml; "" = no --config
	freshKey bool   // let ferry generate host keys instead of copying the template
	dataDir  string // reuse this data directory (restart); "" = new
	port     int    // listen on this port (restart); 0 = any free port
	bin      string // run this copy of ferry (a test that replaces it); "" = ferryBin
}

// startServer starts ferry serve and returns once it accepts connections.
// The server is stopped at cleanup and its log shown if the test failed.
func startServer(t *testing.T, o serverOpts) *server {
	t.Helper()
	s := &server{t: t, dataDir: o.dataDir, port: o.port, bin: o.bin}
	if s.dataDir == "" {
		s.dataDir = filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if !o.freshKey {
			copyHostKeys(t, s.dataDir)
		}
	}
	if o.config != "" {
		s.config = filepath.Join(t.TempDir(), "ferry.toml")
		writeFile(t, s.config, []byte(o.config))
	}
	s.start()
	return s
}

var listeningRE = regexp.MustCompile(`msg=listening addr=127\.0\.0\.1:(\d+)`)

func (s *server) start() {
	t := s.t
	t.Helper()
	args := []string{"--data-dir", s.dataDir, "serve", "--listen", "127.0.0.1:" + strconv.Itoa(s.port)}
	if s.config != "" {
		args = append(args, "--config", s.config)
	}
	s.stderr = &lockedBuffer{}
	s.exited = make(chan struct{})
	bin := s.bin
	if bin == "" {
		bin = ferryBin
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	log := s.stderr
	t.Cleanup(func() {
		// A crash or a recovered panic anywhere in the server fails the
		// test that caused it, whatever the client saw.
		if err := s.stop(); err != nil {
			t.Errorf("ferry serve exit: %v", err)
		}
		if strings.Contains(log.String(), "panic") {
			t.Errorf("ferry serve logged a panic")
		}
		if t.Failed() {
			t.Logf("ferry serve log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		out := s.stderr.String()
		if m := listeningRE.FindStringSubmatch(out); m != nil && strings.Contains(out, "ferry started") {
			s.port, _ = strconv.Atoi(m[1])
			break
		}
		select {
		case <-s.exited:
			t.Fatalf("ferry serve exited during start (%v):\n%s", s.waitErr, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry serve did not start within %v:\n%s", startTimeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", s.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("ferry serve logged it was listening but does not accept: %v", err)
	}
	c.Close()
}

// waitLog polls the server's log until ok accepts it, for up to
// logTimeout, and reports whether it did.
func (s *server) waitLog(ok func(log string) bool) bool {
	deadline := time.Now().Add(logTimeout)
	for !ok(s.stderr.String()) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// stop sends SIGTERM and kills the server if it has not exited after
// stopTimeout. It returns the exit error (nil for status 0).
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.waitErr
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("ferry serve ignored SIGTERM for %v", stopTimeout)
	}
	return s.waitErr
}

// restart stops the server and starts it again on the same port and data
// directory.
func (s *server) restart() {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Fatalf("stopping ferry serve: %v\n%s", err, s.stderr.String())
	}
	s.start()
}

func (s *server) home(user string) string { return filepath.Join(s.dataDir, "home", user) }

// hostKeyPub returns the path of the server's public host key of a type
// ("ed25519", "ecdsa", "rsa").
func (s *server) hostKeyPub(kind string) string {
	return filepath.Join(s.dataDir, "ssh_host_"+kind+"_key.pub")
}

// ferry runs the ferry CLI against the server's data directory.
func (s *server) ferry(stdin string, args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(ferryBin, append([]string{"--data-dir", s.dataDir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addUser creates an account with a password and extra "user add" flags.
func (s *server) addUser(name, password string, flags ...string) {
	s.t.Helper()
	args := append([]string{"user", "add", name, "--password-stdin"}, flags...)
	out, err := s.ferry(password+"\n", args...)
	if err != nil {
		s.t.Fatalf("ferry user add %s: %v\n%s", name, err, out)
	}
	if !strings.Contains(out, "created account "+name) {
		s.t.Fatalf("ferry user add %s printed %q", name, out)
	}
}

// mkHome creates a user's home before the first login (ferry makes it at
// login, mode 0700), for tests that place files there first.
func (s *server) mkHome(t *testing.T, user string) string {
	t.Helper()
	h := s.home(user)
	if err := os.MkdirAll(h, 0o700); err != nil {
		t.Fatal(err)
	}
	return h
}

func copyHostKeys(t *testing.T, dst string) {
	t.Helper()
	ents, err := os.ReadDir(hostKeyTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "ssh_host_") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(hostKeyTemplate, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// result is one client invocation.
type result struct {
	out  string // stdout and stderr
	code int    // exit status; -1 if it did not exit normally
}

// run runs a client program in dir with a time bound.
func run(t *testing.T, dir, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	r := result{out: out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %v:\n%s", name, args, toolTimeout, r.out)
	}
	return r
}

// sshOpts are the OpenSSH client options every test uses: no config file,
// no agent, a throwaway known_hosts, password prompts allowed for sshpass.
func sshOpts(port int) []string {
	return []string{
		"-F", "/dev/null",
		"-o", "BatchMode=no",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR",
		"-o", "PubkeyAuthentication=no",
		"-o", "ConnectTimeout=10",
		"-P", strconv.Itoa(port),
	}
}

// sftpBatch runs OpenSSH sftp with a batch script, logging in by password
// through sshpass, in the local directory dir.
func (s *server) sftpBatch(t *testing.T, dir, user, password, batch string, extra ...string) result {
	t.Helper()
	sshpass := testenv.NeedTool(t, "sshpass")
	sftp := testenv.NeedTool(t, "sftp")
	bf := filepath.Join(t.TempDir(), "batch")
	writeFile(t, bf, []byte(batch))
	// extra comes first: for ssh options the first value given wins.
	args := []string{"-p", password, sftp}
	args = append(args, extra...)
	args = append(args, sshOpts(s.port)...)
	args = append(args, "-b", bf, user+"@127.0.0.1")
	return run(t, dir, "", sshpass, args...)
}

func mustSucceed(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d:\n%s", what, r.code, r.out)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}
