package scp

import (
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"unicode/utf8"
)

var errGlobTooLarge = errors.New("pattern matches too many names")

// glob expands a source path pattern inside the FS as sh(1) would
// (XCU §2.13.3): component by component, '/' matched only literally, a
// leading '.' only by a pattern starting with a literal '.', results
// sorted. A pattern a shell cannot parse is taken literally, as sh does.
func (s *session) glob(w Word) ([]string, error) {
	pat := w.Pattern
	if w.Home || !strings.HasPrefix(pat, "/") {
		pat = escapeGlob(s.srv.opts.Home) + "/" + pat
	}
	comps := strings.Split(pat, "/")
	cur := []string{"/"}
	scanned := 0
	for ci, comp := range comps {
		if comp == "" {
			continue
		}
		last := ci == len(comps)-1
		if !hasMeta(comp) {
			lit := unescapeGlob(comp)
			for i := range cur {
				cur[i] = path.Join(cur[i], lit)
			}
			continue
		}
		goPat, ok := shPattern(comp)
		if !ok {
			return []string{s.resolve(w.Text, w.Home)}, nil
		}
		dotOK := strings.HasPrefix(comp, ".") || strings.HasPrefix(comp, `\.`)
		var next []string
		for _, dir := range cur {
			d, err := s.fs.OpenFile(dir, os.O_RDONLY, 0)
			if err != nil {
				continue
			}
			var names []string
			for {
				ents, err := d.ReadDir(readDirBatch)
				for _, e := range ents {
					scanned++
					n := e.Name()
					if isTemp(n) || (n[0] == '.' && !dotOK) {
						continue
					}
					if !last && !e.IsDir() && e.Mode()&os.ModeSymlink == 0 {
						continue
					}
					if ok, _ := path.Match(goPat, n); ok {
						names = append(names, path.Join(dir, n))
					}
				}
				if scanned > maxGlobScan || len(next)+len(names) > maxGlobMatches {
					d.Close()
					return nil, errGlobTooLarge
				}
				if err != nil || len(ents) == 0 {
					if err != nil && !errors.Is(err, io.EOF) {
						names = names[:0]
					}
					break
				}
			}
			d.Close()
			next = append(next, sortedNames(names)...)
		}
		cur = next
		if len(cur) == 0 {
			return nil, nil
		}
	}
	// Literal components after the last pattern must exist, as the
	// shell's expansion only yields existing names.
	out := cur[:0]
	for _, p := range cur {
		if _, err := s.fs.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// hasMeta reports an unescaped pattern character.
func hasMeta(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

func unescapeGlob(p string) string {
	if !strings.Contains(p, "\\") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func escapeGlob(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if isGlobChar(p[i]) || p[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// posixClasses are the character classes of XBD §7.3.1 in the POSIX
// locale, as path.Match ranges (with its escapes).
var posixClasses = map[string]string{
	"alnum":  "0-9A-Za-z",
	"alpha":  "A-Za-z",
	"blank":  " \t",
	"cntrl":  "\x00-\x1f\x7f",
	"digit":  "0-9",
	"graph":  "!-~",
	"lower":  "a-z",
	"print":  " -~",
	"punct":  "!-/:-@\\[-`{-~",
	"space":  " \t\n\v\f\r",
	"upper":  "A-Z",
	"xdigit": "0-9A-Fa-f",
}

// shPattern turns one component of a sh pattern (XCU §2.13.1, in Word's
// Pattern form) into path.Match's syntax, which differs in its bracket
// expressions (XBD §9.3.5): sh negates with "[!...]" (path.Match with
// "[^...]", and takes '!' as a member), takes '-' first or last as a
// member and knows "[:alpha:]"-style classes (path.Match refuses both),
// and matches an unclosed '[' as itself (path.Match refuses the whole
// pattern). ok is false for what neither can express (an unknown class,
// a class as the end of a range): the word is then taken literally.
func shPattern(p string) (goPat string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			b.WriteByte(c)
			if i+1 < len(p) {
				i++
				b.WriteByte(p[i])
			}
		case '[':
			end, members, ok := bracket(p[i:])
			if !ok {
				return "", false
			}
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			b.WriteString(members)
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// bracket translates the bracket expression that p starts with. end is
// the index of its closing ']' in p, or -1 when there is none (the '[' is
// then an ordinary character).
func bracket(p string) (end int, goClass string, ok bool) {
	var b strings.Builder
	b.WriteByte('[')
	i := 1
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		b.WriteByte('^')
		i++
	}
	// member reads one character (escaped or not) at p[i:] and returns
	// it in path.Match's escaped form.
	member := func() (string, bool) {
		if p[i] == '\\' {
			if i+1 == len(p) {
				return "", false
			}
			i++
		}
		_, n := utf8.DecodeRuneInString(p[i:])
		m := `\` + p[i:i+n]
		i += n
		return m, true
	}
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			b.WriteByte(']')
			return i, b.String(), true
		}
		first = false
		if name, n := className(p[i:]); n > 0 {
			class, known := posixClasses[name]
			if !known {
				return 0, "", false
			}
			b.WriteString(class)
			i += n
			if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
				return 0, "", false
			}
			continue
		}
		lo, okm := member()
		if !okm {
			return -1, "", true
		}
		b.WriteString(lo)
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			i++
			if _, n := className(p[i:]); n > 0 {
				return 0, "", false
			}
			hi, okm := member()
			if !okm {
				return -1, "", true
			}
			b.WriteByte('-')
			b.WriteString(hi)
		}
	}
	return -1, "", true
}

// className reports a "[:name:]" class at the start of p and its length;
// n is 0 when p does not start with one.
func className(p string) (name string, n int) {
	if !strings.HasPrefix(p, "[:") {
		return "", 0
	}
	j := strings.Index(p[2:], ":]")
	if j < 0 {
		return "", 0
	}
	return p[2 : 2+j], 2 + j + 2
}
