package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	c, _ := s.dialSSH(t, "alice", "pw-alice")
	if _, err := c.Getwd(); err != nil {
		t.Fatalf("after a failed upgrade: %v", err)
	}
	if !alive(s.cmd.Process.Pid) {
		t.Fatal("the old process exited after a failed upgrade")
	}
}
