package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/store"
)

// TestVersionText: `ferry version` said only "ferry 0.1.0-dev", the same
// for every development build, so a support request could not tell the
// commit, the Go release or whether an older ferry could still open the
// database it had migrated.
func TestVersionText(t *testing.T) {
	stamped := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-25T01:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	goLine := fmt.Sprintf("go:              %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	schemaLine := fmt.Sprintf("database schema: %d\n", store.SchemaVersion())
	for _, tc := range []struct {
		name      string
		bi        *debug.BuildInfo
		ldCommit  string
		wantLines []string
	}{
		{"vcs stamped", stamped, "", []string{"ferry " + version + "\n",
			"commit:          0123456789abcdef0123456789abcdef01234567 (2026-11-25T01:00:00Z, with uncommitted changes)\n", goLine, schemaLine}},
		{"no vcs", &debug.BuildInfo{}, "", []string{"ferry " + version + "\n",
			"commit:          unknown (built without version control information)\n", goLine, schemaLine}},
		{"ldflags commit", nil, "feedface", []string{"ferry " + version + "\n", "commit:          feedface\n", goLine, schemaLine}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := commit
			commit = tc.ldCommit
			defer func() { commit = old }()
			got := versionText(tc.bi)
			if want := strings.Join(tc.wantLines, ""); got != want {
				t.Fatalf("version text:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	if store.SchemaVersion() < 2 {
		t.Fatalf("store.SchemaVersion() = %d; this tree has schema version 2", store.SchemaVersion())
	}
}

// TestLogVersion: the "ferry started" line names the commit too (short,
// marked when the tree had changes), and the bare version without one.
func TestLogVersion(t *testing.T) {
	old := commit
	defer func() { commit = old }()
	commit = ""
	stamped := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got, want := logVersion(stamped), version+" (0123456789ab+changes)"; got != want {
		t.Errorf("logVersion(stamped) = %q, want %q", got, want)
	}
	if got := logVersion(&debug.BuildInfo{}); got != version {
		t.Errorf("logVersion(no vcs) = %q, want %q", got, version)
	}
	commit = "feedface"
	if got, want := logVersion(nil), version+" (feedface)"; got != want {
		t.Errorf("logVersion(-X main.commit) = %q, want %q", got, want)
	}
}
