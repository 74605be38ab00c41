package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
)

// Interop with OpenSSH's ssh client.

// genUserKey runs ssh-keygen into dir and returns the private key path
// and the public key.
func genUserKey(t *testing.T, dir, keyType string, bits int) (string, keys.PublicKey) {
	t.Helper()
	keygen := testenv.NeedTool(t, "ssh-keygen")
	path := filepath.Join(dir, "id_"+keyType)
	args := []string{"-q", "-t", keyType, "-N", "", "-C", "test", "-f", path}
	if bits > 0 {
		args = append(args, "-b", strconv.Itoa(bits))
	}
	if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	ak, err := keys.ParseAuthorizedKey(bytes.TrimSpace(pub))
	if err != nil {
		t.Fatal(err)
	}
	return path, ak.Key
}

// sshArgs are the options every ssh invocation gets: no user config, a
// private known_hosts, no agent keys.
func sshArgs(ts *testServer, dir string, extra ...string) []string {
	// extra comes first: for -o options ssh keeps the first value given.
	args := append([]string{"-F", "/dev/null", "-p", strconv.Itoa(ts.port)}, extra...)
	args = append(args, "-o", "UserKnownHostsFile="+filepath.Join(dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=accept-new", "-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10")
	return append(args, "-l", testUser, "127.0.0.1")
}

type result struct {
	stdout, stderr string
	exit           int
}

func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A ControlPersist master inherits nothing (it reopens stdio on
	// /dev/null), but bound the wait for pipes anyway.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func checkExec(t *testing.T, r result, cmd string, exit int) {
	t.Helper()
	if r.exit != exit || r.stdout != cmd+"\n" || r.stderr != "stderr: "+cmd+"\n" {
		t.Errorf("%q: exit %d (want %d), stdout %q, stderr %q", cmd, r.exit, exit, r.stdout, r.stderr)
	}
}

func TestOpenSSHPassword(t *testing.T) {
	ssh := testenv.NeedTool(t, "ssh")
	sshpass := testenv.NeedTool(t, "sshpass")
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	dir := t.TempDir()
	args := append([]string{"-p", testPassword, ssh}, sshArgs(ts, dir,
		"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
		"-o", "NumberOfPasswordPrompts=1")...)
	checkExec(t, run(t, sshpass, append(args, "echo hello; exit 42")...), "echo hello; exit 42", 42)
	// The host key was recorded; a strict check now passes against it.
	kh, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	if err != nil || !bytes.Contains(kh, bytes.Fields(keys.MarshalAuthorizedKey(ts.hostPK))[1]) {
		t.Fatalf("known_hosts %q, %v", kh, err)
	}
	args = append([]string{"-p", testPassword, ssh}, sshArgs(ts, dir,
		"-o", "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=yes")...)
	checkExec(t, run(t, sshpass, append(args, "again")...), "again", 0)

	args = append([]string{"-p", "wrong", ssh}, sshArgs(ts, dir,
		"-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1")...)
	if r := run(t, sshpass, append(args, "x")...); r.exit == 0 || r.stdout != "" {
		t.Errorf("wrong password: exit %d stdout %q", r.exit, r.stdout)
	}
}

func TestOpenSSHPublicKeys(t *testing.T) {
	ssh := testenv.NeedTool(t, "ssh")
	for _, kt := range []struct {
		typ  string
		bits int
	}{{"ed25519", 0}, {"ecdsa", 256}, {"rsa", 3072}} {
		t.Run(kt.typ, func(t *testing.T) {
			var gotKey atomic.Pointer[keys.PublicKey]
			ts := startServer(t, &server.Server{Handler: server.HandlerFunc(func(s *server.Session) {
				k := s.PublicKey()
				gotKey.Store(&k)
				echoHandler(s)
			})})
			dir := t.TempDir()
			path, pub := genUserKey(t, dir, kt.typ, kt.bits)
			ts.auth.allowKey(testUser, pub)
			r := run(t, ssh, append(sshArgs(ts, dir, "-o", "BatchMode=yes", "-i", path,
				"-o", "PreferredAuthentications=publickey"), "key login; exit 5")...)
			checkExec(t, r, "key login; exit 5", 5)
			if k := gotKey.Load(); k == nil || *k == nil || !keys.Equal(*k, pub) {
				t.Errorf("session key %v, want the %s key", k, kt.typ)
			}
		})
	}
	t.Run("unauthorized key", func(t *testing.T) {
		ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
		dir := t.TempDir()
		path, _ := genUserKey(t, dir, "ed25519", 0)
		r := run(t, ssh, append(sshArgs(ts, dir, "-o", "BatchMode=yes", "-i", path), "x")...)
		if r.exit != 255 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("exit %d stderr %q", r.exit, r.stderr)
		}
	})
}

// ssh -tt on a real terminal: the handler sees the pty's TERM and size,
// echoes lines and exits with the status the shell's "exit 3" asks for.
func TestOpenSSHShellPty(t *testing.T) {
	ssh := testenv.NeedTool(t, "ssh")
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	dir := t.TempDir()
	path, pub := genUserKey(t, dir, "ed25519", 0)
	ts.auth.allowKey(testUser, pub)
	cmd := exec.Command(ssh, sshArgs(ts, dir, "-tt", "-o", "BatchMode=yes", "-i", path)...)
	cmd.Env = append(os.Environ(), "TERM=xterm-ferry", "HOME="+dir)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 132})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := make(chan string, 100)
	go func() {
		defer close(out)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			if n > 0 {
				out <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	var seen strings.Builder
	waitFor := func(s string) {
		t.Helper()
		timeout := time.After(20 * time.Second) // test bound
		for !strings.Contains(seen.String(), s) {
			select {
			case chunk, ok := <-out:
				if !ok {
					t.Fatalf("ssh ended before %q; output %q", s, seen.String())
				}
				seen.WriteString(chunk)
			case <-timeout:
				t.Fatalf("no %q in %q", s, seen.String())
			}
		}
	}
	waitFor("term=xterm-ferry cols=132 rows=40\r\n")
	fmt.Fprint(tty, "hello pty\r")
	waitFor("echo: hello pty\r\n")
	fmt.Fprint(tty, "exit 3\r")
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("ssh exit: %v, output %q", err, seen.String())
	}
}

