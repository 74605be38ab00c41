package daemon

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unprivilegedListenEnv makes the re-executed test binary give up root
// before binding (TestListenPrivilegedPortExplains).
const unprivilegedListenEnv = "FERRY_TEST_LISTEN_UNPRIVILEGED"

// TestListenPrivilegedPortExplains: ferry serve on port 22 without root
// failed with only "bind: permission denied"; it now says what gives the
// right to the port.
func TestListenPrivilegedPortExplains(t *testing.T) {
	const addr = "127.0.0.1:1" // below every ip_unprivileged_port_start but 0
	if os.Getenv(unprivilegedListenEnv) != "" || os.Geteuid() != 0 {
		if os.Geteuid() == 0 {
			if err := syscall.Setuid(65534); err != nil {
				t.Fatal(err)
			}
		}
		lns, err := Listen([]string{addr}, nil)
		if err == nil {
			lns[0].Close()
			t.Skip("unprivileged users may bind port 1 here (net.ipv4.ip_unprivileged_port_start)")
		}
		if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "CAP_NET_BIND_SERVICE") {
			t.Fatalf("listen %s unprivileged: %v; want permission denied, saying how to get the right", addr, err)
		}
		return
	}
	// Privileges cannot come back: the drop happens in a child.
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenPrivilegedPortExplains$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), unprivilegedListenEnv+"=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "SKIP") {
		t.Skipf("child skipped:\n%s", out)
	}
}
