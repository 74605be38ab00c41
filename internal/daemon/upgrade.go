package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Upgrading in place (SIGUSR2). A restart stopped accepting while the old
// process drained, refusing every new client for up to the drain timeout,
// and cut transfers still running when it ran out: a hosting server with
// customers always connected could not take a new release without both.
// sshd avoids them by serving each connection in its own process; ferry
// serves them all in one, so on SIGUSR2 it starts its executable again
// (the file now at its path: the new release) with its listening sockets,
// and once the new process reports that it accepts, stops accepting and
// lets its own connections finish (upgradeDrainTimeout) before it exits.
// Clients connect throughout; the kernel queues them on the shared
// sockets. If the new process fails to start, the old one goes on serving
// and logs why.
//
// The listening sockets pass as descriptors 3, 4, ... in the order of
// upgradeListenersEnv, "kind=address" entries separated by ";" (kind ssh
// or metrics, address as configured), and the readiness pipe follows them
// at upgradeReadyFDEnv.
const (
	upgradeListenersEnv = "FERRY_UPGRADE_LISTENERS"
	upgradeReadyFDEnv   = "FERRY_UPGRADE_READY_FD"
)

// upgradeStartTimeout bounds the new process's start (configuration,
// database, host keys) before the old one gives up on it and kills it.
const upgradeStartTimeout = time.Minute

// upgradeDrainTimeout bounds how long the old process serves its
// connections after an upgrade: transfers are let finish, not cut at
// the 30 s a stop allows.
const upgradeDrainTimeout = 24 * time.Hour

// drainAfterUpgrade stops accepting and serves this process's
// connections until their clients end them, as sshd's session processes
// outlive a restarted listener: none is ended for being idle (a client
// between transfers would see its connection drop for no reason of its
// own), and one still logging in finishes here. After upgradeDrainTimeout
// what is left is closed. SIGTERM (or ctx) turns it into a stop's drain,
// which ends idle connections and cuts the rest after the drain timeout.
// SIGHUP goes on to the new process (newProc, whose handle signals no other
// process once it exited): a reload sent while the
// service manager still named this one the main process (systemctl
// reload during the handover, kill -HUP of the pid an admin had) was
// lost, and the new process could be serving a configuration read before
// the edit the reload was for.
func (d *Daemon) drainAfterUpgrade(ctx context.Context, lns []net.Listener, acceptWG *sync.WaitGroup, sigs <-chan os.Signal, newProc *os.Process) error {
	for _, ln := range lns {
		ln.Close()
	}
	acceptWG.Wait()
	done := make(chan struct{})
	go func() {
		d.connWG.Wait()
		close(done)
	}()
	timer := time.NewTimer(upgradeDrainTimeout)
	defer timer.Stop()
	for {
		select {
		case <-done:
			d.log.Info("ferry stopped (upgraded)")
			return nil
		case <-timer.C:
			d.log.Warn("upgrade drain timeout: closing remaining connections", "timeout", upgradeDrainTimeout)
			d.closeAllConns()
			<-done
			d.log.Info("ferry stopped (upgraded)")
			return nil
		case <-ctx.Done():
			return d.shutdown(nil, acceptWG, 0, false)
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				d.log.Info("shutting down after an upgrade", "signal", sig.String())
				return d.shutdown(nil, acceptWG, 0, false)
			}
			if sig == syscall.SIGHUP {
				if err := newProc.Signal(syscall.SIGHUP); err != nil {
					d.log.Warn("reload signal not passed to the new process", "new_pid", newProc.Pid, "error", err)
				} else {
					d.log.Info("reload signal passed to the new process", "new_pid", newProc.Pid)
				}
				continue
			}
			d.log.Info("signal ignored: this process only drains since an upgrade", "signal", sig.String())
		}
	}
}

// inheritedListeners are the sockets an upgrading parent passed, by
// "kind=address", taken by Listen and the metrics listener in turn.
type inheritedListeners struct {
	mu      sync.Mutex
	byKey   map[string][]*os.File
	readyFD *os.File
}

// takeInheritedListeners reads the descriptors an upgrading parent
// passed, and removes its variables from the environment so that no
// later child (a command, a further upgrade) sees stale numbers. nil when
// this process was not started by an upgrade.
func takeInheritedListeners() (*inheritedListeners, error) {
	spec, ok := os.LookupEnv(upgradeListenersEnv)
	if !ok {
		return nil, nil
	}
	readyFD := os.Getenv(upgradeReadyFDEnv)
	os.Unsetenv(upgradeListenersEnv)
	os.Unsetenv(upgradeReadyFDEnv)
	il := &inheritedListeners{byKey: map[string][]*os.File{}}
	fd := 3
	for _, key := range strings.Split(spec, ";") {
		if key == "" {
			continue
		}
		il.byKey[key] = append(il.byKey[key], os.NewFile(uintptr(fd), key))
		fd++
	}
	if n, err := strconv.Atoi(readyFD); err == nil && n == fd {
		il.readyFD = os.NewFile(uintptr(n), "upgrade-ready")
	} else {
		il.closeRest()
		return nil, fmt.Errorf("upgrade: %s=%q does not follow the %d listeners", upgradeReadyFDEnv, readyFD, fd-3)
	}
	return il, nil
}

