package daemon

import (
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// TestRunAsIgnoredWarns: ferry started as a user other than root (a
// unit's User=) with run_as naming someone else ran as the first without a
// word; the start now warns. run_as naming ferry's own user is quiet.
func TestRunAsIgnoredWarns(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	if msg := runAsIgnored("nobody", uid); msg != "" {
		t.Fatalf("run_as naming ferry's own user: %q", msg)
	}
	if msg := runAsIgnored("nobody", uid+1); !strings.Contains(msg, `run_as = "nobody" ignored`) {
		t.Fatalf("run_as naming another user: %q", msg)
	}
	if msg := runAsIgnored("no-such-user-ferry", uid); msg == "" {
		t.Fatal("run_as naming no user: no warning")
	}
}
