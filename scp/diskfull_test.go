package scp

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ferry-sftp/ferry/vfs"
)

// fullDisk is a filesystem on which no file grows past room bytes: a
// write across it writes what fits and fails with ENOSPC, as write(2)
// does on a full disk.
type fullDisk struct {
	vfs.FS
	room int64
}

func (d *fullDisk) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{File: f, name: name, room: d.room}, nil
}

type fullDiskFile struct {
	vfs.File
	name string
	room int64
}

func (f *fullDiskFile) Write(p []byte) (int, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	fits := max(0, min(int64(len(p)), f.room-fi.Size()))
	n, err := f.File.Write(p[:fits])
	if err == nil && n < len(p) {
		err = &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return n, err
}

// TestSinkInPlaceDiskFullCharge: an in-place upload cut short by a full
// disk keeps what fitted, and the quota is charged for exactly that. The
// last, short write was not counted, so the file held up to one buffer
// (20 KiB with OpenSSH's scp onto a tmpfs) more than it was charged.
func TestSinkInPlaceDiskFullCharge(t *testing.T) {
	root := t.TempDir()
	local, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	const room = bufSize + bufSize/2 // the second write is short
	const size = 3 * bufSize
	q := &memQuota{limit: 1 << 30}
	in := "C0644 " + strconv.Itoa(size) + " f\n" + strings.Repeat("x", size) + "\x00"
	var ob, eb strings.Builder
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(in), &ob}
	st := Serve(context.Background(), &fullDisk{FS: local, room: room}, "scp -t .", rw, &eb, &Options{Quota: q, DirectUploads: true})
	if want := "\x00\x00\x01scp: /f: No space left on device\n"; ob.String() != want || st != 1 {
		t.Errorf("out %q status %d, want %q status 1", ob.String(), st, want)
	}
	fi, err := os.Stat(filepath.Join(root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != room {
		t.Fatalf("file holds %d bytes, want the %d that fitted", fi.Size(), room)
	}
	if q.bytes != fi.Size() || q.files != 1 {
		t.Errorf("charged %d bytes in %d files for a file of %d bytes", q.bytes, q.files, fi.Size())
	}
}
