package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

func serverSignal(s string) server.Signal { return server.Signal(s) }

// accounts maps user names to their handlers; every password is "pw".
type accounts map[string]*Handler

func (a accounts) Password(_ context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	h, ok := a[m.User()]
	if !ok || string(pw) != "pw" {
		return nil, auth.ErrDenied
	}
	return &auth.Permissions{NoPTY: !h.cfg.AllowShell}, nil
}
func (accounts) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}
func (accounts) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

// startServer serves the accounts on 127.0.0.1 and returns the port.
func startServer(t *testing.T, accts accounts) string {
	t.Helper()
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hk}},
		Auth:      auth.Config{Authenticator: accts, FailureDelay: -1},
		AcceptEnv: []string{"LANG", "LC_*", "FERRY_TEST"},
		Handler:   server.HandlerFunc(func(s *server.Session) { accts[s.User()].ServeSSH(s) }),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	if cfg.Home == "" {
		cfg.Home = t.TempDir()
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func dial(t *testing.T, port, user string) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", "127.0.0.1:"+port, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runCmd runs cmd in a new session and returns stdout, stderr and the
// exit status (or -1 with the signal name).
func runCmd(t *testing.T, c *ssh.Client, cmd, stdin string) (string, string, int, string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errb, strings.NewReader(stdin)
	err = s.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0, ""
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitStatus(), ee.Signal()
	}
	t.Fatalf("%q: %v", cmd, err)
	return "", "", 0, ""
}

func TestExecShellAccount(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")

	out, errOut, st, _ := runCmd(t, c, "echo out; echo err >&2; exit 4", "")
	if out != "out\n" || errOut != "err\n" || st != 4 {
		t.Errorf("got %q %q %d", out, errOut, st)
	}
	// stdin reaches the command; output drains before the exit status.
	big := strings.Repeat("0123456789", 100000)
	out, _, st, _ = runCmd(t, c, "cat", big)
	if out != big || st != 0 {
		t.Errorf("cat: %d bytes, status %d", len(out), st)
	}
	// Environment and working directory.
	out, _, _, _ = runCmd(t, c, `printf '%s|%s|%s|%s|' "$USER" "$HOME" "$PATH" "$(pwd)"; echo "${SSH_CONNECTION%% *}"`, "")
	if want := fmt.Sprintf("alice|%s|%s|%s|127.0.0.1\n", h.cfg.Home, DefaultPath, h.cfg.Home); out != want {
		t.Errorf("env: %q, want %q", out, want)
	}
	s, _ := c.NewSession()
	s.Setenv("FERRY_TEST", "v1")
	s.Setenv("PATH", "/evil")
	b, _ := s.Output(`echo "$FERRY_TEST $PATH"`)
	if string(b) != "v1 "+DefaultPath+"\n" {
		t.Errorf("client env: %q", b)
	}
}

func TestExecSignal(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, _ := s.StdoutPipe()
	if err := s.Start("echo ready; sleep 30"); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	if _, err := io.ReadFull(r, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("%q %v", line, err)
	}
	s.Signal(ssh.SIGTERM)
	err = s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Errorf("wait: %v", err)
	}
}

func TestAllowedCommands(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "f"), []byte("abc"), 0o644)
	h := newHandler(t, Config{User: "bob", Home: home, AllowedCommands: []string{"md5sum", "cat"}})
	port := startServer(t, accounts{"bob": h})
	c := dial(t, port, "bob")
	out, _, st, _ := runCmd(t, c, "md5sum f", "")
	if out != "900150983cd24fb0d6963f7d28e17f72  f\n" || st != 0 {
		t.Errorf("md5sum: %q %d", out, st)
	}
	// An absolute path is the account's view, "/" being the home, as in
	// SFTP: rclone checks an upload with "md5sum /dir/file".
	out, _, st, _ = runCmd(t, c, "md5sum /f", "")
	if out != "900150983cd24fb0d6963f7d28e17f72  ./f\n" || st != 0 {
		t.Errorf("md5sum /f: %q %d", out, st)
	}
	out, errOut, st, _ := runCmd(t, c, "md5sum /etc/passwd", "")
	if out != "" || !strings.Contains(errOut, "./etc/passwd: No such file") || st != 1 {
		t.Errorf("md5sum /etc/passwd: %q %q %d", out, errOut, st)
	}
	for _, cmd := range []string{"ls /", "md5sum /../etc/passwd", "md5sum f; id", "cat ../x", "sh -c id"} {
		out, errOut, st, _ := runCmd(t, c, cmd, "")
		if out != "" || errOut != "ferry: command not allowed: "+cmd+"\n" || st != 1 {
			t.Errorf("%q: %q %q %d", cmd, out, errOut, st)
		}
	}
	// No shell: a shell request is refused with a message.
	s, _ := c.NewSession()
	var errb bytes.Buffer
	s.Stderr = &errb
	s.Shell()
	err := s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 || errb.String() != "ferry: shell access is not allowed\n" {
		t.Errorf("shell: %v %q", err, errb.String())
	}
}

