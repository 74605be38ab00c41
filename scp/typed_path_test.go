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
