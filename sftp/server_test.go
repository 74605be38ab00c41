package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientBasics(t *testing.T) {
	forEachServeMode(t, func(t *testing.T, startServer serverStarter) {
		ts := startServer(t, nil)
		c := ts.client(t)
		defer c.Close()
		ts.write(t, "a.txt", "hello")

		if wd, err := c.Getwd(); err != nil || wd != "/" {
			t.Fatalf("Getwd = %q, %v", wd, err)
		}
		f, err := c.Create("/b.txt")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("world")); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := ts.read(t, "b.txt"); got != "world" {
			t.Fatalf("b.txt = %q", got)
		}
		fi, err := c.Stat("a.txt")
		if err != nil || fi.Size() != 5 || fi.Mode().Perm() != 0o644 {
			t.Fatalf("Stat = %v %v", fi, err)
		}
		if err := c.Mkdir("/d"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("/b.txt", "/d/b.txt"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("/a.txt", "/d/b.txt"); statusCode(err) != StatusFailure {
			t.Fatalf("Rename onto existing = %v, want FAILURE", err)
		}
		if err := c.Symlink("a.txt", "/lnk"); err != nil {
			t.Fatal(err)
		}
		if s, err := c.ReadLink("/lnk"); err != nil || s != "a.txt" {
			t.Fatalf("ReadLink = %q %v", s, err)
		}
		if fi, err := c.Lstat("/lnk"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("Lstat(lnk) = %v %v", fi, err)
		}
		if err := c.Chmod("/a.txt", 0o600); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(ts.root, "a.txt")); fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode = %v", fi.Mode())
		}
		if err := c.Truncate("/a.txt", 2); err != nil {
			t.Fatal(err)
		}
		if got := ts.read(t, "a.txt"); got != "he" {
			t.Fatalf("after truncate %q", got)
		}
		fis, err := c.ReadDir("/")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, fi := range fis {
			names = append(names, fi.Name())
		}
		sort.Strings(names)
		if strings.Join(names, ",") != "a.txt,d,lnk" {
			t.Fatalf("ReadDir = %v", names)
		}
		if _, err := c.Stat("/nope"); statusCode(err) != StatusNoSuchFile {
			t.Fatalf("Stat(nope) = %v", err)
		}
		if err := c.Remove("/d"); err == nil {
			t.Fatal("REMOVE of a directory succeeded")
		}
		if err := c.RemoveDirectory("/d/b.txt"); statusCode(err) != StatusNoSuchFile {
			t.Fatalf("RMDIR of a file = %v, want NO_SUCH_FILE (ENOTDIR)", err)
		}
		if err := c.Remove("/d/b.txt"); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveDirectory("/d"); err != nil {
			t.Fatal(err)
		}
		if p, err := c.RealPath("x/../y"); err != nil || p != "/y" {
			t.Fatalf("RealPath = %q %v", p, err)
		}
	})
}

func TestExtensions(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t)
	defer c.Close()
	for _, ext := range []string{"posix-rename@openssh.com", "statvfs@openssh.com", "fstatvfs@openssh.com",
		"hardlink@openssh.com", "fsync@openssh.com", "lsetstat@openssh.com", "limits@openssh.com",
		"expand-path@openssh.com", "copy-data", "home-directory", "users-groups-by-id@openssh.com"} {
		if _, ok := c.HasExtension(ext); !ok {
			t.Errorf("extension %s not advertised", ext)
		}
	}
	ts.write(t, "a", "AAA")
	ts.write(t, "b", "BBB")
	if err := c.PosixRename("/a", "/b"); err != nil {
		t.Fatal(err)
	}
	if got := ts.read(t, "b"); got != "AAA" {
		t.Fatalf("after posix-rename b = %q", got)
	}
	if err := c.Link("/b", "/c"); err != nil {
		t.Fatal(err)
	}
	if got := ts.read(t, "c"); got != "AAA" {
		t.Fatalf("hardlink c = %q", got)
	}
	st, err := c.StatVFS("/")
	if err != nil || st.Bsize == 0 || st.Blocks == 0 {
		t.Fatalf("StatVFS = %+v %v", st, err)
	}
	f, err := c.OpenFile("/c", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	f.Close()
}

