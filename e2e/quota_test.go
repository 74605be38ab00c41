package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// usage reads an account's quota counters with "ferry user show --json".
func (s *server) usage(t *testing.T, user string) (bytes, files int64) {
	t.Helper()
	out, err := s.ferry("", "user", "show", user, "--json")
	if err != nil {
		t.Fatalf("ferry user show %s: %v\n%s", user, err, out)
	}
	var a struct {
		UsedBytes int64 `json:"used_bytes"`
		UsedFiles int64 `json:"used_files"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("ferry user show --json printed %q: %v", out, err)
	}
	return a.UsedBytes, a.UsedFiles
}

// TestQuotaExceededClients: an upload larger than the account's quota
// fails in each client with a non-zero exit, leaves no file behind (the
// atomic upload's temporary file is discarded) and leaves the usage
// counters where they were, so nothing stays charged for it.
func TestQuotaExceededClients(t *testing.T) {
	t.Parallel()
	sshpass := testenv.NeedTool(t, "sshpass")
	scp := testenv.NeedTool(t, "scp")
	pscp := testenv.NeedTool(t, "pscp")
	curl := testenv.NeedTool(t, "curl")
	s := startServer(t, serverOpts{})
	s.addUser("q", "pw-q", "--quota-bytes", "2M")
	home := s.mkHome(t, "q")
	writeFile(t, filepath.Join(home, "kept"), randomBytes(t, 500000))
	local := t.TempDir()
	writeFile(t, filepath.Join(local, "big"), randomBytes(t, 3<<20))
	port := strconv.Itoa(s.port)
	hostkey := s.fingerprint(t, "ed25519")
	pin := strings.TrimPrefix(hostkey, "SHA256:")

	clients := []struct {
		name string
		run  func(remote string) result
	}{
		{"sftp", func(remote string) result {
			return s.sftpBatch(t, local, "q", "pw-q", "put big "+remote+"\n")
		}},
		{"scp", func(remote string) result {
			return run(t, local, "", sshpass, append(append([]string{"-p", "pw-q", scp}, sshOpts(s.port)...), "big", "q@127.0.0.1:"+remote)...)
		}},
		{"scp -O", func(remote string) result {
			return run(t, local, "", sshpass, append(append([]string{"-p", "pw-q", scp, "-O"}, sshOpts(s.port)...), "big", "q@127.0.0.1:"+remote)...)
		}},
		{"pscp -scp", func(remote string) result {
			return run(t, local, "", pscp, "-batch", "-q", "-pw", "pw-q", "-P", port, "-hostkey", hostkey, "-scp", "big", "q@127.0.0.1:"+remote)
		}},
		{"pscp -sftp", func(remote string) result {
			return run(t, local, "", pscp, "-batch", "-q", "-pw", "pw-q", "-P", port, "-hostkey", hostkey, "-sftp", "big", "q@127.0.0.1:"+remote)
		}},
		{"curl sftp", func(remote string) result {
			return run(t, local, "", curl, "-sS", "-u", "q:pw-q", "--hostpubsha256", pin, "-T", "big", "sftp://127.0.0.1:"+port+"/~/"+remote)
		}},
		{"curl scp", func(remote string) result {
			return run(t, local, "", curl, "-sS", "-u", "q:pw-q", "--hostpubsha256", pin, "-T", "big", "scp://127.0.0.1:"+port+"/~/"+remote)
		}},
	}
	if out, err := s.ferry("", "user", "recount", "q"); err != nil {
		t.Fatalf("ferry user recount: %v\n%s", err, out)
	}
	b0, f0 := s.usage(t, "q")
	if b0 != 500000 || f0 != 1 {
		t.Fatalf("usage before the uploads: %d bytes, %d files; want the home's 500000, 1", b0, f0)
	}
	for i, c := range clients {
		remote := "over" + strconv.Itoa(i)
		if r := c.run(remote); r.code == 0 {
			t.Errorf("%s: an upload of 3 MiB under a 2 MiB quota exited 0:\n%s", c.name, r.out)
		}
		// A client may exit before the server has seen its connection
		// end and discarded the temporary file: wait for that.
		var names []string
		deadline := time.Now().Add(logTimeout)
		for {
			ents, _ := os.ReadDir(home)
			names = names[:0]
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if len(names) == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(names) != 1 {
			t.Errorf("%s: the home holds %v after the refused upload, want only kept", c.name, names)
		}
		// Released just after the temporary file goes.
		b, f := s.usage(t, "q")
		for deadline := time.Now().Add(logTimeout); (b != b0 || f != f0) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			b, f = s.usage(t, "q")
		}
		if b != b0 || f != f0 {
			t.Errorf("%s: usage %d bytes, %d files after the refused upload; want %d, %d", c.name, b, f, b0, f0)
		}
	}
}

// TestDfShowsQuota: OpenSSH's df (statvfs@openssh.com) shows an account
// with a quota its quota and what is left of it; it showed the host's
// disk, hundreds of GiB free to a customer allowed 2 MiB.
func TestDfShowsQuota(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("q", "pw-q", "--quota-bytes", "2M", "--quota-files", "10")
	writeFile(t, filepath.Join(s.mkHome(t, "q"), "kept"), randomBytes(t, 500000))
	r := s.sftpBatch(t, t.TempDir(), "q", "pw-q", "df\ndf -i\n")
	mustSucceed(t, r, "sftp df")
	// In KiB of the filesystem's fragments: 2 MiB is 2048; 500000 bytes
	// take 123 blocks of 4 KiB (492 KiB) on the usual 4 KiB fragment.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s+2048\s+492\s+1556\s+1556\s+24%$`),
		regexp.MustCompile(`(?m)^\s+10\s+1\s+9\s+9\s+10%$`),
	} {
		if !want.MatchString(r.out) {
			t.Errorf("df output does not match %s:\n%s", want, r.out)
		}
	}
}
