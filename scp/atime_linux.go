package scp

import (
	"io/fs"
	"syscall"
	"time"
)

// atime is the access time scp -p sends in T records (st_atim).
func atime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Sec, st.Atim.Nsec)
	}
	return fi.ModTime()
}