func TestLimitsAndExpandPath(t *testing.T) {
	ts := startServer(t, &Options{User: "alice", Home: "/home"})
	os.Mkdir(filepath.Join(ts.root, "home"), 0o755)
	rc := ts.raw(t)
	id := rc.nextID()
	rc.send(&extendedReq{ID: id, Request: "limits@openssh.com"})
	var r extendedReplyMsg
	if p := rc.recv(); !r.unmarshal(p) || r.ID != id || len(r.Data) != 32 {
		t.Fatalf("limits reply %x", p)
	}
	want := []uint64{262144, 261120, 261120, DefaultMaxHandles}
	for i, w := range want {
		if got := be64(r.Data[i*8:]); got != w {
			t.Errorf("limits[%d] = %d, want %d", i, got, w)
		}
	}
	for in, out := range map[string]string{"~": "/home", "~/x": "/home/x", "~alice/y": "/home/y", "rel": "/home/rel", ".": "/home"} {
		id := rc.nextID()
		rc.send(&extendedReq{ID: id, Request: "expand-path@openssh.com", Data: appendStr(nil, in)})
		var n nameMsg
		if p := rc.recv(); !n.unmarshal(p) || len(n.Entries) != 1 || n.Entries[0].Name != out {
			t.Errorf("expand-path %q = %x, want %q", in, p, out)
		}
	}
	id = rc.nextID()
	rc.send(&extendedReq{ID: id, Request: "expand-path@openssh.com", Data: appendStr(nil, "~bob")})
	rc.expectStatus(StatusNoSuchFile)
	id = rc.nextID()
	rc.send(&extendedReq{ID: id, Request: "home-directory", Data: appendStr(nil, "alice")})
	var n nameMsg
	if p := rc.recv(); !n.unmarshal(p) || n.Entries[0].Name != "/home" {
		t.Errorf("home-directory = %x", p)
	}
	id = rc.nextID()
	rc.send(&extendedReq{ID: id, Request: "users-groups-by-id@openssh.com", Data: appendStr(appendStr(nil, "\x00\x00\x00\x00"), "\x00\x00\x00\x00")})
	if p := rc.recv(); !r.unmarshal(p) || !bytes.Equal(r.Data, []byte("\x00\x00\x00\x08\x00\x00\x00\x04root\x00\x00\x00\x08\x00\x00\x00\x04root")) {
		t.Errorf("users-groups-by-id = %x", p)
	}
	id = rc.nextID()
	rc.send(&extendedReq{ID: id, Request: "no-such@example.com"})
	rc.expectStatus(StatusOpUnsupported)
}

func TestCopyData(t *testing.T) {
	ts := startServer(t, nil)
	ts.write(t, "src", "0123456789")
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/src", PFlags: fxfRead})
	rh := rc.handle()
	rc.send(&openReq{ID: rc.nextID(), Path: "/dst", PFlags: fxfWrite | fxfCreat})
	wh := rc.handle()
	var d []byte
	d = appendStr(d, string(rh))
	d = be64a(d, 2)
	d = be64a(d, 0)
	d = appendStr(d, string(wh))
	d = be64a(d, 0)
	rc.send(&extendedReq{ID: rc.nextID(), Request: "copy-data", Data: d})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: wh})
	rc.expectStatus(StatusOK)
	if got := ts.read(t, "dst"); got != "23456789" {
		t.Fatalf("copy-data result %q", got)
	}
}

func be64(b []byte) uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func be64a(b []byte, v uint64) []byte {
	for i := 7; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, s...)
}

