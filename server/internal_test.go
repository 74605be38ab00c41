package server

import (
	"testing"
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
