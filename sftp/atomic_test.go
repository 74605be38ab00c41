package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"github.com/ferry-sftp/ferry/vfs"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func listTemps(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestAtomicUploadInterrupted(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "previous")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 0, Data: []byte("partial new")})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "previous" {
		t.Fatalf("target changed during upload: %q", got)
	}
	if n := len(listTemps(t, ts.root)); n != 1 {
		t.Fatalf("%d temporary files during upload, want 1", n)
	}
	// The listing hides the temporary file.
	rc.send(&pathReq{Type: fxpOpendir, ID: rc.nextID(), Path: "/"})
	dh := rc.handle()
	rc.send(&handleReq{Type: fxpReaddir, ID: rc.nextID(), Handle: dh})
	var n nameMsg
	if p := rc.recv(); !n.unmarshal(p) {
		t.Fatalf("READDIR: %x", p)
	}
	for _, e := range n.Entries {
		if isTemp(e.Name) {
			t.Fatalf("READDIR lists %s", e.Name)
		}
	}
	if err := ts.wait(); err != nil { // connection drops without CLOSE
		t.Fatalf("Serve = %v", err)
	}
	if got := ts.read(t, "f"); got != "previous" {
		t.Fatalf("interrupted upload changed f to %q", got)
	}
	if tmp := listTemps(t, ts.root); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if len(ts.records) != 1 || ts.records[0].Result != "aborted" || ts.records[0].BytesWritten != 11 {
		t.Fatalf("transfer records %+v", ts.records)
	}
}

func TestAtomicUploadComplete(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "previous")
	os.Chmod(filepath.Join(ts.root, "f"), 0o640)
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 0, Data: []byte("new")})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "new" {
		t.Fatalf("f = %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(ts.root, "f")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode after replace %v, want 0640 kept", fi.Mode())
	}
	if tmp := listTemps(t, ts.root); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestResumeWritesInPlace(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "0123")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 4, Data: []byte("4567")})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "01234567" {
		t.Fatalf("resume wrote %q before CLOSE, want in place", got)
	}
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfAppend})
	h2 := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h2, Offset: 0, Data: []byte("89")})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "0123456789" {
		t.Fatalf("append wrote %q", got)
	}
}

func TestDirectUploads(t *testing.T) {
	ts := startServer(t, &Options{DirectUploads: true})
	ts.write(t, "f", "previous")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 0, Data: []byte("x")})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "f"); got != "x" {
		t.Fatalf("direct upload: f = %q", got)
	}
}

func TestStaleTempRemovedOnListing(t *testing.T) {
	ts := startServer(t, nil)
	stale := filepath.Join(ts.root, tempPrefix+strings.Repeat("A", tempRandLen))
	fresh := filepath.Join(ts.root, tempPrefix+strings.Repeat("B", tempRandLen))
	// Not of the exact form: an ordinary file, listed and kept.
	mine := filepath.Join(ts.root, tempPrefix+"mine")
	os.WriteFile(mine, []byte("x"), 0o644)
	os.Chtimes(mine, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour))
	os.WriteFile(stale, []byte("x"), 0o644)
	os.WriteFile(fresh, []byte("x"), 0o644)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(stale, old, old)
	c := ts.client(t)
	defer c.Close()
	fis, err := c.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(fis) != 1 || fis[0].Name() != tempPrefix+"mine" {
		t.Fatalf("listing shows %v, want only %smine", fis, tempPrefix)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatalf("user's file removed: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh temporary file removed: %v", err)
	}
}

func TestAtomicUploadKeepsOwnerAndNeedsWriteAccess(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	ts := startServer(t, nil)
	ts.write(t, "f", "previous")
	p := filepath.Join(ts.root, "f")
	os.Chown(p, 1234, 5678)
	rc := ts.raw(t)
	rc.send(&openReq{ID: 1, Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: 2, Handle: h, Data: []byte("new")})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: 3, Handle: h})
	rc.expectStatus(StatusOK)
	fi, _ := os.Stat(p)
	if uid, gid, _, _ := vfs.Owner(fi); uid != 1234 || gid != 5678 {
		t.Fatalf("owner after replace %d:%d, want 1234:5678", uid, gid)
	}
}

