package store

import (
	"strings"
	"testing"
)

// FuzzDefaultKeyParser: arbitrary lines never panic, and canonicalization
// is a fixed point (parsing the canonical line gives it back), so a key
// stored once is stored identically when re-imported.
func FuzzDefaultKeyParser(f *testing.F) {
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXJpH9ZfNWQ2l6pCfXpSQLTqCyxBzTwWmyrFsHTBWBP user@host")
	f.Add(`from="10.0.0.0/8",command="echo \"x y\"",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXJpH9ZfNWQ2l6pCfXpSQLTqCyxBzTwWmyrFsHTBWBP  two  words `)
	f.Add("restrict\tssh-ed25519\tAAAAC3NzaC1lZDI1NTE5AAAAIBXJpH9ZfNWQ2l6pCfXpSQLTqCyxBzTwWmyrFsHTBWBP")
	f.Add(`command="unterminated ssh-ed25519 AAAA`)
	f.Fuzz(func(t *testing.T, line string) {
		pk, err := DefaultKeyParser(line)
		if err != nil {
			return
		}
		again, err := DefaultKeyParser(pk.Line)
		if err != nil {
			t.Fatalf("canonical line %q of %q does not parse: %v", pk.Line, line, err)
		}
		if again != pk {
			t.Fatalf("canonicalization is not stable:\n first %+v\n again %+v", pk, again)
		}
	})
}

// FuzzSplitAuthorizedKeysText: arbitrary pasted text never panics, every
// line it returns is one line without surrounding blanks, and a line that
// is a key stays a key once split out.
func FuzzSplitAuthorizedKeysText(f *testing.F) {
	k := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXJpH9ZfNWQ2l6pCfXpSQLTqCyxBzTwWmyrFsHTBWBP user@host"
	f.Add("\ufeff" + k + "\r\n# c\r\n\r\n")
	f.Add("---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"a \\\nb\"\nAAAAC3NzaC1lZDI1NTE5AAAAIBXJpH9ZfNWQ2l6pCfXp\nSQLTqCyxBzTwWmyrFsHTBWBP\n---- END SSH2 PUBLIC KEY ----\n" + k)
	f.Add("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		lines, err := SplitAuthorizedKeysText(text)
		if err != nil {
			return
		}
		for _, l := range lines {
			if l == "" || strings.ContainsAny(l, "\n") || strings.TrimSpace(l) != l {
				t.Fatalf("line %q from %q", l, text)
			}
		}
	})
}
