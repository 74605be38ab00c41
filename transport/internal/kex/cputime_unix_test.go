//go:build unix

package kex

import "syscall"

// processCPU returns the process's user+system CPU time in nanoseconds.
// Benchmarks report it per op because wall time on a shared, loaded
// machine says little about what one login costs.
func processCPU() (int64, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
