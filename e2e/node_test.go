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

// TestNodeSSH2: the npm packages ssh2 and ssh2-sftp-client (e2e/node,
// installed by .ci/run with npm ci): fastPut/fastGet with 64 requests in
// flight, uploadDir/downloadDir, append, rename and posixRename, exists,
// recursive rmdir, and ssh2's exec, shell and a hand-made scp -t upload.
func TestNodeSSH2(t *testing.T) {
	t.Parallel()
	node := testenv.NeedTool(t, "node")
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"ssh2", "ssh2-sftp-client"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
			testenv.Missing(t, "node module "+m+" is not installed (npm ci --prefix e2e/node)")
		}
	}
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	big := randomBytes(t, 4<<20+999)
	writeFile(t, filepath.Join(local, "big.bin"), big)
	tree := map[string][]byte{"f1": []byte("one\n"), "sub/f2": randomBytes(t, 70000), "sub/deeper/f3": []byte("three")}
	for name, data := range tree {
		p := filepath.Join(local, "tree", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeFile(t, p, data)
	}

	r := run(t, local, "", node, filepath.Join(dir, "client.js"), strconv.Itoa(s.port), "alice", "pw-alice", local)
	mustSucceed(t, r, "node client.js")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("node client printed %q: %v", r.out, err)
	}
	home := s.home("alice")
	want := map[string]string{
		"hello":          "hello\nmore\n",
		"rename_over":    "4: _rename: Failure From: /d/renamed.txt To: /d/big.bin",
		"exists":         "[- d false]",
		"stat":           fmt.Sprintf("[%v true false]", float64(len(big))),
		"mode":           "600",
		"list":           "[-big.bin -posix.txt de]",
		"realpath":       "/d/e",
		"cwd":            "/",
		"get_missing":    "2: get: No such file /d/nothere",
		"rmdir_nonempty": "4: rmdir: Failure /d",
		"after_rmdir":    "[up]",
		"exec_refused":   "[1  ferry: command not allowed: md5sum up/f1\n]",
		"scp":            "map[acks:[0 0 0] code:0 errOut:]",
		// ".." at the home's top is the home, as in a chroot.
		"scp_outside":    "map[acks:[0 0 0] code:0 errOut:]",
		"shell":          "ferry: shell access is not allowed\n",
		"wrong_password": "client-authentication: All configured authentication methods failed",
	}
	for k, w := range want {
		if got := fmt.Sprint(res[k]); got != w {
			t.Errorf("%s: %q, want %q", k, got, w)
		}
	}
	if got := readFile(t, filepath.Join(local, "big.fast")); !bytes.Equal(got, big) {
		t.Errorf("fastGet: %d bytes, want %d, or contents differ", len(got), len(big))
	}
	if got := readFile(t, filepath.Join(home, "scp.txt")); string(got) != "via scp\n" {
		t.Errorf("scp -t upload: %q", got)
	}
	if st, err := os.Stat(filepath.Join(home, "scp.txt")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("scp -t upload mode: %v, %v", st.Mode(), err)
	}
	checkTree(t, filepath.Join(home, "up"), tree)
	checkTree(t, filepath.Join(local, "down"), tree)
}