// Two sessions over one ControlMaster connection: one TCP connection.
func TestOpenSSHControlMaster(t *testing.T) {
	ssh := testenv.NeedTool(t, "ssh")
	ts := startServer(t, &server.Server{Handler: server.HandlerFunc(echoHandler)})
	dir := t.TempDir()
	path, pub := genUserKey(t, dir, "ed25519", 0)
	ts.auth.allowKey(testUser, pub)
	cm := filepath.Join(dir, "cm")
	opts := []string{"-o", "BatchMode=yes", "-i", path,
		"-o", "ControlMaster=auto", "-o", "ControlPath=" + cm, "-o", "ControlPersist=10"}
	t.Cleanup(func() {
		exec.Command(ssh, sshArgs(ts, dir, "-o", "ControlPath="+cm, "-O", "exit")...).Run()
	})
	checkExec(t, run(t, ssh, append(sshArgs(ts, dir, opts...), "first; exit 1")...), "first; exit 1", 1)
	checkExec(t, run(t, ssh, append(sshArgs(ts, dir, opts...), "second; exit 2")...), "second; exit 2", 2)
	if n := ts.ln.accepted.Load(); n != 1 {
		t.Fatalf("%d TCP connections, want 1 through the master", n)
	}
}

// UpdateHostKeys: after a login that used the ed25519 host key, ssh asks
// the server to prove the other announced keys (hostkeys-prove-00) and
// records them; a strict check against only the ECDSA key then passes.
func TestOpenSSHUpdateHostKeys(t *testing.T) {
	ssh := testenv.NeedTool(t, "ssh")
	hostKeys := []keys.Signer{newHostKey(t, "ssh-ed25519"), newHostKey(t, "ecdsa-sha2-nistp256"), newHostKey(t, "ssh-rsa")}
	// ECDSA host keys are not in transport's default host key list; ssh
	// also ignores announced keys whose types HostKeyAlgorithms lacks.
	u := updateHostKeys(t, hostKeys, []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"},
		"ssh-ed25519", "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512")
	for _, alg := range []string{"ecdsa-sha2-nistp256", "rsa-sha2-512"} {
		r := run(t, ssh, append(sshArgs(u.ts, u.dir, append(u.login, "-o", "HostKeyAlgorithms="+alg, "-o", "StrictHostKeyChecking=yes")...), alg)...)
		checkExec(t, r, alg, 0)
	}
}

