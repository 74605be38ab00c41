package sftp

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// requestKind is one request that Options.Requests can refuse, under the
// name OpenSSH's sftp-server gives it in its -p and -P lists and prints
// for -Q requests.
type requestKind struct {
	name string
	typ  byte   // packet type
	ext  string // for fxpExtended: the extension request name
}

// requestKinds lists every request ferry serves, in the order of
// OpenSSH's handler tables (so RequestNames prints what `sftp-server -Q
// requests` prints): the draft-02 §6 packets, then the OpenSSH PROTOCOL §4
// extensions and copy-data. INIT is not here: it is answered before any
// list applies, and OpenSSH cannot refuse it either. A request type or
// extension added to the server must be added here, or no list can
// refuse it (TestRequestKindsCoverServer checks this).
var requestKinds = [...]requestKind{
	{"open", fxpOpen, ""},
	{"close", fxpClose, ""},
	{"read", fxpRead, ""},
	{"write", fxpWrite, ""},
	{"lstat", fxpLstat, ""},
	{"fstat", fxpFstat, ""},
	{"setstat", fxpSetstat, ""},
	{"fsetstat", fxpFsetstat, ""},
	{"opendir", fxpOpendir, ""},
	{"readdir", fxpReaddir, ""},
	{"remove", fxpRemove, ""},
	{"mkdir", fxpMkdir, ""},
	{"rmdir", fxpRmdir, ""},
	{"realpath", fxpRealpath, ""},
	{"stat", fxpStat, ""},
	{"rename", fxpRename, ""},
	{"readlink", fxpReadlink, ""},
	{"symlink", fxpSymlink, ""},
	{"posix-rename", fxpExtended, "posix-rename@openssh.com"},
	{"statvfs", fxpExtended, "statvfs@openssh.com"},
	{"fstatvfs", fxpExtended, "fstatvfs@openssh.com"},
	{"hardlink", fxpExtended, "hardlink@openssh.com"},
	{"fsync", fxpExtended, "fsync@openssh.com"},
	{"lsetstat", fxpExtended, "lsetstat@openssh.com"},
	{"limits", fxpExtended, "limits@openssh.com"},
	{"expand-path", fxpExtended, "expand-path@openssh.com"},
	{"copy-data", fxpExtended, "copy-data"},
	{"home-directory", fxpExtended, "home-directory"},
	{"users-groups-by-id", fxpExtended, "users-groups-by-id@openssh.com"},
}

// writeExtensions are the extensions that change files; a read-only
// session leaves them out of VERSION, as sftp-server -R does, so clients
// do not offer what would be refused.
var writeExtensions = [...]string{"posix-rename@openssh.com", "hardlink@openssh.com", "fsync@openssh.com", "lsetstat@openssh.com", "copy-data"}

// requestSet is a set of indexes into requestKinds.
type requestSet uint64

// Every kind needs a bit in a requestSet.
var _ [64 - len(requestKinds)]struct{}

// RequestNames returns the names Options.Requests takes, in the order
// OpenSSH's `sftp-server -Q requests` prints them.
func RequestNames() []string {
	names := make([]string, len(requestKinds))
	for i, k := range requestKinds {
		names[i] = k.name
	}
	return names
}

// RequestFilter refuses requests by name, as the -P (denied) and -p
// (allowed) lists of OpenSSH's sftp-server do: a request named by Deny is
// refused; otherwise, once Allow has been called, a request it did not
// name is refused. Deny wins over Allow. A refused request is answered
// SSH_FX_PERMISSION_DENIED before it is parsed or run, and an extension
// that would be refused is left out of VERSION, as OpenSSH does, so
// clients fall back (rename without posix-rename) or report it missing.
// Requests ferry does not know are answered OP_UNSUPPORTED whatever the
// lists say, and INIT is never refused.
//
// The zero value refuses nothing. Options carries a RequestFilter by
// value, so changing one after NewServer does not affect that Server.
type RequestFilter struct {
	denied    requestSet
	allowed   requestSet
	allowList bool // Allow was called: only allowed requests are served
}

// Deny adds names to the requests refused.
//
// A name that is not one of RequestNames is an error and nothing is
// added. OpenSSH's sftp-server instead accepts any name in its lists, so
// a misspelt -P entry there silently leaves the request served; the error
// lets ferry sftp-server refuse to start rather than serve what the list
// meant to deny.
func (f *RequestFilter) Deny(names ...string) error {
	s, err := parseRequestNames(names)
	if err != nil {
		return err
	}
	f.denied |= s
	return nil
}

