// Package scp is ferry's server side of the classic rcp/scp protocol: the
// program an SSH client runs with exec "scp -t PATH" (sink: the client
// uploads) or "scp -f PATH..." (source: the client downloads), as
// OpenSSH's scp -O, PuTTY's pscp -scp, libssh2 (curl scp://) and go-scp
// speak it. The protocol has no RFC; the reference is OpenSSH's scp.c
// (source, rsource, sink, response). WinSCP's SCP mode is not served: it
// runs its commands through an interactive shell.
//
// Everything runs over a vfs.FS; no system scp is ever started. The
// command line arrives as the client's shell-quoted text and is split
// with SplitWords (quotes and backslashes, no expansion but "~" and, in
// source mode, "*", "?" and "[...]" patterns matched inside the FS).
//
// The rules are SFTP's (package sftp): Options carries sftp.Permissions
// and sftp.Quota, and uploads are atomic by default — data goes to a
// hidden temporary file in the target directory (the same
// ".ferry-upload-<random>" form sftp hides from listings and reaps when
// stale), which is renamed over the target only when the whole file
// arrived; an aborted transfer leaves the previous file as it was.
package scp

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

// Options configure a Server. The zero value serves read-write with
// atomic uploads, like sftp.Options.
type Options struct {
	ReadOnly bool
	// Permissions are SFTP's: NoDownload refuses source mode,
	// NoOverwrite refuses replacing an existing file. NoDelete and
	// NoSymlinks have nothing to refuse in scp, which neither deletes
	// nor creates links; NoChmod keeps existing modes even with -p.
	Permissions sftp.Permissions
	Quota       sftp.Quota // nil: unlimited
	// QuotaLock is the account's, shared with its SFTP sessions (see
	// sftp.QuotaLock): a truncate or replace here must be seen by their
	// open handles. Nil: one of this Server's own.
	QuotaLock *sftp.QuotaLock
	// DirectUploads writes files in place (truncating the target) as
	// OpenSSH's scp does, instead of atomically.
	DirectUploads bool
	// Umask is cleared from the mode of files and directories created
	// without -p (with -p the sent mode is kept, as scp.c does).
	Umask fs.FileMode
	// Home is where relative paths start (default "/").
	Home   string
	User   string
	Logger *slog.Logger
	// TransferLog, if set, is called once per file sent or received.
	TransferLog func(sftp.TransferRecord)
	// ReadLimit and WriteLimit are the bytes per second a session may
	// send (scp -f, downloads) and receive (scp -t, uploads) of file
	// data, as sftp.Options' are; 0 is unlimited.
	ReadLimit, WriteLimit int64
}

// bufSize is the copy buffer: two SSH channel packets of OpenSSH's
// default 32 KiB, so each read or write of the file moves a useful amount.
const bufSize = 64 << 10

// maxDepth bounds directory recursion both ways. A client can nest D
// records without end, and in source mode a symbolic link to a parent
// directory makes a loop (scp.c follows links and stops only at
// ENAMETOOLONG). vfs.Local resolves every path component by component, so
// the work per record grows with depth and a whole tree with its square;
// 256 levels is deeper than real trees (the Linux kernel source reaches
// about 12) and keeps a malicious nesting to a fraction of a second. In
// source mode each level also holds one open directory.
const maxDepth = 256

// maxGlobMatches bounds the names one pattern expands to, and
// maxGlobScan the directory entries read while expanding it, so a
// pattern over a huge directory tree cannot hold the session forever or
// grow memory without end. ARG_MAX-sized expansions (a few 100k names)
// are where a real shell would fail too.
const (
	maxGlobMatches = 100000
	maxGlobScan    = 1000000
)

// readDirBatch is how many directory entries are read at once in
// recursive source mode; directories are streamed, not loaded whole.
const readDirBatch = 256

// tempPrefix and tempRandLen must equal sftp's: temporary uploads of both
// protocols then look alike, and sftp hides them and reaps stale ones.
const (
	tempPrefix  = ".ferry-upload-"
	tempRandLen = 26
)

// Server serves scp commands over one vfs.FS. A Server may run many
// sessions at once; it holds the pool of copy buffers they share.
type Server struct {
	fs   vfs.FS
	opts Options
	log  *slog.Logger
	pool sync.Pool
}

