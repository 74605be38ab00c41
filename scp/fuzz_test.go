package scp

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/vfs"
)

// FuzzSCPSink feeds arbitrary client streams to the sink: no panic, no
// file outside the root, no temporary file left, every response a
// well-formed OK, warning or fatal line.
func FuzzSCPSink(f *testing.F) {
	for _, s := range []string{
		"C0644 5 a\nhello\x00",
		"C0644 5 a\nhel",
		"T1 0 2 0\nC0644 1 b\nx\x00",
		"D0755 0 d\nC0600 2 f\nab\x00E\nE\n",
		"D0755 0 ..\n",
		"C0644 1 ../x\nx\x00",
		"\x01scp: oops\nC0644 0 z\n\x00",
		"C0644 3 out\nabc\x01x\n",
		"D0755 0 out\nC0644 1 f\nx\x00E\n",
		"C0644 999999999 big\nx",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, recursive bool) {
		base := t.TempDir()
		root, outside := filepath.Join(base, "home"), filepath.Join(base, "outside")
		os.Mkdir(root, 0o755)
		os.Mkdir(outside, 0o755)
		os.Symlink(outside, filepath.Join(root, "out"))
		fsys, err := vfs.Local(root)
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		cmd := "scp -p -t ."
		if recursive {
			cmd = "scp -r -p -t ."
		}
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{strings.NewReader(in), &out}
		Serve(context.Background(), fsys, cmd, rw, io.Discard, &Options{Quota: &memQuota{limit: 1 << 16}})
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("wrote outside the root: %v", ents)
		}
		noTemps(t, root)
		o := out.Bytes()
		for len(o) > 0 {
			switch o[0] {
			case respOK:
				o = o[1:]
			case respWarning, respFatal:
				i := bytes.IndexByte(o, '\n')
				if i < 0 || !bytes.HasPrefix(o[1:], []byte("scp: ")) {
					t.Fatalf("bad message in output %q", out.Bytes())
				}
				o = o[i+1:]
			default:
				t.Fatalf("bad response byte in %q", out.Bytes())
			}
		}
	})
}

// FuzzParseCommand: no panic; accepted commands have one direction and
// at least one path, exactly one in sink mode; words never carry NUL.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"scp -t .", "scp -v -r -p -d -t -- -x", "scp -f 'a b' \"c\\\"d\" e\\ f", "scp -f *.txt ~/x",
		"scp -t a;b", "scp -f $(id)", "scp -f '", "scp -rpf -- --", "/usr/bin/scp -f ~root",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ws, werr := SplitWords(s)
		if werr == nil {
			for _, w := range ws {
				if strings.ContainsRune(w.Text, 0) {
					t.Fatalf("NUL in word %q", w.Text)
				}
				if w.Glob != (w.Pattern != "") && !(w.Glob && w.Text == "") {
					t.Fatalf("pattern %q for glob=%v", w.Pattern, w.Glob)
				}
			}
		}
		c, err := ParseCommand(s)
		if err != nil {
			return
		}
		if werr != nil {
			t.Fatal("ParseCommand accepted what SplitWords refused")
		}
		if c.Sink == c.Source || len(c.Paths) == 0 || (c.Sink && len(c.Paths) != 1) {
			t.Fatalf("inconsistent %+v", c)
		}
		if !IsSCPCommand(s) {
			t.Fatal("parsed but not IsSCPCommand")
		}
	})
}
