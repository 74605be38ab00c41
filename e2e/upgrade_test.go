package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite"
)

var metricsRE = regexp.MustCompile(`msg=metrics address=(127\.0\.0\.2:\d+)`)

var upgradedRE = regexp.MustCompile(`msg="upgrade: new process accepts connections; draining this one" new_pid=(\d+)`)

// TestUpgradeOnSIGUSR2: a restart refused new clients while the old
// process drained and cut transfers still running after 30 s, so a
// server with customers always connected could not take a new release
// without both. On SIGUSR2 ferry starts its executable again with its
// listening sockets; clients connect throughout, a transfer in progress
// finishes on the old process, which exits once its last connection
// closed, and the new one serves on.
func TestUpgradeOnSIGUSR2(t *testing.T) {
	// The old process exits before the new one: the new one becomes this
	// test's child so that it can be stopped and reaped here.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	s := startServer(t, serverOpts{config: "[metrics]\nlisten = \"127.0.0.2:0\"\n"})
	s.addUser("alice", "pw-alice")
	s.mkHome(t, "alice")
	oldPid := s.cmd.Process.Pid
	// Runs before the harness's stop, which waits for the log pipe the
	// new process holds too.
	t.Cleanup(func() {
		if m := upgradedRE.FindStringSubmatch(s.stderr.String()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			stopReaped(t, pid)
		}
	})

	c, conn := s.dialSSH(t, "alice", "pw-alice")
	f, err := c.Create("upload")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if _, err := f.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}

	if err := s.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	// Clients connect (and log in) throughout the handover: none is
	// refused, whichever process accepts it.
	var newPid int
	deadline := time.Now().Add(30 * time.Second)
	for logins := 0; newPid == 0 || logins < 5; logins++ {
		lc, lconn := s.dialSSH(t, "alice", "pw-alice")
		if _, err := lc.Getwd(); err != nil {
			t.Fatalf("login %d during the upgrade: %v", logins, err)
		}
		lc.Close()
		lconn.Close()
		if m := upgradedRE.FindStringSubmatch(s.stderr.String()); m != nil && newPid == 0 {
			newPid, _ = strconv.Atoi(m[1])
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upgrade within 30 s:\n%s", s.stderr.String())
		}
	}
	if newPid == oldPid {
		t.Fatalf("new pid %d is the old one", newPid)
	}
	if strings.Count(s.stderr.String(), "ferry started") != 2 {
		t.Fatalf("want two \"ferry started\" lines:\n%s", s.stderr.String())
	}

	// The transfer started before the upgrade finishes on the old
	// process, which a stop would have cut after its drain timeout; the
	// old process ends no connection for being idle.
	if !alive(oldPid) {
		t.Fatal("the old process exited with a transfer in progress")
	}
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		t.Fatalf("transfer across the upgrade: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("closing the upload across the upgrade: %v", err)
	}
	got, err := getFile(c, "upload")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded across the upgrade: %d bytes, %v", len(got), err)
	}
	c.Close()
	conn.Close()

	deadline = time.Now().Add(stopTimeout)
	for alive(oldPid) {
		if time.Now().After(deadline) {
			t.Fatalf("old process still running %v after its last connection closed", stopTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The new process serves on, metrics too.
	nc, _ := s.dialSSH(t, "alice", "pw-alice")
	if _, err := getFile(nc, "upload"); err != nil {
		t.Fatalf("after the old process exited: %v", err)
	}
	m := metricsRE.FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", s.stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatalf("metrics after the old process exited: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "ferry_connections_active") {
		t.Fatalf("metrics after the upgrade: %s", body)
	}
	if !alive(newPid) {
		t.Fatal("new process gone")
	}
}

// alive reports whether pid still runs (a zombie counts as gone:
// exec.Cmd reaps the old process as soon as it exits).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// stopReaped sends SIGTERM to pid, a process this test reaps as a
// subreaper, and waits for it (killing it after stopTimeout).
func stopReaped(t *testing.T, pid int) {
	syscall.Kill(pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.ECHILD) {
			// Not this test's child (yet): its parent, the old process,
			// still runs (a test that failed early).
			for running(pid) {
				time.Sleep(20 * time.Millisecond)
			}
			done <- nil
			return
		}
		if err == nil && (!ws.Exited() || ws.ExitStatus() != 0) {
			err = fmt.Errorf("exit status %d, signal %v", ws.ExitStatus(), ws.Signal())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("new process: %v", err)
		}
	case <-time.After(stopTimeout):
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		t.Errorf("new process ignored SIGTERM for %v", stopTimeout)
	}
}

