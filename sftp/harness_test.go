package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/ferry-sftp/ferry/vfs"
)

// testServer runs a Server on an in-memory pipe over a temporary root.
type testServer struct {
	root    string // host directory served as "/"
	outside string // host directory beside root
	cr      *os.File
	cw      io.WriteCloser
	done    chan error
	ends    atomic.Int32 // calls of Start's done function
	srv     *Server
	records []TransferRecord
	mu      sync.Mutex
}

func startServer(t testing.TB, opts *Options) *testServer {
	t.Helper()
	return startServerMode(t, opts, false)
}

// serverStarter starts a test server (startServer or startParkedServer).
type serverStarter func(t testing.TB, opts *Options) *testServer

// startParkedServer runs the session with Start over an input that can
// notify (as server.Session does), so the session parks whenever it
// waits for a request with nothing in flight.
func startParkedServer(t testing.TB, opts *Options) *testServer {
	t.Helper()
	return startServerMode(t, opts, true)
}

// forEachServeMode runs f against Serve and against Start with parking.
func forEachServeMode(t *testing.T, f func(t *testing.T, start serverStarter)) {
	t.Run("Serve", func(t *testing.T) { f(t, startServer) })
	t.Run("Start", func(t *testing.T) { f(t, startParkedServer) })
}

func startServerMode(t testing.TB, opts *Options, parked bool) *testServer {
	t.Helper()
	base := t.TempDir()
	ts := &testServer{root: filepath.Join(base, "home"), outside: filepath.Join(base, "outside"), done: make(chan error, 1)}
	for _, d := range []string{ts.root, ts.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ts.outside, "secret"), []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts.serve(t, opts, parked)
	return ts
}

// another starts a second session, of a Server of its own, over the same
// home: another login of the same account.
func (ts *testServer) another(t testing.TB, opts *Options) *testServer {
	t.Helper()
	ts2 := &testServer{root: ts.root, outside: ts.outside, done: make(chan error, 1)}
	ts2.serve(t, opts, false)
	return ts2
}

func (ts *testServer) serve(t testing.TB, opts *Options, parked bool) {
	t.Helper()
	fsys, err := vfs.Local(ts.root)
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &Options{}
	}
	o := *opts
	if o.TransferLog == nil {
		o.TransferLog = func(r TransferRecord) {
			ts.mu.Lock()
			ts.records = append(ts.records, r)
			ts.mu.Unlock()
		}
	}
	srv := NewServer(fsys, &o)
	ts.srv = srv
	var sr io.ReadCloser
	var cw io.WriteCloser
	if parked {
		np := newNotifyPipe()
		sr, cw = np, np
	} else {
		sr, cw = io.Pipe() // client -> server
	}
	// server -> client through the kernel's 64 KiB pipe buffer, as
	// stdout is for `ferry sftp-server` and the channel window is over
	// SSH: the server may write a reply before it reads the next request,
	// so a test that sends a batch before reading needs that room.
	cr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ts.cr, ts.cw = cr, cw
	if parked {
		started := make(chan struct{})
		go func() {
			srv.Start(context.Background(), sr, sw, func(err error) {
				if ts.ends.Add(1) > 1 {
					return // reported by the cleanup; ts.done holds the first
				}
				sw.Close()
				sr.Close()
				ts.done <- err
			})
			close(started)
		}()
		// Nothing sent yet: Start must park and return.
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("Start did not return while the session waited for INIT")
		}
	} else {
		go func() {
			err := srv.Serve(context.Background(), sr, sw)
			sw.Close()
			sr.Close()
			ts.done <- err
		}()
	}
	t.Cleanup(func() {
		cw.Close()
		cr.Close()
		<-ts.done
		fsys.Close()
		if n := ts.ends.Load(); parked && n != 1 {
			t.Errorf("Start called done %d times, want once", n)
		}
	})
}

// wait closes the client side and returns Serve's result.
func (ts *testServer) wait() error {
	ts.cw.Close()
	err := <-ts.done
	ts.done <- err
	return err
}

