package scp

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSinkSlashTarget: "scp a host:up/" with no directory "up" wrote the
// file as "up" and exited 0, where scp -t under sshd fails with "Is a
// directory" and writes nothing; a directory sent to "up/" is created
// there, as mkdir("up/") does.
func TestSinkSlashTarget(t *testing.T) {
	root := t.TempDir()
	out, _, st := run(t, root, "scp -t up/", "C0644 1 a\nx\x00", nil)
	if out != "\x00\x01scp: /up/: Is a directory\n" || st != 1 {
		t.Errorf("scp -t up/: out %q status %d", out, st)
	}
	if _, err := os.Lstat(filepath.Join(root, "up")); !os.IsNotExist(err) {
		t.Errorf("scp -t up/ left %q: %v", "up", err)
	}
	out, _, st = run(t, root, "scp -r -t up/", "D0755 0 d\nC0644 1 a\nx\x00E\n", nil)
	if out != "\x00\x00\x00\x00\x00" || st != 0 {
		t.Errorf("scp -r -t up/: out %q status %d", out, st)
	}
	if got := readFile(t, filepath.Join(root, "up", "a")); got != "x" {
		t.Errorf("up/a: %q", got)
	}
}

// TestSourceTypedName: a record names what the client typed, as the
// shell hands it to scp -f under sshd: "~" is the home's own name (the
// account's), and "d/." and "d/.." are sent as typed, for the client to
// refuse as it refuses them from sshd. ferry sent "." for "~", which
// every OpenSSH client refuses, so "scp -r host:~ ." failed.
func TestSourceTypedName(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "d", "f"), "f", 0o644)
	os.Chmod(filepath.Join(root, "d"), 0o755)
	os.Chmod(root, 0o700)
	const acks = "\x00\x00\x00\x00\x00\x00\x00\x00"
	tests := []struct{ cmd, out string }{
		{"scp -r -f ~", "D0700 0 alice\nD0755 0 d\nC0644 1 f\nf\x00E\nE\n"},
		{"scp -r -f ~/", "D0700 0 alice\nD0755 0 d\nC0644 1 f\nf\x00E\nE\n"},
		{"scp -r -f d/", "D0755 0 d\nC0644 1 f\nf\x00E\n"},
		{"scp -r -f d//", "D0755 0 d\nC0644 1 f\nf\x00E\n"},
		{"scp -r -f d/.", "D0755 0 .\nC0644 1 f\nf\x00E\n"},
		{"scp -r -f d/f/..", "D0755 0 ..\nC0644 1 f\nf\x00E\n"},
		{"scp -r -f .", "D0700 0 .\nD0755 0 d\nC0644 1 f\nf\x00E\nE\n"},
		{"scp -f ~/d/f", "C0644 1 f\nf\x00"},
	}
	for _, tt := range tests {
		out, _, st := run(t, root, tt.cmd, acks, &Options{User: "alice"})
		if out != tt.out || st != 0 {
			t.Errorf("%s: out %q status %d, want %q", tt.cmd, out, st, tt.out)
		}
	}
}

// TestSourceNewlineName: scp -f under sshd sends a file whose name holds
// a newline under its strnvis(3) VIS_NL encoding; ferry refused it and
// exited 1.
func TestSourceNewlineName(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "d", "a\nb\\c\xc3\xa9\r\x7f\xa0"), "x", 0o644)
	os.Chmod(filepath.Join(root, "d"), 0o755)
	os.Mkdir(filepath.Join(root, "d", "n\nd"), 0o755)
	out, _, st := run(t, root, "scp -r -f d", "\x00\x00\x00\x00\x00\x00", nil)
	want := "D0755 0 d\nC0644 1 a\\^Jb\\\\c\\M-C\\M-)\\^M\\^?\\240\nx\x00\x01scp: /d/n?d: skipping, directory name contains a newline\nE\n"
	if out != want || st != 1 {
		t.Errorf("out %q status %d, want %q status 1", out, st, want)
	}
}
