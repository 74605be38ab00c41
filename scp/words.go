package scp

import (
	"errors"
	"strings"
)

// maxCommandLen bounds the command line the splitter accepts. An exec
// request is already bounded by the channel's packet size (RFC 4254 §5.2);
// this is far above any scp, rsync or git command line and keeps the word
// list small.
const maxCommandLen = 32 << 10

// maxWords bounds the words of one command line: OpenSSH's scp sends at
// most a handful of options and, in source mode, the paths the user typed.
const maxWords = 1024

// Word is one word of a command line after quote removal, as a POSIX
// shell (XCU §2.2, §2.6.7) would hand it to the program, without any
// expansion except the two that scp users rely on: a leading "~" and, for
// scp's source mode, pathname patterns.
type Word struct {
	// Text is the word after quote removal. With Home set, it is what
	// followed the "~" ("" or "/..."), to be taken relative to the home.
	Text string
	// Glob reports an unquoted '*', '?' or '[': the word is a pattern
	// (XCU §2.13) that a shell would expand.
	Glob bool
	// Pattern is Text with every quoted or escaped pattern character
	// (and backslash, and the characters special inside a bracket
	// expression: "!^-]") escaped by '\', the form path.Match expects;
	// set only with Glob.
	Pattern string
	// Home reports a word starting with an unquoted "~" alone or "~/":
	// the shell's tilde expansion (XCU §2.6.1) to the user's home.
	Home bool
}

// Errors of SplitWords. They name what a real shell would do and ferry
// will not, so that a user sees why a command was refused.
var (
	ErrCommandTooLong  = errors.New("command line too long")
	ErrTooManyWords    = errors.New("too many words in command line")
	ErrUnterminated    = errors.New("unterminated quote")
	ErrShellSyntax     = errors.New("shell operators, substitutions and redirections are not supported")
	ErrTildeUser       = errors.New("~user is not supported")
	ErrUnexpectedGlob  = errors.New("wildcards are not supported here")
	ErrEmptyCommand    = errors.New("empty command")
	errTrailingEscape  = errors.New("backslash at end of command")
	errNULInCommand    = errors.New("NUL byte in command")
	errNewlineUnquoted = errors.New("unquoted newline (command list) is not supported")
)

// isOperator reports characters that, unquoted, make the shell do
// something other than split words: lists, pipes, redirections,
// substitutions, subshells, comments and parameter expansion. Refusing them
// (instead of passing them on literally) keeps the words we run identical
// to what the user's shell would have run — or nothing runs at all.
func isOperator(c byte) bool {
	switch c {
	case ';', '&', '|', '<', '>', '(', ')', '$', '`':
		return true
	}
	return false
}

func isGlobChar(c byte) bool { return c == '*' || c == '?' || c == '[' }

// isBracketChar reports the characters with a meaning inside a bracket
// expression (XBD §9.3.5); quoted, they are members like any other
// ("["!"a]" matches '!' or 'a' in sh, it is not a negation).
func isBracketChar(c byte) bool { return c == '!' || c == '^' || c == '-' || c == ']' }

// SplitWords splits a command line the way sh(1) splits the command an
// SSH client sends for exec (sshd runs it as `$SHELL -c command`): blanks
// separate words, single quotes preserve everything, double quotes
// preserve everything but the backslash escapes \\ \" \$ \` and
// backslash-newline, and an unquoted backslash escapes the next
// character. Nothing is expanded: unquoted operators and substitutions
// ($, `, ;, |, &, <, >, parentheses) and a word starting with '#' are
// refused with ErrShellSyntax, so a command is either split exactly as a
// shell would or refused.
func SplitWords(s string) ([]Word, error) {
	if len(s) > maxCommandLen {
		return nil, ErrCommandTooLong
	}
	var (
		words  []Word
		text   strings.Builder
		pat    strings.Builder
		inWord bool
		glob   bool
		home   bool
	)
	flush := func() error {
		if !inWord {
			return nil
		}
		if len(words) == maxWords {
			return ErrTooManyWords
		}
		w := Word{Text: text.String(), Glob: glob, Home: home}
		if glob {
			w.Pattern = pat.String()
		}
		words = append(words, w)
		text.Reset()
		pat.Reset()
		inWord, glob, home = false, false, false
		return nil
	}
	// quoted adds a character that came from inside quotes or after a
	// backslash: literal, and escaped in the pattern form.
	quoted := func(c byte) {
		text.WriteByte(c)
		if isGlobChar(c) || isBracketChar(c) || c == '\\' {
			pat.WriteByte('\\')
		}
		pat.WriteByte(c)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
			return nil, errNULInCommand
		case c == ' ' || c == '\t':
			if err := flush(); err != nil {
				return nil, err
			}
		case c == '\n':
			// A newline ends a command in a list; only a trailing one
			// (which some clients append) is harmless.
			if strings.TrimLeft(s[i:], " \t\n") != "" {
				return nil, errNewlineUnquoted
			}
			if err := flush(); err != nil {
				return nil, err
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, ErrUnterminated
			}
			for k := i + 1; k < i+1+j; k++ {
				if s[k] == 0 {
					return nil, errNULInCommand
				}
				quoted(s[k])
			}
			i += j + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				d := s[i]
				if d == '"' {
					closed = true
					break
				}
				if d == 0 {
					return nil, errNULInCommand
				}
				if d == '$' || d == '`' {
					return nil, ErrShellSyntax
				}
				if d == '\\' && i+1 < len(s) {
					switch e := s[i+1]; e {
					case '\\', '"', '$', '`':
						quoted(e)
						i++
						continue
					case '\n':
						i++
						continue
					}
				}
				quoted(d)
			}
			if !closed {
				return nil, ErrUnterminated
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, errTrailingEscape
			}
			i++
			if s[i] == '\n' {
				continue // line continuation
			}
			if s[i] == 0 {
				return nil, errNULInCommand
			}
			inWord = true
			quoted(s[i])
		case isOperator(c):
			return nil, ErrShellSyntax
		case c == '#' && !inWord:
			return nil, ErrShellSyntax
		case c == '~' && !inWord:
			// Tilde expansion applies to an unquoted "~" up to the first
			// unquoted "/" (XCU §2.6.1).
			inWord = true
			rest := s[i+1:]
			if rest == "" || rest[0] == '/' || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' {
				home = true
				continue
			}
			if rest[0] == ':' || rest[0] == '=' {
				// Not a login-name prefix; sh leaves "~:" and "~=" alone.
				text.WriteByte(c)
				pat.WriteByte(c)
				continue
			}
			return nil, ErrTildeUser
		default:
			inWord = true
			if isGlobChar(c) {
				glob = true
			}
			text.WriteByte(c)
			pat.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return words, nil
}

// SplitCommand splits a command line into argv for running a program
// without a shell: SplitWords, then a leading "~" becomes "." (commands
// run in the user's home) and a word a shell would glob is refused with
// ErrUnexpectedGlob, since running it unexpanded would differ from what
// the user meant.
func SplitCommand(s string) ([]string, error) {
	ws, err := SplitWords(s)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, ErrEmptyCommand
	}
	argv := make([]string, len(ws))
	for i, w := range ws {
		if w.Glob {
			return nil, ErrUnexpectedGlob
		}
		argv[i] = w.Text
		if w.Home {
			argv[i] = "." + w.Text
		}
	}
	return argv, nil
}
