//go:build !linux

package shell

import (
	"os"

	"github.com/ferry-sftp/ferry/server"
)

// applyModes leaves the kernel's defaults where termios ioctls differ.
func applyModes(*os.File, server.Pty) {}