// NewServer returns a Server for fsys. opts may be nil.
func NewServer(fsys vfs.FS, opts *Options) *Server {
	s := &Server{fs: fsys}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Home == "" {
		s.opts.Home = "/"
	}
	s.opts.Home = vfs.Clean(s.opts.Home)
	if s.opts.QuotaLock == nil {
		s.opts.QuotaLock = new(sftp.QuotaLock)
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.pool.New = func() any { b := make([]byte, bufSize); return &b }
	return s
}

// ServeSSH makes a Server a server.Handler: it runs the session's exec
// command (the forced command, if any) as scp and exits with its status.
// The caller routes only commands for which IsSCPCommand is true.
func (srv *Server) ServeSSH(s *server.Session) {
	s.Exit(srv.Serve(s.Context(), s.Command(), s, s.Stderr()))
}

// Serve runs one scp command with a new Server; see (*Server).Serve.
func Serve(ctx context.Context, fsys vfs.FS, cmd string, rw io.ReadWriter, stderr io.Writer, opts *Options) (exitStatus int) {
	return NewServer(fsys, opts).Serve(ctx, cmd, rw, stderr)
}

// Serve parses cmd (see ParseCommand) and runs it: the client's stream is
// read from and the protocol written to rw; usage errors go to stderr.
// It returns the exit status to report: 0 when every file went through,
// 1 otherwise (scp.c: exit(errs != 0)). Cancelling ctx ends the transfer
// between records and blocks; to interrupt a blocked read, close rw.
func (srv *Server) Serve(ctx context.Context, cmd string, rw io.ReadWriter, stderr io.Writer) (exitStatus int) {
	c, err := ParseCommand(cmd)
	if errors.Is(err, errAmbiguousTarget) {
		// scp.c's sink reports it on the protocol stream (run_err), where
		// the client shows it as the reason; on stderr alone the client
		// also printed "lost connection" for the stream ending unanswered.
		fmt.Fprintf(rw, "%cscp: %v\n", respWarning, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "scp: %v\n", err)
		return 1
	}
	s := &session{
		srv: srv, fs: srv.fs, ctx: ctx, cmd: c,
		r: bufio.NewReaderSize(rw, maxLine), w: rw,
		log: srv.log.With("user", srv.opts.User),
	}
	if c.Sink {
		s.limit = sftp.NewRateLimiter(srv.opts.WriteLimit)
	} else {
		s.limit = sftp.NewRateLimiter(srv.opts.ReadLimit)
	}
	bp := srv.pool.Get().(*[]byte)
	s.buf = *bp
	defer srv.pool.Put(bp)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("scp: panic", "panic", p, "stack", string(debug.Stack()))
			exitStatus = 1
		}
	}()
	var fatal error
	if c.Sink {
		fatal = s.runSink()
	} else {
		fatal = s.runSource()
	}
	if fatal != nil {
		s.log.Debug("scp: session ended", "err", fatal)
		return 1
	}
	if s.errs > 0 {
		return 1
	}
	return 0
}

type session struct {
	srv  *Server
	fs   vfs.FS
	ctx  context.Context
	cmd  *Command
	r    *bufio.Reader
	w    io.Writer
	log  *slog.Logger
	buf  []byte
	errs int
	// limit throttles file data: downloads in source mode, uploads in
	// sink mode (Options.ReadLimit, WriteLimit); nil when unlimited.
	limit *sftp.RateLimiter
	// refuse, when set, is why every record of a sink session is
	// refused: its -d target is not a directory.
	refuse string
	// notDir, when set, refuses the records of a sink session whose
	// target was typed as a directory and is not one.
	notDir *notDirError
}

// fatalError marks an error after which the session ends (scp.c's exit
// paths); the peer has been told with a fatal response where possible.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// errPeerGone ends a session whose client closed its side.
var errPeerGone = errors.New("lost connection")

func (s *session) resolve(p string, home bool) string {
	if home {
		return vfs.Clean(s.srv.opts.Home + "/" + p)
	}
	if !strings.HasPrefix(p, "/") {
		p = s.srv.opts.Home + "/" + p
	}
	return vfs.Clean(p)
}

// warn sends a non-fatal error line (scp.c run_err) and counts it.
func (s *session) warn(format string, args ...any) error {
	s.errs++
	return s.sendLine(respWarning, fmt.Sprintf(format, args...))
}