func TestRsync(t *testing.T) {
	rsync := testenv.NeedTool(t, "rsync")
	sshBin := testenv.NeedTool(t, "ssh")
	sshpass := testenv.NeedTool(t, "sshpass")
	home, denied, local := t.TempDir(), t.TempDir(), t.TempDir()
	src := filepath.Join(local, "tree")
	files := map[string]string{"a.txt": "a", "sub/b bin": strings.Repeat("b\x00", 40000), "sub/deep/c": "c"}
	for p, d := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(d), 0o644)
	}
	accts := accounts{
		"rs":   newHandler(t, Config{User: "rs", Home: home, AllowedCommands: []string{"rsync --server"}}),
		"nors": newHandler(t, Config{User: "nors", Home: denied, AllowedCommands: []string{"md5sum"}}),
	}
	port := startServer(t, accts)
	e := fmt.Sprintf("%s -p pw %s -p %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o PubkeyAuthentication=no",
		sshpass, sshBin, port)
	run := func(user string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, rsync, append([]string{"-e", e}, args...)...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := run("rs", "-a", src, "rs@127.0.0.1:"); err != nil {
		t.Fatalf("rsync upload: %v\n%s", err, out)
	}
	for p, d := range files {
		b, err := os.ReadFile(filepath.Join(home, "tree", p))
		if err != nil || string(b) != d {
			t.Errorf("%s: %v (%d bytes)", p, err, len(b))
		}
	}
	// Downloading back works too (rsync --server --sender).
	back := filepath.Join(local, "back")
	if out, err := run("rs", "-a", "rs@127.0.0.1:tree/", back); err != nil {
		t.Fatalf("rsync download: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(back, "sub", "deep", "c")); string(b) != "c" {
		t.Error("download contents")
	}
	// An absolute target is in the account's view, "/" being the home.
	if out, err := run("rs", "-a", src+"/", "rs@127.0.0.1:/abs"); err != nil {
		t.Errorf("absolute target: %v %q", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(home, "abs", "sub", "deep", "c")); err != nil || string(b) != "c" {
		t.Errorf("absolute target in the home: %q %v", b, err)
	}
	// Outside the home: refused.
	if out, err := run("rs", "-a", src, "rs@127.0.0.1:/../x"); err == nil || !strings.Contains(out, "ferry: command not allowed") {
		t.Errorf("target above the home: %v %q", err, out)
	}
	out, err := run("nors", "-a", src, "nors@127.0.0.1:")
	if err == nil || !strings.Contains(out, "ferry: command not allowed: rsync --server") {
		t.Errorf("denied account: %v %q", err, out)
	}
	if ents, _ := os.ReadDir(denied); len(ents) != 0 {
		t.Errorf("denied account got files: %v", ents)
	}
}

// ptyOutput collects what the ssh client prints on its terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor polls the output for a pattern, bounded in time.
func (p *ptyOutput) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	for i := 0; i < 300; i++ {
		if m := re.FindString(p.String()); m != "" {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %v in %q", re, p.String())
	return ""
}

func TestPtyShell(t *testing.T) {
	sshBin := testenv.NeedTool(t, "ssh")
	sshpass := testenv.NeedTool(t, "sshpass")
	h := newHandler(t, Config{User: "alice", AllowShell: true, Shell: "/bin/sh"})
	port := startServer(t, accounts{"alice": h})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshpass, "-p", "pw", sshBin, "-tt", "-p", port, "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no", "alice@127.0.0.1")
	cmd.Env = append(os.Environ(), "TERM=xterm-ferry")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out ptyOutput
	go io.Copy(&out, ptmx)

	io.WriteString(ptmx, "echo hi$((40+2)); echo \"T=$TERM\"; stty size\n")
	out.waitFor(t, regexp.MustCompile(`hi42`))
	out.waitFor(t, regexp.MustCompile(`T=xterm-ferry`))
	out.waitFor(t, regexp.MustCompile(`\n24 80\r?\n`))
	// A resize of the client's terminal reaches the remote one through
	// window-change (ssh forwards SIGWINCH).
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 33, Cols: 101}); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGWINCH)
	for i := 0; i < 100; i++ {
		io.WriteString(ptmx, "stty size\n")
		if regexp.MustCompile(`\n33 101\r?\n`).MatchString(out.String()) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out.waitFor(t, regexp.MustCompile(`\n33 101\r?\n`))
	io.WriteString(ptmx, "exit 3\n")
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("ssh exit: %v\n%q", err, out.String())
	}
}

// TestBackgroundChildDoesNotHoldSession: a background process keeping
// stdout (or the terminal) open delays the exit status by drainTimeout
// at most, not until it ends.
func TestBackgroundChildDoesNotHoldSession(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	for _, withPty := range []bool{false, true} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if withPty {
			if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		s.Stdout = &out
		done := make(chan error, 1)
		marker := filepath.Join(h.cfg.Home, fmt.Sprintf("marker-%v", withPty))
		go func() { done <- s.Run("(sleep 20; touch " + marker + ") & echo done; exit 5") }()
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("pty=%v: session held by a background child", withPty)
		}
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 5 || !strings.Contains(out.String(), "done") {
			t.Errorf("pty=%v: %v %q", withPty, err, out.String())
		}
		// The exit status came before the background child finished.
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("pty=%v: exit status only after the background child ended", withPty)
		}
		s.Close()
	}
}

// TestLogNamesConnection: a command's log line names the connection it
// came from, as the login, SFTP and SCP lines do; with one account's
// commands coming from several connections at once (rclone's md5sum
// checks) it named only the user.
func TestLogNamesConnection(t *testing.T) {
	var logs testenv.LockedBuffer
	h := newHandler(t, Config{User: "alice", AllowShell: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	port := startServer(t, accounts{"alice": h})
	c := dial(t, port, "alice")
	if _, _, st, _ := runCmd(t, c, "true", ""); st != 0 {
		t.Fatalf("true: exit status %d", st)
	}
	// The line follows the exit status the client has already seen.
	var line string
	for deadline := time.Now().Add(10 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "process ended") {
				line = l
			}
		}
	}
	if !strings.Contains(line, "remote=127.0.0.1:") {
		t.Errorf("process line does not name the connection: %q\n%s", line, logs.String())
	}
}
