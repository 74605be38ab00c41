package server

import (
	"context"
	"slices"
	"testing"

	"github.com/ferry-sftp/ferry/connection"
)

func TestPermitted(t *testing.T) {
	tests := []struct {
		list []string
		host string
		port uint32
		want bool
	}{
		{nil, "example.com", 22, true}, // no permitopen=: unrestricted
		{[]string{"example.com:22"}, "example.com", 22, true},
		{[]string{"example.com:22"}, "example.com", 23, false},
		{[]string{"example.com:22"}, "other.com", 22, false},
		{[]string{"*:80"}, "anything", 80, true},
		{[]string{"*:80"}, "anything", 81, false},
		{[]string{"db:*"}, "db", 5432, true},
		{[]string{"[::1]:22"}, "::1", 22, true},
		{[]string{"malformed"}, "malformed", 22, false},
		{[]string{"a:1", "b:2"}, "b", 2, true},
	}
	for _, tt := range tests {
		if got := permitted(tt.list, tt.host, tt.port); got != tt.want {
			t.Errorf("permitted(%q, %q, %d) = %v", tt.list, tt.host, tt.port, got)
		}
	}
}

// permitlisten="[host:]port": without a host, the entry names the
// "localhost" ssh -R sends for a forward without a listen address.
func TestPermittedListen(t *testing.T) {
	tests := []struct {
		list []string
		host string
		port uint32
		want bool
	}{
		{nil, "0.0.0.0", 80, true},
		{[]string{"8080"}, "localhost", 8080, true},
		{[]string{"8080"}, "localhost", 8081, false},
		{[]string{"8080"}, "", 8080, false},
		{[]string{"8080"}, "127.0.0.1", 8080, false},
		{[]string{"*"}, "localhost", 9, true},
		{[]string{"127.0.0.1:8080"}, "127.0.0.1", 8080, true},
		{[]string{"[::1]:8080"}, "::1", 8080, true},
		{[]string{"*:8080"}, "", 8080, true},
		{[]string{"1", "2"}, "localhost", 2, true},
	}
	for _, tt := range tests {
		if got := permittedListen(tt.list, tt.host, tt.port); got != tt.want {
			t.Errorf("permittedListen(%q, %q, %d) = %v", tt.list, tt.host, tt.port, got)
		}
	}
}

// Forwards listen on the loopback unless GatewayPorts, as sshd's
// GatewayPorts no and clientspecified.
func TestForwardBindAddress(t *testing.T) {
	tests := []struct {
		requested    string
		gatewayPorts bool
		want         string
	}{
		{"", false, "127.0.0.1"},
		{"*", false, "127.0.0.1"},
		{"0.0.0.0", false, "127.0.0.1"},
		{"::", false, "127.0.0.1"},
		{"192.0.2.1", false, "127.0.0.1"},
		{"localhost", false, "127.0.0.1"},
		{"127.0.0.1", false, "127.0.0.1"},
		{"::1", false, "::1"},
		{"", true, ""},
		{"*", true, ""},
		{"0.0.0.0", true, ""},
		{"localhost", true, "127.0.0.1"},
		{"192.0.2.1", true, "192.0.2.1"},
		{"::1", true, "::1"},
	}
	for _, tt := range tests {
		if got := forwardBindAddress(tt.requested, tt.gatewayPorts); got != tt.want {
			t.Errorf("forwardBindAddress(%q, %v) = %q, want %q", tt.requested, tt.gatewayPorts, got, tt.want)
		}
	}
}

// A RequestHandler for keepalive@openssh.com is never called (the mux
// refuses keepalives itself), so its type must not be counted as one the
// mux delivers: gateSessions would start the global-request goroutine for
// each keepalive and it would wait for the connection's end.
func TestDeliveredGlobalTypes(t *testing.T) {
	noop := func(context.Context, *Conn, *connection.GlobalRequest) {}
	got := deliveredGlobalTypes(map[string]RequestHandler{
		"keepalive@openssh.com": noop, "custom@example.com": noop, "tcpip-forward": noop,
	})
	want := append(slices.Clone(globalRequestTypes), "custom@example.com")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("deliveredGlobalTypes = %q, want %q", got, want)
	}
}