// take returns the inherited listener for kind and the configured
// address, if the parent passed one.
func (il *inheritedListeners) take(kind, addr string) (net.Listener, bool, error) {
	if il == nil {
		return nil, false, nil
	}
	il.mu.Lock()
	defer il.mu.Unlock()
	key := kind + "=" + addr
	files := il.byKey[key]
	if len(files) == 0 {
		return nil, false, nil
	}
	f := files[0]
	il.byKey[key] = files[1:]
	defer f.Close() // FileListener holds its own descriptor
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, false, fmt.Errorf("upgrade: inherited listener %s: %w", key, err)
	}
	return ln, true, nil
}

// closeRest closes the inherited listeners nothing took (an address the
// new configuration dropped).
func (il *inheritedListeners) closeRest() {
	if il == nil {
		return
	}
	il.mu.Lock()
	defer il.mu.Unlock()
	for k, files := range il.byKey {
		for _, f := range files {
			f.Close()
		}
		delete(il.byKey, k)
	}
}

// ready tells the parent that this process accepts connections.
func (il *inheritedListeners) ready() {
	if il == nil || il.readyFD == nil {
		return
	}
	il.readyFD.Write([]byte("ready\n"))
	il.readyFD.Close()
	il.readyFD = nil
}

// upgradeSource is one listening socket to hand to the new process.
type upgradeSource struct {
	key string // kind=address as configured
	ln  net.Listener
}

// startUpgrade starts the executable again with the listeners and waits
// until it reports that it accepts connections. It returns the new
// process; on an error the new process is gone and nothing changed.
// Closing abort (this process stops) kills a new process still starting:
// it is nobody's main process yet, and nothing else would stop it.
func startUpgrade(sources []upgradeSource, logOutput io.Writer, abort <-chan struct{}) (*os.Process, error) {
	// Only a file, never a pipe from this process: one would break when
	// this process exits, and a Go program writing its log to a broken
	// pipe on descriptor 2 dies of SIGPIPE.
	stderr, ok := logOutput.(*os.File)
	if !ok {
		stderr = os.Stderr
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the executable: %w", err)
	}
	// Descriptors are duplicated through SyscallConn and handed to
	// syscall.ForkExec, not through exec.Cmd: os.StartProcess calls Fd on
	// each file, which puts the descriptor into blocking mode, and
	// O_NONBLOCK belongs to the socket shared with this process's own
	// listener. Its accept then blocked the thread in accept(2), where
	// Close cannot reach it, and a stop after a failed upgrade hung.
	var fds []int
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	dupOf := func(what string, sc syscall.Conn) error {
		rc, err := sc.SyscallConn()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var derr error
		if err := rc.Control(func(fd uintptr) {
			var nfd int
			nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3)
			if derr == nil {
				fds = append(fds, nfd)
			}
		}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if derr != nil {
			return fmt.Errorf("%s: %w", what, derr)
		}
		return nil
	}
	if err := dupOf("log output", stderr); err != nil {
		return nil, err
	}
	var keys []string
	for _, s := range sources {
		sc, ok := s.ln.(syscall.Conn)
		if !ok {
			return nil, fmt.Errorf("listener %s cannot be passed on", s.key)
		}
		if err := dupOf("listener "+s.key, sc); err != nil {
			return nil, err
		}
		keys = append(keys, s.key)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	err = dupOf("readiness pipe", w)
	w.Close()
	if err != nil {
		return nil, err
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	if err := dupOf(os.DevNull, devNull); err != nil {
		return nil, err
	}
	// Child descriptors: 0 /dev/null, 1 and 2 the log, 3... the
	// listeners, then the readiness pipe.
	logFD, nullFD := fds[0], fds[len(fds)-1]
	files := []uintptr{uintptr(nullFD), uintptr(logFD), uintptr(logFD)}
	for _, fd := range fds[1 : len(fds)-1] {
		files = append(files, uintptr(fd))
	}
	env := append(os.Environ(),
		upgradeListenersEnv+"="+strings.Join(keys, ";"),
		upgradeReadyFDEnv+"="+strconv.Itoa(3+len(keys)))
	pid, err := syscall.ForkExec(exe, append([]string{exe}, os.Args[1:]...), &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", exe, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	// This process's copies close now (deferred), the pipe's writer
	// among them: the child's is then the only one, and the read below
	// sees EOF if it exits.
	for _, fd := range fds {
		syscall.Close(fd)
	}
	fds = nil
	exited := make(chan error, 1)
	go func() {
		st, err := proc.Wait()
		if err == nil && !st.Success() {
			err = errors.New(st.String())
		}
		exited <- err
	}()

	line := make(chan error, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		if err == nil && s != "ready\n" {
			err = fmt.Errorf("unexpected %q", s)
		}
		line <- err
	}()
	timeout := time.NewTimer(upgradeStartTimeout)
	defer timeout.Stop()
	select {
	case err := <-line:
		if err == nil {
			return proc, nil
		}
		proc.Kill() // if it still runs, it said something else
		werr := <-exited
		why := err
		if errors.Is(err, io.EOF) && werr != nil {
			why = werr // it exited: its status, not the pipe's EOF
		}
		return nil, fmt.Errorf("new process %d ended before it accepted connections (%v); its log says why", pid, why)
	case <-timeout.C:
		proc.Kill()
		<-exited
		return nil, fmt.Errorf("new process %d did not accept connections within %v; killed", pid, upgradeStartTimeout)
	case <-abort:
		proc.Kill()
		<-exited
		return nil, fmt.Errorf("new process %d killed before it accepted connections: this process stops", pid)
	}
}