// TestUpgradeFailureKeepsServing: a new executable that cannot start
// (here: a configuration broken since the start) is reported, and the
// old process goes on serving as before.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	s := startServer(t, serverOpts{config: "max_auth_tries = 6\n"})
	s.addUser("alice", "pw-alice")
	s.mkHome(t, "alice")
	writeFile(t, s.config, []byte("max_auth_tries = \"many\"\n"))
	if err := s.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if !s.waitLog(func(l string) bool { return strings.Contains(l, "upgrade failed; this process goes on serving") }) {
		t.Fatalf("no upgrade failure logged:\n%s", s.stderr.String())
	}
	// Its exit status, not that of the readiness pipe too ("exit status
	// 1\nEOF").
	if !strings.Contains(s.stderr.String(), "ended before it accepted connections (exit status 1); its log says why") {
		t.Errorf("the failure does not give the exit status alone:\n%s", s.stderr.String())
	}
	c, _ := s.dialSSH(t, "alice", "pw-alice")
	if _, err := c.Getwd(); err != nil {
		t.Fatalf("after a failed upgrade: %v", err)
	}
	if !alive(s.cmd.Process.Pid) {
		t.Fatal("the old process exited after a failed upgrade")
	}
}

// ferryCopy copies the ferry executable into a directory of the test's
// own, for a test that replaces the file at its path (the other tests
// share ferryBin).
func ferryCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(ferryBin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ferry")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile puts content at path as a new file, as an install does (the
// running executable itself cannot be written: ETXTBSY).
func replaceFile(t *testing.T, path string, content []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// running reports whether pid runs (not gone, not a zombie).
func running(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	rest := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(rest) > 0 && rest[0] != "Z"
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, child)
		}
	}
	return kids
}

// TestUpgradeStopWhileNewProcessStarts: SIGTERM while the new process
// is still starting (here it never reports, as one whose database does
// not answer) stops ferry within a stop's time, and the half-started
// process goes with it. The old process waited for it for up to a
// minute without reading its signals, past systemd's TimeoutStopSec,
// and a process killed meanwhile left the new one running, orphaned.
func TestUpgradeStopWhileNewProcessStarts(t *testing.T) {
	bin := ferryCopy(t)
	s := startServer(t, serverOpts{bin: bin})
	s.addUser("alice", "pw-alice")
	s.mkHome(t, "alice")
	oldPid := s.cmd.Process.Pid
	// exec: the pid the old process started is the one that sleeps.
	replaceFile(t, bin, []byte("#!/bin/sh\nexec sleep 120\n"), 0o755)
	if err := s.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var kids []int
	for deadline := time.Now().Add(logTimeout); len(kids) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no new process started:\n%s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		kids = childrenOf(oldPid)
	}
	// Before the harness's stop, which would wait for the log pipe the
	// new process holds too.
	t.Cleanup(func() {
		for _, pid := range kids {
			if running(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// Still serving while the new process starts.
	c, conn := s.dialSSH(t, "alice", "pw-alice")
	if _, err := c.Getwd(); err != nil {
		t.Fatalf("while the new process starts: %v", err)
	}
	c.Close()
	conn.Close()

	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Fatalf("stop while the new process starts: %v", s.waitErr)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("ferry serve ignored SIGTERM for %v while the new process started", stopTimeout)
	}
	for _, pid := range kids {
		if running(pid) {
			t.Errorf("the new process %d outlived the stop", pid)
		}
	}
	if !strings.Contains(s.stderr.String(), "killed before it accepted connections: this process stops") {
		t.Errorf("the log does not say the new process was killed:\n%s", s.stderr.String())
	}
}

// TestUpgradeUnusableExecutable: a new executable that cannot be run at
// all (not executable, not a program, gone) is reported, and the old
// process goes on serving.
func TestUpgradeUnusableExecutable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, bin string)
		want    string
	}{
		{"not executable", func(t *testing.T, bin string) {
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			replaceFile(t, bin, b, 0o644)
		}, "permission denied"},
		{"garbage", func(t *testing.T, bin string) {
			replaceFile(t, bin, bytes.Repeat([]byte{0xde, 0xad}, 512), 0o755)
		}, "exec format error"},
		{"deleted", func(t *testing.T, bin string) {
			if err := os.Remove(bin); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := ferryCopy(t)
			s := startServer(t, serverOpts{bin: bin})
			s.addUser("alice", "pw-alice")
			s.mkHome(t, "alice")
			tc.replace(t, bin)
			if err := s.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
			if !s.waitLog(func(l string) bool { return strings.Contains(l, "upgrade failed; this process goes on serving") }) {
				t.Fatalf("no upgrade failure logged:\n%s", s.stderr.String())
			}
			if !strings.Contains(s.stderr.String(), tc.want) {
				t.Errorf("the failure does not say %q:\n%s", tc.want, s.stderr.String())
			}
			c, conn := s.dialSSH(t, "alice", "pw-alice")
			defer conn.Close()
			if _, err := c.Getwd(); err != nil {
				t.Fatalf("after a failed upgrade: %v", err)
			}
		})
	}
}

// notification is one sd_notify datagram and the pid that sent it.
type notification struct {
	pid   int
	state string
}

