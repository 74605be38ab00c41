package server_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/server"
)

// Interop with PuTTY's plink and with paramiko.

func TestPlink(t *testing.T) {
	plink := testenv.NeedTool(t, "plink")
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	base := []string{"-batch", "-ssh", "-P", strconv.Itoa(ts.port), "-hostkey", ts.hostFP}
	t.Run("password", func(t *testing.T) {
		r := run(t, plink, append(base, "-pw", testPassword, testUser+"@127.0.0.1", "plink says hi; exit 9")...)
		checkExec(t, r, "plink says hi; exit 9", 9)
	})
	t.Run("key", func(t *testing.T) {
		puttygen := testenv.NeedTool(t, "puttygen")
		dir := t.TempDir()
		path, pub := genUserKey(t, dir, "ed25519", 0)
		ts.auth.allowKey(testUser, pub)
		ppk := filepath.Join(dir, "key.ppk")
		if out, err := exec.Command(puttygen, path, "-O", "private", "-o", ppk).CombinedOutput(); err != nil {
			t.Fatalf("puttygen: %v\n%s", err, out)
		}
		r := run(t, plink, append(base, "-i", ppk, "-noagent", testUser+"@127.0.0.1", "plink key; exit 6")...)
		checkExec(t, r, "plink key; exit 6", 6)
	})
	t.Run("wrong host key", func(t *testing.T) {
		r := run(t, plink, "-batch", "-ssh", "-P", strconv.Itoa(ts.port), "-hostkey", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"-pw", testPassword, testUser+"@127.0.0.1", "x")
		if r.exit == 0 || r.stdout != "" {
			t.Errorf("plink accepted a host key it was not given: exit %d stdout %q", r.exit, r.stdout)
		}
	})
}

const paramikoExec = `
import json, sys, paramiko
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=int(sys.argv[1]), username=sys.argv[2], password=sys.argv[3],
          key_filename=sys.argv[5] or None, allow_agent=False, look_for_keys=False, timeout=10)
_, out, err = c.exec_command(sys.argv[4], timeout=10)
res = {"stdout": out.read().decode(), "stderr": err.read().decode(),
       "exit": out.channel.recv_exit_status(),
       "hostkey": c.get_transport().get_remote_server_key().get_base64()}
c.close()
print(json.dumps(res))
`

func TestParamiko(t *testing.T) {
	python := testenv.SystemPython(t, "paramiko")
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	r := run(t, python, "-c", paramikoExec, strconv.Itoa(ts.port), testUser, testPassword, "from paramiko; exit 12", "")
	if r.exit != 0 {
		t.Fatalf("python: exit %d\n%s", r.exit, r.stderr)
	}
	var got struct {
		Stdout, Stderr, Hostkey string
		Exit                    int
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	checkExec(t, result{got.Stdout, got.Stderr, got.Exit}, "from paramiko; exit 12", 12)
	wantHostKey := ts.hostPKBase64()
	if got.Hostkey != wantHostKey {
		t.Errorf("paramiko saw host key %s, want %s", got.Hostkey, wantHostKey)
	}
}

// TestParamikoWrongKeyThenPassword: paramiko tries key_filename first and
// then the password, sending SERVICE_REQUEST "ssh-userauth" again before
// the password; sshd accepts that, so the login must succeed.
func TestParamikoWrongKeyThenPassword(t *testing.T) {
	python := testenv.SystemPython(t, "paramiko")
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	// A key the server does not know.
	keyPath, _ := genUserKey(t, t.TempDir(), "ed25519", 0)
	r := run(t, python, "-c", paramikoExec, strconv.Itoa(ts.port), testUser, testPassword, "after key; exit 3", keyPath)
	if r.exit != 0 {
		t.Fatalf("python: exit %d\n%s", r.exit, r.stderr)
	}
	var got struct {
		Stdout, Stderr string
		Exit           int
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	checkExec(t, result{got.Stdout, got.Stderr, got.Exit}, "after key; exit 3", 3)
}
