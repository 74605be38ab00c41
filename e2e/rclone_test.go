package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// rcloneClient runs rclone (its sftp backend: x/crypto/ssh and pkg/sftp;
// Debian's 1.60 is built with pkg/sftp 1.13.5) against one account of a
// server, with an on-the-fly remote and the server's host keys pinned.
type rcloneClient struct {
	t      *testing.T
	bin    string
	remote string // ":sftp,...:" to which a path is appended
	config string
}

func newRclone(t *testing.T, s *server, user, password string) *rcloneClient {
	t.Helper()
	bin := testenv.NeedTool(t, "rclone")
	dir := t.TempDir()
	var kh bytes.Buffer
	for _, kind := range []string{"ed25519", "rsa", "ecdsa"} {
		fmt.Fprintf(&kh, "[127.0.0.1]:%d %s", s.port, readFile(t, s.hostKeyPub(kind)))
	}
	khFile := filepath.Join(dir, "known_hosts")
	writeFile(t, khFile, kh.Bytes())
	r := &rcloneClient{t: t, bin: bin, config: filepath.Join(dir, "rclone.conf")}
	obscured := strings.TrimSpace(r.must("obscure", password))
	r.remote = fmt.Sprintf(":sftp,host=127.0.0.1,port=%d,user=%s,pass=%s,known_hosts_file=%s:", s.port, user, obscured, khFile)
	return r
}

// run runs one rclone command; failures are not retried, so that an
// error shows at once instead of after rclone's back-off.
func (r *rcloneClient) run(args ...string) result {
	r.t.Helper()
	base := []string{"--config", r.config, "--retries", "1", "--low-level-retries", "1",
		"--contimeout", "10s", "--timeout", "30s", "--cache-dir", filepath.Join(filepath.Dir(r.config), "cache")}
	return run(r.t, "", "", r.bin, append(base, args...)...)
}

func (r *rcloneClient) must(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	mustSucceed(r.t, res, "rclone "+strings.Join(args[:1], " "))
	return res.out
}

// makeTree writes files under dir: a few MiB (more than a chunk, sent as
// pipelined writes), an empty file, a name with spaces and a directory of
// many small files.
func makeTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"big.bin":        randomBytes(t, 3<<20+12345),
		"empty":          nil,
		"with space.txt": []byte("spaces\n"),
	}
	for i := range 30 {
		files[fmt.Sprintf("many/f%02d", i)] = randomBytes(t, 1000*i+1)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, data)
	}
	return files
}

func checkTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, want %d, or contents differ", name, len(got), len(data))
		}
	}
}

