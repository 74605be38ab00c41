package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/store"
)

// MaxRecountEntries bounds one home recount: a walk of a few million
// entries takes seconds on a warm cache, and a home with more than this
// is not one a file-transfer quota was meant for. Past it the recount
// fails (ErrHomeTooLarge) and the counters are left as they were.
const MaxRecountEntries = 4 << 20

// ErrHomeTooLarge: the home holds more than MaxRecountEntries entries.
var ErrHomeTooLarge = fmt.Errorf("more than %d entries", MaxRecountEntries)

// HomeUsage is what a home holds as the quota counts it: the sizes and
// number of its regular files, a file with several hard links once (a
// file's quota goes back with its last name, see sftp's REMOVE).
type HomeUsage struct {
	Bytes, Files int64
}

// CountHome walks the home confined with os.Root, without following
// symbolic links (a link's target is charged to whoever owns the target,
// if it is in a home at all), and counts its regular files. A home that
// does not exist yet holds nothing.
func CountHome(ctx context.Context, home string) (HomeUsage, error) {
	var u HomeUsage
	root, err := os.OpenRoot(home)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	defer root.Close()
	type inode struct{ dev, ino uint64 }
	// Only files with more than one link are remembered: bounded by the
	// walk's entry count.
	linked := make(map[inode]struct{})
	entries := 0
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entries++; entries > MaxRecountEntries {
			return ErrHomeTooLarge
		}
		if entries%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !d.Type().IsRegular() {
			return nil
		}
		// root.Lstat rather than d.Info(): Info stats by the full path,
		// outside the root's confinement, and a directory swapped for a
		// symlink in between would be followed.
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint64(st.Nlink) > 1 {
			k := inode{uint64(st.Dev), uint64(st.Ino)}
			if _, seen := linked[k]; seen {
				return nil
			}
			linked[k] = struct{}{}
		}
		u.Bytes += fi.Size()
		u.Files++
		return nil
	})
	if err != nil {
		return HomeUsage{}, fmt.Errorf("counting %s: %w", home, err)
	}
	return u, nil
}

// RecountHome counts the home and stores the result as the account's
// usage counters.
func RecountHome(ctx context.Context, st store.Store, name, home string) (HomeUsage, error) {
	u, err := CountHome(ctx, home)
	if err != nil {
		return u, err
	}
	return u, st.SetUsage(ctx, name, min(u.Bytes, store.MaxQuota), min(u.Files, store.MaxQuota))
}

// homeRecount records whether this process has recounted an account's
// home; its mutex makes an account's concurrent first sessions wait for
// one recount instead of each walking the home.
type homeRecount struct {
	mu   sync.Mutex
	done bool
	// stale is set when a quota release was lost (quotaReleaseFailed):
	// the next session recounts even though one did before.
	stale atomic.Bool
}

// storeQuota is the account's quota as its sessions charge it.
func (d *Daemon) storeQuota(name string) storeQuota {
	return storeQuota{st: d.st, account: name, timeout: quotaStoreTimeout, releaseFailed: func(bytes, files int64, err error) {
		d.quotaReleaseFailed(name, bytes, files, err)
	}}
}

// quotaReleaseFailed handles a removal, truncate or failed upload whose
// release the store did not record (locked, restarting, its disk full):
// the account stayed charged for what it no longer held, silently, until
// the daemon restarted or an admin ran a recount. It is logged, and the
// account's next session recounts its home.
func (d *Daemon) quotaReleaseFailed(name string, bytes, files int64, err error) {
	d.log.Warn("quota usage not given back; the home is recounted at the account's next session",
		"user", name, "bytes", bytes, "files", files, "error", err)
	d.recountMu.Lock()
	r := d.recounts[name]
	if r == nil {
		r = &homeRecount{}
		d.recounts[name] = r
	}
	d.recountMu.Unlock()
	r.stale.Store(true)
}

// recountOnce recounts the home of an account with a quota at its first
// session after the daemon started, so files put there outside ferry (or
// before the quota, an import, a re-created account) are charged. It runs
// under the account's QuotaLock as a shrink does: the account's other
// sessions in this process cannot write between the walk and SetUsage,
// which would otherwise overwrite their charges. (Sessions on other
// servers sharing the database are not ordered with it; the counters are
// then off by what they wrote during the walk until the next recount.)
// A failed recount is logged and tried again at the next session; the
// session goes on with the stored counters.
func (d *Daemon) recountOnce(ctx context.Context, acct *store.Account, home string, lock *sftp.QuotaLock) {
	if acct.QuotaBytes == 0 && acct.QuotaFiles == 0 {
		return
	}
	d.recountMu.Lock()
	r := d.recounts[acct.Name]
	if r == nil {
		// One entry per account that logged in: bounded by the store.
		r = &homeRecount{}
		d.recounts[acct.Name] = r
	}
	d.recountMu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done && !r.stale.Swap(false) {
		return
	}
	done := lock.Shrink()
	u, err := RecountHome(ctx, d.st, acct.Name, home)
	done()
	// A home too large to walk stays too large: do not walk it again at
	// every session.
	r.done = err == nil || errors.Is(err, ErrHomeTooLarge)
	if err != nil {
		d.log.Warn("quota recount failed; keeping the stored usage", "user", acct.Name, "error", err)
		return
	}
	d.log.Info("quota usage recounted", "user", acct.Name, "used_bytes", u.Bytes, "used_files", u.Files)
}
