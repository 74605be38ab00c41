package daemon

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// TestRemoteForwardPrivilegedPort: with forwarding allowed, an account's
// "ssh -R" may listen on an unprivileged port but never below 1024, as
// sshd refuses for every user but root. ferry's accounts are not system
// users; a daemon running as root would otherwise bind them (port 80 or
// 25 on the loopback, ahead of the service meant to have it).
func TestRemoteForwardPrivilegedPort(t *testing.T) {
	c := dialForwarding(t, false)

	// A port below 1024 that nothing here listens on, so only the policy
	// can refuse it (when the test runs as root).
	priv := 0
	for p := 1000; p < 1024; p++ {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			ln.Close()
			priv = p
			break
		}
	}
	if priv != 0 {
		if ln, err := c.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(priv))); err == nil {
			ln.Close()
			t.Errorf("ssh -R 127.0.0.1:%d was allowed", priv)
		}
	}
	ln, err := c.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ssh -R 127.0.0.1:0 refused: %v", err)
	}
	ln.Close()
}

// TestGatewayPorts: "ssh -R 0.0.0.0:0" listens on the loopback address
// only, unless gateway_ports is set; 127.0.0.2 tells the two apart.
func TestGatewayPorts(t *testing.T) {
	for _, gw := range []bool{false, true} {
		c := dialForwarding(t, gw)
		ln, err := c.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatalf("gateway_ports=%v: ssh -R 0.0.0.0:0 refused: %v", gw, err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		for host, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": gw} {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
			if got := err == nil; got != want {
				t.Errorf("gateway_ports=%v: connect to %s:%s: %v, want reachable %v", gw, host, port, err, want)
			}
			if conn != nil {
				// Take each forwarded channel: x/crypto queues one per
				// listener, and a second one left waiting holds the lock
				// ln.Close needs (the test hung there with gateway_ports).
				if fc, err := ln.Accept(); err != nil {
					t.Errorf("gateway_ports=%v: accepting the forward of %s: %v", gw, host, err)
				} else {
					fc.Close()
				}
				conn.Close()
			}
		}
		ln.Close()
	}
}

// dialForwarding starts a daemon with allow_tcp_forwarding on (and
// gateway_ports as given) and logs in an account allowed to forward.
func dialForwarding(t *testing.T, gatewayPorts bool) *ssh.Client {
	t.Helper()
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	h, err := password.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	acct := &store.Account{Name: "fwd", PasswordHash: h, Enabled: true,
		Permissions: store.Permissions{AllowForwarding: true}}
	if err := st.CreateAccount(context.Background(), acct, nil); err != nil {
		t.Fatal(err)
	}
	addr := startDaemonWith(t, dir, "", func(c *Config) {
		c.AllowTCPForwarding = ForwardingYes
		c.GatewayPorts = gatewayPorts
	})
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "fwd", Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPermitOpenTwoKeys: an account whose AuthenticationMethods needs two
// keys is bound by both keys' permitopen=. The second key's list used to
// replace the first's: a target only the second key allowed was opened,
// one only the first allowed was refused.
func TestPermitOpenTwoKeys(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	var targets [3]string
	for i := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		targets[i] = ln.Addr().String()
	}
	onlyFirst, onlySecond, both := targets[0], targets[1], targets[2]
	first, second := newTestSigner(t), newTestSigner(t)
	acct := &store.Account{Name: "fwd", Enabled: true, AuthMethods: "publickey,publickey",
		Permissions: store.Permissions{AllowForwarding: true}}
	lines := []string{
		`permitopen="` + onlyFirst + `",permitopen="` + both + `" ` + authorizedLine(first),
		`permitopen="` + onlySecond + `",permitopen="` + both + `" ` + authorizedLine(second),
	}
	if err := st.CreateAccount(context.Background(), acct, lines); err != nil {
		t.Fatal(err)
	}
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.AllowTCPForwarding = ForwardingYes })
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "fwd", Auth: []ssh.AuthMethod{ssh.PublicKeys(first, second)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name, target string
		ok           bool
	}{
		{"allowed by the first key only", onlyFirst, false},
		{"allowed by the second key only", onlySecond, false},
		{"allowed by both keys", both, true},
	} {
		conn, err := c.Dial("tcp", tc.target)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: direct-tcpip to %s: err = %v, want success %v", tc.name, tc.target, err, tc.ok)
		}
	}
}