var rcloneLogRE = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Z]+ *:`)

// withoutRcloneLog returns the lines of rclone's output that are not its
// log lines (such as NOTICEs about the on-the-fly remote's config).
func withoutRcloneLog(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !rcloneLogRE.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestRclone drives rclone against an account whose md5sum and sha1sum
// are allowed, as contrib/ferry.toml.example suggests: rclone then checks
// every transfer by hashing on the server ("md5sum /dir/file").
func TestRclone(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{config: `allowed_commands = ["md5sum", "sha1sum"]` + "\n"})
	s.addUser("alice", "pw-alice")
	r := newRclone(t, s, "alice", "pw-alice")
	local := t.TempDir()
	files := makeTree(t, local)
	home := s.mkHome(t, "alice")
	old := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(local, "big.bin"), old, old); err != nil {
		t.Fatal(err)
	}

	// Uploads, 8 at a time, each checked against the server's md5sum.
	r.must("copy", "--transfers", "8", "--checkers", "16", local, r.remote+"dst")
	checkTree(t, filepath.Join(home, "dst"), files)
	if st, err := os.Stat(filepath.Join(home, "dst", "big.bin")); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("big.bin's modification time on the server: %v, %v; want %v", st.ModTime(), err, old)
	}
	out := r.must("check", local, r.remote+"dst")
	if !strings.Contains(out, "0 differences found") || !strings.Contains(out, fmt.Sprintf("%d matching files", len(files))) ||
		strings.Contains(out, "could not be checked") {
		t.Errorf("rclone check did not compare every hash:\n%s", out)
	}

	// Hashes computed on the server. The commands are named, since
	// rclone 1.60 reports "hash unsupported" for the files it lists
	// while it is still probing which command works.
	for _, h := range []struct {
		cmd string
		sum func([]byte) string
	}{
		{"md5sum", func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }},
		{"sha1sum", func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }},
	} {
		out := r.must(h.cmd, "--sftp-"+h.cmd+"-command", h.cmd, r.remote+"dst")
		var want []string
		for name, data := range files {
			want = append(want, h.sum(data)+"  "+name)
		}
		got := withoutRcloneLog(out)
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("rclone %s:\n%s\nwant:\n%s", h.cmd, out, strings.Join(want, "\n"))
		}
	}

	// Listing, directory and move operations.
	r.must("mkdir", r.remote+"made/deeper")
	if st, err := os.Stat(filepath.Join(home, "made", "deeper")); err != nil || !st.IsDir() {
		t.Errorf("rclone mkdir: %v", err)
	}
	r.must("moveto", r.remote+"dst/with space.txt", r.remote+"made/moved.txt")
	if got := readFile(t, filepath.Join(home, "made", "moved.txt")); string(got) != "spaces\n" {
		t.Errorf("moved file holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(home, "dst", "with space.txt")); !os.IsNotExist(err) {
		t.Errorf("moveto left its source: %v", err)
	}
	out = r.must("lsf", "-R", r.remote+"made")
	if lines := withoutRcloneLog(out); strings.Join(lines, ",") != "deeper/,moved.txt" {
		t.Errorf("rclone lsf -R made: %q", out)
	}
	r.must("purge", r.remote+"made")
	if _, err := os.Stat(filepath.Join(home, "made")); !os.IsNotExist(err) {
		t.Errorf("rclone purge left the directory: %v", err)
	}

	// sync deletes what the source lacks and replaces what changed.
	os.Remove(filepath.Join(local, "many", "f03"))
	files["many/f04"] = []byte("changed")
	writeFile(t, filepath.Join(local, "many", "f04"), files["many/f04"])
	delete(files, "many/f03")
	delete(files, "with space.txt")
	os.Remove(filepath.Join(local, "with space.txt"))
	r.must("sync", "--transfers", "8", "--checkers", "16", local, r.remote+"dst")
	checkTree(t, filepath.Join(home, "dst"), files)
	if _, err := os.Stat(filepath.Join(home, "dst", "many", "f03")); !os.IsNotExist(err) {
		t.Errorf("sync left many/f03: %v", err)
	}

	// Download with large chunks and many requests in flight.
	back := t.TempDir()
	r.must("copy", "--sftp-chunk-size", "255k", "--sftp-concurrency", "128", "--sftp-use-fstat", r.remote+"dst", back)
	checkTree(t, back, files)

	// about: statvfs@openssh.com.
	out = r.must("about", r.remote)
	for _, want := range []string{"Total:", "Used:", "Free:"} {
		if !strings.Contains(out, want) {
			t.Errorf("rclone about lacks %q:\n%s", want, out)
		}
	}
}

// TestRcloneNoHashCommands: without allowed commands rclone's hash probe
// is refused and it falls back to size and time checks.
func TestRcloneNoHashCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("bob", "pw-bob")
	r := newRclone(t, s, "bob", "pw-bob")
	local := t.TempDir()
	files := makeTree(t, local)
	r.must("copy", "--transfers", "8", "--checkers", "16", local, r.remote+"up")
	checkTree(t, filepath.Join(s.home("bob"), "up"), files)
	out := r.must("check", local, r.remote+"up")
	if !strings.Contains(out, "0 differences found") || !strings.Contains(out, strconv.Itoa(len(files))+" hashes could not be checked") {
		t.Errorf("rclone check without hashes:\n%s", out)
	}
	res := r.run("md5sum", r.remote+"up/big.bin")
	if res.code == 0 || !strings.Contains(res.out, "hash unsupported") {
		t.Errorf("rclone md5sum without md5sum allowed: exit %d:\n%s", res.code, res.out)
	}
	if !s.waitLog(func(log string) bool {
		return strings.Contains(log, `command=md5sum reason="not in allowed_commands"`)
	}) {
		t.Errorf("the refused hash probe is not logged")
	}
	// --sftp-disable-hashcheck: no command is run at all.
	r.must("copy", "--sftp-disable-hashcheck", local, r.remote+"again")
	checkTree(t, filepath.Join(s.home("bob"), "again"), files)
}