// fatal sends a fatal error line; the caller then ends the session.
func (s *session) fatal(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	s.sendLine(respFatal, msg)
	return &fatalError{errors.New(msg)}
}

func (s *session) sendLine(kind byte, msg string) error {
	// One line: a newline inside would end the message early and the
	// rest would be taken for a record.
	msg = strings.ReplaceAll(msg, "\n", "?")
	if limit := maxLine - 16; len(msg) > limit {
		// The peer reads at most maxLine bytes (scp.c response()). The
		// middle of the path goes, not the end: that is the reason.
		head, tail := limit/2-2, limit/2-2
		for head > 0 && !utf8.RuneStart(msg[head]) {
			head--
		}
		tailStart := len(msg) - tail
		for tailStart < len(msg) && !utf8.RuneStart(msg[tailStart]) {
			tailStart++
		}
		msg = msg[:head] + "..." + msg[tailStart:]
	}
	b := append([]byte{kind}, "scp: "...)
	b = append(b, msg...)
	b = append(b, '\n')
	_, err := s.w.Write(b)
	return err
}

func (s *session) ack() error {
	_, err := s.w.Write([]byte{respOK})
	return err
}

// readLine reads one record without its newline. io.EOF at a record
// boundary is returned as is (the normal end of a sink session).
func (s *session) readLine() (string, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", s.fatal("protocol error: record too long")
	}
	if err != nil {
		if err == io.EOF && len(line) == 0 {
			return "", io.EOF
		}
		return "", errPeerGone
	}
	return string(line[:len(line)-1]), nil
}

// response reads the peer's answer to a record or to data (scp.c
// response()): nil for OK, a *peerError for a warning, a *fatalError for
// a fatal message or a broken stream.
func (s *session) response() error {
	c, err := s.r.ReadByte()
	if err != nil {
		return errPeerGone
	}
	switch c {
	case respOK:
		return nil
	case respWarning, respFatal:
		msg, err := s.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return errPeerGone
		}
		if err == bufio.ErrBufferFull {
			// Drop the rest of an overlong message.
			for err == bufio.ErrBufferFull {
				_, err = s.r.ReadSlice('\n')
			}
			if err != nil {
				return errPeerGone
			}
		}
		// The peer's refusal makes this side's exit status 1 as well
		// (scp.c response(): ++errs), so that "scp -f" reports the file
		// that did not arrive to whoever reads the status.
		s.errs++
		pe := &peerError{fatal: c == respFatal, msg: strings.TrimSuffix(string(msg), "\n")}
		if pe.fatal {
			return &fatalError{pe}
		}
		return pe
	default:
		// scp.c accepts any other byte as the first of a message; a
		// client that sends one is not speaking the protocol.
		return &fatalError{errors.New("protocol error: bad response byte")}
	}
}

type peerError struct {
	fatal bool
	msg   string
}

func (e *peerError) Error() string { return "peer: " + e.msg }

func isFatal(err error) bool {
	var fe *fatalError
	return errors.As(err, &fe) || errors.Is(err, errPeerGone)
}

// errText is how scp.c reports an errno: strerror's text, never a host
// path (vfs errors name client paths only, but the message is rebuilt
// here so nothing else leaks).
func errText(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, vfs.ErrEscape), errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, fs.ErrExist):
		return "File exists"
	case errors.Is(err, errQuota):
		return "Disk quota exceeded"
	case errors.Is(err, errIsDir), errors.Is(err, errNotRegular):
		return err.Error()
	case errors.As(err, &errno):
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return "Failure"
}

var errQuota = errors.New("quota exceeded")

func tempName(target string) string {
	return path.Join(path.Dir(target), tempPrefix+rand.Text())
}

// isTemp reports sftp's temporary upload name form; such names are
// reserved (see package sftp) and never sent or written by clients.
func isTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok || len(rest) != tempRandLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

func (s *session) record(p string, upload bool, read, written int64, start time.Time, result string) {
	if t := s.srv.opts.TransferLog; t != nil {
		t(sftp.TransferRecord{User: s.srv.opts.User, Path: p, BytesRead: read, BytesWritten: written, Upload: upload,
			Start: start, Duration: time.Since(start), Result: result})
	}
}

// sortedNames is used for glob results, which sh sorts.
func sortedNames(n []string) []string { sort.Strings(n); return n }
