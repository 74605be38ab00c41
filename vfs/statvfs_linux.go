package vfs

import (
	"os"
	"syscall"
)

func fstatvfs(f *os.File) (*StatVFS, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var st syscall.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstatfs(int(fd), &st) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	out := &StatVFS{
		BlockSize:    uint64(st.Bsize),
		FragmentSize: uint64(st.Frsize),
		Blocks:       st.Blocks,
		BlocksFree:   st.Bfree,
		BlocksAvail:  st.Bavail,
		Files:        st.Files,
		FilesFree:    st.Ffree,
		FilesAvail:   st.Ffree,
		// glibc's statvfs(3), whose f_fsid sftp-server sends, puts
		// __val[0] in the low half.
		FSID:    uint64(uint32(st.Fsid.X__val[1]))<<32 | uint64(uint32(st.Fsid.X__val[0])),
		NameMax: uint64(st.Namelen),
	}
	// ST_RDONLY and ST_NOSUID have the same values in statfs(2)'s f_flags
	// on Linux as in OpenSSH's wire flags.
	if st.Flags&0x1 != 0 {
		out.Flags |= StatVFSReadOnly
	}
	if st.Flags&0x2 != 0 {
		out.Flags |= StatVFSNoSUID
	}
	if out.FragmentSize == 0 {
		out.FragmentSize = out.BlockSize
	}
	return out, nil
}
