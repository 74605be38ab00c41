package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// fingerprint returns the SHA256 fingerprint of one of the server's host
// keys as ssh-keygen -l prints it ("SHA256:...").
func (s *server) fingerprint(t *testing.T, kind string) string {
	t.Helper()
	keygen := testenv.NeedTool(t, "ssh-keygen")
	r := run(t, "", "", keygen, "-lf", s.hostKeyPub(kind))
	mustSucceed(t, r, "ssh-keygen -l")
	f := strings.Fields(r.out)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l printed %q", r.out)
	}
	return f[1]
}

// TestPuTTYPSFTP: PuTTY's psftp, checking the host key by fingerprint.
func TestPuTTYPSFTP(t *testing.T) {
	t.Parallel()
	psftp := testenv.NeedTool(t, "psftp")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	data := randomBytes(t, 700001)
	writeFile(t, filepath.Join(local, "up"), data)
	script := filepath.Join(local, "script")
	writeFile(t, script, []byte("mkdir pd\nput up pd/pu\nget pd/pu got\nls pd\n"))
	psftpRun := func(hostkey string) result {
		return run(t, local, "", psftp, "-batch", "-pw", "pw-alice", "-P", strconv.Itoa(s.port),
			"-hostkey", hostkey, "-b", script, "alice@127.0.0.1")
	}
	r := psftpRun(s.fingerprint(t, "ed25519"))
	mustSucceed(t, r, "psftp")
	for _, want := range []string{"mkdir /pd: OK", "local:up => remote:/pd/pu", "remote:/pd/pu => local:got", " 700001 "} {
		if !strings.Contains(r.out, want) {
			t.Errorf("psftp output lacks %q:\n%s", want, r.out)
		}
	}
	if got := readFile(t, filepath.Join(s.home("alice"), "pd", "pu")); !bytes.Equal(got, data) {
		t.Errorf("psftp upload: %d bytes differ", len(got))
	}
	if got := readFile(t, filepath.Join(local, "got")); !bytes.Equal(got, data) {
		t.Errorf("psftp download: %d bytes differ", len(got))
	}
	// The server offers its ed25519 key first; psftp must refuse a
	// different one (here the server's own RSA key).
	if r := psftpRun(s.fingerprint(t, "rsa")); r.code != 1 || !strings.Contains(r.out, "Host key not in manually configured list") {
		t.Errorf("psftp with the wrong -hostkey: exit %d:\n%s", r.code, r.out)
	}
}

// TestCurlSFTP: curl's sftp:// (libssh2), pinning the host key with
// --hostpubsha256 (base64 without the "SHA256:" prefix).
func TestCurlSFTP(t *testing.T) {
	t.Parallel()
	curl := testenv.NeedTool(t, "curl")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	data := randomBytes(t, 1<<20+5)
	writeFile(t, filepath.Join(s.mkHome(t, "alice"), "down.bin"), data)
	pin := strings.TrimPrefix(s.fingerprint(t, "ed25519"), "SHA256:")
	base := "sftp://127.0.0.1:" + strconv.Itoa(s.port) + "/~/"
	curlRun := func(pin string, args ...string) result {
		return run(t, local, "", curl, append([]string{"-sS", "-u", "alice:pw-alice", "--hostpubsha256", pin}, args...)...)
	}
	mustSucceed(t, curlRun(pin, base+"down.bin", "-o", "got"), "curl download")
	if got := readFile(t, filepath.Join(local, "got")); !bytes.Equal(got, data) {
		t.Fatalf("curl download: %d bytes differ", len(got))
	}
	up := randomBytes(t, 300007)
	writeFile(t, filepath.Join(local, "up"), up)
	mustSucceed(t, curlRun(pin, "-T", "up", base+"up.bin"), "curl upload")
	if got := readFile(t, filepath.Join(s.home("alice"), "up.bin")); !bytes.Equal(got, up) {
		t.Fatalf("curl upload: %d bytes differ", len(got))
	}
	// CURLE_REMOTE_FILE_NOT_FOUND (78) for a missing file.
	if r := curlRun(pin, base+"missing", "-o", "m"); r.code != 78 {
		t.Errorf("curl of a missing file: exit %d, want 78:\n%s", r.code, r.out)
	}
	// CURLE_PEER_FAILED_VERIFICATION (60) for a wrong pin.
	wrong := strings.TrimPrefix(s.fingerprint(t, "rsa"), "SHA256:")
	if r := curlRun(wrong, base+"down.bin", "-o", "x"); r.code != 60 {
		t.Errorf("curl with a wrong host key pin: exit %d, want 60:\n%s", r.code, r.out)
	}
}

