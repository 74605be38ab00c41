package sftp

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ferry-sftp/ferry/vfs"
)

// fullDisk is a filesystem on which no file grows past room bytes: a
// write across it writes what fits and fails with ENOSPC, as write(2)
// does on a full disk (a short write, then the error).
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

func (f *fullDiskFile) WriteAt(p []byte, off int64) (int, error) {
	fits := max(0, min(int64(len(p)), f.room-off))
	n, err := f.File.WriteAt(p[:fits], off)
	if err == nil && n < len(p) {
		err = &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return n, err
}

func (f *fullDiskFile) Write(p []byte) (int, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return f.WriteAt(p, fi.Size())
}

// startServerOnFS serves a session over fsys, a home wrapped by the test.
func startServerOnFS(t *testing.T, fsys vfs.FS, opts *Options) *testServer {
	t.Helper()
	ts := &testServer{done: make(chan error, 1)}
	sr, cw := io.Pipe()
	cr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ts.cr, ts.cw = cr, cw
	srv := NewServer(fsys, opts)
	go func() {
		err := srv.Serve(context.Background(), sr, sw)
		sw.Close()
		sr.Close()
		ts.done <- err
	}()
	t.Cleanup(func() {
		cw.Close()
		cr.Close()
		<-ts.done
	})
	return ts
}

// TestDiskFullInPlaceUploadCharge: an in-place upload that fills the
// disk keeps what was written, and the quota is charged for that, not for
// what the WRITEs asked for: a 3 MB put onto a 2 MB disk stayed charged
// 3 MB for a 1.5 MB file until the next recount. The client is told why
// ("no space left on device", where it read "Failure").
func TestDiskFullInPlaceUploadCharge(t *testing.T) {
	const room = 10000
	for _, pipelined := range []bool{false, true} {
		name := "one at a time"
		if pipelined {
			name = "pipelined"
		}
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			local, err := vfs.Local(home)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { local.Close() })
			q := &testQuota{limit: 1 << 20}
			ts := startServerOnFS(t, &fullDisk{FS: local, room: room}, &Options{Quota: q, DirectUploads: true})
			rc := ts.raw(t)
			rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
			h := rc.handle()
			const writes = 8
			block := bytes.Repeat([]byte("d"), 4096)
			var statuses []statusMsg
			for i := range writes {
				rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: uint64(i) * 4096, Data: block})
				if !pipelined {
					statuses = append(statuses, rc.status())
				}
			}
			if pipelined {
				for range writes {
					statuses = append(statuses, rc.status())
				}
			}
			full := 0
			for _, s := range statuses {
				switch {
				case s.Code == StatusOK:
				case s.Code == StatusFailure && s.Message == "no space left on device":
					full++
				default:
					t.Errorf("WRITE answered %d %q, want OK or FAILURE \"no space left on device\"", s.Code, s.Message)
				}
			}
			if full == 0 {
				t.Fatalf("no WRITE failed on a disk with room for %d bytes", room)
			}
			rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
			rc.expectStatus(StatusOK)
			fi, err := os.Stat(filepath.Join(home, "f"))
			if err != nil {
				t.Fatal(err)
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.bytes != fi.Size() || q.files != 1 {
				t.Errorf("charged %d bytes in %d files for a file of %d bytes", q.bytes, q.files, fi.Size())
			}
		})
	}
}

// TestFullDiskStatusText: the errors that say the host took no more are
// sent with their text, which clients print, where sftp-server sends
// "Failure".
func TestFullDiskStatusText(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{
		syscall.ENOSPC: "no space left on device",
		syscall.EDQUOT: "disk quota exceeded",
		syscall.EFBIG:  "file too large",
		syscall.EROFS:  "read-only file system",
	} {
		code, msg := statusFromError(&fs.PathError{Op: "write", Path: "/f", Err: errno})
		if code != StatusFailure || msg != want {
			t.Errorf("%v: %d %q, want FAILURE %q", errno, code, msg, want)
		}
	}
}
