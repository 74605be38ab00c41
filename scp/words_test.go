package scp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []Word
		err  error
	}{
		{in: "scp -t x", want: []Word{{Text: "scp"}, {Text: "-t"}, {Text: "x"}}},
		{in: "  a\t b  ", want: []Word{{Text: "a"}, {Text: "b"}}},
		{in: "a 'b c' d", want: []Word{{Text: "a"}, {Text: "b c"}, {Text: "d"}}},
		{in: `"it's" 'say "hi"'`, want: []Word{{Text: "it's"}, {Text: `say "hi"`}}},
		{in: `a\ b`, want: []Word{{Text: "a b"}}},
		{in: `"a\"b\\c\d"`, want: []Word{{Text: `a"b\c\d`}}},
		{in: `"\$x"`, want: []Word{{Text: "$x"}}},
		{in: "a\\\nb", want: []Word{{Text: "ab"}}},
		{in: "''", want: []Word{{Text: ""}}},
		{in: "x''y", want: []Word{{Text: "xy"}}},
		{in: "-- -dash", want: []Word{{Text: "--"}, {Text: "-dash"}}},
		{in: "a\n", want: []Word{{Text: "a"}}},
		{in: "'new\nline'", want: []Word{{Text: "new\nline"}}},
		{in: "*.txt", want: []Word{{Text: "*.txt", Glob: true, Pattern: "*.txt"}}},
		{in: `'*'.txt`, want: []Word{{Text: "*.txt"}}},
		{in: `'*'a?`, want: []Word{{Text: "*a?", Glob: true, Pattern: `\*a?`}}},
		{in: `"x\\y"*`, want: []Word{{Text: `x\y*`, Glob: true, Pattern: `x\\y*`}}},
		{in: `["!"a"-"c\]]*`, want: []Word{{Text: `[!a-c]]*`, Glob: true, Pattern: `[\!a\-c\]]*`}}},
		{in: "~", want: []Word{{Text: "", Home: true}}},
		{in: "~/a b", want: []Word{{Text: "/a", Home: true}, {Text: "b"}}},
		{in: "'~'/a", want: []Word{{Text: "~/a"}}},
		{in: "a~", want: []Word{{Text: "a~"}}},
		{in: "a#b", want: []Word{{Text: "a#b"}}},
		{in: "", want: nil},
		{in: "~root/x", err: ErrTildeUser},
		{in: "a;b", err: ErrShellSyntax},
		{in: "a | b", err: ErrShellSyntax},
		{in: "a && b", err: ErrShellSyntax},
		{in: "a > f", err: ErrShellSyntax},
		{in: "$(id)", err: ErrShellSyntax},
		{in: "`id`", err: ErrShellSyntax},
		{in: `"$HOME"`, err: ErrShellSyntax},
		{in: "$HOME", err: ErrShellSyntax},
		{in: "a #comment", err: ErrShellSyntax},
		{in: "(a)", err: ErrShellSyntax},
		{in: "'abc", err: ErrUnterminated},
		{in: `"abc`, err: ErrUnterminated},
		{in: `abc\`, err: errTrailingEscape},
		{in: "a\nb", err: errNewlineUnquoted},
		{in: "a\x00b", err: errNULInCommand},
		{in: "'a\x00b'", err: errNULInCommand},
		{in: strings.Repeat("a", maxCommandLen+1), err: ErrCommandTooLong},
		{in: strings.Repeat("a ", maxWords+1), err: ErrTooManyWords},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("SplitWords(%q) error %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitWords(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{in: "rsync --server -vlogDtpre.iLsfxCIvu . dir/", want: []string{"rsync", "--server", "-vlogDtpre.iLsfxCIvu", ".", "dir/"}},
		{in: "git-upload-pack 'repo.git'", want: []string{"git-upload-pack", "repo.git"}},
		{in: "ls ~/x ~", want: []string{"ls", "./x", "."}},
		{in: "md5sum *.txt", err: ErrUnexpectedGlob},
		{in: "  ", err: ErrEmptyCommand},
		{in: "a;b", err: ErrShellSyntax},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("SplitCommand(%q) error %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	w := func(s string) Word { return Word{Text: s} }
	tests := []struct {
		in   string
		want *Command
		err  error
	}{
		{in: "scp -t .", want: &Command{Sink: true, Paths: []Word{w(".")}}},
		{in: "scp -v -r -p -d -t -- -dir", want: &Command{Sink: true, Verbose: true, Recursive: true, PreserveTimes: true, TargetDir: true, Paths: []Word{w("-dir")}}},
		{in: "/usr/bin/scp -rpf 'a b' c", want: &Command{Source: true, Recursive: true, PreserveTimes: true, Paths: []Word{w("a b"), w("c")}}},
		{in: "scp -f -- -x --", want: &Command{Source: true, Paths: []Word{w("-x"), w("--")}}},
		{in: "scp -f ~/x", want: &Command{Source: true, Paths: []Word{{Text: "/x", Home: true}}}},
		{in: "scp -f *.c", want: &Command{Source: true, Paths: []Word{{Text: "*.c", Glob: true, Pattern: "*.c"}}}},
		// bramvdbogaerde/go-scp's upload command, with Go's %q quoting.
		{in: `scp -qt "/up/a \"b\".txt"`, want: &Command{Sink: true, Paths: []Word{w(`/up/a "b".txt`)}}},
		{in: "scp -q -B -C -T -f x", want: &Command{Source: true, Paths: []Word{w("x")}}},
		{in: "scp -t a b", err: errAmbiguousTarget},
		{in: "scp -t", err: errNoPaths},
		{in: "scp x", err: errNoDirection},
		{in: "scp -t -f x", err: errBothDirections},
		{in: "scp -S prog -t x", err: errUnknownOption},
		{in: "scp -o x -t x", err: errUnknownOption},
		{in: "sh -c scp", err: errNotSCP},
		{in: "scpx -t x", err: errNotSCP},
		{in: "", err: errNotSCP},
		{in: "scp -t x; rm -rf /", err: ErrShellSyntax},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseCommand(%q) error %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	for cmd, want := range map[string]bool{
		"scp -t x": true, "/usr/bin/scp -f y": true, "'scp' -t x": true,
		"rsync --server": false, "scp;ls": false, "": false, "/": false, "*scp -t x": false,
	} {
		if got := IsSCPCommand(cmd); got != want {
			t.Errorf("IsSCPCommand(%q) = %v, want %v", cmd, got, want)
		}
	}
}
