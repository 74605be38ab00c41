package scp

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pkgsftp "github.com/pkg/sftp"

	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

type onceHookReader struct {
	once func()
	r    io.Reader
}

func (h *onceHookReader) Read(p []byte) (int, error) {
	if h.once != nil {
		h.once()
		h.once = nil
	}
	return h.r.Read(p)
}

// TestInPlaceUploadVsSFTPTruncate: an in-place scp upload (atomic
// uploads off) is charged its whole size up front and writes without the
// QuotaLock's read lock; an SFTP truncate of the target in the middle
// releases what scp had written, and scp then writes the rest at its
// offset. The file ends at full size but the counter holds only part of
// it; removing the file drives the counter negative.
func TestInPlaceUploadVsSFTPTruncate(t *testing.T) {
	root := t.TempDir()
	fsys, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	q := &memQuota{limit: 1 << 30}
	lock := new(sftp.QuotaLock)
	c := sameAccountSFTP(t, fsys, q, lock)

	const size = 4 * bufSize
	first := strings.Repeat("a", bufSize)
	rest := strings.Repeat("b", size-bufSize)
	in := io.MultiReader(
		strings.NewReader(fmt.Sprintf("C0644 %d f\n%s", size, first)),
		&onceHookReader{once: func() {
			if err := c.Truncate("/f", 0); err != nil {
				t.Errorf("sftp truncate: %v", err)
			}
		}, r: strings.NewReader(rest + "\x00")},
	)
	var ob, eb strings.Builder
	rw := struct {
		io.Reader
		io.Writer
	}{in, &ob}
	st := Serve(context.Background(), fsys, "scp -t .", rw, &eb, &Options{Quota: q, QuotaLock: lock, DirectUploads: true})
	if st != 0 {
		t.Fatalf("scp status %d: %q", st, eb.String())
	}
	fi, err := os.Stat(filepath.Join(root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("f is %d bytes; quota counts %d bytes, %d files", fi.Size(), q.bytes, q.files)
	if q.bytes != fi.Size() {
		t.Errorf("quota counts %d bytes for a %d-byte file", q.bytes, fi.Size())
	}
	if err := c.Remove("/f"); err != nil {
		t.Fatal(err)
	}
	t.Logf("after REMOVE: quota counts %d bytes, %d files", q.bytes, q.files)
	if q.bytes != 0 {
		t.Errorf("after removing the only file the counter is %d bytes, want 0", q.bytes)
	}
}

// TestInPlaceUploadTargetRemoved: an SFTP REMOVE of an in-place scp
// upload's target in the middle releases what the file held then; the
// rest, charged at the start and written to the file with no name left,
// goes with the file when the upload ends. It stayed charged for good.
func TestInPlaceUploadTargetRemoved(t *testing.T) {
	root := t.TempDir()
	fsys, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	q := &memQuota{limit: 1 << 30}
	lock := new(sftp.QuotaLock)
	c := sameAccountSFTP(t, fsys, q, lock)

	for _, complete := range []bool{true, false} {
		const size = 4 * bufSize
		first := strings.Repeat("a", bufSize)
		rest := strings.Repeat("b", size-bufSize) + "\x00"
		if !complete {
			rest = strings.Repeat("b", bufSize) // then EOF: the upload is cut
		}
		in := io.MultiReader(
			strings.NewReader(fmt.Sprintf("C0644 %d f\n%s", size, first)),
			&onceHookReader{once: func() {
				if err := c.Remove("/f"); err != nil {
					t.Errorf("sftp remove: %v", err)
				}
			}, r: strings.NewReader(rest)},
		)
		var ob, eb strings.Builder
		rw := struct {
			io.Reader
			io.Writer
		}{in, &ob}
		st := Serve(context.Background(), fsys, "scp -t .", rw, &eb, &Options{Quota: q, QuotaLock: lock, DirectUploads: true})
		if complete && st != 0 {
			t.Fatalf("scp status %d: %q", st, eb.String())
		}
		if _, err := os.Stat(filepath.Join(root, "f")); !os.IsNotExist(err) {
			t.Fatalf("f after its removal: %v", err)
		}
		if q.bytes != 0 || q.files != 0 {
			t.Fatalf("complete=%v: the home is empty; quota counts %d bytes, %d files", complete, q.bytes, q.files)
		}
	}
}

// sameAccountSFTP is an SFTP session (pkg/sftp over pipes) of the account
// an scp test uploads for: same home, quota and QuotaLock.
func sameAccountSFTP(t *testing.T, fsys vfs.FS, q sftp.Quota, lock *sftp.QuotaLock) *pkgsftp.Client {
	t.Helper()
	srv := sftp.NewServer(fsys, &sftp.Options{Quota: q, QuotaLock: lock, DirectUploads: true})
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	go func() { srv.Serve(context.Background(), sr, sw); sw.Close() }()
	c, err := pkgsftp.NewClientPipe(cr, cw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
