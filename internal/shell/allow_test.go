package shell

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/ferry-sftp/ferry/scp"
)

func TestCheckAllowed(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	os.MkdirAll(filepath.Join(home, "dir"), 0o755)
	os.Mkdir(filepath.Join(base, "outside"), 0o755)
	os.Symlink("../outside", filepath.Join(home, "out"))
	os.Symlink("dir", filepath.Join(home, "in"))
	os.Symlink("/nonexistent/x", filepath.Join(home, "dangling"))
	bin := filepath.Join(base, "bin")
	os.Mkdir(bin, 0o755)
	for _, p := range []string{"rsync", "md5sum", "git-upload-pack"} {
		os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755)
	}
	h, err := New(Config{Home: home, Path: bin, AllowedCommands: []string{"rsync --server", "md5sum", "git-upload-pack"}})
	if err != nil {
		t.Fatal(err)
	}
	rsync := filepath.Join(bin, "rsync")
	tests := []struct {
		cmd  string
		want []string
		err  error
	}{
		{"rsync --server -vlogDtpre.iLsfxCIvu . dir/", []string{rsync, "--server", "-vlogDtpre.iLsfxCIvu", ".", "dir/"}, nil},
		{"rsync --server --sender -e.Lsfx . 'a file'", []string{rsync, "--server", "--sender", "-e.Lsfx", ".", "a file"}, nil},
		{"rsync --server . in/x", []string{rsync, "--server", ".", "in/x"}, nil},
		{"rsync --server . ~/dir", []string{rsync, "--server", ".", "./dir"}, nil},
		{"md5sum dir/../x", []string{filepath.Join(bin, "md5sum"), "dir/../x"}, nil},
		{"git-upload-pack 'repo.git'", []string{filepath.Join(bin, "git-upload-pack"), "repo.git"}, nil},
		{"rsync --daemon", nil, errNotAllowed},
		{"rsync", nil, errNotAllowed},
		{"ls", nil, errNotAllowed},
		{"md5sumx a", nil, errNotAllowed},
		{"/bin/md5sum a", nil, errNotAllowed},
		{"rsync --server . /", []string{rsync, "--server", ".", "./"}, nil},
		{"rsync --server . /dir/", []string{rsync, "--server", ".", "./dir/"}, nil},
		{"md5sum /dir/f '/a b'", []string{filepath.Join(bin, "md5sum"), "./dir/f", "./a b"}, nil},
		{"md5sum /../outside", nil, errOutsideHome},
		{"md5sum /out/x", nil, errOutsideHome},
		{"md5sum //dir/../../x", nil, errOutsideHome},
		{"rsync --server . ../outside", nil, errOutsideHome},
		{"rsync --server . dir/../../outside", nil, errOutsideHome},
		{"rsync --server . out/x", nil, errOutsideHome},
		{"rsync --server . dangling", nil, errOutsideHome},
		{"rsync --server --log-file=/tmp/x . d", nil, errOutsideHome},
		{"rsync --server -T/tmp . d", nil, errOutsideHome},
		{"rsync --server --temp-dir ../x . d", nil, errOutsideHome},
		{"md5sum /etc/shadow", []string{filepath.Join(bin, "md5sum"), "./etc/shadow"}, nil},
		{"md5sum *", nil, scp.ErrUnexpectedGlob},
		{"md5sum a; id", nil, scp.ErrShellSyntax},
		{"md5sum $(id)", nil, scp.ErrShellSyntax},
		{"md5sum a > b", nil, scp.ErrShellSyntax},
	}
	for _, tt := range tests {
		got, err := h.checkAllowed(tt.cmd)
		if !errors.Is(err, tt.err) {
			t.Errorf("%q: error %v, want %v", tt.cmd, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.cmd, got, tt.want)
		}
	}
	// A program outside PATH, or shadowed by a file in the home, is
	// not found.
	h2, _ := New(Config{Home: home, Path: filepath.Join(base, "empty") + ":relative", AllowedCommands: []string{"md5sum"}})
	if _, err := h2.checkAllowed("md5sum x"); !errors.Is(err, errNoExecutable) {
		t.Errorf("lookup outside PATH: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	uid := uint32(1000)
	for _, c := range []Config{
		{Home: "relative"},
		{Home: "/h", Shell: "sh"},
		{Home: "/h", UID: &uid},
		{Home: "/h", AllowedCommands: []string{"a;b"}},
		{Home: "/h", AllowedCommands: []string{" "}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestSignalNames(t *testing.T) {
	for _, name := range []string{"INT", "TERM", "HUP", "KILL", "QUIT", "USR1", "USR2", "ABRT", "ALRM", "FPE", "ILL", "PIPE", "SEGV"} {
		sig, ok := signalNumber(serverSignal(name))
		if !ok {
			t.Fatalf("%s unknown", name)
		}
		back, ok := signalName(sig)
		if !ok || string(back) != name {
			t.Errorf("%s -> %v -> %s", name, sig, back)
		}
	}
	if _, ok := signalNumber("WINCH"); ok {
		t.Error("WINCH has no SSH name")
	}
	if s, _ := signalNumber("INT"); s != syscall.SIGINT {
		t.Error("INT")
	}
}
