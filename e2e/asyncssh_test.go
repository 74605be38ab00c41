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

// asyncsshScript drives AsyncSSH (Debian 12's python3-asyncssh 2.10):
// its SFTP client, its own SCP implementation, exec, its authentication
// methods and algorithm choices, and a client-initiated re-exchange every
// MiB (AsyncSSH sends channel data after its KEXINIT). It prints one JSON
// object; the Go test checks it and the files.
const asyncsshScript = `
import asyncio, json, os, sys
import asyncssh
port, user, pw, key, known, local = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
base = dict(username=user, known_hosts=known, agent_path=None, client_keys=None)

def err(e):
    return "%s: %s" % (type(e).__name__, e)

async def connect_check(**kw):
    a = dict(base)
    a.update(kw)
    try:
        async with asyncssh.connect("127.0.0.1", port, **a) as conn:
            async with conn.start_sftp_client() as sftp:
                return "ok " + str(len(await sftp.listdir(".")))
    except Exception as e:
        return err(e)

async def main():
    res = {}
    res["auth_password"] = await connect_check(password=pw, preferred_auth="password")
    res["auth_kbdint"] = await connect_check(password=pw, preferred_auth="keyboard-interactive")
    res["auth_publickey"] = await connect_check(client_keys=[key], preferred_auth="publickey")
    res["auth_wrong"] = await connect_check(password="wrong", preferred_auth="password,keyboard-interactive")
    algs = {}
    for name, kw in [
        ("kex-dh-gex", dict(kex_algs=["diffie-hellman-group-exchange-sha256"])),
        ("kex-group16", dict(kex_algs=["diffie-hellman-group16-sha512"])),
        ("kex-curve25519-libssh", dict(kex_algs=["curve25519-sha256@libssh.org"])),
        ("chacha20", dict(encryption_algs=["chacha20-poly1305@openssh.com"])),
        ("aes256-gcm", dict(encryption_algs=["aes256-gcm@openssh.com"])),
        ("aes192-ctr-sha512", dict(encryption_algs=["aes192-ctr"], mac_algs=["hmac-sha2-512"])),
        ("aes256-ctr-etm", dict(encryption_algs=["aes256-ctr"], mac_algs=["hmac-sha2-512-etm@openssh.com"])),
        ("hostkey-rsa-sha2-256", dict(server_host_key_algs=["rsa-sha2-256"])),
        ("nistp256-not-offered", dict(kex_algs=["ecdh-sha2-nistp256"])),
    ]:
        algs[name] = await connect_check(password=pw, **kw)
    res["algs"] = algs

    async with asyncssh.connect("127.0.0.1", port, password=pw, rekey_bytes=1 << 20,
                                compression_algs=["zlib@openssh.com"], **base) as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.makedirs("a/b/c")
            await sftp.makedirs("a/b/c", exist_ok=True)
            await sftp.put(os.path.join(local, "big.bin"), "a/b/c/big.bin", block_size=255 * 1024, max_requests=128)
            await sftp.put([os.path.join(local, "small.txt"), os.path.join(local, "tree")], "a", recurse=True)
            res["glob"] = sorted(await sftp.glob("a/*"))
            res["glob_deep"] = sorted(await sftp.glob("/a/**/*.bin"))
            os.makedirs(os.path.join(local, "mget"))
            await sftp.mget("a/b/c/*.bin", os.path.join(local, "mget"), block_size=65536, max_requests=128)
            res["realpath"] = await sftp.realpath("a/b/../b/c")
            res["realpath_new"] = await sftp.realpath("a/new")
            v = await sftp.statvfs(".")
            res["statvfs"] = [v.bsize > 0, v.blocks > 0, v.namemax]
            await sftp.copy("a/small.txt", "a/copy.txt", block_size=1 << 20, max_requests=256)
            try:
                await sftp.symlink("small.txt", "a/lnk")
                res["symlink"] = await sftp.readlink("a/lnk")
            except asyncssh.SFTPError as e:
                res["symlink"] = err(e)
            await sftp.posix_rename("a/copy.txt", "a/small.txt")
            await sftp.rename("a/small.txt", "a/renamed.txt")
            try:
                await sftp.rename("a/renamed.txt", "a/b/c/big.bin")
            except asyncssh.SFTPError as e:
                res["rename_over"] = err(e)
            res["exists"] = [await sftp.exists("a/renamed.txt"), await sftp.exists("a/small.txt")]
            res["size"] = (await sftp.stat("a/b/c/big.bin")).size
            await sftp.chmod("a/renamed.txt", 0o640)
            res["mode"] = oct((await sftp.stat("a/renamed.txt")).permissions & 0o7777)
            await sftp.utime("a/renamed.txt", (1000000000, 1000000000))
            res["mtime"] = (await sftp.stat("a/renamed.txt")).mtime
            async with sftp.open("a/renamed.txt", "a") as f:
                await f.write("more\n")
            async with sftp.open("a/renamed.txt", "r+") as f:
                await f.seek(2)
                await f.write("XY")
            async with sftp.open("a/renamed.txt") as f:
                res["content"] = await f.read()
            try:
                await sftp.remove("a/missing")
            except asyncssh.SFTPError as e:
                res["remove_missing"] = err(e)
            await sftp.get("a/b/c/big.bin", os.path.join(local, "big.back"), block_size=255 * 1024, max_requests=128)
            await sftp.rmtree("a")
            res["after_rmtree"] = sorted(await sftp.listdir("."))

        await asyncssh.scp(os.path.join(local, "tree"), (conn, "sc"), recurse=True, preserve=True)
        await asyncssh.scp(os.path.join(local, "big.bin"), (conn, "/sc/one.bin"))
        await asyncssh.scp((conn, "sc"), os.path.join(local, "scpback"), recurse=True, preserve=True)
        await asyncssh.scp((conn, "sc/one.bin"), os.path.join(local, "one.back"))
        try:
            await asyncssh.scp((conn, "missing"), os.path.join(local, "m"))
        except Exception as e:
            res["scp_missing"] = err(e)
        r = await conn.run("md5sum sc/f1", check=False)
        res["exec"] = [r.exit_status, r.stdout, r.stderr]
        res["kex_count_ok"] = True
    print(json.dumps(res))

asyncio.run(main())
`

