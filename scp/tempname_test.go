package scp

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	pkgsftp "github.com/pkg/sftp"

	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

// TestTempNamesMatchSFTP: a temporary upload left by scp (a crashed
// server) is hidden from SFTP listings like sftp's own, so the two
// packages' name forms agree.
func TestTempNamesMatchSFTP(t *testing.T) {
	root := t.TempDir()
	tmp := path0(tempName("/f"))
	if !isTemp(tmp) {
		t.Fatalf("tempName gives %q, which isTemp refuses", tmp)
	}
	writeFile(t, filepath.Join(root, tmp), "partial", 0o600)
	writeFile(t, filepath.Join(root, "visible"), "v", 0o644)
	fsys, err := vfs.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	done := make(chan struct{})
	go func() {
		sftp.NewServer(fsys, nil).Serve(context.Background(), sr, sw)
		sw.Close()
		close(done)
	}()
	c, err := pkgsftp.NewClientPipe(cr, cw)
	if err != nil {
		t.Fatal(err)
	}
	fis, err := c.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fi := range fis {
		names = append(names, fi.Name())
	}
	if len(names) != 1 || names[0] != "visible" {
		t.Errorf("sftp lists %q", names)
	}
	// And sftp refuses to create one, as scp does.
	if _, err := c.OpenFile("/"+path0(tempName("/g")), os.O_WRONLY|os.O_CREATE); err == nil {
		t.Error("sftp created a reserved temporary name")
	}
	c.Close()
	cw.Close()
	<-done
}

func path0(p string) string { return filepath.Base(p) }
