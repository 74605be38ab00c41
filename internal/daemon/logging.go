package daemon

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// escapeUnprintableJSON is the JSON log's ReplaceAttr. slog's JSON
// handler escapes only ASCII controls, so a user name, path or error a
// client chose reached the log with C1 controls (U+009B is CSI, which
// terminals decoding UTF-8 may act on when an admin tails the log) and
// bidirectional overrides (U+202E, which reorder the line shown) as they
// were. Such runes become \uXXXX text, as the text handler (strconv.Quote)
// writes them.
func escapeUnprintableJSON(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); hasUnprintable(s) {
			a.Value = slog.StringValue(escapeUnprintable(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s := err.Error(); hasUnprintable(s) {
				a.Value = slog.StringValue(escapeUnprintable(s))
			}
		}
	}
	return a
}

// unprintable reports a rune past ASCII that is not graphic (C1 controls,
// format characters such as bidi overrides, unusual spaces); ASCII
// controls are the JSON encoder's own business.
func unprintable(r rune) bool { return r >= utf8.RuneSelf && !unicode.IsPrint(r) }

func hasUnprintable(s string) bool { return strings.IndexFunc(s, unprintable) >= 0 }

func escapeUnprintable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unprintable(r):
			b.WriteRune(r)
		case r > 0xFFFF:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
