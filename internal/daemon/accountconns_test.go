package daemon

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestMaxConnectionsPerAccountDefault: max_connections_per_account bounds
// the authenticated connections of every account that sets no
// max_connections of its own, and an account's own setting wins.
func TestMaxConnectionsPerAccountDefault(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	addAccount(t, st, "alice", "pw", 0)
	addAccount(t, st, "bob", "pw", 0)
	bob, err := st.LookupAccount(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.MaxConnections = 3
	if err := st.UpdateAccount(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.MaxConnectionsPerAccount = 2 })

	// connect logs in and reports whether the connection is still up a
	// moment later (a refused one is ended right after authentication).
	connect := func(user string) bool {
		t.Helper()
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
		if err != nil {
			return false
		}
		t.Cleanup(func() { c.Close() })
		ended := make(chan struct{})
		go func() { c.Wait(); close(ended) }()
		if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			return false
		}
		select {
		case <-ended:
			return false
		case <-time.After(200 * time.Millisecond):
			return true
		}
	}
	for i, want := range []bool{true, true, false} {
		if got := connect("alice"); got != want {
			t.Fatalf("alice's connection %d up = %v, want %v (max_connections_per_account 2)", i+1, got, want)
		}
	}
	for i, want := range []bool{true, true, true, false} {
		if got := connect("bob"); got != want {
			t.Fatalf("bob's connection %d up = %v, want %v (his own max_connections 3)", i+1, got, want)
		}
	}
}