func TestConcurrentTransfers(t *testing.T) {
	forEachServeMode(t, func(t *testing.T, startServer serverStarter) {
		ts := startServer(t, nil)
		c := ts.client(t)
		defer c.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				data := make([]byte, 1<<20+i*4099)
				rand.Read(data)
				name := fmt.Sprintf("/f%d", i)
				f, err := c.Create(name)
				if err != nil {
					errs <- err
					return
				}
				if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
					errs <- err
					return
				}
				if err := f.Close(); err != nil {
					errs <- err
					return
				}
				g, err := c.Open(name)
				if err != nil {
					errs <- err
					return
				}
				var got bytes.Buffer
				if _, err := g.WriteTo(&got); err != nil {
					errs <- err
					return
				}
				g.Close()
				if !bytes.Equal(got.Bytes(), data) {
					errs <- fmt.Errorf("%s: round trip mismatch (%d vs %d bytes)", name, got.Len(), len(data))
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestPermissions(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		op   func(t *testing.T, ts *testServer) error
		want uint32
	}{
		{"read-only put", Options{ReadOnly: true}, func(t *testing.T, ts *testServer) error {
			_, err := ts.client(t).Create("/new")
			return err
		}, StatusPermissionDenied},
		{"read-only remove", Options{ReadOnly: true}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Remove("/f")
		}, StatusPermissionDenied},
		{"read-only mkdir", Options{ReadOnly: true}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Mkdir("/d")
		}, StatusPermissionDenied},
		{"read-only rename", Options{ReadOnly: true}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Rename("/f", "/g")
		}, StatusPermissionDenied},
		{"read-only chmod", Options{ReadOnly: true}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Chmod("/f", 0o600)
		}, StatusPermissionDenied},
		{"read-only get works", Options{ReadOnly: true}, func(t *testing.T, ts *testServer) error {
			f, err := ts.client(t).Open("/f")
			if err == nil {
				f.Close()
			}
			return err
		}, StatusOK},
		{"upload-only get", Options{Permissions: Permissions{NoDownload: true}}, func(t *testing.T, ts *testServer) error {
			_, err := ts.client(t).Open("/f")
			return err
		}, StatusPermissionDenied},
		{"upload-only put works", Options{Permissions: Permissions{NoDownload: true}}, func(t *testing.T, ts *testServer) error {
			f, err := ts.client(t).OpenFile("/new", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
			if err == nil {
				err = f.Close()
			}
			return err
		}, StatusOK},
		{"no-delete", Options{Permissions: Permissions{NoDelete: true}}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Remove("/f")
		}, StatusPermissionDenied},
		{"no-delete posix-rename over a file", Options{Permissions: Permissions{NoDelete: true}}, func(t *testing.T, ts *testServer) error {
			ts.write(t, "g", "g")
			return ts.client(t).PosixRename("/g", "/f")
		}, StatusPermissionDenied},
		{"no-delete posix-rename to a new name works", Options{Permissions: Permissions{NoDelete: true}}, func(t *testing.T, ts *testServer) error {
			ts.write(t, "g", "g")
			return ts.client(t).PosixRename("/g", "/h")
		}, StatusOK},
		{"no-overwrite put", Options{Permissions: Permissions{NoOverwrite: true}}, func(t *testing.T, ts *testServer) error {
			_, err := ts.client(t).Create("/f")
			return err
		}, StatusPermissionDenied},
		{"no-overwrite posix-rename", Options{Permissions: Permissions{NoOverwrite: true}}, func(t *testing.T, ts *testServer) error {
			ts.write(t, "g", "g")
			return ts.client(t).PosixRename("/g", "/f")
		}, StatusPermissionDenied},
		{"no-symlinks", Options{Permissions: Permissions{NoSymlinks: true}}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Symlink("/f", "/l")
		}, StatusPermissionDenied},
		{"no-symlinks hardlink", Options{Permissions: Permissions{NoSymlinks: true}}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Link("/f", "/l")
		}, StatusPermissionDenied},
		{"no-chmod", Options{Permissions: Permissions{NoChmod: true}}, func(t *testing.T, ts *testServer) error {
			return ts.client(t).Chmod("/f", 0o777)
		}, StatusPermissionDenied},
		{"quota put", Options{Quota: &testQuota{limit: 100}}, func(t *testing.T, ts *testServer) error {
			f, err := ts.client(t).Create("/big")
			if err != nil {
				return err
			}
			_, err = f.Write(make([]byte, 1000))
			f.Close()
			return err
		}, StatusFailure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, &tc.opts)
			ts.write(t, "f", "content")
			err := tc.op(t, ts)
			if got := statusCode(err); got != tc.want || (tc.want != StatusOK && err == nil) {
				t.Fatalf("got %v (status %d), want status %d", err, got, tc.want)
			}
			if got := ts.read(t, "f"); got != "content" {
				t.Fatalf("f changed to %q", got)
			}
		})
	}
}

