package scp

import (
	"errors"
	"io"
	"os"
	"path"
	"strings"
)

var errGlobTooLarge = errors.New("pattern matches too many names")

// glob expands a source path pattern inside the FS as sh(1) would
// (XCU §2.13.3): component by component, '/' matched only literally, a
// leading '.' only by a pattern starting with '.', results sorted. A
// pattern a shell cannot parse is taken literally, as sh does.
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
		if _, err := path.Match(comp, ""); err != nil {
			return []string{s.resolve(w.Text, w.Home)}, nil
		}
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
					if isTemp(n) || (n[0] == '.' && comp[0] != '.') {
						continue
					}
					if !last && !e.IsDir() && e.Mode()&os.ModeSymlink == 0 {
						continue
					}
					if ok, _ := path.Match(comp, n); ok {
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
