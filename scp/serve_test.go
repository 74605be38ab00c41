package scp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

// run serves cmd over a client stream given in full up front; the
// server's output is collected. Reading a preloaded stream and writing a
// buffer never block, so the tests are deterministic.
func run(t testing.TB, root, cmd, in string, opts *Options) (out, stderr string, status int) {
	t.Helper()
	fsys, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	var ob, eb bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(in), &ob}
	status = Serve(context.Background(), fsys, cmd, rw, &eb, opts)
	return ob.String(), eb.String(), status
}

func writeFile(t testing.TB, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noTemps fails when an upload's temporary file was left behind.
func noTemps(t testing.TB, root string) {
	t.Helper()
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), tempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestSinkFiles(t *testing.T) {
	root := t.TempDir()
	in := "C0640 5 a b\nhello\x00" + "C0600 0 \"q'\n\x00" + "C0644 3 -rf\nxyz\x00"
	out, stderr, st := run(t, root, "scp -t .", in, &Options{Umask: 0o022})
	if out != "\x00\x00\x00\x00\x00\x00\x00" || st != 0 || stderr != "" {
		t.Fatalf("out %q stderr %q status %d", out, stderr, st)
	}
	for name, want := range map[string]string{"a b": "hello", `"q'`: "", "-rf": "xyz"} {
		if got := readFile(t, filepath.Join(root, name)); got != want {
			t.Errorf("%q: %q", name, got)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "a b")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	noTemps(t, root)
}

func TestTransferLog(t *testing.T) {
	root := t.TempDir()
	var recs []sftp.TransferRecord
	opts := &Options{User: "alice", TransferLog: func(r sftp.TransferRecord) { recs = append(recs, r) }}
	run(t, root, "scp -t .", "C0644 5 a\nhello\x00C0644 5 b\nhel", opts)
	run(t, root, "scp -f a", "\x00\x00\x00", opts)
	if len(recs) != 3 {
		t.Fatalf("%d records: %+v", len(recs), recs)
	}
	for i, want := range []sftp.TransferRecord{
		{User: "alice", Path: "/a", BytesWritten: 5, Result: "ok"},
		{User: "alice", Path: "/b", Result: "aborted"},
		{User: "alice", Path: "/a", BytesRead: 5, Result: "ok"},
	} {
		r := recs[i]
		if r.User != want.User || r.Path != want.Path || r.BytesRead != want.BytesRead || r.BytesWritten != want.BytesWritten || r.Result != want.Result {
			t.Errorf("record %d: %+v, want %+v", i, r, want)
		}
	}
}

func TestSinkToFileTarget(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "old"), "previous", 0o600)
	out, _, st := run(t, root, "scp -t old", "C0644 3 whatever\nnew\x00", nil)
	if out != "\x00\x00\x00" || st != 0 {
		t.Fatalf("out %q status %d", out, st)
	}
	if got := readFile(t, filepath.Join(root, "old")); got != "new" {
		t.Errorf("content %q", got)
	}
	// Without -p an existing file keeps its mode.
	if fi, _ := os.Stat(filepath.Join(root, "old")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(root, "whatever")); err == nil {
		t.Error("record name used with a file target")
	}
}

func TestSinkRecursivePreserve(t *testing.T) {
	root := t.TempDir()
	in := "T1600000000 0 1600000100 0\nD0750 0 top\n" +
		"T1500000000 0 1500000100 0\nC0604 4 f\nabcd\x00" +
		"D0700 0 sub\nC0644 2 g\nhi\x00E\n" +
		"E\n"
	out, _, st := run(t, root, "scp -r -p -t /", in, nil)
	if want := strings.Repeat("\x00", 11); out != want || st != 0 {
		t.Fatalf("out %q status %d", out, st)
	}
	top := filepath.Join(root, "top")
	if got := readFile(t, filepath.Join(top, "f")); got != "abcd" {
		t.Errorf("f %q", got)
	}
	if got := readFile(t, filepath.Join(top, "sub", "g")); got != "hi" {
		t.Errorf("g %q", got)
	}
	fi, _ := os.Stat(filepath.Join(top, "f"))
	if fi.Mode().Perm() != 0o604 || fi.ModTime().Unix() != 1500000000 {
		t.Errorf("f: %v %v", fi.Mode(), fi.ModTime())
	}
	fi, _ = os.Stat(top)
	if fi.Mode().Perm() != 0o750 || fi.ModTime().Unix() != 1600000000 {
		t.Errorf("top: %v %v", fi.Mode(), fi.ModTime())
	}
}

