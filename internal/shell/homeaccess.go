package shell

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// homeUnreachable explains why a process with uid and gid (and no
// supplementary groups, as commands run) cannot enter home, or returns
// "". Commands run in the home; a home the uid cannot reach failed at
// start with only "fork/exec /usr/bin/id: permission denied", the
// chdir's error reported against the program: ferry's own homes are 0700
// and its user's, which a shell_uid or --uid command cannot enter.
// Permission bits only (no ACLs): a false alarm is never raised, since
// it is asked only after the start failed.
func homeUnreachable(home string, uid, gid uint32) string {
	if uid == 0 {
		return ""
	}
	abs, err := filepath.EvalSymlinks(home)
	if err != nil {
		return ""
	}
	dir := "/"
	for _, name := range append([]string{""}, strings.Split(strings.TrimPrefix(abs, "/"), "/")...) {
		dir = filepath.Join(dir, name)
		fi, err := os.Stat(dir)
		if err != nil {
			return ""
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return ""
		}
		mode := uint32(fi.Mode().Perm())
		var search bool
		switch {
		case st.Uid == uid:
			search = mode&0o100 != 0
		case st.Gid == gid:
			search = mode&0o010 != 0
		default:
			search = mode&0o001 != 0
		}
		if !search {
			return fmt.Sprintf("uid %d gid %d cannot enter %s (mode %04o, owner %d:%d) on the way to the home %s", uid, gid, dir, mode, st.Uid, st.Gid, home)
		}
	}
	return ""
}
