package shell

import "golang.org/x/sys/unix"

// readableBytes is what a read of fd, a pipe or a pty master, would
// return now (TIOCINQ, also known as FIONREAD).
func readableBytes(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