func TestAtomicUploadOfReadOnlyFileDenied(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root may write any file")
	}
	ts := startServer(t, nil)
	ts.write(t, "f", "previous")
	os.Chmod(filepath.Join(ts.root, "f"), 0o444)
	rc := ts.raw(t)
	rc.send(&openReq{ID: 1, Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	rc.expectStatus(StatusPermissionDenied)
}

func TestTempNamesReserved(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "x")
	c := ts.client(t)
	defer c.Close()
	name := "/" + tempPrefix + strings.Repeat("C", tempRandLen)
	if _, err := c.Create(name); statusCode(err) != StatusPermissionDenied {
		t.Errorf("Create(%s) = %v", name, err)
	}
	if err := c.Mkdir(name); statusCode(err) != StatusPermissionDenied {
		t.Errorf("Mkdir = %v", err)
	}
	if err := c.Rename("/f", name); statusCode(err) != StatusPermissionDenied {
		t.Errorf("Rename = %v", err)
	}
	if err := c.PosixRename("/f", name); statusCode(err) != StatusPermissionDenied {
		t.Errorf("PosixRename = %v", err)
	}
	if err := c.Symlink("/f", name); statusCode(err) != StatusPermissionDenied {
		t.Errorf("Symlink = %v", err)
	}
	if err := c.Link("/f", name); statusCode(err) != StatusPermissionDenied {
		t.Errorf("Link = %v", err)
	}
	for _, ok := range []string{tempPrefix + "x", tempPrefix + strings.Repeat("c", tempRandLen)} {
		if !isTemp(ok) {
			continue
		}
		t.Errorf("isTemp(%q) = true", ok)
	}
	if !isTemp(path.Base(tempName("/d/f"))) {
		t.Error("tempName does not satisfy isTemp")
	}
}

func TestCancelledSessionDiscardsUpload(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "f", "previous")
	fsys, _ := vfs.Local(ts.root)
	defer fsys.Close()
	q := &testQuota{limit: 1 << 20}
	srv := NewServer(fsys, &Options{Quota: q})
	ctx, cancel := context.WithCancel(context.Background())
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, sr, sw) }()
	send := func(m appender) {
		b := m.appendTo([]byte{0, 0, 0, 0})
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		cw.Write(b)
	}
	// Replies are read as they come (io.Pipe has no buffer, and the
	// server may write a reply before reading the next request).
	replies := make(chan struct{}, 3)
	go func() {
		var hdr [4]byte
		for i := 0; i < 3; i++ {
			io.ReadFull(cr, hdr[:])
			io.CopyN(io.Discard, cr, int64(binary.BigEndian.Uint32(hdr[:])))
			replies <- struct{}{}
		}
		io.Copy(io.Discard, cr)
	}()
	send(&initMsg{Version: 3})
	send(&openReq{ID: 1, Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	send(&writeReq{ID: 2, Handle: []byte{0, 0, 0, 1}, Data: []byte("new")})
	// VERSION, HANDLE, STATUS: the upload is under way before the cancel.
	for range 3 {
		<-replies
	}
	if n := len(listTemps(t, ts.root)); n != 1 {
		t.Fatalf("%d temporary files during the upload, want 1", n)
	}
	cancel()
	// Wakes the read loop; it may never be read, so not from this goroutine.
	go send(&pathReq{Type: fxpStat, ID: 3, Path: "/"})
	err := <-done
	sr.Close()
	sw.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v, want context.Canceled", err)
	}
	if got := ts.read(t, "f"); got != "previous" {
		t.Fatalf("f = %q", got)
	}
	if tmp := listTemps(t, ts.root); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if q.bytes != 0 || q.files != 0 {
		t.Fatalf("quota not released: %d bytes, %d files", q.bytes, q.files)
	}
}

// noTempDir is a home whose directories take no new entries for this
// user (a customer's chmod 555; root is let through, so the test fakes
// it): creating an atomic upload's temporary file fails with EACCES.
type noTempDir struct{ vfs.FS }

func (d noTempDir) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if flag&os.O_CREATE != 0 && strings.HasPrefix(path.Base(name), tempPrefix) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	return d.FS.OpenFile(name, flag, perm)
}

// TestAtomicUploadInReadOnlyDirectory: an existing, writable file in a
// directory that takes no temporary file is rewritten in place, as
// sftp-server does, instead of the upload being refused; the quota is
// charged for the new size only (no file left reserved for the
// temporary file that was never made).
func TestAtomicUploadInReadOnlyDirectory(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("previous content"), 0o644); err != nil {
		t.Fatal(err)
	}
	local, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	q := &testQuota{limit: 1 << 20, bytes: 16, files: 1}
	ts := startServerOnFS(t, noTempDir{local}, &Options{Quota: q})
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 0, Data: []byte("new")})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)
	if b, err := os.ReadFile(filepath.Join(root, "f")); err != nil || string(b) != "new" {
		t.Fatalf("f holds %q (%v), want \"new\"", b, err)
	}
	// A new file still needs an entry the directory refuses.
	rc.send(&openReq{ID: rc.nextID(), Path: "/g", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	rc.expectStatus(StatusPermissionDenied)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes != 3 || q.files != 1 {
		t.Fatalf("quota holds %d bytes in %d files, want 3 in 1", q.bytes, q.files)
	}
}
