package scp

import (
	"errors"
	"fmt"
	"path"
)

// Command is a parsed "scp [-r] [-p] [-d] [-v] -t|-f [--] PATH..." server
// command line, as OpenSSH's scp (-O), PuTTY's pscp (-scp), libssh2 and
// go-scp send it for exec. (WinSCP's SCP mode runs its commands through an
// interactive shell, which accounts without --shell do not get: WinSCP
// users use its SFTP mode.)
type Command struct {
	Sink          bool // -t: the client sends files to us
	Source        bool // -f: we send files to the client
	Recursive     bool // -r
	PreserveTimes bool // -p: T records, and modes kept as sent
	TargetDir     bool // -d: the target must be a directory
	Verbose       bool // -v (accepted; nothing extra is printed)
	Paths         []Word
}

var (
	errNotSCP          = errors.New("not an scp command")
	errNoDirection     = errors.New("one of -t and -f is required")
	errBothDirections  = errors.New("-t and -f exclude each other")
	errUnknownOption   = errors.New("unknown option")
	errNoPaths         = errors.New("no path given")
	errAmbiguousTarget = errors.New("ambiguous target")
)

// IsSCPCommand reports whether an exec command asks for the scp server
// (its first word is "scp" or a path ending in "/scp").
func IsSCPCommand(cmd string) bool {
	ws, err := SplitWords(cmd)
	return err == nil && len(ws) > 0 && !ws[0].Glob && !ws[0].Home && path.Base(ws[0].Text) == "scp" && ws[0].Text != "/"
}

// ParseCommand parses an scp server command line. Options may be grouped
// ("-rpt") as getopt(3) allows; after the first non-option word or "--"
// every word is a path. In sink mode exactly one target is allowed (scp.c:
// "ambiguous target").
func ParseCommand(cmd string) (*Command, error) {
	ws, err := SplitWords(cmd)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 || ws[0].Glob || ws[0].Home || path.Base(ws[0].Text) != "scp" {
		return nil, errNotSCP
	}
	c := &Command{}
	i := 1
	for ; i < len(ws); i++ {
		w := ws[i]
		if w.Text == "--" && !w.Home {
			i++
			break
		}
		if len(w.Text) < 2 || w.Text[0] != '-' || w.Home {
			break
		}
		for _, o := range w.Text[1:] {
			switch o {
			case 't':
				c.Sink = true
			case 'f':
				c.Source = true
			case 'r':
				c.Recursive = true
			case 'p':
				c.PreserveTimes = true
			case 'd':
				c.TargetDir = true
			case 'v':
				c.Verbose = true
			case '2', '3', '4', '6', 'A', 'B', 'C', 'O', 'q', 'R', 's', 'T':
				// Client-side options that OpenSSH's scp accepts, and
				// ignores, in server mode too: bramvdbogaerde/go-scp
				// (and code copied from it) runs "scp -qt PATH".
			default:
				return nil, fmt.Errorf("%w -- %c", errUnknownOption, o)
			}
		}
	}
	c.Paths = ws[i:]
	switch {
	case c.Sink && c.Source:
		return nil, errBothDirections
	case !c.Sink && !c.Source:
		return nil, errNoDirection
	case len(c.Paths) == 0:
		return nil, errNoPaths
	case c.Sink && len(c.Paths) > 1:
		return nil, errAmbiguousTarget
	}
	return c, nil
}
