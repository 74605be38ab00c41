package daemon

import (
	"testing"

	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/vfs"
)

// TestLimitQuota: statvfs under a quota reports the quota as the size and
// what is left of it as free, never more than the disk has, in the
// filesystem's fragment units; without a quota the disk's numbers stay.
func TestLimitQuota(t *testing.T) {
	disk := vfs.StatVFS{BlockSize: 4096, FragmentSize: 4096, Blocks: 1 << 26, BlocksFree: 1 << 25, BlocksAvail: 1 << 24,
		Files: 1 << 24, FilesFree: 1 << 23, FilesAvail: 1 << 23, NameMax: 255}
	tests := []struct {
		name string
		acct store.Account
		want vfs.StatVFS
	}{
		{"no quota", store.Account{UsedBytes: 5000}, disk},
		{"bytes", store.Account{QuotaBytes: 2 << 20, UsedBytes: 500000}, func() vfs.StatVFS {
			w := disk
			w.Blocks, w.BlocksFree, w.BlocksAvail = 512, 512-123, 512-123 // 500000 bytes take 123 blocks
			return w
		}()},
		{"over", store.Account{QuotaBytes: 1 << 20, UsedBytes: 2 << 20}, func() vfs.StatVFS {
			w := disk
			w.Blocks, w.BlocksFree, w.BlocksAvail = 256, 0, 0
			return w
		}()},
		{"disk fuller than the quota", store.Account{QuotaBytes: 1 << 50}, func() vfs.StatVFS {
			w := disk
			w.Blocks = 1 << 38
			return w
		}()},
		{"files", store.Account{QuotaFiles: 100, UsedFiles: 30}, func() vfs.StatVFS {
			w := disk
			w.Files, w.FilesFree, w.FilesAvail = 100, 70, 70
			return w
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := disk
			limitQuota(&st, &tt.acct)
			if st != tt.want {
				t.Errorf("limitQuota = %+v\nwant          %+v", st, tt.want)
			}
		})
	}
}
