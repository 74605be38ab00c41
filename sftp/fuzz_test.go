package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/vfs"
)

// fuzzSeeds are request streams (after INIT) that reach most handlers.
func fuzzSeeds() [][]byte {
	h1 := []byte{0, 0, 0, 1}
	h2 := []byte{0, 0, 0, 2}
	frame := func(ms ...appender) []byte {
		var out []byte
		for _, m := range ms {
			b := m.appendTo([]byte{0, 0, 0, 0})
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			out = append(out, b...)
		}
		return out
	}
	ext := func(id uint32, name string, data []byte) appender {
		return &extendedReq{ID: id, Request: name, Data: data}
	}
	return [][]byte{
		frame(&openReq{ID: 1, Path: "/f", PFlags: fxfWrite | fxfCreat | fxfTrunc},
			&writeReq{ID: 2, Handle: h1, Offset: 0, Data: []byte("hello")},
			&readReq{ID: 3, Handle: h1, Offset: 0, Length: 5},
			&handleReq{Type: fxpFstat, ID: 4, Handle: h1},
			&fsetstatReq{ID: 5, Handle: h1, Attrs: Attrs{Flags: AttrPermissions | AttrSize, Permissions: 0o600, Size: 3}},
			&handleReq{Type: fxpClose, ID: 6, Handle: h1}),
		frame(&pathReq{Type: fxpOpendir, ID: 1, Path: "/"},
			&handleReq{Type: fxpReaddir, ID: 2, Handle: h1},
			&handleReq{Type: fxpReaddir, ID: 3, Handle: h1},
			&pathReq{Type: fxpRealpath, ID: 4, Path: "out/../.."},
			&pathReq{Type: fxpStat, ID: 5, Path: "/out/secret"},
			&pathReq{Type: fxpLstat, ID: 6, Path: "/out"},
			&pathReq{Type: fxpReadlink, ID: 7, Path: "/out"}),
		frame(&mkdirReq{ID: 1, Path: "/d"},
			&twoPathReq{Type: fxpSymlink, ID: 2, First: "/out/secret", Second: "/d/l"},
			&twoPathReq{Type: fxpRename, ID: 3, First: "/d", Second: "/out/d"},
			&setstatReq{ID: 4, Path: "/d", Attrs: Attrs{Flags: AttrACModTime, ATime: 1, MTime: 2}},
			&pathReq{Type: fxpRmdir, ID: 5, Path: "/d"},
			&pathReq{Type: fxpRemove, ID: 6, Path: "/d/l"}),
		frame(&openReq{ID: 1, Path: "/g", PFlags: fxfRead | fxfWrite | fxfCreat},
			&openReq{ID: 2, Path: "/h", PFlags: fxfWrite | fxfCreat | fxfAppend},
			ext(3, "copy-data", append(append(appendStr(nil, string(h1)), make([]byte, 16)...), append(appendStr(nil, string(h2)), make([]byte, 8)...)...)),
			ext(4, "fsync@openssh.com", appendStr(nil, string(h1))),
			ext(5, "fstatvfs@openssh.com", appendStr(nil, string(h1))),
			ext(6, "limits@openssh.com", nil),
			ext(7, "posix-rename@openssh.com", appendStr(appendStr(nil, "/g"), "/out/g")),
			ext(8, "hardlink@openssh.com", appendStr(appendStr(nil, "/out/secret"), "/s")),
			ext(9, "statvfs@openssh.com", appendStr(nil, "/")),
			ext(10, "expand-path@openssh.com", appendStr(nil, "~/x")),
			ext(11, "lsetstat@openssh.com", append(appendStr(nil, "/out"), 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0)),
			ext(12, "users-groups-by-id@openssh.com", appendStr(appendStr(nil, "\x00\x00\x00\x00"), "")),
			ext(13, "home-directory", appendStr(nil, ""))),
		{0, 0, 0, 5, 99, 0, 0, 0, 1},
		{0, 0, 0, 3, fxpRead, 0, 0},
	}
}

// FuzzPacketDecoder feeds arbitrary request streams to a server over a
// temporary root holding a symbolic link to a directory outside it, and
// checks that nothing panics and nothing outside changes.
func FuzzPacketDecoder(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
		os.Mkdir(root, 0o755)
		os.Mkdir(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
		os.Symlink(outside, filepath.Join(root, "out"))
		fsys, err := vfs.Local(root)
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		// The quota bounds what a stream can make the server write
		// (sparse sizes, copy-data to EOF).
		srv := NewServer(fsys, &Options{Quota: &testQuota{limit: 1 << 20}, Workers: 2})
		in := append((&initMsg{Version: 3}).appendTo([]byte{0, 0, 0, 5}), data...)
		done := make(chan struct{})
		go func() {
			srv.Serve(context.Background(), bytes.NewReader(in), io.Discard)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			// A hung session is a bug (a deadlock, an unbounded loop):
			// crash so the fuzzer keeps the input.
			buf := make([]byte, 1<<20)
			panic("session hung:\n" + string(buf[:runtime.Stack(buf, true)]))
		}
		ents, _ := os.ReadDir(outside)
		if len(ents) != 1 {
			t.Fatalf("outside directory changed: %v", ents)
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
			t.Fatalf("outside file changed: %q", b)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Fatalf("files created beside the root: %v", ents)
		}
	})
}

// FuzzAttrs checks that ATTRS parsing is strict and canonical: whatever
// parses re-encodes to the same bytes.
func FuzzAttrs(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add((&Attrs{Flags: AttrSize | AttrUIDGID | AttrPermissions | AttrACModTime, Size: 9, UID: 1, GID: 2, Permissions: 0o644, ATime: 3, MTime: 4}).appendTo(nil))
	f.Add((&Attrs{Flags: AttrExtended, Extended: []extensionPair{{"a", "b"}}}).appendTo(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Attrs
		if !a.unmarshal(data) {
			return
		}
		if b := a.appendTo(nil); !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, b)
		}
	})
}

// FuzzMessages checks every message parser for panics and canonical
// re-encoding.
func FuzzMessages(f *testing.F) {
	for _, tc := range roundTripCases() {
		f.Add(tc.in.appendTo(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tc := range roundTripCases() {
			m := tc.out()
			if m.unmarshal(data) {
				if b := m.appendTo(nil); !bytes.Equal(b, data) {
					t.Fatalf("%s: re-encoding differs:\n%x\n%x", tc.name, data, b)
				}
			}
		}
	})
}
