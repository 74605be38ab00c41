package store

import (
	"context"
	"strings"
	"testing"
)

// TestBadURLErrorHidesPassword: a PostgreSQL URL whose password holds an
// unencoded '%', '/' or '#' does not parse, and url.Parse's error quoted
// the whole URL (or the password's first part, as an "invalid port"):
// ferry serve logged it, serve --check and ferry user printed it.
func TestBadURLErrorHidesPassword(t *testing.T) {
	for _, tc := range []struct{ url, secret string }{
		{"postgres://ferry:s3cr%zzet@127.0.0.1:1/ferry", "s3cr"},
		{"postgres://ferry:s3cr/et@127.0.0.1:1/ferry", "s3cr"},
		{"postgresql://ferry:s3cr#et@127.0.0.1:1/ferry", "s3cr"},
		{"postgres://ferry:s3cr et@127.0.0.1:1/ferry", "s3cr"},
		{"postgres://ferry:%zzsecret@127.0.0.1:1/ferry", "%zz"},
	} {
		_, openErr := Open(context.Background(), tc.url, Options{})
		_, inspectErr := InspectSchema(context.Background(), tc.url)
		for name, err := range map[string]error{"Open": openErr, "InspectSchema": inspectErr} {
			if err == nil {
				t.Errorf("%s(%q) succeeded", name, tc.url)
				continue
			}
			if msg := err.Error(); strings.Contains(msg, tc.secret) || !strings.Contains(msg, "bad database URL") {
				t.Errorf("%s(%q): %q; want a bad-URL error without the password", name, tc.url, msg)
			}
		}
	}
}
