package daemon

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dropToEnv names the user the re-executed test binary drops to
// (TestRunAsSupplementaryGroups); privileges cannot come back, so the
// drop happens in a child process.
const dropToEnv = "FERRY_TEST_DROP_TO"

// TestRunAsSupplementaryGroups: run_as kept only the user's primary
// group, while the unit's User= (systemd) sets every group the user is
// in: an admin who put ferry's user in the web server's group to write
// homes under /srv/www had every upload fail with run_as only.
func TestRunAsSupplementaryGroups(t *testing.T) {
	if name := os.Getenv(dropToEnv); name != "" {
		// The child: drop, then report what the kernel holds.
		cfg := Default()
		cfg.RunAs, cfg.DataDir = name, os.Getenv(dropToEnv+"_DIR")
		if err := dropPrivileges(cfg, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.Write(status)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("run_as needs root")
	}
	u, want := userWithSupplementaryGroups(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunAsSupplementaryGroups$", "-test.count=1")
	cmd.Env = append(os.Environ(), dropToEnv+"="+u.Username, dropToEnv+"_DIR="+dir)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	fields := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fields[k] = strings.Fields(v)
		}
	}
	if got := fields["Uid"]; !slices.Equal(got, []string{u.Uid, u.Uid, u.Uid, u.Uid}) {
		t.Errorf("Uid (real, effective, saved, fs) %q after the drop, want %s in all", got, u.Uid)
	}
	if got := fields["Gid"]; !slices.Equal(got, []string{u.Gid, u.Gid, u.Gid, u.Gid}) {
		t.Errorf("Gid %q after the drop, want %s in all", got, u.Gid)
	}
	got := fields["Groups"]
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("groups %q after dropping to %s, want %q (id -G)", got, u.Username, want)
	}
	if got := fields["CapEff"]; len(got) != 1 || strings.Trim(got[0], "0") != "" {
		t.Errorf("CapEff %q after the drop, want none", got)
	}
}

// userWithSupplementaryGroups finds a user that /etc/group lists as a
// member of a group other than its primary one, with its groups as
// `id -G` prints them, sorted.
func userWithSupplementaryGroups(t *testing.T) (*user.User, []string) {
	t.Helper()
	data, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 4 || f[3] == "" {
			continue
		}
		for _, name := range strings.Split(f[3], ",") {
			u, err := user.Lookup(name)
			if err != nil || u.Gid == f[2] || u.Uid == "0" {
				continue
			}
			out, err := exec.Command("id", "-G", name).Output()
			if err != nil {
				t.Skip("id:", err)
			}
			ids := strings.Fields(string(out))
			if len(ids) < 2 {
				continue
			}
			for _, id := range ids {
				if _, err := strconv.Atoi(id); err != nil {
					t.Fatalf("id -G %s: %q", name, out)
				}
			}
			slices.Sort(ids)
			return u, ids
		}
	}
	t.Skip("no user with a supplementary group in /etc/group")
	return nil, nil
}

// TestChownDataDirThroughLink: a data_dir that is a symbolic link (the
// data moved to a larger disk) is given to run_as itself; the link was,
// and the directory stayed root's 0700, which run_as could not enter.
func TestChownDataDirThroughLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a directory to another uid needs root")
	}
	base := t.TempDir()
	moved := filepath.Join(base, "disk", "ferry")
	if err := os.MkdirAll(moved, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(moved, "ferry.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "data")
	if err := os.Symlink(moved, link); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65534
	if err := chownDataDir(link, uid, gid); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{moved, filepath.Join(moved, "ferry.db")} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d after chownDataDir through a link, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
}

// stateDirChildEnv makes the re-executed test binary run dropPrivileges
// to nobody and print its outcome (TestRunAsRefusesSystemdStateDirectory).
const stateDirChildEnv = "FERRY_TEST_STATEDIR_CHILD"

// TestRunAsRefusesSystemdStateDirectory: with run_as in a unit without
// User= (contrib/ferry.service's recipe for it), systemd gives the
// StateDirectory= to root, recursively, before every start once run_as
// owns its top, and at the second start no customer could log in. The
// start is refused while the data directory is the state directory.
func TestRunAsRefusesSystemdStateDirectory(t *testing.T) {
	if dir := os.Getenv(stateDirChildEnv); dir != "" {
		cfg := Default()
		cfg.RunAs, cfg.DataDir = "nobody", dir
		if err := dropPrivileges(cfg, slog.New(slog.DiscardHandler)); err != nil {
			fmt.Println("DROP:", err)
			return
		}
		fmt.Println("DROP: ok")
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("run_as needs root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody:", err)
	}
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "ferry")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stateDirs, want string
	}{
		{"state directory", "/var/lib/other:" + data, "is the unit's StateDirectory="},
		{"through a link", link, "is the unit's StateDirectory="},
		{"another directory", base, "DROP: ok"},
		{"none", "", "DROP: ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunAsRefusesSystemdStateDirectory$", "-test.count=1")
			cmd.Env = append(os.Environ(), stateDirChildEnv+"="+data, "STATE_DIRECTORY="+tc.stateDirs)
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "DROP:") || !strings.Contains(string(out), tc.want) {
				t.Errorf("STATE_DIRECTORY=%q: %s; want %q", tc.stateDirs, out, tc.want)
			}
		})
	}
}