// UpdateHostKeys after an ssh-rsa (SHA-1) key exchange, while a new RSA
// key is being rolled in: ssh verifies an RSA key's proof with the
// algorithm the exchange negotiated, and the server used to sign with
// rsa-sha2-512 regardless, so ssh printed "server gave bad signature for
// RSA key" and learned none of the announced keys.
func TestOpenSSHUpdateHostKeysAfterSSHRSA(t *testing.T) {
	hostKeys := []keys.Signer{newHostKey(t, "ssh-rsa"), newHostKey(t, "ssh-rsa"), newHostKey(t, "ssh-ed25519")}
	u := updateHostKeys(t, hostKeys, []string{"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}, "ssh-rsa", "ssh-rsa,ssh-ed25519")
	for _, k := range hostKeys {
		if !bytes.Contains(u.knownHosts, bytes.TrimSpace(keys.MarshalAuthorizedKey(k.PublicKey()))) {
			t.Errorf("known_hosts lacks the %s key %s; ssh said %q", k.PublicKey().Type(), keys.FingerprintSHA256(k.PublicKey()), u.stderr)
		}
	}
}

// A host key given twice (listed twice, or under two file names) was
// announced twice, and ssh ignored the whole announcement with "received
// duplicated ssh-ed25519 host key" on every login.
func TestOpenSSHUpdateHostKeysDuplicate(t *testing.T) {
	ed, rsa := newHostKey(t, "ssh-ed25519"), newHostKey(t, "ssh-rsa")
	u := updateHostKeys(t, []keys.Signer{ed, ed, rsa}, nil, "ssh-ed25519", "ssh-ed25519,rsa-sha2-512")
	if !bytes.Contains(u.knownHosts, bytes.TrimSpace(keys.MarshalAuthorizedKey(rsa.PublicKey()))) || bytes.Count(u.knownHosts, []byte("\n")) != 2 {
		t.Errorf("known_hosts after UpdateHostKeys:\n%s\nssh said %q", u.knownHosts, u.stderr)
	}
}

func newHostKey(t *testing.T, typ string) keys.Signer {
	t.Helper()
	bits := 0
	if typ == "ssh-rsa" {
		bits = 2048
	}
	k, err := keys.GenerateKey(typ, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hostKeyUpdate is what updateHostKeys left: the server and ssh's
// home (dir) and login options for further logins, known_hosts and what
// ssh wrote to stderr.
type hostKeyUpdate struct {
	ts         *testServer
	dir        string
	login      []string
	knownHosts []byte
	stderr     string
}

// updateHostKeys serves hostKeys with the host key algorithms algs (nil:
// the default), records the key ssh gets with HostKeyAlgorithms=first,
// then logs in again with UpdateHostKeys=yes and HostKeyAlgorithms=update,
// and reads known_hosts once it holds a line per distinct key or after
// 20 s.
func updateHostKeys(t *testing.T, hostKeys []keys.Signer, algs []string, first, update string) hostKeyUpdate {
	t.Helper()
	ssh := testenv.NeedTool(t, "ssh")
	srv := &server.Server{Handler: server.HandlerFunc(echoHandler)}
	srv.Transport.HostKeys = hostKeys
	srv.Transport.HostKeyAlgorithms = algs
	ts := startServer(t, srv)
	dir := t.TempDir()
	path, pub := genUserKey(t, dir, "ed25519", 0)
	ts.auth.allowKey(testUser, pub)
	login := []string{"-o", "BatchMode=yes", "-i", path}
	r := run(t, ssh, append(sshArgs(ts, dir, append(login, "-o", "HostKeyAlgorithms="+first)...), "first")...)
	checkExec(t, r, "first", 0)
	distinct := 0
	for i, k := range hostKeys {
		if !slices.ContainsFunc(hostKeys[:i], func(o keys.Signer) bool { return keys.Equal(o.PublicKey(), k.PublicKey()) }) {
			distinct++
		}
	}
	// ssh does not wait for the hostkeys-prove reply once its session has
	// ended, so the session ("cat") lasts until known_hosts has grown.
	cmd := exec.Command(ssh, append(sshArgs(ts, dir, append(login, "-o", "HostKeyAlgorithms="+update,
		"-o", "UpdateHostKeys=yes", "-o", "StrictHostKeyChecking=yes")...), "cat")...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var kh []byte
	for range 2000 { // bounded: 20 s
		kh, _ = os.ReadFile(filepath.Join(dir, "known_hosts"))
		if bytes.Count(kh, []byte("\n")) >= distinct {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssh: %v\n%s", err, stderr.Bytes())
	}
	return hostKeyUpdate{ts: ts, dir: dir, login: login, knownHosts: kh, stderr: stderr.String()}
}