const paramikoScript = `
import json, os, sys, paramiko
port, user, pw, op = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
t = paramiko.Transport(("127.0.0.1", port))
t.connect(username=user, password=pw)
c = paramiko.SFTPClient.from_transport(t)
res = {}
if op == "full":
    c.put("up.bin", "p.bin")
    c.get("p.bin", "p.back")
    res["listdir"] = sorted(c.listdir("."))
    st = c.stat("p.bin")
    res["size"] = st.st_size
    res["mode"] = oct(st.st_mode)
    c.rename("p.bin", "q.bin")
    res["after_rename"] = sorted(c.listdir("/"))
    c.remove("q.bin")
    res["after_remove"] = sorted(c.listdir("/"))
    try:
        c.stat("q.bin")
    except IOError as e:
        res["stat_removed"] = e.errno
elif op == "denied":
    for name, f in [("put", lambda: c.put("up.bin", "x.bin")), ("mkdir", lambda: c.mkdir("d")),
                    ("remove", lambda: c.remove("keep.txt")), ("rename", lambda: c.rename("keep.txt", "k2"))]:
        try:
            f()
            res[name] = 0
        except IOError as e:
            res[name] = e.errno
    with c.open("keep.txt") as f:
        res["read"] = f.read().decode()
c.close()
t.close()
print(json.dumps(res))
`

// TestParamiko: paramiko's SFTPClient, run by Debian's python3.
func TestParamiko(t *testing.T) {
	t.Parallel()
	py := testenv.SystemPython(t, "paramiko")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	s.addUser("reader", "pw-reader", "--readonly")
	local := t.TempDir()
	data := randomBytes(t, 1<<20+11)
	writeFile(t, filepath.Join(local, "up.bin"), data)
	script := filepath.Join(local, "client.py")
	writeFile(t, script, []byte(paramikoScript))

	pyRun := func(user, pw, op string, v any) {
		t.Helper()
		r := run(t, local, "", py, script, strconv.Itoa(s.port), user, pw, op)
		mustSucceed(t, r, "paramiko "+op)
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
			t.Fatalf("paramiko %s printed %q: %v", op, r.out, err)
		}
	}
	var full struct {
		Listdir     []string `json:"listdir"`
		Size        int      `json:"size"`
		Mode        string   `json:"mode"`
		AfterRename []string `json:"after_rename"`
		AfterRemove []string `json:"after_remove"`
		StatRemoved int      `json:"stat_removed"`
	}
	pyRun("alice", "pw-alice", "full", &full)
	if got := readFile(t, filepath.Join(local, "p.back")); !bytes.Equal(got, data) {
		t.Errorf("paramiko get: %d bytes differ", len(got))
	}
	if strings.Join(full.Listdir, ",") != "p.bin" || full.Size != len(data) ||
		strings.Join(full.AfterRename, ",") != "q.bin" || len(full.AfterRemove) != 0 ||
		full.StatRemoved != 2 || !strings.HasPrefix(full.Mode, "0o100") {
		t.Errorf("paramiko results: %+v", full)
	}

	writeFile(t, filepath.Join(s.mkHome(t, "reader"), "keep.txt"), []byte("kept"))
	var denied map[string]any
	pyRun("reader", "pw-reader", "denied", &denied)
	for _, op := range []string{"put", "mkdir", "remove", "rename"} {
		// EACCES, from SSH_FX_PERMISSION_DENIED.
		if denied[op] != float64(13) {
			t.Errorf("read-only %s: errno %v, want 13", op, denied[op])
		}
	}
	if denied["read"] != "kept" {
		t.Errorf("read-only account read %v, want kept", denied["read"])
	}
	ents, _ := os.ReadDir(s.home("reader"))
	if len(ents) != 1 {
		t.Errorf("read-only home has %d entries, want only keep.txt", len(ents))
	}
}

