package vfs

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

// TestLocalMaxOpenFiles: one Local FS (an account's home, shared by its
// sessions) holds at most MaxOpenFiles files open; the next OpenFile
// fails with EMFILE until one is closed, and closing a file twice gives
// back one slot, not two.
func TestLocalMaxOpenFiles(t *testing.T) {
	l, _, _ := newJail(t)
	files := make([]File, 0, MaxOpenFiles)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range MaxOpenFiles {
		name := "/file"
		if i%2 == 1 {
			name = "/sub" // directories count too
		}
		f, err := l.OpenFile(name, os.O_RDONLY, 0)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		files = append(files, f)
	}
	_, err := l.OpenFile("/file", os.O_RDONLY, 0)
	var pe *fs.PathError
	if !errors.Is(err, syscall.EMFILE) || !errors.As(err, &pe) || pe.Path != "/file" {
		t.Fatalf("open past the limit: %v, want EMFILE naming /file", err)
	}
	// At the limit every open is refused before its path is looked at.
	if _, err := l.OpenFile("/missing", os.O_RDONLY, 0); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("open past the limit: %v, want EMFILE", err)
	}
	last := files[len(files)-1]
	files = files[:len(files)-1]
	last.Close()
	last.Close()
	f, err := l.OpenFile("/file", os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("open after a close: %v", err)
	}
	files = append(files, f)
	if _, err := l.OpenFile("/file", os.O_RDONLY, 0); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("a double Close gave back two slots: %v", err)
	}
	// Opens that fail do not leak slots either.
	files[0].Close()
	files = files[1:]
	for range 10 {
		if _, err := l.OpenFile("/missing", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("open of a missing file: %v", err)
		}
	}
	f, err = l.OpenFile("/file", os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("open after failed opens: %v", err)
	}
	files = append(files, f)
}