func TestSinkErrors(t *testing.T) {
	tests := []struct {
		name, cmd, in string
		opts          *Options
		out           string
		status        int
	}{
		{"dotdot", "scp -t .", "C0644 1 ..\nx", nil, "\x00\x02scp: error: unexpected filename: ..\n", 1},
		{"slash", "scp -t .", "C0644 1 a/b\nx", nil, "\x00\x02scp: error: unexpected filename: a/b\n", 1},
		{"dot dir", "scp -r -t .", "D0755 0 .\n", nil, "\x00\x02scp: error: unexpected filename: .\n", 1},
		{"empty", "scp -t .", "C0644 1 \nx", nil, "\x00\x02scp: error: unexpected filename: \n", 1},
		{"dir without -r", "scp -t .", "D0755 0 d\nE\n", nil, "\x00\x02scp: protocol error: received directory without -r\n", 1},
		{"garbage", "scp -t .", "hello\n", nil, "\x00\x02scp: protocol error: expected control record\n", 1},
		{"newline", "scp -t .", "\n", nil, "\x00\x02scp: protocol error: unexpected <newline>\n", 1},
		{"bad mode", "scp -t .", "C0944 1 a\n", nil, "\x00\x02scp: protocol error: bad mode\n", 1},
		{"bad times", "scp -p -t .", "Tx\n", nil, "\x00\x02scp: protocol error: mtime.sec not present\n", 1},
		{"long line", "scp -t .", strings.Repeat("C", maxLine+1), nil, "\x00\x02scp: protocol error: record too long\n", 1},
		{"read-only", "scp -r -t .", "C0644 1 a\nD0755 0 d\n", &Options{ReadOnly: true},
			"\x00\x01scp: /a: Permission denied (the account is read-only)\n\x01scp: /d: Permission denied (the account is read-only)\n", 1},
		{"-d not dir", "scp -d -t nothere", "", nil, "\x01scp: /nothere: No such file or directory\n", 1},
		{"-d file", "scp -d -t file", "", nil, "\x01scp: /file: Not a directory\n", 1},
		// PuTTY's pscp goes on sending files after the first refusal.
		{"-d records", "scp -r -d -t nothere", "C0644 1 a\nD0755 0 d\nC0644 1 b\n", nil,
			"\x01scp: /nothere: No such file or directory\n\x01scp: /nothere/a: No such file or directory\n" +
				"\x01scp: /nothere/d: No such file or directory\n\x01scp: /nothere/b: No such file or directory\n", 1},
		{"no overwrite", "scp -t .", "C0644 1 file\nC0644 1 new\nn\x00", &Options{Permissions: sftp.Permissions{NoOverwrite: true}}, "\x00\x01scp: /file: Permission denied\n\x00\x00", 1},
		{"is a directory", "scp -t .", "C0644 1 dir\n", nil, "\x00\x01scp: /dir: Is a directory\n", 1},
		{"no parent", "scp -t nodir/x", "C0644 1 y\n", nil, "\x00\x01scp: /nodir/x: No such file or directory\n", 1},
		{"reserved temp name", "scp -t .", "C0644 1 " + tempPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAA\n", nil, "\x00\x01scp: /" + tempPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAA: Permission denied\n", 1},
		{"client error line", "scp -t .", "\x01scp: x: Permission denied\nC0644 1 ok\nk\x00", nil, "\x00\x00\x00", 1},
		{"client fatal line", "scp -t .", "\x02scp: bye\n", nil, "\x00", 1},
		{"client read error", "scp -t .", "C0644 1 file\nZ\x01scp: read error\n", nil, "\x00\x00\x01scp: /file: upload discarded: the client reported an error\n", 1},
		{"bad usage", "scp -t a b", "", nil, "\x01scp: ambiguous target\n", 1},
		// A target typed as a directory that is not one: the file was
		// written under the name without the slash, exit status 0.
		{"slash target missing", "scp -t nodir/", "C0644 1 y\n", nil, "\x00\x01scp: /nodir/: Is a directory\n", 1},
		{"slash target file", "scp -t file/", "C0644 1 y\n", nil, "\x00\x01scp: /file/: Is a directory\n", 1},
		{"slash target file -r", "scp -r -t file/", "D0755 0 d\n", nil, "\x00\x01scp: /file/: File exists\n", 1},
		{"dot target missing", "scp -t nodir/.", "C0644 1 y\n", nil, "\x00\x01scp: /nodir/.: No such file or directory\n", 1},
		{"dot target file -r", "scp -r -t file/.", "D0755 0 d\n", nil, "\x00\x01scp: /file/.: Not a directory\n", 1},
		{"E at top", "scp -r -t .", "E\n", nil, "\x00\x00", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "file"), "old", 0o644)
			os.Mkdir(filepath.Join(root, "dir"), 0o755)
			out, stderr, st := run(t, root, tt.cmd, tt.in, tt.opts)
			if out != tt.out || st != tt.status {
				t.Errorf("out %q status %d (stderr %q), want %q status %d", out, st, stderr, tt.out, tt.status)
			}
			if got := readFile(t, filepath.Join(root, "file")); got != "old" {
				t.Errorf("file changed to %q", got)
			}
			noTemps(t, root)
		})
	}
	_, stderr, _ := run(t, t.TempDir(), "scp -t a b", "", nil)
	if stderr != "" {
		t.Errorf("usage stderr %q", stderr)
	}
	// The refused option is named, as getopt(3) names it.
	if _, stderr, st := run(t, t.TempDir(), "scp -l 100 -t .", "", nil); stderr != "scp: unknown option -- l\n" || st != 1 {
		t.Errorf("unknown option: stderr %q status %d", stderr, st)
	}
}