// listenNotify points NOTIFY_SOCKET (for the servers this test starts)
// at a socket of its own that records the sender of each datagram, as
// systemd checks it against the main process (NotifyAccess=main).
func listenNotify(t *testing.T) func(wait time.Duration) (notification, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	if serr != nil {
		t.Fatal(serr)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	return func(wait time.Duration) (notification, bool) {
		t.Helper()
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		c.SetReadDeadline(time.Now().Add(wait))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return notification{}, false
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			t.Fatalf("no credentials with %q: %v", buf[:n], err)
		}
		cred, err := unix.ParseUnixCredentials(&msgs[0])
		if err != nil {
			t.Fatal(err)
		}
		return notification{int(cred.Pid), string(buf[:n])}, true
	}
}

// TestUpgradeNotifiesSystemd: what systemd hears across an upgrade.
// READY=1 once, from the first process; MAINPID=<new> from the old one
// (the main process, the only one NotifyAccess=main listens to), and
// nothing from the new one before that; a reload sent to the draining
// process is the new one's; the old one's stop after its drain is no
// STOPPING=1 (the service goes on); the new one's stop is.
func TestUpgradeNotifiesSystemd(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	next := listenNotify(t)
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	s.mkHome(t, "alice")
	oldPid := s.cmd.Process.Pid
	t.Cleanup(func() {
		if m := upgradedRE.FindStringSubmatch(s.stderr.String()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			if running(pid) {
				stopReaped(t, pid)
			}
		}
	})
	want := func(pid int, state string) {
		t.Helper()
		n, ok := next(logTimeout)
		if !ok {
			t.Fatalf("no sd_notify message; want %q from %d:\n%s", state, pid, s.stderr.String())
		}
		if n.pid != pid || n.state != state {
			t.Fatalf("sd_notify %q from %d, want %q from %d", n.state, n.pid, state, pid)
		}
	}
	want(oldPid, "READY=1")

	// A connection keeps the old process draining until the test ends it.
	c, conn := s.dialSSH(t, "alice", "pw-alice")
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if !s.waitLog(func(l string) bool { return upgradedRE.MatchString(l) }) {
		t.Fatalf("no upgrade:\n%s", s.stderr.String())
	}
	newPid, _ := strconv.Atoi(upgradedRE.FindStringSubmatch(s.stderr.String())[1])
	want(oldPid, "MAINPID="+strconv.Itoa(newPid))

	// A reload sent to the draining process (systemctl reload racing
	// with the handover) reaches the new one, which reloads as the main
	// process. The draining process dropped it.
	s.cmd.Process.Signal(syscall.SIGHUP)
	n, ok := next(logTimeout)
	if !ok || n.pid != newPid || !strings.HasPrefix(n.state, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("at a reload sent to the draining process: %q from %d (%v), want RELOADING=1 from %d:\n%s", n.state, n.pid, ok, newPid, s.stderr.String())
	}
	want(newPid, "READY=1")

	// The old process stops (SIGTERM while it drains): the service does not.
	// (Its exit, not s.exited: the log pipe stays open in the new one.)
	s.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(stopTimeout); running(oldPid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the draining process ignored SIGTERM for %v", stopTimeout)
		}
	}
	c.Close()
	conn.Close()
	if n, ok := next(500 * time.Millisecond); ok {
		t.Fatalf("sd_notify %q from %d after the old process's stop; want nothing", n.state, n.pid)
	}

	// The new process stops as the main one.
	stopReaped(t, newPid)
	want(newPid, "STOPPING=1")
}

// TestUpgradeSignalsWhileNewProcessStarts: a reload signal sent to every
// ferry process (pkill -HUP ferry, systemctl kill) while the new process
// of an upgrade starts is taken once it serves. It killed the new process
// (SIGHUP's default action, before ferry listens for it), and the upgrade
// failed.
func TestUpgradeSignalsWhileNewProcessStarts(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	s.mkHome(t, "alice")
	oldPid := s.cmd.Process.Pid
	t.Cleanup(func() {
		for _, pid := range childrenOf(oldPid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if m := upgradedRE.FindStringSubmatch(s.stderr.String()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			if running(pid) {
				stopReaped(t, pid)
			}
		}
	})
	// The store held locked keeps the new process opening it (its
	// busy timeout) until the test lets go.
	dbPath := filepath.Join(s.dataDir, "ferry.db")
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer unlock()

	if err := s.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	// The new process is past its configuration once it has the
	// database open.
	var newPid int
	for deadline := time.Now().Add(logTimeout); newPid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no new process with the database open:\n%s", s.stderr.String())
		}
		for _, pid := range childrenOf(oldPid) {
			if holdsFile(pid, dbPath) {
				newPid = pid
			}
		}
	}
	if err := syscall.Kill(newPid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a signal's delivery is asynchronous
	unlock()
	if !s.waitLog(func(l string) bool {
		return upgradedRE.MatchString(l) || strings.Contains(l, "upgrade failed")
	}) || !upgradedRE.MatchString(s.stderr.String()) {
		t.Fatalf("the upgrade did not succeed:\n%s", s.stderr.String())
	}
	if !s.waitLog(func(l string) bool { return strings.Contains(l, "configuration reloaded") }) {
		t.Fatalf("the new process did not reload:\n%s", s.stderr.String())
	}
}

// holdsFile reports whether process pid has path open.
func holdsFile(pid int, path string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}
