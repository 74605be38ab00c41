package shell

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckAllowed: no panic; an accepted command starts with an
// allowed prefix and none of its arguments is absolute or climbs out of
// the home.
func FuzzCheckAllowed(f *testing.F) {
	for _, s := range []string{
		"rsync --server -vlogDtpre.iLsfxCIvu . dir/", "rsync --server --log-file=/x . d", "rsync --server . ../x",
		"md5sum 'a b' \"c\"", "md5sum ~/x", "md5sum -T/tmp", "git-upload-pack '/srv/x.git'",
	} {
		f.Add(s)
	}
	base := f.TempDir()
	home := filepath.Join(base, "home")
	os.MkdirAll(filepath.Join(home, "d"), 0o755)
	os.Symlink("..", filepath.Join(home, "up"))
	bin := filepath.Join(base, "bin")
	os.Mkdir(bin, 0o755)
	for _, p := range []string{"rsync", "md5sum", "git-upload-pack"} {
		os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755)
	}
	h, err := New(Config{Home: home, Path: bin, AllowedCommands: []string{"rsync --server", "md5sum", "git-upload-pack"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		argv, err := h.checkAllowed(cmd)
		if err != nil {
			return
		}
		if !strings.HasPrefix(argv[0], bin+"/") {
			t.Fatalf("program %q outside PATH", argv[0])
		}
		for _, a := range argv[1:] {
			if filepath.IsAbs(a) || strings.HasPrefix(a, "~") {
				t.Fatalf("absolute argument %q accepted", a)
			}
			if !within(home, filepath.Join(home, a)) {
				t.Fatalf("argument %q climbs out", a)
			}
		}
	})
}
