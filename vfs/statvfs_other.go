//go:build !linux

package vfs

import (
	"os"
	"syscall"
)

func fstatvfs(f *os.File) (*StatVFS, error) { return nil, syscall.ENOSYS }
