package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pkg/sftp"
)

// TestMultiConnectionChunkedUpload follows rclone's multi-thread upload to
// an sftp remote (its backend/sftp/writerat.go, rclone 1.72 and later): one
// connection creates the file with CREAT|TRUNC, sets its size with
// FSETSTAT and closes it; then a handle per connection opens it WRONLY
// (no CREAT, no TRUNC) and each writes its chunks at their offsets. With
// atomic uploads on (the default), the first OPEN writes a temporary file
// renamed at its CLOSE, and the later handles must write in place into that
// file, so the result has every chunk, and the quota counts the size once.
func TestMultiConnectionChunkedUpload(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("mt", "pw-mt", "--quota-bytes", "64M")
	const streams, chunk = 4, 1 << 20
	data := randomBytes(t, streams*3*chunk+12345) // 12 chunks and a tail
	size := int64(len(data))

	setup := s.dialSFTP(t, "mt", "pw-mt")
	f, err := setup.OpenFile("/big.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatalf("FSETSTAT size on the new file: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Chunks are dealt out round robin, as rclone's core hands them to
	// whichever stream is free.
	stream := func(c *sftp.Client, w int) error {
		h, err := c.OpenFile("/big.bin", os.O_WRONLY)
		if err != nil {
			return fmt.Errorf("stream %d: open: %w", w, err)
		}
		for off := int64(w) * chunk; off < size; off += streams * chunk {
			end := min(off+chunk, size)
			if _, err := h.WriteAt(data[off:end], off); err != nil {
				h.Close()
				return fmt.Errorf("stream %d: write at %d: %w", w, off, err)
			}
		}
		if err := h.Close(); err != nil {
			return fmt.Errorf("stream %d: close: %w", w, err)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, streams)
	for w := range streams {
		c := s.dialSFTP(t, "mt", "pw-mt")
		wg.Go(func() { errs[w] = stream(c, w) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	got := readFile(t, filepath.Join(s.home("mt"), "big.bin"))
	if !bytes.Equal(got, data) {
		first := 0
		for first < min(len(got), len(data)) && got[first] == data[first] {
			first++
		}
		t.Fatalf("uploaded file has %d bytes, want %d; first difference at %d", len(got), len(data), first)
	}
	if b, n := s.usage(t, "mt"); b != size || n != 1 {
		t.Errorf("quota counts %d bytes in %d files, want %d in 1", b, n, size)
	}
	if entries, err := os.ReadDir(s.home("mt")); err != nil || len(entries) != 1 {
		t.Errorf("home holds %v (%v), want only big.bin (no temporary files left)", entries, err)
	}
}