// TestCurlSCPAndQuote: curl's scp:// (libssh2's scp_send, which ends an
// upload with EOF and no verdict byte, as PHP's ssh2_scp_send does too)
// and the sftp:// commands hosting scripts use: -Q "rename"/"rm",
// --ftp-create-dirs, and a listing.
func TestCurlSCPAndQuote(t *testing.T) {
	t.Parallel()
	curl := testenv.NeedTool(t, "curl")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	home := s.mkHome(t, "alice")
	local := t.TempDir()
	pin := strings.TrimPrefix(s.fingerprint(t, "ed25519"), "SHA256:")
	port := strconv.Itoa(s.port)
	curlRun := func(args ...string) result {
		return run(t, local, "", curl, append([]string{"-sS", "-u", "alice:pw-alice", "--hostpubsha256", pin}, args...)...)
	}

	up := randomBytes(t, 1<<20+3)
	writeFile(t, filepath.Join(local, "up"), up)
	mustSucceed(t, curlRun("-T", "up", "scp://127.0.0.1:"+port+"/~/scp.bin"), "curl scp:// upload")
	if got, err := os.ReadFile(filepath.Join(home, "scp.bin")); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("curl scp:// upload: the server has %d bytes (%v), want the %d sent", len(got), err, len(up))
	}
	if !s.waitLog(func(log string) bool {
		return strings.Contains(log, "msg=transfer protocol=scp user=alice") && strings.Contains(log, "path=/scp.bin bytes_read=0 bytes_written=1048579 ") && strings.Contains(log, "result=ok")
	}) {
		t.Errorf("no ok transfer line for the scp:// upload")
	}
	mustSucceed(t, curlRun("scp://127.0.0.1:"+port+"/~/scp.bin", "-o", "scp.back"), "curl scp:// download")
	if got := readFile(t, filepath.Join(local, "scp.back")); !bytes.Equal(got, up) {
		t.Errorf("curl scp:// download: %d bytes differ", len(got))
	}
	// CURLE_UPLOAD_FAILED (25) into a directory that does not exist.
	if r := curlRun("-T", "up", "scp://127.0.0.1:"+port+"/~/nodir/x"); r.code != 25 {
		t.Errorf("curl scp:// upload into a missing directory: exit %d, want 25:\n%s", r.code, r.out)
	}

	base := "sftp://127.0.0.1:" + port + "/~/"
	mustSucceed(t, curlRun("-T", "up", "--ftp-create-dirs", base+"a/b/c.bin"), "curl --ftp-create-dirs")
	if got, err := os.ReadFile(filepath.Join(home, "a", "b", "c.bin")); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("--ftp-create-dirs upload: %d bytes, %v", len(got), err)
	}
	mustSucceed(t, curlRun("-Q", "rename a/b/c.bin a/b/d.bin", "-Q", "rm scp.bin", base, "-o", "/dev/null"), "curl -Q rename, rm")
	if _, err := os.Stat(filepath.Join(home, "a", "b", "d.bin")); err != nil {
		t.Errorf("after -Q rename: %v", err)
	}
	for _, gone := range []string{"scp.bin", "a/b/c.bin"} {
		if _, err := os.Stat(filepath.Join(home, gone)); !os.IsNotExist(err) {
			t.Errorf("%s after -Q rename/rm: %v", gone, err)
		}
	}
	// CURLE_QUOTE_ERROR (21) names the server's answer.
	if r := curlRun("-Q", "rm missing", base, "-o", "/dev/null"); r.code != 21 || !strings.Contains(r.out, "No such file or directory") {
		t.Errorf("curl -Q rm of a missing file: exit %d, want 21:\n%s", r.code, r.out)
	}
	r := curlRun("-l", base+"a/b/")
	mustSucceed(t, r, "curl -l")
	if names := strings.Fields(r.out); strings.Join(names, " ") != ". .. d.bin" {
		t.Errorf("curl -l listing: %q", r.out)
	}
}

