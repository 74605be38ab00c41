package sftp

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-sftp/ferry/vfs"
)

// benchWindow is the requests kept in flight, like OpenSSH's sftp -R.
const benchWindow = 64

// benchFileSize is the span benchmark offsets cycle through.
const benchFileSize = 64 << 20

// benchSession opens a server over a pipe and returns the client ends
// after INIT.
func benchSession(b *testing.B, root string, opts *Options) (io.Writer, io.Reader) {
	fsys, err := vfs.Local(root)
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(fsys, opts)
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	done := make(chan struct{})
	go func() {
		srv.Serve(context.Background(), sr, sw)
		sw.Close()
		close(done)
	}()
	b.Cleanup(func() {
		cw.Close()
		io.Copy(io.Discard, cr)
		<-done
		fsys.Close()
	})
	send(b, cw, &initMsg{Version: 3})
	recvInto(b, cr, make([]byte, 1024))
	return cw, cr
}

func send(b *testing.B, w io.Writer, m appender) {
	p := m.appendTo([]byte{0, 0, 0, 0})
	binary.BigEndian.PutUint32(p, uint32(len(p)-4))
	if _, err := w.Write(p); err != nil {
		b.Fatal(err)
	}
}

// recvInto reads one reply into buf without allocating.
func recvInto(b *testing.B, r io.Reader, buf []byte) []byte {
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		b.Fatal(err)
	}
	n := binary.BigEndian.Uint32(buf)
	if int(n) > len(buf) {
		b.Fatalf("reply of %d bytes", n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		b.Fatal(err)
	}
	return buf[:n]
}

func benchOpen(b *testing.B, w io.Writer, r io.Reader, path string, pflags uint32) []byte {
	send(b, w, &openReq{ID: 1, Path: path, PFlags: pflags})
	var h handleMsg
	if p := recvInto(b, r, make([]byte, 1024)); !h.unmarshal(p) {
		b.Fatalf("OPEN failed: %x", p)
	}
	return append([]byte(nil), h.Handle...)
}

// pipeline sends b.N requests built by fill (in place in req, which is
// framed already) with benchWindow in flight, and checks each reply.
func pipeline(b *testing.B, w io.Writer, r io.Reader, req []byte, fill func(req []byte, i int), check func(reply []byte)) {
	tokens := make(chan struct{}, benchWindow)
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			tokens <- struct{}{}
			fill(req, i)
			if _, err := w.Write(req); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, maxPacket+64)
	for i := 0; i < b.N; i++ {
		check(recvInto(b, r, buf))
		<-tokens
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRead(b *testing.B) {
	for _, size := range []int{32 << 10, maxReadLength} {
		b.Run(fmt.Sprintf("%dKiB", (size+1023)>>10), func(b *testing.B) {
			root := b.TempDir()
			data := make([]byte, benchFileSize)
			for i := range data {
				data[i] = byte(i * 7)
			}
			os.WriteFile(filepath.Join(root, "f"), data, 0o644)
			w, r := benchSession(b, root, nil)
			h := benchOpen(b, w, r, "/f", fxfRead)
			req := (&readReq{ID: 0, Handle: h, Offset: 0, Length: uint32(size)}).appendTo([]byte{0, 0, 0, 0})
			benchRequests(b, w, r, req, len(h), size, func(reply []byte) {
				if reply[0] != fxpData || int(binary.BigEndian.Uint32(reply[5:])) != size {
					b.Fatalf("bad reply %x", reply[:min(len(reply), 16)])
				}
			})
		})
	}
}

// BenchmarkWrite uploads with and without a quota: a charged write takes
// the account's QuotaLock and must not allocate either.
func BenchmarkWrite(b *testing.B) {
	for _, quota := range []bool{false, true} {
		for _, size := range []int{32 << 10, maxReadLength} {
			name := fmt.Sprintf("%dKiB", (size+1023)>>10)
			opts := &Options{}
			if quota {
				name = "quota-" + name
				opts.Quota = &testQuota{limit: 1 << 40}
			}
			b.Run(name, func(b *testing.B) { benchWrite(b, size, opts) })
		}
	}
}

func benchWrite(b *testing.B, size int, opts *Options) {
	root := b.TempDir()
	w, r := benchSession(b, root, opts)
	h := benchOpen(b, w, r, "/f", fxfWrite|fxfCreat|fxfTrunc)
	req := (&writeReq{ID: 0, Handle: h, Offset: 0, Data: make([]byte, size)}).appendTo([]byte{0, 0, 0, 0})
	benchRequests(b, w, r, req, len(h), size, func(reply []byte) {
		if reply[0] != fxpStatus || binary.BigEndian.Uint32(reply[5:]) != StatusOK {
			b.Fatalf("bad reply %x", reply)
		}
	})
}

// benchRequests pipelines req (a READ or WRITE of size bytes on a handle
// of handleLen bytes, length prefix still to fill) over the benchmark's
// file, each copy with the next request id and the next offset, and
// checks each reply.
func benchRequests(b *testing.B, w io.Writer, r io.Reader, req []byte, handleLen, size int, check func(reply []byte)) {
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	offPos := 4 + 1 + 4 + 4 + handleLen
	slots := benchFileSize / size
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	pipeline(b, w, r, req, func(req []byte, i int) {
		binary.BigEndian.PutUint32(req[5:], uint32(i))
		binary.BigEndian.PutUint64(req[offPos:], uint64((i%slots)*size))
	}, check)
}
