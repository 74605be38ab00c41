package daemon

import (
	"os"
	"sync"

	"github.com/ferry-sftp/ferry/vfs"
)

// sharedHome is an account's confined home (vfs.Local, one os.Root), opened
// by its first session and shared by those that follow while any is live:
// a descriptor per account, not per session. Clients like FileZilla and
// rclone open several connections at once, and 10,000 idle sessions of
// one account would otherwise need 20,000 descriptors.
type sharedHome struct {
	path string
	fs   vfs.FS
	refs int // sessions holding it; guarded by Daemon.sessMu
}

// homeShare is one session's hold on a sharedHome; Close lets go of it,
// and the last one closes the directory.
type homeShare struct {
	vfs.FS
	close func() error
}

func (h *homeShare) Close() error { return h.close() }

// openHome returns the account's home at path, confined, shared with its
// other live sessions. The caller holds a session slot (sessionAccount),
// which keeps the account's entry alive; without one it gets a home of its
// own. Close releases it: os.Root's descriptor is otherwise only closed by
// a garbage collection, and a server with little garbage ran out of
// descriptors.
func (d *Daemon) openHome(name, path string) (vfs.FS, error) {
	d.sessMu.Lock()
	as := d.sessions[name]
	h := (*sharedHome)(nil)
	if as != nil && as.home != nil && as.home.path == path {
		h = as.home
		h.refs++
	}
	d.sessMu.Unlock()
	if h != nil {
		// The admin may have moved or recreated the home since it was
		// opened: new sessions get the directory the path names now.
		if sameDir(h.fs, path) {
			return d.share(as, h), nil
		}
		d.letGo(as, h)
	}
	fsys, err := vfs.Local(path)
	if err != nil || as == nil {
		return fsys, err
	}
	h = &sharedHome{path: path, fs: fsys, refs: 1}
	d.sessMu.Lock()
	// A home another session opened meanwhile, or a stale one, is
	// replaced; it still closes with the last session holding it.
	as.home = h
	d.sessMu.Unlock()
	return d.share(as, h), nil
}

func (d *Daemon) share(as *accountSessions, h *sharedHome) vfs.FS {
	return &homeShare{FS: h.fs, close: sync.OnceValue(func() error { return d.letGo(as, h) })}
}

// letGo drops one hold on h and closes it with the last.
func (d *Daemon) letGo(as *accountSessions, h *sharedHome) error {
	d.sessMu.Lock()
	h.refs--
	last := h.refs == 0
	if last && as.home == h {
		as.home = nil
	}
	d.sessMu.Unlock()
	if last {
		return h.fs.Close()
	}
	return nil
}

// sameDir reports whether fsys's root is still the directory path names.
func sameDir(fsys vfs.FS, path string) bool {
	open, err := fsys.Stat("/")
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(open, now)
}