// TestSinkAbortedKeepsOld: a transfer cut short leaves the previous
// version, removes the temporary file and gives the quota back. In place
// (DirectUploads, or an upload through a symbolic link) the partial file
// stays and is charged for what it holds; it was charged for the whole
// announced size until the next recount.
func TestSinkAbortedKeepsOld(t *testing.T) {
	for _, direct := range []bool{false, true} {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "f"), "previous", 0o644)
		q := &memQuota{limit: 1 << 20, bytes: 8, files: 1} // "previous"
		out, _, st := run(t, root, "scp -t .", "C0644 100 f\npartial", &Options{Quota: q, DirectUploads: direct})
		if out != "\x00\x00" || st != 1 {
			t.Errorf("out %q status %d", out, st)
		}
		got := readFile(t, filepath.Join(root, "f"))
		if !direct && got != "previous" {
			t.Errorf("atomic: content %q", got)
		}
		if direct && got != "" {
			t.Errorf("direct: content %q", got)
		}
		noTemps(t, root)
		// The usage is what the file holds: the previous version, or
		// (in place, as scp.c leaves it) the 7 bytes that arrived, not
		// the 100 the record announced.
		if wantBytes := int64(len(got)); q.bytes != wantBytes || q.files != 1 {
			t.Errorf("direct=%v: usage %d bytes %d files, want %d bytes 1 file", direct, q.bytes, q.files, wantBytes)
		}
	}
}

type memQuota struct {
	mu           sync.Mutex
	limit        int64
	bytes, files int64
}

func (q *memQuota) Reserve(_ context.Context, b, f int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes+b > q.limit {
		return sftp.ErrQuotaExceeded
	}
	q.bytes += b
	q.files += f
	return nil
}

func (q *memQuota) Release(_ context.Context, b, f int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.bytes -= b
	q.files -= f
}

func TestSinkQuota(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), "12345", 0o644)
	q := &memQuota{limit: 10, bytes: 5, files: 1}
	in := "C0644 6 big\n" + "C0644 3 f\nabc\x00" + "C0644 2 g\nxy\x00"
	out, _, st := run(t, root, "scp -t .", in, &Options{Quota: q})
	if want := "\x00\x01scp: /big: Disk quota exceeded\n\x00\x00\x00\x00"; out != want || st != 1 {
		t.Errorf("out %q status %d", out, st)
	}
	// f replaced 5 bytes by 3, g added 2 bytes and a file.
	if q.bytes != 5 || q.files != 2 {
		t.Errorf("usage %d bytes %d files", q.bytes, q.files)
	}
	if readFile(t, filepath.Join(root, "f")) != "abc" || readFile(t, filepath.Join(root, "g")) != "xy" {
		t.Error("contents")
	}
}

