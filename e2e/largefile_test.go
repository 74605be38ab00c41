package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

const paramikoLargeScript = `
import json, sys, paramiko
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t = paramiko.Transport(("127.0.0.1", port))
t.connect(username=user, password=pw)
c = paramiko.SFTPClient.from_transport(t)
G = 2**30
res = {}
res["stat"] = c.stat("huge.bin").st_size
res["lstat"] = c.lstat("huge.bin").st_size
res["listdir_attr"] = [a.st_size for a in c.listdir_attr(".") if a.filename == "huge.bin"][0]
res["longname"] = [a.longname for a in c.listdir_attr(".") if a.filename == "huge.bin"][0]
with c.open("huge.bin") as f:
    f.seek(4*G + 7)
    res["read"] = f.read(15).decode()
    f.seek(5*G + 100)
    res["tail"] = f.read(100).hex()
with c.open("huge.bin", "r+") as f:
    f.seek(4*G + 1000)
    f.write(b"WRITTEN>4G")
with c.open("new.bin", "w") as f:
    f.seek(4*G + 5)
    f.write(b"x")
res["new"] = c.stat("new.bin").st_size
c.utime("new.bin", (1000000000, 1200000000))
st = c.stat("new.bin")
res["times"] = [st.st_atime, st.st_mtime]
c.close()
t.close()
print(json.dumps(res))
`

// TestParamikoLargeOffsets: sizes and offsets past 4 GiB (the uint64
// fields of SFTP v3, where a 32-bit slip would wrap) on sparse files:
// stat, lstat, READDIR's attributes and long name, READ and WRITE at such
// offsets, a file created by a WRITE there, and utime.
func TestParamikoLargeOffsets(t *testing.T) {
	t.Parallel()
	py := testenv.SystemPython(t, "paramiko")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	home := s.mkHome(t, "alice")
	const size = 5<<30 + 123
	f, err := os.Create(filepath.Join(home, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		off  int64
		data string
	}{{4<<30 + 7, "MARK-after-4GiB"}, {5<<30 + 100, "TAIL"}} {
		if _, err := f.WriteAt([]byte(w.data), w.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	local := t.TempDir()
	script := filepath.Join(local, "large.py")
	writeFile(t, script, []byte(paramikoLargeScript))
	r := run(t, local, "", py, script, strconv.Itoa(s.port), "alice", "pw-alice")
	mustSucceed(t, r, "paramiko")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	var res struct {
		Stat        int64   `json:"stat"`
		Lstat       int64   `json:"lstat"`
		ListdirAttr int64   `json:"listdir_attr"`
		Longname    string  `json:"longname"`
		Read        string  `json:"read"`
		Tail        string  `json:"tail"`
		New         int64   `json:"new"`
		Times       []int64 `json:"times"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("paramiko printed %q: %v", r.out, err)
	}
	if res.Stat != size || res.Lstat != size || res.ListdirAttr != size || !strings.Contains(res.Longname, " "+strconv.Itoa(size)+" ") {
		t.Errorf("sizes of a %d-byte file: stat %d, lstat %d, listdir_attr %d, long name %q", size, res.Stat, res.Lstat, res.ListdirAttr, res.Longname)
	}
	if res.Read != "MARK-after-4GiB" || res.Tail != "5441494c"+strings.Repeat("00", 19) {
		t.Errorf("READ past 4 GiB: %q, tail %s", res.Read, res.Tail)
	}
	got := make([]byte, 10)
	hf, err := os.Open(filepath.Join(home, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if _, err := hf.ReadAt(got, 4<<30+1000); err != nil || string(got) != "WRITTEN>4G" {
		t.Errorf("WRITE at 4 GiB + 1000 left %q (%v)", got, err)
	}
	if fi, err := hf.Stat(); err != nil || fi.Size() != size {
		t.Errorf("huge.bin after an in-place WRITE: %v, %v; want %d bytes", fi.Size(), err, size)
	}
	if res.New != 4<<30+6 || len(res.Times) != 2 || res.Times[0] != 1000000000 || res.Times[1] != 1200000000 {
		t.Errorf("new.bin written at 4 GiB + 5: size %d, times %v", res.New, res.Times)
	}
	if fi, err := os.Stat(filepath.Join(home, "new.bin")); err != nil || fi.Size() != 4<<30+6 || fi.ModTime().Unix() != 1200000000 {
		t.Errorf("new.bin on the server: %v, %v", fi, err)
	}
}