// TestAsyncSSH: AsyncSSH's SFTP and SCP clients, authentication methods
// and algorithm preferences.
func TestAsyncSSH(t *testing.T) {
	t.Parallel()
	py := testenv.SystemPython(t, "asyncssh")
	keygen := testenv.NeedTool(t, "ssh-keygen")
	s := startServer(t, serverOpts{config: "[log]\nlevel = \"debug\"\n"})
	local := t.TempDir()
	key := filepath.Join(local, "id_ed25519")
	mustSucceed(t, run(t, "", "", keygen, "-q", "-t", "ed25519", "-N", "", "-f", key), "ssh-keygen")
	s.addUser("alice", "pw-alice", "--authorized-key", strings.TrimSpace(string(readFile(t, key+".pub"))))
	var kh bytes.Buffer
	for _, kind := range []string{"ed25519", "rsa", "ecdsa"} {
		fmt.Fprintf(&kh, "[127.0.0.1]:%d %s", s.port, readFile(t, s.hostKeyPub(kind)))
	}
	known := filepath.Join(local, "known_hosts")
	writeFile(t, known, kh.Bytes())
	big := randomBytes(t, 5<<20+777) // several client rekeys at 1 MiB
	writeFile(t, filepath.Join(local, "big.bin"), big)
	writeFile(t, filepath.Join(local, "small.txt"), []byte("hello\n"))
	tree := map[string][]byte{"f1": []byte("one\n"), "sub/f2": randomBytes(t, 70000), "sub/deeper/f3": nil}
	for name, data := range tree {
		p := filepath.Join(local, "tree", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeFile(t, p, data)
	}
	script := filepath.Join(local, "client.py")
	writeFile(t, script, []byte(asyncsshScript))

	r := run(t, local, "", py, "-W", "ignore", script, strconv.Itoa(s.port), "alice", "pw-alice", key, known, local)
	mustSucceed(t, r, "asyncssh client")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	var res struct {
		AuthPassword  string            `json:"auth_password"`
		AuthKbdint    string            `json:"auth_kbdint"`
		AuthPublickey string            `json:"auth_publickey"`
		AuthWrong     string            `json:"auth_wrong"`
		Algs          map[string]string `json:"algs"`
		Glob          []string          `json:"glob"`
		GlobDeep      []string          `json:"glob_deep"`
		Realpath      string            `json:"realpath"`
		RealpathNew   string            `json:"realpath_new"`
		Statvfs       []any             `json:"statvfs"`
		Symlink       string            `json:"symlink"`
		RenameOver    string            `json:"rename_over"`
		Exists        []bool            `json:"exists"`
		Size          int               `json:"size"`
		Mode          string            `json:"mode"`
		Mtime         int64             `json:"mtime"`
		Content       string            `json:"content"`
		RemoveMissing string            `json:"remove_missing"`
		AfterRmtree   []string          `json:"after_rmtree"`
		SCPMissing    string            `json:"scp_missing"`
		Exec          []any             `json:"exec"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("asyncssh client printed %q: %v", r.out, err)
	}
	for name, got := range map[string]string{"password": res.AuthPassword, "keyboard-interactive": res.AuthKbdint, "publickey": res.AuthPublickey} {
		if !strings.HasPrefix(got, "ok") {
			t.Errorf("%s login: %s", name, got)
		}
	}
	if !strings.HasPrefix(res.AuthWrong, "PermissionDenied") {
		t.Errorf("wrong password: %s", res.AuthWrong)
	}
	for name, got := range res.Algs {
		want := "ok"
		if name == "nistp256-not-offered" {
			want = "KeyExchangeFailed"
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("algorithms %s: %s, want %s", name, got, want)
		}
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"glob a/*", strings.Join(res.Glob, ","), "a/b,a/small.txt,a/tree"},
		{"glob /a/**/*.bin", strings.Join(res.GlobDeep, ","), "/a/b/c/big.bin"},
		{"realpath", res.Realpath, "/a/b/c"},
		{"realpath of a new name", res.RealpathNew, "/a/new"},
		{"statvfs", fmt.Sprint(res.Statvfs), "[true true 255]"},
		{"symlink without --symlinks", res.Symlink, "SFTPPermissionDenied: Permission denied"},
		{"rename over a file", res.RenameOver, "SFTPFailure: Failure"},
		{"exists", fmt.Sprint(res.Exists), "[true false]"},
		{"size", res.Size, len(big)},
		{"chmod", res.Mode, "0o640"},
		{"utime", res.Mtime, int64(1000000000)},
		{"append and r+ write", res.Content, "heXYo\nmore\n"},
		{"remove a missing file", res.RemoveMissing, "SFTPNoSuchFile: No such file"},
		{"after rmtree", strings.Join(res.AfterRmtree, ","), ".,.."},
		{"exec refused", fmt.Sprint(res.Exec), "[1  ferry: command not allowed: md5sum sc/f1\n]"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if !strings.Contains(res.SCPMissing, "No such file") {
		t.Errorf("scp of a missing file: %q", res.SCPMissing)
	}
	for name, want := range map[string][]byte{"mget/big.bin": big, "big.back": big, "one.back": big} {
		if got := readFile(t, filepath.Join(local, name)); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, want %d, or contents differ", name, len(got), len(want))
		}
	}
	// scp -r to a new name copies the directory as that name.
	checkTree(t, filepath.Join(s.home("alice"), "sc"), tree)
	checkTree(t, filepath.Join(local, "scpback"), tree)
	// The client re-keyed during the transfers, with data in flight:
	// 14 connections, and a re-exchange per MiB the client sent.
	if n := strings.Count(s.stderr.String(), "msg=\"key exchange complete\""); n < 14+3 {
		t.Errorf("%d key exchanges in the server log, want at least 3 re-exchanges besides the 14 logins", n)
	}
}
