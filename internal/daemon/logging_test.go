package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestLogEscapesUnprintable: in both formats a value a client chose
// leaves the log as one line without raw control or bidi characters; the
// JSON format wrote C1 controls (U+009B, CSI) and U+202E as they came.
func TestLogEscapesUnprintable(t *testing.T) {
	const name = "a\u009b2J\u202ez\x1b[31m\nb\u00e9\U0001F600"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log, _ := newLogger(LogConfig{Format: format}, &buf)
		log.Info("authentication failed", "remote", "192.0.2.1:1", "user", name, "error", errors.New("open /"+name+": denied"))
		out := buf.String()
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Errorf("%s: not one line: %q", format, out)
		}
		for _, r := range out[:len(out)-1] {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u202e' {
				t.Errorf("%s: raw %U in %q", format, r, out)
			}
		}
		if !strings.Contains(out, "é") || !strings.Contains(out, "\U0001F600") {
			t.Errorf("%s: printable non-ASCII text was escaped: %q", format, out)
		}
		if format == "json" {
			var rec map[string]any
			if err := json.Unmarshal([]byte(out), &rec); err != nil {
				t.Fatalf("json: %v: %q", err, out)
			}
			if want := "a\\u009b2J\\u202ez\x1b[31m\nb\u00e9\U0001F600"; rec["user"] != want {
				t.Errorf("json: user decodes to %q, want %q", rec["user"], want)
			}
		}
	}
}
