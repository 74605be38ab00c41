package sftp

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestSetIDBitsRefused: the daemon runs as a service user owning every
// home, so a client-given mode must never carry setuid, setgid or sticky
// bits (a user could plant a set-id program): every request that applies
// a mode keeps only the 0777 bits, as scp does.
func TestSetIDBitsRefused(t *testing.T) {
	const special = 0o7000
	ts := startServer(t, nil)
	rc := ts.raw(t)
	ts.write(t, "byname", "x")
	ts.write(t, "byhandle", "x")

	rc.send(&setstatReq{ID: rc.nextID(), Path: "/byname", Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	rc.expectStatus(StatusOK)

	rc.send(&openReq{ID: rc.nextID(), Path: "/byhandle", PFlags: fxfRead | fxfWrite})
	h := rc.handle()
	rc.send(&fsetstatReq{ID: rc.nextID(), Handle: h, Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	rc.expectStatus(StatusOK)
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)

	rc.send(&openReq{ID: rc.nextID(), Path: "/created", PFlags: fxfWrite | fxfCreat | fxfTrunc,
		Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	h = rc.handle()
	rc.send(&handleReq{Type: fxpClose, ID: rc.nextID(), Handle: h})
	rc.expectStatus(StatusOK)

	rc.send(&mkdirReq{ID: rc.nextID(), Path: "/dir", Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}})
	rc.expectStatus(StatusOK)

	rc.send(&extendedReq{ID: rc.nextID(), Request: "lsetstat@openssh.com",
		Data: (&setstatReq{Path: "/dir", Attrs: Attrs{Flags: AttrPermissions, Permissions: special | 0o755}}).appendTo(nil)[5:]})
	rc.expectStatus(StatusOK)

	for _, name := range []string{"byname", "byhandle", "created", "dir"} {
		fi, err := os.Lstat(filepath.Join(ts.root, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); m != 0 {
			t.Errorf("%s has mode %v: set-id or sticky bits applied", name, fi.Mode())
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s has permissions %v, want 0755", name, fi.Mode().Perm())
		}
	}
}
