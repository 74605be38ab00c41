package scp

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGlobBrackets: bracket expressions mean what they mean to the sh
// (bash, dash) that runs "scp -f PATTERN" for sshd. path.Match took
// "[!a-m]*" as "'!' or a to m", sending exactly the files the user
// excluded, and refused "[-_]*" and "x[*" altogether.
func TestGlobBrackets(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"-dash", "a", "b1", "B2", ".hidden", "!bang", "^caret", "x[y", "under_score", "ünï", "]br"} {
		writeFile(t, filepath.Join(root, n), "", 0o644)
	}
	names := regexp.MustCompile(`C0644 0 ([^\n]*)\n`)
	for _, tt := range []struct{ pattern, want string }{
		// Each want is what bash 5.2 lists for the pattern, in C-locale order.
		{`[!a-m]*`, "!bang -dash B2 ]br ^caret under_score x[y ünï"},
		{`[^a-m]*`, "!bang -dash B2 ]br ^caret under_score x[y ünï"},
		{`[-_]*`, "-dash"},
		{`*[-_]*`, "-dash under_score"},
		{`[[:upper:]]*`, "B2"},
		{`?[[:digit:]]`, "B2 b1"},
		{`x[*`, "x[y"},
		{`'.'h*`, ".hidden"},
		{`\.h*`, ".hidden"},
		{`[.]h*`, ""},
		{`[]]*`, "]br"},
		{`[!]a-z]*`, "!bang -dash B2 ^caret ünï"},
		{`[ü]*`, "ünï"},
		{`[[:bogus:]]*`, ""},
		// Quoted, '!' and '-' are members, not a negation or a range.
		{`["!"a]*`, "!bang a"},
		{`[a"-"c]*`, "-dash a"},
		{`[a\-c]*`, "-dash a"},
	} {
		out, _, _ := run(t, root, "scp -f "+tt.pattern, strings.Repeat("\x00", 32), nil)
		var got []string
		for _, m := range names.FindAllStringSubmatch(out, -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("scp -f %s sent %q, want %q (output %q)", tt.pattern, got, tt.want, out)
		}
	}
}

func TestShPattern(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`*.txt`, `*.txt`, true},
		{`[!ab]`, `[^\a\b]`, true},
		{`[a-z]`, `[\a-\z]`, true},
		{`[-a]`, `[\-\a]`, true},
		{`[a-]`, `[\a\-]`, true},
		{`[]a]`, `[\]\a]`, true},
		{`a[b`, `a\[b`, true},
		{`\[x]`, `\[x]`, true},
		{`[\]]`, `[\]]`, true},
		{`[[:digit:]x]`, `[0-9\x]`, true},
		{`[[:nope:]]`, ``, false},
		{`[a-[:digit:]]`, ``, false},
		{`[[:a]`, `[\[\:\a]`, true},
	} {
		got, ok := shPattern(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("shPattern(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