// Allow adds names to the requests allowed and makes the list binding:
// from then on every request not allowed is refused, so Allow() with no
// names refuses every request (OpenSSH's -p ""). Unknown names are an
// error, as for Deny.
func (f *RequestFilter) Allow(names ...string) error {
	s, err := parseRequestNames(names)
	if err != nil {
		return err
	}
	f.allowed |= s
	f.allowList = true
	return nil
}

func parseRequestNames(names []string) (requestSet, error) {
	var s requestSet
	for _, n := range names {
		i := requestIndexByName(n)
		if i < 0 {
			return 0, fmt.Errorf("sftp: unknown request %q", n)
		}
		s |= 1 << i
	}
	return s, nil
}

func requestIndexByName(name string) int {
	for i, k := range requestKinds {
		if k.name == name {
			return i
		}
	}
	return -1
}

// restricts reports whether f can refuse anything, so a session without
// lists never looks a request up.
func (f *RequestFilter) restricts() bool { return f.denied != 0 || f.allowList }

// permits reports whether requestKinds[i] is served.
func (f *RequestFilter) permits(i int) bool {
	bit := requestSet(1) << i
	if f.denied&bit != 0 {
		return false
	}
	return !f.allowList || f.allowed&bit != 0
}

// advertised returns exts without the extensions the request lists
// refuse: OpenSSH leaves them out of VERSION, and clients then fall back
// (rename without posix-rename) or say the server lacks them instead of
// sending a request bound to be refused.
func (s *session) advertised(exts []extensionPair) []extensionPair {
	f := &s.srv.opts.Requests
	readOnly := s.srv.opts.ReadOnly
	if !f.restricts() && !readOnly {
		return exts
	}
	return slices.DeleteFunc(exts, func(e extensionPair) bool {
		if readOnly && slices.Contains(writeExtensions[:], e.Name) {
			// As sftp-server -R, which refuses them anyway.
			return true
		}
		for i, k := range requestKinds {
			if k.typ == fxpExtended && k.ext == e.Name && !f.permits(i) {
				s.log.Debug("sftp: refusing request: extension not advertised", "request", k.name, "extension", e.Name)
				return true
			}
		}
		return false
	})
}

// requestIndex returns the requestKinds index of request packet p (type
// byte onwards), or -1 for a type or extension ferry does not serve, or
// an EXTENDED whose name cannot be read: those go on to the handlers,
// which answer OP_UNSUPPORTED or BAD_MESSAGE as without lists. Only the
// type and, for EXTENDED, the name are read, so a refused request is
// refused whatever its body holds, as in OpenSSH.
func requestIndex(p []byte) int {
	t := p[0]
	if t != fxpExtended {
		for i, k := range requestKinds {
			if k.typ == t {
				return i
			}
		}
		return -1
	}
	if len(p) < 9 {
		return -1
	}
	n := binary.BigEndian.Uint32(p[5:9])
	if uint64(n) > uint64(len(p)-9) {
		return -1
	}
	name := p[9 : 9+n]
	for i, k := range requestKinds {
		if k.typ == fxpExtended && string(name) == k.ext {
			return i
		}
	}
	return -1
}

// refused answers p with PERMISSION_DENIED and reports true if the
// session's request lists refuse it. It owns b when it returns true.
func (s *session) refused(b *buffer) bool {
	f := &s.srv.opts.Requests
	if !f.restricts() {
		return false
	}
	p := b.b
	i := requestIndex(p)
	if i < 0 || f.permits(i) {
		return false
	}
	id := binary.BigEndian.Uint32(p[1:5])
	s.log.Info("sftp: refusing request", "request", requestKinds[i].name, "id", id)
	switch p[0] {
	case fxpRead, fxpWrite:
		// Data replies leave in request order (see session.reorder).
		seq := s.assignSeq()
		var m writeReq
		if p[0] == fxpWrite && m.unmarshal(p) {
			// A handle that saw a failed WRITE keeps the previous
			// version of the file on CLOSE; a refused one is no different.
			if h := s.lookup(m.Handle); h != nil {
				h.writeFailed.Store(true)
			}
		}
		s.srv.putBuf(b)
		s.statusSeq(seq, id, StatusPermissionDenied, "")
	default:
		s.srv.putBuf(b)
		s.barrier()
		s.sendStatus(id, StatusPermissionDenied, "")
	}
	return true
}
