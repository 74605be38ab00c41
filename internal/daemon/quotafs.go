package daemon

import (
	"context"
	"time"

	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/vfs"
)

// quotaStatTimeout bounds the usage read behind one statvfs answer: the
// request waits on the database, and a stalled one must not hold it.
const quotaStatTimeout = 5 * time.Second

// quotaFS is an account's home as seen by a client when the account has a
// quota: statvfs@openssh.com (sftp's df) reports the quota as the
// filesystem's size and what is left of it as free, bounded by what the
// disk really has. The host's disk (hundreds of GiB free) told a customer
// with a 100 MiB quota nothing about how much more it could upload.
type quotaFS struct {
	vfs.FS
	ctx     context.Context // the session's; the store read ends with it
	st      store.Store
	account string
}

func (q *quotaFS) StatVFS(name string) (*vfs.StatVFS, error) {
	st, err := q.FS.StatVFS(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(q.ctx, quotaStatTimeout)
	defer cancel()
	acct, err := q.st.LookupAccount(ctx, q.account)
	if err != nil {
		return nil, err
	}
	limitQuota(st, acct)
	return st, nil
}

// limitQuota narrows st to acct's byte and file quotas, counted in
// st's fragment size as statvfs(3) counts blocks.
func limitQuota(st *vfs.StatVFS, acct *store.Account) {
	unit := st.FragmentSize
	if unit == 0 {
		unit = st.BlockSize
	}
	if acct.QuotaBytes > 0 && unit > 0 {
		total := (uint64(acct.QuotaBytes) + unit - 1) / unit
		used := (uint64(max(acct.UsedBytes, 0)) + unit - 1) / unit
		free := total - min(used, total)
		st.Blocks = total
		st.BlocksFree = min(st.BlocksFree, free)
		st.BlocksAvail = min(st.BlocksAvail, free)
	}
	if acct.QuotaFiles > 0 {
		free := uint64(acct.QuotaFiles) - min(uint64(max(acct.UsedFiles, 0)), uint64(acct.QuotaFiles))
		st.Files = uint64(acct.QuotaFiles)
		st.FilesFree = min(st.FilesFree, free)
		st.FilesAvail = min(st.FilesAvail, free)
	}
}
