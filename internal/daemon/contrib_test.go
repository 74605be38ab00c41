package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

const contribUnit = "../../contrib/ferry.service"

// TestContribServiceUnitStopTimeout: systemd's TimeoutStopSec outlasts the
// SIGTERM drain, so ferry closes the connections left and logs it before
// systemd's SIGKILL. Both were 30 s, and the SIGKILL raced ferry's own end.
func TestContribServiceUnitStopTimeout(t *testing.T) {
	data, err := os.ReadFile(contribUnit)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no TimeoutStopSec= in the unit (systemd's default is 90 s, but say it)")
	}
	stop, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", m[1], err)
	}
	if stop < DefaultDrainTimeout+5*time.Second {
		t.Errorf("TimeoutStopSec=%s leaves ferry's %s drain no time to close what is left", m[1], DefaultDrainTimeout)
	}
}

// TestContribServiceUnitVerifies: systemd-analyze verify accepts the unit
// without a word (an unknown or misspelt directive is only a warning to
// systemd, which then ignores the hardening it meant).
func TestContribServiceUnitVerifies(t *testing.T) {
	analyze := testenv.NeedTool(t, "systemd-analyze")
	data, err := os.ReadFile(contribUnit)
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's program exists.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "ferry.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/ferry", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestContribServiceUnitReloadChecks: "systemctl reload ferry" checks the
// configuration before sending SIGHUP, with the same file ExecStart
// serves, so that a broken file fails the reload where the admin sees it;
// a SIGHUP alone reported success and only ferry's log said the new file
// was refused.
func TestContribServiceUnitReloadChecks(t *testing.T) {
	data, err := os.ReadFile(contribUnit)
	if err != nil {
		t.Fatal(err)
	}
	start := regexp.MustCompile(`(?m)^ExecStart=(\S+) serve (--config \S+)$`).FindSubmatch(data)
	if start == nil {
		t.Fatal("no ExecStart=... serve --config F")
	}
	var reloads []string
	for _, m := range regexp.MustCompile(`(?m)^ExecReload=(.*)$`).FindAllSubmatch(data, -1) {
		reloads = append(reloads, string(m[1]))
	}
	want := []string{string(start[1]) + " serve --check " + string(start[2]), "/bin/kill -HUP $MAINPID"}
	if strings.Join(reloads, "\n") != strings.Join(want, "\n") {
		t.Errorf("ExecReload= %q, want %q", reloads, want)
	}
}
