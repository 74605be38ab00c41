package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/vfs"
)

func copyDataReq(id uint32, rh []byte, roff, rlen uint64, wh []byte, woff uint64) *extendedReq {
	var data []byte
	data = wire.AppendString(data, rh)
	data = binary.BigEndian.AppendUint64(data, roff)
	data = binary.BigEndian.AppendUint64(data, rlen)
	data = wire.AppendString(data, wh)
	data = binary.BigEndian.AppendUint64(data, woff)
	return &extendedReq{ID: id, Request: "copy-data", Data: data}
}

// TestCopyDataToEndOfItself: copy-data with length 0 ("to the end of the
// source") from a file to its own end, through a second handle, copies
// the file once. Reading until EOF never met it, since each chunk copied
// moved EOF further: the file grew until the quota (here 64 MiB; the
// disk without one) stopped it.
func TestCopyDataToEndOfItself(t *testing.T) {
	const size = 1 << 20
	q := &testQuota{limit: 64 << 20}
	ts := startServer(t, &Options{Quota: q})
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := os.WriteFile(filepath.Join(ts.root, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead})
	rh := rc.handle()
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite})
	wh := rc.handle()
	rc.send(copyDataReq(rc.nextID(), rh, 0, 0, wh, size))
	rc.expectStatus(StatusOK)
	got, err := os.ReadFile(filepath.Join(ts.root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*size || !bytes.Equal(got[:size], content) || !bytes.Equal(got[size:], content) {
		t.Fatalf("file is %d bytes, want the %d-byte original twice", len(got), size)
	}
}

// TestCopyDataStopsWhenSessionEnds: a long copy-data (a large sparse
// source) ends soon after the session's context does, rather than
// running to the end on a session nobody is attached to any more.
func TestCopyDataStopsWhenSessionEnds(t *testing.T) {
	root := t.TempDir()
	// 1 GiB of holes: reading it costs nothing, writing it costs 1 GiB.
	if err := os.WriteFile(filepath.Join(root, "src"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(root, "src"), 1<<30); err != nil {
		t.Fatal(err)
	}
	fsys, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	// The quota stops a copy that does not notice the end at 256 MiB.
	srv := NewServer(fsys, &Options{Quota: &testQuota{limit: 256 << 20}, DirectUploads: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sr, cw := io.Pipe()
	cr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, sr, sw)
		sw.Close()
	}()
	defer cw.Close()
	rc := (&testServer{cr: cr, cw: cw}).raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/src", PFlags: fxfRead})
	rh := rc.handle()
	rc.send(&openReq{ID: rc.nextID(), Path: "/dst", PFlags: fxfWrite | fxfCreat})
	wh := rc.handle()
	rc.send(copyDataReq(rc.nextID(), rh, 0, 0, wh, 0))
	// End the session once the copy is under way.
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(time.Millisecond) {
		if fi, err := os.Stat(filepath.Join(root, "dst")); err == nil && fi.Size() > 0 {
			break
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Serve still running 20 s after its context ended")
	}
	fi, err := os.Stat(filepath.Join(root, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d MiB before the session ended", fi.Size()>>20)
	if fi.Size() >= 128<<20 {
		t.Fatalf("copy-data went on to %d MiB after the session ended", fi.Size()>>20)
	}
}