func (ts *testServer) client(t testing.TB) *pkgsftp.Client {
	t.Helper()
	c, err := pkgsftp.NewClientPipe(ts.cr, ts.cw, pkgsftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (ts *testServer) write(t testing.TB, name, content string) {
	t.Helper()
	p := filepath.Join(ts.root, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (ts *testServer) read(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ts.root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// statusCode extracts the SFTP status from a pkg/sftp error (0 if none).
func statusCode(err error) uint32 {
	var se *pkgsftp.StatusError
	switch {
	case errors.As(err, &se):
		return se.Code
	case errors.Is(err, os.ErrNotExist): // pkg/sftp's translation of NO_SUCH_FILE
		return StatusNoSuchFile
	case errors.Is(err, os.ErrPermission): // and of PERMISSION_DENIED
		return StatusPermissionDenied
	}
	return 0
}

// rawClient speaks the protocol packet by packet, for requests a library
// client would not send.
type rawClient struct {
	t  testing.TB
	ts *testServer
	id uint32
}

func (ts *testServer) raw(t testing.TB) *rawClient {
	rc := &rawClient{t: t, ts: ts}
	rc.send(&initMsg{Version: 3})
	var v versionMsg
	if p := rc.recv(); !v.unmarshal(p) || v.Version != 3 {
		t.Fatalf("bad VERSION %x", p)
	}
	return rc
}

func (rc *rawClient) nextID() uint32 { rc.id++; return rc.id }

func (rc *rawClient) send(m appender) {
	rc.t.Helper()
	b := m.appendTo([]byte{0, 0, 0, 0})
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := rc.ts.cw.Write(b); err != nil {
		rc.t.Fatalf("send: %v", err)
	}
}

func (rc *rawClient) sendRaw(b []byte) {
	rc.t.Helper()
	if _, err := rc.ts.cw.Write(b); err != nil {
		rc.t.Fatalf("send: %v", err)
	}
}

func (rc *rawClient) recv() []byte {
	rc.t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(rc.ts.cr, hdr[:]); err != nil {
		rc.t.Fatalf("recv: %v", err)
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(rc.ts.cr, p); err != nil {
		rc.t.Fatalf("recv: %v", err)
	}
	return p
}

func (rc *rawClient) status() statusMsg {
	rc.t.Helper()
	p := rc.recv()
	var s statusMsg
	if !s.unmarshal(p) {
		rc.t.Fatalf("expected STATUS, got %x", p)
	}
	return s
}

func (rc *rawClient) handle() []byte {
	rc.t.Helper()
	p := rc.recv()
	var h handleMsg
	if !h.unmarshal(p) {
		var s statusMsg
		s.unmarshal(p)
		rc.t.Fatalf("expected HANDLE, got %x (status %d %q)", p, s.Code, s.Message)
	}
	return h.Handle
}

func (rc *rawClient) expectStatus(want uint32) {
	rc.t.Helper()
	if s := rc.status(); s.Code != want {
		rc.t.Fatalf("status %d (%q), want %d", s.Code, s.Message, want)
	}
}

// notifyPipe is an in-memory client-to-server pipe that implements
// ReadNotifier, like server.Session: the callback runs on a goroutine of
// its own.
type notifyPipe struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	closed bool
	notify func()
}

func newNotifyPipe() *notifyPipe {
	p := &notifyPipe{}
	p.cond.L = &p.mu
	return p
}

func (p *notifyPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	p.buf = append(p.buf, b...)
	p.wakeUnlock()
	return len(b), nil
}

// wakeUnlock wakes blocked readers and the pending NotifyReadable callback
// (on a goroutine of its own, as server.Session does), then unlocks.
func (p *notifyPipe) wakeUnlock() {
	p.cond.Broadcast()
	f := p.notify
	p.notify = nil
	p.mu.Unlock()
	if f != nil {
		go f()
	}
}

func (p *notifyPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

func (p *notifyPipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.wakeUnlock()
	return nil
}

func (p *notifyPipe) NotifyReadable(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 || p.closed {
		return false
	}
	p.notify = f
	return true
}
