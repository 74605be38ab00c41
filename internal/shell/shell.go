// Package shell runs what an SSH session's "shell" and "exec" requests
// ask for (RFC 4254 §6.5) as real processes: the account's login shell on
// a pseudo-terminal (§6.2 pty-req, §6.7 window-change), commands through
// the shell for accounts with shell access, and, for accounts without it,
// only the commands of an allow-list, run without any shell.
//
// The daemon builds one Handler from its configuration and the account
// (New), and calls its ServeSSH for each session whose exec command is
// not scp (see package scp) and whose request is not a subsystem:
//
//	h, err := shell.New(shell.Config{
//		User: acct.Name, Home: homeDir, Shell: "/bin/bash",
//		AllowShell: acct.Permissions.AllowShell,
//		AllowedCommands: cfg.AllowedCommands,
//		UID: cfg.ShellUID, GID: cfg.ShellGID, Logger: log,
//	})
//	...
//	h.ServeSSH(session) // sends exit-status or exit-signal and closes
//
// Without a pty, commands get separate stdout and stderr pipes and stdin
// from the session, run in their own process group (client "signal"
// requests go to the group), and the exit status is sent once their
// output has drained: everything written before the process exited, then
// what background children still write for drainTimeout at most, so one
// that keeps the pipe open cannot hold the session. Background children of
// pipe sessions are not killed when the session ends, as with sshd; on a
// pty they get the terminal's hangup. When the client closes the channel
// or leaves while the command runs, its process group gets SIGHUP, and
// the command itself SIGKILL drainTimeout later if it is still running.
//
// Forced commands (authorized_keys command=, the account's forced
// command, a certificate's force-command) arrive as Session.Command() with
// the client's request in SSH_ORIGINAL_COMMAND (see package server); they
// are treated like any exec command: through the shell for shell
// accounts, through the allow-list otherwise — so an account without
// shell access can only be forced into an allowed command.
package shell

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/ferry-sftp/ferry/scp"
	"github.com/ferry-sftp/ferry/server"
)

// DefaultShell is the shell used when Config.Shell is empty.
const DefaultShell = "/bin/sh"

// DefaultPath is PATH for every process: the system directories only, as
// sshd's _PATH_STDPATH, so a user's own files are never found first.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// drainTimeout bounds how long output is still read after the process
// exited: a background child that keeps the terminal or a pipe open must
// not hold the session (and its goroutines) forever. sshd waits for the
// pty to close; a few seconds covers output still in flight.
const drainTimeout = 2 * time.Second

// signalQueue is how many client "signal" requests wait for delivery;
// more are dropped, as server.Session documents.
const signalQueue = 8

// Config describes one account's process rules.
type Config struct {
	// User is the account name, for USER and LOGNAME.
	User string
	// Home is the host directory processes start in and HOME names.
	Home string
	// Shell is the login shell (default DefaultShell).
	Shell string
	// Path is PATH (default DefaultPath).
	Path string
	// AllowShell lets the account run a shell and any command through
	// it. Without it only AllowedCommands run.
	AllowShell bool
	// AllowedCommands are command prefixes, in words, for accounts
	// without shell access: "rsync --server" allows every command whose
	// first words are "rsync" and "--server" (daemon: allowed_commands).
	AllowedCommands []string
	// UID and GID, both set, are the credentials processes run with
	// (daemon: shell_uid, shell_gid). They take effect only when ferry
	// runs as root; otherwise processes run as ferry's own user, and the
	// kernel's access checks against that user are the confinement.
	UID, GID *uint32
	// Logger receives one line per process; nil discards.
	Logger *slog.Logger
}

// Handler serves shell and exec requests for one account.
type Handler struct {
	cfg     Config
	allowed [][]string
	log     *slog.Logger
}