// TestSinkStaysInRoot: links and names cannot make the sink write
// outside the root.
func TestSinkStaysInRoot(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "home"), filepath.Join(base, "outside")
	os.Mkdir(root, 0o755)
	os.Mkdir(outside, 0o755)
	os.Symlink(outside, filepath.Join(root, "out"))
	os.Symlink(filepath.Join(outside, "f"), filepath.Join(root, "lf"))
	for _, tc := range []struct{ cmd, in string }{
		{"scp -t out", "C0644 1 f\nx\x00"},
		{"scp -t ../outside", "C0644 1 f\nx\x00"},
		{"scp -t lf", "C0644 1 x\nx\x00"},
		{"scp -r -t out", "D0755 0 d\nC0644 1 f\nx\x00E\n"},
	} {
		run(t, root, tc.cmd, tc.in, nil)
		ents, _ := os.ReadDir(outside)
		if len(ents) != 0 {
			t.Fatalf("%q wrote outside: %v", tc.cmd, ents)
		}
	}
}

func TestSource(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a b"), "hello", 0o640)
	writeFile(t, filepath.Join(root, "d", "x"), "xx", 0o600)
	writeFile(t, filepath.Join(root, "d", "e", "y"), "", 0o644)
	writeFile(t, filepath.Join(root, "d", tempPrefix+"AAAAAAAAAAAAAAAAAAAAAAAAAA"), "tmp", 0o600)
	os.Chmod(filepath.Join(root, "d"), 0o750)
	os.Chmod(filepath.Join(root, "d", "e"), 0o700)
	mt := time.Unix(1600000000, 0)
	at := time.Unix(1600000100, 0)
	for _, p := range []string{"a b", "d/x", "d/e/y", "d/e", "d"} {
		os.Chtimes(filepath.Join(root, p), at, mt)
	}
	acks := strings.Repeat("\x00", 64)
	tests := []struct {
		cmd, out string
		status   int
	}{
		{"scp -f 'a b'", "C0640 5 a b\nhello\x00", 0},
		{"scp -p -f '/a b'", "T1600000000 0 1600000100 0\nC0640 5 a b\nhello\x00", 0},
		{"scp -f d", "\x01scp: /d: not a regular file\n", 1},
		{"scp -f nothere 'a b'", "\x01scp: /nothere: No such file or directory\nC0640 5 a b\nhello\x00", 1},
		{"scp -r -f d", "D0750 0 d\nD0700 0 e\nC0644 0 y\n\x00E\nC0600 2 x\nxx\x00E\n", 0},
		{"scp -r -p -f d/e", "T1600000000 0 1600000100 0\nD0700 0 e\nT1600000000 0 1600000100 0\nC0644 0 y\n\x00E\n", 0},
		{"scp -f *", "C0640 5 a b\nhello\x00\x01scp: /d: not a regular file\n", 1},
		{"scp -f '*'", "\x01scp: /*: No such file or directory\n", 1},
		{"scp -f d/*", "\x01scp: /d/e: not a regular file\nC0600 2 x\nxx\x00", 1},
		{"scp -f ~/?' 'b", "C0640 5 a b\nhello\x00", 0},
		{"scp -f 'd/*'", "\x01scp: /d/*: No such file or directory\n", 1},
		{"scp -f nomatch*", "\x01scp: nomatch*: No such file or directory\n", 1},
		{"scp -f ../../a\\ b", "C0640 5 a b\nhello\x00", 0},
		// An upload's temporary file, named: refused, not silently skipped.
		{"scp -f d/" + tempPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAA", "\x01scp: /d/" + tempPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAA: Permission denied\n", 1},
	}
	for _, tt := range tests {
		for _, p := range []string{"a b", "d/x", "d/e/y", "d/e", "d"} {
			os.Chtimes(filepath.Join(root, p), at, mt)
		}
		out, _, st := run(t, root, tt.cmd, acks, nil)
		if out != tt.out || st != tt.status {
			t.Errorf("%s: out %q status %d, want %q %d", tt.cmd, out, st, tt.out, tt.status)
		}
	}
	writeFile(t, filepath.Join(root, "nl\nx"), "n", 0o644)
	out, _, st := run(t, root, "scp -f 'nl\nx'", acks, nil)
	if out != "C0644 1 nl\\^Jx\nn\x00" || st != 0 {
		t.Errorf("newline name: %q %d", out, st)
	}
	// The sink refusing a file makes the source skip its data.
	out, _, _ = run(t, root, "scp -f 'a b'", "\x00\x01scp: nope\n", nil)
	if out != "C0640 5 a b\n" {
		t.Errorf("refused file: %q", out)
	}
	out, _, st = run(t, root, "scp -f 'a b'", acks, &Options{Permissions: sftp.Permissions{NoDownload: true}})
	if out != "\x02scp: Permission denied: the account is upload-only\n" || st != 1 {
		t.Errorf("no download: %q %d", out, st)
	}
}