// testQuota is a byte/file allowance.
type testQuota struct {
	mu           sync.Mutex
	limit, bytes int64
	files        int64
}

func (q *testQuota) Reserve(_ context.Context, bytes, files int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes+bytes > q.limit {
		return ErrQuotaExceeded
	}
	q.bytes += bytes
	q.files += files
	return nil
}

func (q *testQuota) Release(_ context.Context, bytes, files int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.bytes -= bytes
	q.files -= files
}

func TestQuotaMessageAndAccounting(t *testing.T) {
	q := &testQuota{limit: 10}
	ts := startServer(t, &Options{Quota: q})
	rc := ts.raw(t)
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc})
	h := rc.handle()
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 0, Data: []byte("12345678")})
	rc.expectStatus(StatusOK)
	rc.send(&writeReq{ID: rc.nextID(), Handle: h, Offset: 8, Data: []byte("9abc")})
	s := rc.status()
	if s.Code != StatusFailure || s.Message != "quota exceeded" {
		t.Fatalf("over-quota write: %d %q", s.Code, s.Message)
	}
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusFailure) // a write failed: the upload is discarded
	if _, err := os.Stat(filepath.Join(ts.root, "f")); !os.IsNotExist(err) {
		t.Fatalf("failed upload left f: %v", err)
	}
	if q.bytes != 0 || q.files != 0 {
		t.Fatalf("quota after discarded upload: %d bytes %d files", q.bytes, q.files)
	}
}

// TestStartHoldsNoGoroutineWhileIdle: a session run with Start over a
// ReadNotifier parks between requests: while the client is idle no
// goroutine is in the session's read loop, and the next request resumes
// it (issue 8: an idle session holds no stack).
func TestStartHoldsNoGoroutineWhileIdle(t *testing.T) {
	ts := startParkedServer(t, nil)
	c := ts.client(t)
	defer c.Close()
	ts.write(t, "a.txt", "hello")
	for i := range 3 {
		if _, err := c.Stat("/a.txt"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for readLoopRunning() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: a goroutine is still in the idle session's read loop", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if got := ts.read(t, "a.txt"); got != "hello" {
		t.Fatalf("read %q after parking", got)
	}
	c.Close()
	if err := ts.wait(); err != nil {
		t.Fatalf("session ended with %v", err)
	}
}

// readLoopRunning reports whether some goroutine is in session.readLoop.
func readLoopRunning() bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return bytes.Contains(buf[:n], []byte("sftp.(*session).readLoop"))
}

// TestPanicClosingHandleAtEnd: a panic while the session's end closes a
// handle left open (here in the transfer log) is logged and returned as
// the session's error; the session still ends, with done called once.
func TestPanicClosingHandleAtEnd(t *testing.T) {
	forEachServeMode(t, func(t *testing.T, startServer serverStarter) {
		ts := startServer(t, &Options{TransferLog: func(TransferRecord) { panic("transfer log") }})
		c := ts.client(t)
		f, err := c.Create("/left-open")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		// The client goes away with the file still open.
		done := make(chan error, 1)
		go func() { done <- ts.wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "internal error closing a handle") {
				t.Fatalf("session ended with %v, want the panic reported", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end after a panic while closing a handle")
		}
	})
}