// New checks cfg and returns its Handler.
func New(cfg Config) (*Handler, error) {
	h := &Handler{cfg: cfg, log: cfg.Logger}
	if h.cfg.Shell == "" {
		h.cfg.Shell = DefaultShell
	}
	if h.cfg.Path == "" {
		h.cfg.Path = DefaultPath
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if !filepath.IsAbs(h.cfg.Shell) {
		return nil, fmt.Errorf("shell: shell %q is not an absolute path", h.cfg.Shell)
	}
	if !filepath.IsAbs(h.cfg.Home) {
		return nil, fmt.Errorf("shell: home %q is not an absolute path", cfg.Home)
	}
	h.cfg.Home = filepath.Clean(h.cfg.Home)
	if (cfg.UID == nil) != (cfg.GID == nil) {
		return nil, errors.New("shell: set both UID and GID or neither")
	}
	for _, a := range cfg.AllowedCommands {
		words, err := scp.SplitCommand(a)
		if err != nil {
			return nil, fmt.Errorf("shell: allowed command %q: %w", a, err)
		}
		h.allowed = append(h.allowed, words)
	}
	return h, nil
}

// ServeSSH runs the session's shell or command and reports its exit
// status or signal.
func (h *Handler) ServeSSH(s *server.Session) {
	cmd := s.Command()
	var attrs []any
	if c := s.Conn(); c != nil {
		// One account runs commands from several connections at once
		// (rclone's hash checks): the lines name the one, first, as the
		// login and SFTP lines do.
		attrs = append(attrs, "remote", c.RemoteAddr().String())
	}
	log := h.log.With(append(attrs, "user", s.User(), "command", cmd)...)
	p, winch, hasPty := s.Pty()
	var c *exec.Cmd
	switch {
	case h.cfg.AllowShell && cmd == "":
		// A login shell: argv[0] starts with '-' (sh(1), bash(1)).
		c = exec.CommandContext(s.Context(), h.cfg.Shell)
		c.Args = []string{"-" + filepath.Base(h.cfg.Shell)}
	case h.cfg.AllowShell:
		c = exec.CommandContext(s.Context(), h.cfg.Shell, "-c", cmd)
	case cmd == "":
		fmt.Fprintf(s.Stderr(), "ferry: shell access is not allowed\n")
		log.Info("shell: shell refused")
		s.Exit(1)
		return
	default:
		argv, err := h.checkAllowed(cmd)
		if err != nil {
			fmt.Fprintf(s.Stderr(), "ferry: command not allowed: %s\n", strings.ReplaceAll(cmd, "\n", " "))
			log.Info("shell: command refused", "reason", err)
			s.Exit(1)
			return
		}
		// argv[0] is absolute, resolved in Config.Path. Allow-listed
		// commands are file transfer tools: no terminal.
		c = exec.CommandContext(s.Context(), argv[0], argv[1:]...)
		hasPty = false
	}
	c.Dir = h.cfg.Home
	c.Env = h.environ(s, hasPty, p.Term)
	// The session's end (the client closed the channel or left) hangs up
	// the process group, as sshd's closing of the terminal does. A
	// process that ignores the hangup is killed drainTimeout later (its
	// group is left alone, as sshd leaves nohup'd children): waiting for
	// it would hold the handler, and with it the connection and a
	// graceful Shutdown, for as long as it chose to run.
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGHUP) }
	c.WaitDelay = drainTimeout
	attr := &syscall.SysProcAttr{}
	if h.cfg.UID != nil && os.Geteuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: *h.cfg.UID, Gid: *h.cfg.GID, Groups: []uint32{}}
	}
	var err error
	if hasPty {
		err = h.runPty(s, c, attr, p, winch)
	} else {
		err = h.runPipes(s, c, attr)
	}
	if err != nil {
		if cr := attr.Credential; cr != nil {
			if why := homeUnreachable(h.cfg.Home, cr.Uid, cr.Gid); why != "" {
				log.Warn("shell: cannot start: the home is not reachable by the command's uid; give it access (chown or chmod the home and the directories above it, or --home elsewhere)", "reason", why)
				fmt.Fprintf(s.Stderr(), "ferry: cannot run command: home directory not accessible\n")
				s.Exit(127)
				return
			}
		}
		log.Warn("shell: cannot start", "err", err)
		fmt.Fprintf(s.Stderr(), "ferry: cannot run command\n")
		s.Exit(127)
		return
	}
	reportExit(s, c.ProcessState)
	log.Info("shell: process ended", "state", c.ProcessState.String())
}