func TestSourceStaysInRoot(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "home"), filepath.Join(base, "outside")
	os.Mkdir(root, 0o755)
	writeFile(t, filepath.Join(outside, "secret"), "secret", 0o644)
	os.Symlink(outside, filepath.Join(root, "out"))
	for _, cmd := range []string{"scp -f ../outside/secret", "scp -f out/secret", "scp -r -f out", "scp -f ../*/secret", "scp -f /out/*"} {
		out, _, _ := run(t, root, cmd, strings.Repeat("\x00", 8), nil)
		if strings.Contains(out, "secret\x00") || strings.Contains(out, "C0") {
			t.Errorf("%s sent %q", cmd, out)
		}
	}
}

// TestSourceLinkLoop: a link to a parent ends at maxDepth instead of
// recursing forever.
func TestSourceLinkLoop(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.Symlink("..", filepath.Join(root, "d", "up"))
	out, _, st := run(t, root, "scp -r -f d", strings.Repeat("\x00", 2*maxDepth+8), nil)
	if st != 1 || !strings.Contains(out, "directories nested too deeply") && !strings.Contains(out, "Too many levels of symbolic links") {
		t.Errorf("status %d, tail %q", st, out[max(0, len(out)-200):])
	}
}

func TestSinkNestingBound(t *testing.T) {
	in := strings.Repeat("D0755 0 a\n", maxDepth+1)
	out, _, st := run(t, t.TempDir(), "scp -r -t .", in, nil)
	want := strings.Repeat("\x00", maxDepth) + "\x02scp: protocol error: directories nested too deeply\n"
	if out != want || st != 1 {
		t.Errorf("status %d, tail %q", st, out[max(0, len(out)-80):])
	}
}

// TestRoundTrip sends a tree with the source and feeds its output to
// the sink of another root.
func TestRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	big := strings.Repeat("0123456789abcdef", 20000) // > bufSize, not a multiple
	writeFile(t, filepath.Join(src, "t", "big"), big, 0o644)
	writeFile(t, filepath.Join(src, "t", "s", "small"), "s", 0o600)
	out, _, st := run(t, src, "scp -r -p -f t", strings.Repeat("\x00", 64), nil)
	if st != 0 {
		t.Fatalf("source status %d", st)
	}
	// The source's acks after each data block are the sink's input, and
	// the sink answers each record; strip nothing: the streams match.
	_, _, st = run(t, dst, "scp -r -p -t .", out, nil)
	if st != 0 {
		t.Fatalf("sink status %d", st)
	}
	if readFile(t, filepath.Join(dst, "t", "big")) != big || readFile(t, filepath.Join(dst, "t", "s", "small")) != "s" {
		t.Error("contents differ")
	}
}

// BenchmarkSink receives 1 MiB files: atomic uploads (fsync and rename
// per file) and direct ones.
func BenchmarkSink(b *testing.B) {
	for _, direct := range []bool{false, true} {
		name := "atomic"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			root := b.TempDir()
			data := strings.Repeat("x", 1<<20)
			in := "C0644 1048576 f\n" + data + "\x00"
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			fsys, _ := vfs.Local(root)
			defer fsys.Close()
			srv := NewServer(fsys, &Options{DirectUploads: direct})
			for b.Loop() {
				rw := struct {
					io.Reader
					io.Writer
				}{strings.NewReader(in), io.Discard}
				if st := srv.Serve(context.Background(), "scp -t .", rw, io.Discard); st != 0 {
					b.Fatal(st)
				}
			}
		})
	}
}