// TestPuTTYPSCP: PuTTY's pscp in both of its protocols (-scp, the legacy
// scp -t/-f exec, and -sftp) both ways, and a read-only account's upload
// refused with a message naming the file. pscp treats an EOF from the
// server before its own as fatal, so a refusal must come per record, as
// OpenSSH's scp -t sends it, not as a fatal line before the first OK.
func TestPuTTYPSCP(t *testing.T) {
	t.Parallel()
	pscp := testenv.NeedTool(t, "pscp")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	s.addUser("ro", "pw-ro", "--readonly")
	local := t.TempDir()
	data := randomBytes(t, 1<<20+9)
	writeFile(t, filepath.Join(local, "up"), data)
	hostkey := s.fingerprint(t, "ed25519")
	pscpRun := func(user, pw string, args ...string) result {
		return run(t, local, "", pscp, append([]string{"-batch", "-q", "-pw", pw, "-P", strconv.Itoa(s.port), "-hostkey", hostkey}, args...)...)
	}
	for _, proto := range []string{"-scp", "-sftp"} {
		remote := "up" + proto
		mustSucceed(t, pscpRun("alice", "pw-alice", proto, "up", "alice@127.0.0.1:"+remote), "pscp "+proto+" upload")
		if got := readFile(t, filepath.Join(s.home("alice"), remote)); !bytes.Equal(got, data) {
			t.Errorf("pscp %s upload: %d bytes differ from the %d sent", proto, len(got), len(data))
		}
		mustSucceed(t, pscpRun("alice", "pw-alice", proto, "alice@127.0.0.1:"+remote, "back"+proto), "pscp "+proto+" download")
		if got := readFile(t, filepath.Join(local, "back"+proto)); !bytes.Equal(got, data) {
			t.Errorf("pscp %s download: %d bytes differ", proto, len(got))
		}
	}
	for _, tt := range []struct{ proto, want string }{
		{"-scp", "scp: /x: Permission denied (the account is read-only)"},
		{"-sftp", "permission denied"},
	} {
		r := pscpRun("ro", "pw-ro", tt.proto, "up", "ro@127.0.0.1:x")
		if r.code != 1 || !strings.Contains(r.out, tt.want) || strings.Contains(r.out, "FATAL ERROR") {
			t.Errorf("pscp %s upload on a read-only account: exit %d, want 1 and %q:\n%s", tt.proto, r.code, tt.want, r.out)
		}
	}
	if ents, _ := os.ReadDir(s.home("ro")); len(ents) != 0 {
		t.Errorf("read-only home has %d entries after refused uploads", len(ents))
	}
}

// TestPuTTYPSFTPCommands: psftp's resume (reput, reget), mv into a
// directory and ren, chmod in octal and symbolic form, a refused rmdir of
// a non-empty directory, and ls of a directory of 5000 names (many
// READDIR replies).
func TestPuTTYPSFTPCommands(t *testing.T) {
	t.Parallel()
	psftp := testenv.NeedTool(t, "psftp")
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	home := s.mkHome(t, "alice")
	local := t.TempDir()
	whole := randomBytes(t, 2<<20+5)
	half := whole[:len(whole)/2]
	writeFile(t, filepath.Join(local, "whole"), whole)
	writeFile(t, filepath.Join(local, "partial.back"), half)
	writeFile(t, filepath.Join(home, "partial"), half)
	writeFile(t, filepath.Join(home, "down"), whole)
	if err := os.Mkdir(filepath.Join(home, "many"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		f, err := os.Create(filepath.Join(home, "many", fmt.Sprintf("n%05d", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	script := filepath.Join(local, "script")
	writeFile(t, script, []byte(`reput whole partial
reget down partial.back
mkdir d
mkdir d/e
mv partial d/e
ren d/e/partial d/e/renamed
chmod 600 d/e/renamed
chmod go+r d/e/renamed
rmdir d
ls many
`))
	r := run(t, local, "", psftp, "-batch", "-pw", "pw-alice", "-P", strconv.Itoa(s.port), "-hostkey", s.fingerprint(t, "ed25519"),
		"-b", script, "-be", "alice@127.0.0.1")
	mustSucceed(t, r, "psftp")
	for _, want := range []string{
		"reput: restarting at file position 1048578", "reget: restarting at file position 1048578",
		"/partial -> /d/e/partial", "/d/e/partial -> /d/e/renamed",
		"/d/e/renamed: 0644 -> 0600", "/d/e/renamed: 0600 -> 0644", "rmdir /d: failure",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("psftp output lacks %q:\n%s", want, r.out)
		}
	}
	if got := readFile(t, filepath.Join(home, "d", "e", "renamed")); !bytes.Equal(got, whole) {
		t.Errorf("after reput, mv and ren: %d bytes, differing from the %d local", len(got), len(whole))
	}
	if got := readFile(t, filepath.Join(local, "partial.back")); !bytes.Equal(got, whole) {
		t.Errorf("after reget: %d bytes, differing from the %d remote", len(got), len(whole))
	}
	if fi, err := os.Stat(filepath.Join(home, "d", "e", "renamed")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode after chmod 600, go+r: %v, %v", fi.Mode(), err)
	}
	if n := strings.Count(r.out, " n0"); n != 5000 {
		t.Errorf("ls of 5000 names listed %d", n)
	}
}