// environ is the process environment: the session's (already filtered by
// AcceptEnv and the key's environment=) for shell accounts, less the
// variables that make the loader or the shell run code (codeEnv), only
// SSH_ORIGINAL_COMMAND and locale variables for allow-listed commands,
// then the variables sshd sets, which always win.
func (h *Handler) environ(s *server.Session, hasPty bool, term string) []string {
	var env []string
	for _, e := range s.Environ() {
		name, _, _ := strings.Cut(e, "=")
		if h.cfg.AllowShell && !codeEnv(name) || name == "SSH_ORIGINAL_COMMAND" || name == "LANG" || strings.HasPrefix(name, "LC_") {
			env = append(env, e)
		}
	}
	env = append(env,
		"USER="+h.cfg.User, "LOGNAME="+h.cfg.User, "HOME="+h.cfg.Home,
		"SHELL="+h.cfg.Shell, "PATH="+h.cfg.Path)
	if c := s.Conn(); c != nil {
		rh, rp := hostPort(c.RemoteAddr())
		lh, lp := hostPort(c.LocalAddr())
		env = append(env, "SSH_CLIENT="+rh+" "+rp+" "+lp, "SSH_CONNECTION="+rh+" "+rp+" "+lh+" "+lp)
	}
	if hasPty && term != "" {
		env = append(env, "TERM="+term)
	}
	return env
}

// codeEnv reports whether a variable makes the dynamic loader or the
// shell, which every command of a shell account goes through, run code
// or load files the client names. An admin's accept_env = ["*"] (sshd
// has the same hole with AcceptEnv *) let a shell account with a forced
// command (command= or --force-command) send LD_PRELOAD=<a library it
// uploaded> and run its own code instead of the forced command.
func codeEnv(name string) bool {
	switch name {
	case "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "CDPATH", "PROMPT_COMMAND",
		"GCONV_PATH", "LOCPATH", "GLIBC_TUNABLES", "HOSTALIASES", "RESOLV_HOST_CONF", "NLSPATH":
		return true
	}
	// LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT...; bash's exported
	// functions (BASH_FUNC_name%%) replace commands by name.
	return strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "BASH_FUNC_")
}

func hostPort(a net.Addr) (string, string) {
	if a == nil {
		return "UNKNOWN", "0"
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return "UNKNOWN", "0"
	}
	return h, p
}

// runPty runs c on a new pseudo-terminal as the leader of a new session
// with the terminal as its controlling tty, as sshd's do_exec_pty.
func (h *Handler) runPty(s *server.Session, c *exec.Cmd, attr *syscall.SysProcAttr, p server.Pty, winch <-chan server.Window) error {
	ptmx, tty, err := openPty()
	if err != nil {
		return err
	}
	defer ptmx.Close()
	setSize(ptmx, p.Window)
	applyModes(tty, p)
	if cr := attr.Credential; cr != nil {
		// As sshd's pty_setowner: the user's own terminal, so programs
		// that reopen it by name (write, mesg, ssh-askpass) can.
		os.Chown(tty.Name(), int(cr.Uid), int(cr.Gid))
		os.Chmod(tty.Name(), 0o620)
	}
	c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
	c.Env = append(c.Env, "SSH_TTY="+tty.Name())
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	c.SysProcAttr = attr
	started, stop := h.forwardSignals(s)
	defer stop()
	if err := c.Start(); err != nil {
		tty.Close()
		return err
	}
	tty.Close()
	started(c.Process.Pid)
	sizeDone := make(chan struct{})
	go func() {
		for {
			select {
			case w := <-winch:
				setSize(ptmx, w)
			case <-sizeDone:
				return
			}
		}
	}()
	defer close(sizeDone)
	// stdin: the client's keystrokes. It ends with the session; the
	// goroutine is not waited for (it may be blocked reading the client).
	go io.Copy(ptmx, s)
	// The output ends with EIO once the last holder of the terminal
	// exits, or drainTimeout after the shell did (see outputDrain).
	out := startDrain(ptmx, s)
	c.Wait()
	out.exited()
	out.wait(s.Context().Done())
	return nil
}

