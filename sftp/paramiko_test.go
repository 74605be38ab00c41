package sftp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// paramikoScript drives paramiko's SFTPClient over a socketpair to this
// test binary serving SFTP on stdin/stdout (see TestMain).
const paramikoScript = `
import os, socket, subprocess, sys, stat
import paramiko
ours, theirs = socket.socketpair()
proc = subprocess.Popen([sys.argv[1]], stdin=theirs, stdout=theirs)
theirs.close()
class Pipe:
    # The little of paramiko's Channel that SFTPClient uses.
    def __init__(self, so): self.so = so
    def send(self, b): return self.so.send(b)
    def recv(self, n): return self.so.recv(n)
    def close(self): self.so.close()
    def get_name(self): return "pipe"
c = paramiko.SFTPClient(Pipe(ours))
local = sys.argv[2]
data = os.urandom(3 * 1024 * 1024 + 11)
with open(os.path.join(local, "in"), "wb") as f:
    f.write(data)
c.put(os.path.join(local, "in"), "up")
c.get("up", os.path.join(local, "out"))  # prefetch: many READs in flight
assert open(os.path.join(local, "out"), "rb").read() == data
with c.open("up", "rb") as f:
    f.prefetch()
    assert f.read() == data
assert c.stat("up").st_size == len(data)
c.mkdir("d", 0o750)
assert stat.S_IMODE(c.stat("d").st_mode) == 0o750
c.rename("up", "d/up")
c.posix_rename("d/up", "d/up2")
c.symlink("up2", "d/l")
assert c.readlink("d/l") == "up2"
assert stat.S_ISLNK(c.lstat("d/l").st_mode)
names = sorted(a.filename for a in c.listdir_attr("d"))
assert names == ["l", "up2"], names
c.chmod("d/up2", 0o600)
assert stat.S_IMODE(c.stat("d/up2").st_mode) == 0o600
c.truncate("d/up2", 5)
assert c.stat("d/up2").st_size == 5
assert c.normalize(".") == "/"
c.chdir("d")
assert c.normalize("up2") == "/d/up2"
try:
    c.stat("/nope")
    raise SystemExit("stat of a missing file succeeded")
except IOError as e:
    assert e.errno == 2, e
c.remove("l")
c.remove("up2")
c.chdir("/")
c.rmdir("d")
c.close()
ours.close()
proc.wait()
print("OK")
`

func TestParamiko(t *testing.T) {
	py := testenv.SystemPython(t, "paramiko")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root, local := t.TempDir(), t.TempDir()
	script := filepath.Join(local, "client.py")
	os.WriteFile(script, []byte(paramikoScript), 0o644)
	cmd := exec.Command(py, script, self, local)
	cmd.Env = append(os.Environ(), envServeRoot+"="+root)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("paramiko: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("root not empty after the session: %v", ents)
	}
}