func BenchmarkSource(b *testing.B) {
	root := b.TempDir()
	writeFile(b, filepath.Join(root, "f"), strings.Repeat("x", 1<<20), 0o644)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	fsys, _ := vfs.Local(root)
	defer fsys.Close()
	srv := NewServer(fsys, nil)
	for b.Loop() {
		rw := struct {
			io.Reader
			io.Writer
		}{strings.NewReader("\x00\x00\x00"), io.Discard}
		if st := srv.Serve(context.Background(), "scp -f f", rw, io.Discard); st != 0 {
			b.Fatal(st)
		}
	}
}

// growingQuota is memQuota that lengthens a file at the first Reserve:
// another session appending to an upload's target while it is under way.
type growingQuota struct {
	memQuota
	grow string
}

func (q *growingQuota) Reserve(ctx context.Context, b, f int64) error {
	if q.grow != "" {
		os.WriteFile(q.grow, []byte("12345678"), 0o644)
		q.memQuota.Reserve(ctx, 3, 0) // what that session's write was charged
		q.grow = ""
	}
	return q.memQuota.Reserve(ctx, b, f)
}

// TestSinkQuotaTargetChangedDuringUpload: an atomic upload gives back what
// its target holds when it replaces it, not what it held when the upload
// started.
func TestSinkQuotaTargetChangedDuringUpload(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), "12345", 0o644)
	q := &growingQuota{memQuota: memQuota{limit: 100, bytes: 5, files: 1}, grow: filepath.Join(root, "f")}
	out, _, st := run(t, root, "scp -t .", "C0644 3 f\nabc\x00", &Options{Quota: q})
	if out != "\x00\x00\x00" || st != 0 {
		t.Fatalf("out %q status %d", out, st)
	}
	if q.bytes != 3 || q.files != 1 {
		t.Errorf("usage %d bytes %d files, want 3 bytes 1 file", q.bytes, q.files)
	}
}

// TestRateLimits: WriteLimit paces an upload (scp -t) and ReadLimit a
// download (scp -f) to at least about size/limit; the data still arrive
// intact. Only a lower bound is checked.
func TestRateLimits(t *testing.T) {
	const limit = 1 << 20
	const size = 3 << 19 // 1.5 s at the limit, a tenth of it from the bucket
	const atLeast = 1200 * time.Millisecond
	data := strings.Repeat("x", size)
	root := t.TempDir()

	start := time.Now()
	out, stderr, st := run(t, root, "scp -t .", fmt.Sprintf("C0644 %d f\n%s\x00", size, data), &Options{WriteLimit: limit})
	if d := time.Since(start); d < atLeast {
		t.Errorf("upload of %d bytes took %v with WriteLimit %d B/s, want at least %v", size, d, limit, atLeast)
	}
	if out != "\x00\x00\x00" || st != 0 || stderr != "" || readFile(t, filepath.Join(root, "f")) != data {
		t.Fatalf("upload: out %q stderr %q status %d", out, stderr, st)
	}

	start = time.Now()
	out, stderr, st = run(t, root, "scp -f f", "\x00\x00\x00", &Options{ReadLimit: limit})
	if d := time.Since(start); d < atLeast {
		t.Errorf("download of %d bytes took %v with ReadLimit %d B/s, want at least %v", size, d, limit, atLeast)
	}
	if want := fmt.Sprintf("C0644 %d f\n%s\x00", size, data); out != want || st != 0 || stderr != "" {
		t.Fatalf("download: %d bytes out, stderr %q status %d", len(out), stderr, st)
	}
}