// runPipes runs c with stdin, stdout and stderr as pipes, in its own
// process group so client signals reach it and its children.
func (h *Handler) runPipes(s *server.Session, c *exec.Cmd, attr *syscall.SysProcAttr) error {
	attr.Setpgid = true
	c.SysProcAttr = attr
	stdin, err := c.StdinPipe()
	if err != nil {
		return err
	}
	// Our own pipes rather than exec's copying goroutines, whose Wait
	// stops copying c.WaitDelay after the process exited even while the
	// output waits only for a slow client (see outputDrain).
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return err
	}
	defer errR.Close()
	c.Stdout, c.Stderr = outW, errW
	started, stop := h.forwardSignals(s)
	defer stop()
	err = c.Start()
	outW.Close() // the child holds its own copies
	errW.Close()
	if err != nil {
		return err
	}
	started(c.Process.Pid)
	go func() {
		io.Copy(stdin, s)
		stdin.Close() // the client's EOF
	}()
	// EOF goes with the exit status, not as soon as the command closed
	// its stdout and stderr as sshd sends it: PuTTY closes the channel
	// once EOF went both ways, and sshd keeps a channel the client
	// closed open until its command exits, but ferry's ends then, so an
	// early EOF lost plink's exit status (it exited 0).
	out, errOut := startDrain(outR, s), startDrain(errR, s.Stderr())
	c.Wait()
	out.exited()
	errOut.exited()
	out.wait(s.Context().Done())
	errOut.wait(s.Context().Done())
	return nil
}

// forwardSignals delivers the client's "signal" requests (RFC 4254
// §6.9) to the process group. It is registered before the process
// starts, so a signal sent as soon as the first output arrives is not
// lost; it waits in the queue until started gives the group.
func (h *Handler) forwardSignals(s *server.Session) (started func(pid int), stop func()) {
	ch := make(chan server.Signal, signalQueue)
	s.Signals(ch)
	pids := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		var pid int
		select {
		case pid = <-pids:
		case <-done:
			return
		}
		for {
			select {
			case name := <-ch:
				if sig, ok := signalNumber(name); ok {
					syscall.Kill(-pid, sig)
				}
			case <-done:
				return
			}
		}
	}()
	return func(pid int) { pids <- pid }, func() {
		s.Signals(nil)
		close(done)
	}
}

func reportExit(s *server.Session, ps *os.ProcessState) {
	if ps == nil {
		s.Exit(127)
		return
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if name, ok := signalName(ws.Signal()); ok {
			s.ExitSignal(name, ws.CoreDump(), "")
			return
		}
		// sh(1) convention for signals without an SSH name.
		s.Exit(128 + int(ws.Signal()))
		return
	}
	s.Exit(ps.ExitCode())
}

// signals are the names RFC 4254 §6.10 defines, without "SIG".
var signals = [...]struct {
	name server.Signal
	sig  syscall.Signal
}{
	{"ABRT", syscall.SIGABRT}, {"ALRM", syscall.SIGALRM}, {"FPE", syscall.SIGFPE},
	{"HUP", syscall.SIGHUP}, {"ILL", syscall.SIGILL}, {"INT", syscall.SIGINT},
	{"KILL", syscall.SIGKILL}, {"PIPE", syscall.SIGPIPE}, {"QUIT", syscall.SIGQUIT},
	{"SEGV", syscall.SIGSEGV}, {"TERM", syscall.SIGTERM}, {"USR1", syscall.SIGUSR1},
	{"USR2", syscall.SIGUSR2},
}

func signalNumber(name server.Signal) (syscall.Signal, bool) {
	for _, s := range signals {
		if s.name == name {
			return s.sig, true
		}
	}
	return 0, false
}

func signalName(sig syscall.Signal) (server.Signal, bool) {
	for _, s := range signals {
		if s.sig == sig {
			return s.name, true
		}
	}
	return "", false
}

func setSize(ptmx *os.File, w server.Window) {
	if w.Columns == 0 || w.Rows == 0 || w.Columns > 0xffff || w.Rows > 0xffff {
		return // keep the default size rather than a nonsensical one
	}
	ws := &unix.Winsize{Row: uint16(w.Rows), Col: uint16(w.Columns),
		Xpixel: uint16(min(w.WidthPx, 0xffff)), Ypixel: uint16(min(w.HeightPx, 0xffff))}
	// Through SyscallConn, not Fd: Fd would switch the master to
	// blocking mode and end read deadlines (see openPty).
	if sc, err := ptmx.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
	}
}

// openPty opens a pseudo-terminal pair with the master in non-blocking
// mode, registered with the runtime poller: pty.Open leaves it blocking
// (it calls Fd), and a blocking master cannot be given a read deadline,
// which is what bounds the drain after the process exited.
func openPty() (ptmx, tty *os.File, err error) {
	m, tty, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		tty.Close()
		return nil, nil, err
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "/dev/ptmx"), tty, nil
}
