package server

import (
	"net"
	"testing"
	"time"
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

// deadlineRecorder records the deadlines set on it.
type deadlineRecorder struct {
	net.Conn
	read, write time.Time
}

func (d *deadlineRecorder) SetDeadline(t time.Time) error { d.read, d.write = t, t; return nil }
func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.read = t
	return nil
}
func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.write = t
	return nil
}

func TestGraceConnClamp(t *testing.T) {
	limit := time.Unix(1000, 0)
	rec := &deadlineRecorder{}
	g := &graceConn{Conn: rec, limit: limit}
	for _, set := range []time.Time{{}, time.Unix(2000, 0)} { // none, later
		g.SetDeadline(set)
		if !rec.read.Equal(limit) || !rec.write.Equal(limit) {
			t.Errorf("SetDeadline(%v) set %v/%v, want the grace limit", set, rec.read, rec.write)
		}
	}
	g.SetReadDeadline(time.Unix(500, 0))
	if !rec.read.Equal(time.Unix(500, 0)) {
		t.Errorf("earlier deadline replaced: %v", rec.read)
	}
	g.lift()
	g.SetWriteDeadline(time.Unix(2000, 0))
	g.SetReadDeadline(time.Time{})
	if !rec.write.Equal(time.Unix(2000, 0)) || !rec.read.IsZero() {
		t.Errorf("after lift: read %v write %v", rec.read, rec.write)
	}
}