// TestSinkDataThenEOF: libssh2's scp_send (curl's scp://, PHP's
// ssh2_scp_send) sends the file's data and then EOF, with no verdict
// byte after it. OpenSSH's scp -t keeps such a file; ferry discarded it
// while curl exited 0, so the upload silently vanished.
func TestSinkDataThenEOF(t *testing.T) {
	for _, direct := range []bool{false, true} {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "f"), "previous", 0o644)
		var records []sftp.TransferRecord
		out, stderr, st := run(t, root, "scp -t f", "C0644 5 f\nhello", &Options{DirectUploads: direct,
			TransferLog: func(r sftp.TransferRecord) { records = append(records, r) }})
		if out != "\x00\x00\x00" || st != 0 || stderr != "" {
			t.Errorf("direct=%v: out %q stderr %q status %d", direct, out, stderr, st)
		}
		if got := readFile(t, filepath.Join(root, "f")); got != "hello" {
			t.Errorf("direct=%v: content %q, want hello", direct, got)
		}
		noTemps(t, root)
		if len(records) != 1 || records[0].Result != "ok" || records[0].BytesWritten != 5 {
			t.Errorf("direct=%v: transfer records %+v", direct, records)
		}
	}
}

// TestSinkTimesOutOfRange: OpenSSH's scp -p sends a file dated past 2262
// (ext4 keeps dates up to 2446) as a T record ferry cannot set. scp.c
// leaves such times unset and receives the file; ferry ended the whole
// upload with "protocol error: mtime.sec not delimited", so one odd
// timestamp stopped an "scp -rp" of a tree.
func TestSinkTimesOutOfRange(t *testing.T) {
	root := t.TempDir()
	in := "T15300000000 0 15300000000 0\nD0755 0 d\n" +
		"T15300000000 0 1 0\nC0644 1 future\nf\x00" +
		"T1500000000 0 1500000000 0\nC0644 1 dated\nd\x00" +
		"E\n"
	before := time.Now().Add(-time.Minute)
	out, stderr, st := run(t, root, "scp -r -p -t .", in, nil)
	if want := strings.Repeat("\x00", 10); out != want || st != 0 || stderr != "" {
		t.Fatalf("out %q stderr %q status %d, want %q status 0", out, stderr, st, want)
	}
	for _, name := range []string{"d", "d/future"} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if mt := fi.ModTime(); mt.Before(before) || mt.Year() > 2100 {
			t.Errorf("%s: mtime %v, want the time of the upload (the record's times are not set)", name, mt)
		}
	}
	if got := readFile(t, filepath.Join(root, "d", "future")); got != "f" {
		t.Errorf("future: content %q", got)
	}
	if fi, err := os.Stat(filepath.Join(root, "d", "dated")); err != nil || fi.ModTime().Unix() != 1500000000 {
		t.Errorf("dated: %v, want mtime 1500000000 (%v)", fi, err)
	}
}

// TestSourcePeerRefusalStatus: when the client refuses a file (it cannot
// create it, or could not write it), "scp -f" exits 1 as scp.c's does
// (response() counts the error); ferry exited 0, so a forced command or
// an scp -3 relay read success for a file that never arrived.
func TestSourcePeerRefusalStatus(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), "abc", 0o644)
	for _, tt := range []struct{ name, in, out string }{
		{"record refused", "\x00\x01scp: f: Permission denied\n", "C0644 3 f\n"},
		{"data refused", "\x00\x00\x01scp: f: No space left on device\n", "C0644 3 f\nabc\x00"},
	} {
		out, _, st := run(t, root, "scp -f f", tt.in, nil)
		if out != tt.out || st != 1 {
			t.Errorf("%s: out %q status %d, want %q status 1", tt.name, out, st, tt.out)
		}
	}
}

// TestLongErrorKeepsReason: an error naming a path near PATH_MAX must fit
// the 2048 bytes a client reads of it and still end with the reason; it
// was cut at the end, so the user saw a path and no reason.
func TestLongErrorKeepsReason(t *testing.T) {
	target := strings.Repeat("dé/", 1000) + "x"
	out, _, st := run(t, t.TempDir(), "scp -t '"+target+"'", "C0644 1 y\nx\x00", nil)
	if st != 1 || !strings.HasPrefix(out, "\x00\x01scp: /dé/dé/") || !strings.HasSuffix(out, "/dé/x: No such file or directory\n") ||
		len(out) > 2+maxLine || strings.Count(out, "\n") != 1 || !utf8.ValidString(out) {
		t.Errorf("status %d, %d bytes out: %q", st, len(out), out)
	}
}
