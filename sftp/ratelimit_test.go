package sftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestRateLimits: with ReadLimit a download, and with WriteLimit an
// upload, of N bytes takes at least about N/limit, and the data arrive
// intact. Without them the options were ignored (a 4 MiB get at 1 MiB/s
// took 0.1 s). Only a lower bound is checked: a slow machine is slower.
func TestRateLimits(t *testing.T) {
	const limit = 1 << 20
	const size = 3 << 19 // 1.5 s at the limit
	// The bucket starts with a tenth of a second's bytes; the rest is
	// paced. Allow for that and a generous margin more.
	const atLeast = 1200 * time.Millisecond
	data := bytes.Repeat([]byte("ferry rate "), size/11+1)[:size]

	t.Run("read", func(t *testing.T) {
		ts := startServer(t, &Options{ReadLimit: limit})
		ts.write(t, "f", string(data))
		c := ts.client(t)
		f, err := c.Open("/f")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := io.ReadAll(f)
		elapsed := time.Since(start)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("download: %d bytes, %v", len(got), err)
		}
		if elapsed < atLeast {
			t.Errorf("%d bytes read in %v with read_limit %d B/s, want at least %v", size, elapsed, limit, atLeast)
		}
	})
	t.Run("write", func(t *testing.T) {
		ts := startServer(t, &Options{WriteLimit: limit})
		c := ts.client(t)
		f, err := c.Create("/f")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if got := ts.read(t, "f"); got != string(data) {
			t.Fatalf("uploaded file differs (%d bytes)", len(got))
		}
		if elapsed < atLeast {
			t.Errorf("%d bytes written in %v with write_limit %d B/s, want at least %v", size, elapsed, limit, atLeast)
		}
	})
}

// TestRateLimiterWait: a nil limiter never waits; a request larger than
// the bucket waits for its whole debt; a cancelled context ends the wait
// with its error.
func TestRateLimiterWait(t *testing.T) {
	if NewRateLimiter(0) != nil {
		t.Fatal("NewRateLimiter(0) is not nil (unlimited)")
	}
	var unlimited *RateLimiter
	if err := unlimited.Wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	l := NewRateLimiter(1000)
	start := time.Now()
	if err := l.Wait(context.Background(), 300); err != nil { // 100 from the bucket, 200 paced
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("300 bytes at 1000 B/s with a 100-byte bucket took %v, want about 200ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := l.Wait(ctx, 1<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v, want context.Canceled", err)
	}
}
