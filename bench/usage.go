package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every Linux architecture Go
// supports (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// CPU returns the CPU time the server's processes have used so far, exited children included.
func (s *Server) CPU() (time.Duration, error) {
	if s.cgroup != "" {
		b, err := os.ReadFile(filepath.Join(s.cgroup, "cpu.stat"))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(n) * time.Microsecond, err
			}
		}
		return 0, fmt.Errorf("%s/cpu.stat: no usage_usec", s.cgroup)
	}
	// Fallback: the tree's own times plus what reaped children left in cutime/cstime. Children
	// that exited but were not yet reaped are missed until they are, so measure after settling.
	var ticks int64
	for _, pid := range s.Procs() {
		f, err := procStat(pid)
		if err != nil {
			continue
		}
		for _, i := range []int{13, 14, 15, 16} { // utime stime cutime cstime, proc(5)
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procStat returns the fields of /proc/pid/stat, numbered as in proc(5) from 0.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// comm may contain spaces and parentheses; it ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := append([]string{strconv.Itoa(pid), "comm"}, strings.Fields(string(b[i+1:]))...)
	if len(f) < 17 {
		return nil, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return f, nil
}

// Procs lists the server's processes: its cgroup's members, or its process tree.
func (s *Server) Procs() []int {
	if s.cgroup != "" {
		b, err := os.ReadFile(filepath.Join(s.cgroup, "cgroup.procs"))
		if err == nil {
			var pids []int
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil {
					pids = append(pids, n)
				}
			}
			return pids
		}
	}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil {
			continue
		}
		ppid, _ := strconv.Atoi(f[3])
		children[ppid] = append(children[ppid], pid)
	}
	pids := []int{s.Pid()}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, children[pids[i]]...)
	}
	return pids
}

// Memory is resident memory summed over the server's processes, in KiB.
type Memory struct {
	RSS   int64 // VmRSS: shared pages counted once per process
	PSS   int64 // Pss: shared pages divided among their sharers
	Procs int
}

// Mem reads the server's memory now.
func (s *Server) Mem() Memory {
	var m Memory
	for _, pid := range s.Procs() {
		m.Procs++
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			m.RSS += kbField(b, "VmRSS:")
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
			m.PSS += kbField(b, "Pss:")
		}
	}
	return m
}

func kbField(b []byte, name string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// settle waits until the server is back to at most want processes (sshd's per-connection
// children gone), so their CPU time has been accounted; bounded at 10 seconds.
func (s *Server) settle(want int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(s.Procs()) > want {
		time.Sleep(20 * time.Millisecond)
	}
}
