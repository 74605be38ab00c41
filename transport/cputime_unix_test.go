//go:build unix

package transport_test

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time of this process (both ends of a
// loopback benchmark), which is less noisy than wall time on a shared host.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
