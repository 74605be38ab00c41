// Package sftp is ferry's SFTP server: draft-ietf-secsh-filexfer-02
// (protocol version 3) as OpenSSH's sftp-server speaks it, including its
// extensions (OpenSSH PROTOCOL §4: posix-rename, statvfs, fstatvfs,
// hardlink, fsync, lsetstat, limits, expand-path, copy-data,
// home-directory, users-groups-by-id), over any vfs.FS.
//
// A Server runs over a plain reader/writer pair: an SSH "sftp" subsystem
// channel or, stand-alone, stdin/stdout. Requests are pipelined: READ and
// WRITE run concurrently on up to Options.Workers workers with pread/pwrite,
// ordered only where they conflict (same file, through one handle or two,
// a read and a write, or overlapping writes, or any append); every other
// request waits for the data requests before it and runs alone, in
// arrival order. The number of requests in flight is bounded, and when it
// is reached the server stops reading, so the SSH window pushes back on
// the client.
//
// An idle session costs one goroutine and no buffers (issue 8: a hosting
// server holds thousands of idle sessions): workers and the reply writer
// start when requests arrive and leave after workerLinger without work,
// and the input and output batch buffers go back to a Server-wide pool
// whenever they are empty.
//
// Path view: "/" is whatever the vfs.FS calls "/" (for vfs.Local, the
// user's home). Relative paths are taken relative to Options.Home, so
// REALPATH "." answers Options.Home (default "/").
//
// Uploads are atomic by default: a file created or truncated by OPEN is
// written to a hidden temporary file (".ferry-upload-<random>") in the
// same directory, fsynced and renamed over the target on CLOSE. A
// connection that ends without CLOSE (unless
// Options.KeepInterruptedUploads keeps what arrived), or a handle that
// saw a failed WRITE, leaves the previous version untouched and removes
// the temporary file. OPEN without TRUNC of an existing file (resume,
// append) writes in place, so reput/reget work, and OPEN with EXCL
// creates the target itself, so that it is exclusive. Temporary files
// are left out of READDIR.
package sftp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-sftp/ferry/vfs"
)

// Quota is an account's storage allowance, implemented by the account
// store. Reserve must be atomic (it may run concurrently for one account
// across sessions) and fail with an error wrapping ErrQuotaExceeded when
// the account would go over; any other error means the charge could not
// be recorded (the store is down or locked), and the request fails as the
// server's fault, not as a full quota. Release gives back what a removed,
// truncated or abandoned file held.
type Quota interface {
	Reserve(ctx context.Context, bytes, files int64) error
	Release(ctx context.Context, bytes, files int64)
}

// QuotaLock orders an account's writes against the operations that shrink
// or unlink its files, in every session of the account. A write is
// charged for the bytes it adds past the file's end; a truncate, REMOVE or
// replacing rename releases what the file held. Without an order between
// them an account could release a file's size, then write it back through
// a handle that still believes the file is that long, and be charged
// nothing (or, racing, charge 0 just before the release). So writes hold
// the read lock from deciding the charge until the data is written, and
// shrinking operations hold the write lock across the stat that measures
// the file, the change and the release; each shrink bumps a generation
// that tells open handles to measure their file again before the next
// charge (an fstat only after a shrink, so the upload path stays free of
// allocations).
//
// One QuotaLock must be shared by every session of an account (the
// account store's counters are): see Options.QuotaLock.
type QuotaLock struct {
	mu      sync.RWMutex
	shrinks atomic.Uint64

	// charges holds the charge of each file written in place through
	// more than zero handles, so that handles of any session of the
	// account writing one file share what it is charged for (see
	// fileCharge).
	chargesMu sync.Mutex
	charges   map[fileID]*fileCharge
}

// fileID names one file whatever its names: its device and inode.
type fileID struct{ dev, ino uint64 }

// fileCharge is a file's size as charged to the quota. Handles that write
// a file in place share one (QuotaLock.attach): each used to count from
// its own idea of the file's end, so a second handle writing a range the
// first had written (two resumed uploads of one file, a client's parallel
// chunks with atomic uploads off) was charged for it again, until a
// recount.
type fileCharge struct {
	// mu guards the rest. shrinks is the QuotaLock generation size was
	// measured in: after a shrink elsewhere the file may be shorter than
	// size says.
	mu      sync.Mutex
	size    int64
	shrinks uint64
	// orphanCharged is what was charged for the file while it had no
	// name left (removed or renamed over while open, measured at the
	// last shrink): REMOVE released the file as it stood, and no later
	// REMOVE can release what a write or truncate added since, so the
	// last CLOSE gives it back.
	orphan        bool
	orphanCharged int64
	// writing counts the charged writes in flight and shortWrite notes
	// that one of them failed (see settleWrite).
	writing    int
	shortWrite bool

	// id and refs (the handles sharing it) are under
	// QuotaLock.chargesMu; refs is 0 for a charge of one handle's own.
	id   fileID
	refs int
}

// attach makes h share the charge of the file it has open with the
// account's other handles on it, or registers h's own charge as the
// file's. A file that cannot be identified keeps a charge of its own.
func (l *QuotaLock) attach(h *handle) {
	fi, err := h.f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	dev, ino, ok := vfs.FileID(fi)
	if !ok {
		return
	}
	id := fileID{dev, ino}
	l.chargesMu.Lock()
	defer l.chargesMu.Unlock()
	if c := l.charges[id]; c != nil {
		c.refs++
		h.c = c
		return
	}
	if l.charges == nil {
		l.charges = make(map[fileID]*fileCharge)
	}
	h.own.id, h.own.refs = id, 1
	l.charges[id] = &h.own
}

// detach ends h's share of its file's charge and reports whether it was
// the last handle on it (or the charge was its own).
func (l *QuotaLock) detach(h *handle) (last bool) {
	c := h.c
	l.chargesMu.Lock()
	defer l.chargesMu.Unlock()
	if c.refs == 0 {
		return true
	}
	c.refs--
	if c.refs > 0 {
		return false
	}
	delete(l.charges, c.id)
	return true
}

// Shrink takes the write lock for an operation that may shrink, unlink
// or replace an account's files (truncate, remove, rename over); the
// returned function bumps the generation and unlocks. Other protocols
// serving the account (scp) call it around measuring the file, changing
// it and releasing its quota.
func (l *QuotaLock) Shrink() (done func()) {
	l.mu.Lock()
	return l.unlockShrink
}

// Write runs write under the read lock, as SFTP's own charged writes do,
// for other protocols writing an account's files in place (scp). When a
// shrink ran since *seen (zero before the first call), resync runs first,
// still under the lock, to measure the file again and charge what a
// truncate or removal released from under the writer; *seen is updated.
func (l *QuotaLock) Write(seen *uint64, resync func() error, write func() error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if g := l.shrinks.Load(); g != *seen {
		if err := resync(); err != nil {
			return err
		}
		*seen = g
	}
	return write()
}

func (l *QuotaLock) unlockShrink() {
	l.shrinks.Add(1)
	l.mu.Unlock()
}

// Permissions restrict what a session may do beyond Options.ReadOnly.
// Each denied request is answered SSH_FX_PERMISSION_DENIED.
type Permissions struct {
	NoDownload  bool // upload-only: OPEN for reading is refused (listing is allowed)
	NoDelete    bool // REMOVE and RMDIR are refused
	NoOverwrite bool // writing to an existing file, or renaming over one, is refused
	NoSymlinks  bool // SYMLINK and hardlink@openssh.com are refused
	NoChmod     bool // changing permissions or ownership is refused
}

// TransferRecord describes one file handle after it was closed.
type TransferRecord struct {
	User         string
	Path         string
	BytesRead    int64
	BytesWritten int64
	Start        time.Time
	Duration     time.Duration
	// Upload is true when the file was opened for writing: an upload,
	// even one that moved no bytes (an empty file, or one whose writes
	// all failed).
	Upload bool
	// Result is "ok", "aborted" (connection ended without CLOSE; an
	// atomic upload was discarded) or "failed: <reason>".
	Result string
}

// Options configure a Server. The zero value serves read-write with
// atomic uploads and the defaults below.
type Options struct {
	ReadOnly    bool
	Permissions Permissions
	Quota       Quota // nil: unlimited
	// QuotaLock orders writes against truncates and removals (see
	// QuotaLock). Every Server serving one account must share one, or
	// two sessions of the account can race a shrink against a write and
	// escape the quota. Nil: a QuotaLock of this Server's own.
	QuotaLock *QuotaLock
	// DirectUploads turns atomic uploads off: OPEN with TRUNC writes the
	// target in place, as OpenSSH's sftp-server does.
	DirectUploads bool
	// KeepInterruptedUploads renames an atomic upload into place with
	// what arrived when its session ends without CLOSE (the connection
	// dropped, the server stopped), as an in-place upload would have
	// left it, so that the client can resume it. Clients resume by
	// appending to what the server holds: FileZilla retries an
	// interrupted upload as a resume on its own (the size from FSTAT),
	// OpenSSH's sftp reput from the size STAT gives. With the previous
	// version kept they appended the rest of the new file to the old
	// one and reported success. An upload a write failed for (quota,
	// disk full) is still discarded: the client was told. So is one
	// whose target changed since its OPEN (another session uploaded,
	// wrote or removed it: that file is newer), and one under
	// Permissions.NoOverwrite, which could be neither resumed nor
	// replaced.
	KeepInterruptedUploads bool
	// Umask is cleared from the mode of files and directories created.
	Umask fs.FileMode
	// MaxHandles bounds the files and directories open at once
	// (default DefaultMaxHandles).
	MaxHandles int
	// MaxReadLen caps the data in one READ reply (default and maximum
	// 261120, OpenSSH's SFTP_MAX_READ_LENGTH).
	MaxReadLen int
	// Workers is the most concurrent READ/WRITE workers per session
	// (default DefaultWorkers). They start on demand.
	Workers     int
	Logger      *slog.Logger
	TransferLog func(TransferRecord)
	// User names the account in logs and is the user whose home
	// expand-path@openssh.com and home-directory resolve.
	User string
	// Home is the directory relative paths start from and REALPATH "."
	// returns (default "/").
	Home string
	// Requests refuses requests by name, as OpenSSH sftp-server's -P and
	// -p lists do. The zero value refuses none.
	Requests RequestFilter
	// ReadLimit and WriteLimit are bytes per second the session's READs
	// (downloads) and WRITEs (uploads) may move, across all its handles;
	// 0 is unlimited. A throttled request's reply waits.
	ReadLimit, WriteLimit int64
	// ClientVersion is the client's SSH identification string
	// (server.Conn.ClientVersion), "" when unknown. SYMLINK's paths are
	// read in the order that client sends them (see linkPathFirst).
	ClientVersion string
}

// linkPathFirst reports whether a client sends SYMLINK's paths in
// draft-02 §6.10's order, link path first, to a server whose
// identification string does not start "OpenSSH", as ferry's does not.
// OpenSSH's sftp-server reads them reversed (OpenSSH PROTOCOL §4.1), and
// ferry with it; WinSCP (SftpFileSystem.cpp CreateLink) and libssh
// (sftp_symlink) send that order only to a server named OpenSSH. libssh2
// ("SSH-2.0-libssh2_...") always sends OpenSSH's order.
func linkPathFirst(clientVersion string) bool {
	for _, prefix := range []string{"SSH-2.0-WinSCP_", "SSH-2.0-libssh_", "SSH-2.0-libssh-"} {
		if strings.HasPrefix(clientVersion, prefix) {
			return true
		}
	}
	return false
}

// DefaultMaxHandles is the default Options.MaxHandles: plenty for any
// client's parallel transfers (OpenSSH's sftp keeps at most a few open),
// small enough that one session cannot exhaust the server's descriptors.
const DefaultMaxHandles = 256

// DefaultWorkers is the default Options.Workers: enough concurrent
// pread/pwrite to keep a disk queue busy, few enough to bound goroutines.
const DefaultWorkers = 8

// workerLinger is how long a worker or the reply writer waits for more
// work before it exits. Within a transfer the gap between requests is a
// round trip (clients keep up to 64 requests outstanding), far below a
// second; an idle session sheds its goroutines and their stacks a second
// after its last request, and a steady transfer never restarts them, so
// the data path stays free of allocations.
const workerLinger = time.Second

// maxInFlight bounds the READ/WRITE requests accepted but not answered in
// one session. OpenSSH's sftp keeps 64 outstanding by default (-R 64);
// beyond it the server stops reading and the SSH window pushes back. With
// 256 KiB requests it bounds a session's buffers to 64 x 256 KiB.
const maxInFlight = 64

// maxReaddirEntries is how many names one READDIR reply carries, as
// OpenSSH's sftp-server sends.
const maxReaddirEntries = 100

// maxNameCache bounds the uid/gid to name caches used for long names.
const maxNameCache = 1024

// tempPrefix starts the name of an atomic upload's temporary file.
const tempPrefix = ".ferry-upload-"

// staleTempAge is how long after its last write a temporary upload is
// taken as abandoned by a crashed server and removed when its directory
// is listed. A live upload writes every few seconds at worst; a day
// leaves room for a client stalled by a suspended laptop.
const staleTempAge = 24 * time.Hour

// readBatch is the input buffer: it gathers small requests into one
// read, while WRITE payloads larger than it are read straight into their
// packet buffers (bufio skips its buffer for large reads).
const readBatch = 8 << 10

// writeBatch gathers small replies (STATUS, HANDLE, ATTRS) into one write;
// replies of directWrite bytes or more are written without copying.
const (
	writeBatch  = 16 << 10
	directWrite = 4 << 10
)

// Buffer size classes: small replies and requests, 32 KiB transfers
// (OpenSSH's default), and the largest packet.
const (
	smallBuf  = 4 << 10
	mediumBuf = 32<<10 + 64
	largeBuf  = maxPacket + 64
)

// ErrQuotaExceeded is Quota.Reserve's refusal of a charge that would put
// the account over its quota.
var ErrQuotaExceeded = errors.New("quota exceeded")

// errQuota is answered SSH_FX_FAILURE "quota exceeded": SFTP v3 has no
// quota code, and clients print the message.
var errQuota = ErrQuotaExceeded

// reserve charges the quota. A refusal comes back as errQuota; a store
// that could not record the charge is logged (a customer told "quota
// exceeded" while the database was locked or restarting asked for more
// space) and answered as a plain failure.
func (s *session) reserve(path string, bytes, files int64) error {
	err := s.srv.opts.Quota.Reserve(s.ctx, bytes, files)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrQuotaExceeded):
		s.log.Debug("sftp: quota refused a charge", "path", path, "bytes", bytes, "files", files)
		return errQuota
	}
	// Once per session: every WRITE a pipelining client has in flight
	// fails alike.
	level := slog.LevelDebug
	if !s.quotaStoreFailed.Swap(true) {
		level = slog.LevelWarn
	}
	s.log.Log(s.ctx, level, "sftp: quota usage could not be recorded; request refused", "path", path, "err", err)
	return errQuotaStore
}

// errQuotaStore is answered SSH_FX_FAILURE "Failure".
var errQuotaStore = errors.New("quota usage could not be recorded")

// errUploadDiscarded answers CLOSE of an atomic upload that saw a failed
// WRITE: the temporary file is removed and the target left as it was.
var errUploadDiscarded = errors.New("upload failed; previous version kept")

// errPacketTooLong ends a session whose client sent more than maxPacket.
var errPacketTooLong = errors.New("sftp: packet longer than 256 KiB")

// Server serves SFTP sessions over one vfs.FS. It is safe to run many
// sessions at once.
type Server struct {
	fs   vfs.FS
	opts Options
	log  *slog.Logger

	openHandles atomic.Int64 // across its sessions (OpenHandles)
}

// OpenHandles is how many files and directories the server's sessions
// hold open. A server shutting down can end a session with none at once
// (a client idling between transfers, as FileZilla keeps its connection),
// while one with a file open may be in the middle of a transfer.
func (srv *Server) OpenHandles() int { return int(srv.openHandles.Load()) }

// NewServer returns a Server for fsys. opts may be nil.
func NewServer(fsys vfs.FS, opts *Options) *Server {
	s := &Server{fs: fsys}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxHandles <= 0 {
		s.opts.MaxHandles = DefaultMaxHandles
	}
	if s.opts.MaxReadLen <= 0 || s.opts.MaxReadLen > maxReadLength {
		s.opts.MaxReadLen = maxReadLength
	}
	if s.opts.Workers <= 0 {
		s.opts.Workers = DefaultWorkers
	}
	if s.opts.Home == "" {
		s.opts.Home = "/"
	}
	s.opts.Home = path.Clean("/" + s.opts.Home)
	if s.opts.QuotaLock == nil {
		s.opts.QuotaLock = new(QuotaLock)
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// buffer is a pooled packet buffer; pointers go through sync.Pool and
// channels without allocating.
type buffer struct{ b []byte }

// Buffer pools shared by every Server in the process: a daemon makes a
// Server per session (options are per account), and pools per Server gave
// every short session fresh buffers (about 40 KiB per login). They are
// caches, not state: which buffer a request gets never changes the
// reply.
var (
	bufPools = [3]sync.Pool{ // by size class: smallBuf, mediumBuf, largeBuf
		{New: func() any { return &buffer{b: make([]byte, 0, smallBuf)} }},
		{New: func() any { return &buffer{b: make([]byte, 0, mediumBuf)} }},
		{New: func() any { return &buffer{b: make([]byte, 0, largeBuf)} }},
	}
	// batchReaders and batchWriters hold the batch buffers of sessions
	// that have gone idle, so an idle session holds neither.
	batchReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBatch) }}
	batchWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBatch) }}
)

func (s *Server) getBuf(n int) *buffer {
	i := 0
	switch {
	case n > largeBuf:
		return &buffer{b: make([]byte, 0, n)}
	case n > mediumBuf:
		i = 2
	case n > smallBuf:
		i = 1
	}
	return bufPools[i].Get().(*buffer)
}

func (s *Server) putBuf(b *buffer) {
	c := cap(b.b)
	b.b = b.b[:0]
	switch {
	case c > 4*largeBuf:
		// Grown far past every class (a huge NAME reply): let it go.
	case c >= largeBuf:
		bufPools[2].Put(b)
	case c >= mediumBuf:
		bufPools[1].Put(b)
	case c >= smallBuf:
		bufPools[0].Put(b)
	}
}

// handle is an open file or directory.
type handle struct {
	id     uint32
	path   string // client-view path
	f      vfs.File
	dir    bool
	read   bool
	write  bool
	append bool
	tmp    string // atomic upload: temporary file to rename over path
	excl   bool   // atomic upload under NoOverwrite: the rename must not replace
	// replaced is the target as it stood at an atomic upload's OPEN,
	// which an interrupted upload may be kept over (see keepOver).
	replaced targetState
	start    time.Time
	// file identifies the open file (zero if unknown): READ and WRITE
	// through two handles on one file are ordered as through one.
	file fileID

	// dirStarted is set once "." and ".." were listed.
	dirStarted bool
	dirEOF     bool

	writeFailed  atomic.Bool
	abandoned    atomic.Bool // atomic upload emptied at its first failed write
	bytesRead    atomic.Int64
	bytesWritten atomic.Int64

	// c is the file's charge to the quota: own, or the one the
	// account's handles writing the file share (QuotaLock.attach).
	c   *fileCharge
	own fileCharge
}

// slot is one request in flight; conflicts are checked against all slots.
type slot struct {
	h        *handle
	off, end int64
	write    bool
	busy     bool
}

type jobKind uint8

const (
	jobRead jobKind = iota + 1
	jobWrite
)

type job struct {
	kind   jobKind
	slot   int
	seq    uint64
	id     uint32
	h      *handle
	off    int64
	length int
	data   []byte
	req    *buffer
}

// session is one client's protocol state.
type session struct {
	srv *Server
	fs  vfs.FS
	ctx context.Context
	log *slog.Logger

	quotaStoreFailed atomic.Bool // a Reserve failed other than by refusing (reserve)

	handles    map[uint32]*handle
	nextHandle uint32

	mu   sync.Mutex
	cond sync.Cond
	data *dataState // nil until the first READ or WRITE
	busy int

	// workerMu guards the worker counts; jobs are queued under it so a
	// worker that finds the queue empty can leave without stranding one.
	workerMu sync.Mutex
	running  int // workers started and not yet gone
	idle     int // workers waiting for a job
	workers  sync.WaitGroup

	w     io.Writer
	out   chan *buffer // made under outMu with the first queued reply
	outMu sync.Mutex   // guards pending and writing
	// pending counts replies queued (or about to be) and not yet written;
	// the writer leaves only when it is zero, under outMu.
	pending  int
	writing  bool
	writerWG sync.WaitGroup
	writeErr atomic.Pointer[error]
	// writeFailed is the writer's: once a write failed, replies are dropped.
	writeFailed bool

	names map[uint64]string // uid (low) / gid (1<<32|gid) -> name
	hdr   [4]byte

	// readLimit and writeLimit throttle READ and WRITE data
	// (Options.ReadLimit, WriteLimit); nil when unlimited.
	readLimit, writeLimit *RateLimiter

	// Set by Start: the input, the end callback and, when r can notify,
	// the notifier and the callback handed to it (bound once, so parking
	// does not allocate).
	r        io.Reader
	done     func(error)
	notifier ReadNotifier
	resumeFn func()
	initDone bool // the dispatcher's: INIT answered
	// inputPending is the dispatcher's: another request was already read
	// when this one was dispatched.
	inputPending bool

	// READ and WRITE replies leave in request order although the
	// requests run concurrently: OpenSSH's sftp client before 9.6 (used
	// by scp) counts only in-order acknowledgements and truncates the file
	// at the first gap. nextSeq numbers data requests; the reorder ring
	// holds replies that finished early, and dispatch waits for room in it
	// (a slow request holds back its successors' replies, not their work).
	reorderMu   sync.Mutex
	reorderCond sync.Cond
	nextSeq     uint64
	emitSeq     uint64
	reorder     *[reorderRing]*buffer // allocated with the first data request
}

// dataState is what data requests in flight need: allocated with the
// first READ or WRITE, so sessions that only list and stat never hold it.
type dataState struct {
	slots [maxInFlight]slot
	jobs  chan job
}

// reorderRing holds the replies of every data request that can be in
// flight (maxInFlight) plus the one dispatch is answering directly.
const reorderRing = 2 * maxInFlight

// Serve runs one SFTP session: it reads requests from r and writes replies
// to w until r reaches EOF (the client closed the channel), w fails, or
// ctx is cancelled (checked between requests; to interrupt a blocked read,
// close the channel). On return every handle is closed and incomplete
// atomic uploads are discarded. A clean end returns nil.
func (srv *Server) Serve(ctx context.Context, r io.Reader, w io.Writer) error {
	s := srv.newSession(ctx, w)
	return s.serve(r)
}

// ReadNotifier is an input that can call back when a read would no longer
// block, as server.Session does: NotifyReadable reports false, and drops
// f, when a read would not block now; otherwise it runs f once, later,
// when one would not, on a goroutine f may keep (f serves the session).
type ReadNotifier interface {
	NotifyReadable(f func()) bool
}

// Start runs one SFTP session like Serve, except that while the session
// waits for a request with nothing in flight it holds no goroutine: when
// r is a ReadNotifier, Start returns once the session is idle and the
// session continues on the goroutine r runs the callback on when input
// arrives. done is called once, when the session has ended, with what
// Serve would have returned.
// Without a ReadNotifier Start serves the whole session before it returns.
// Cancelling ctx does not wake an idle session: close the channel.
func (srv *Server) Start(ctx context.Context, r io.Reader, w io.Writer, done func(error)) {
	s := srv.newSession(ctx, w)
	s.r = r
	s.done = done
	if n, ok := r.(ReadNotifier); ok {
		s.notifier = n
		s.resumeFn = s.run
	}
	s.run()
}

// run serves requests until the session ends, then ends it, or until it
// parks (errParked) waiting for input.
func (s *session) run() {
	err := s.serve(s.r)
	if err == errParked {
		return
	}
	s.done(err)
}

// errParked is readLoop's return when it handed its input to NotifyReadable.
var errParked = errors.New("sftp: parked")

func (srv *Server) newSession(ctx context.Context, w io.Writer) *session {
	s := &session{
		srv:     srv,
		fs:      srv.fs,
		ctx:     ctx,
		log:     srv.log.With("user", srv.opts.User),
		handles: make(map[uint32]*handle),
		w:       w,
		names:   make(map[uint64]string),

		readLimit:  NewRateLimiter(srv.opts.ReadLimit),
		writeLimit: NewRateLimiter(srv.opts.WriteLimit),
	}
	s.cond.L = &s.mu
	s.reorderCond.L = &s.reorderMu
	return s
}

// serve reads and answers requests from r until the session ends, then
// shuts it down, or until it parks (errParked) with nothing to shut down.
func (s *session) serve(r io.Reader) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("sftp: panic", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("sftp: internal error: %v", p)
		}
		if err == errParked {
			return
		}
		if serr := s.shutdown(); err == nil {
			err = serr
		}
		if err == nil {
			if we := s.writeErr.Load(); we != nil {
				err = *we
			}
		}
	}()
	return s.readLoop(r)
}

// shutdown closes the handles left open and stops the workers and the
// writer. It returns an error only for a panic while closing a handle.
func (s *session) shutdown() (err error) {
	s.barrier()
	// Quota releases for abandoned uploads must reach the store even
	// when the session ends because its context was cancelled.
	s.ctx = context.WithoutCancel(s.ctx)
	for _, h := range s.handles {
		if ferr := s.finishRecovered(h); err == nil {
			err = ferr
		}
	}
	s.workerMu.Lock()
	if s.data != nil {
		close(s.data.jobs)
	}
	s.workerMu.Unlock()
	s.workers.Wait()
	s.outMu.Lock()
	if s.out != nil {
		close(s.out)
	}
	s.outMu.Unlock()
	s.writerWG.Wait()
	return err
}

// finishRecovered is finish for shutdown: a panic closing one handle (in
// the file system, the quota or the transfer log) is logged and returned
// as an error, and shutdown goes on, so the other handles are closed, the
// workers and writer stop and the session's end is reported.
func (s *session) finishRecovered(h *handle) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("sftp: panic closing a handle", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("sftp: internal error closing a handle: %v", p)
		}
	}()
	s.finish(h, false)
	return nil
}

// readLoop reads requests through a batch buffer taken from the Server's
// pool; while the buffer is empty the loop waits for the next request's
// length without it, so an idle session holds no input buffer.
func (s *session) readLoop(r io.Reader) error {
	var br *bufio.Reader
	defer func() {
		if br != nil {
			br.Reset(nil)
			batchReaders.Put(br)
		}
	}()
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if we := s.writeErr.Load(); we != nil {
			return *we
		}
		if br != nil && br.Buffered() == 0 {
			br.Reset(nil)
			batchReaders.Put(br)
			br = nil
		}
		var err error
		if br == nil && s.parkable() {
			// Nothing buffered and nothing in flight: give back this
			// goroutine until input arrives (an idle session holds no
			// stack). While requests are in flight the loop waits in Read
			// instead, where an upload's data lands directly in its
			// buffer.
			if s.notifier.NotifyReadable(s.resumeFn) {
				return errParked
			}
		}
		if br == nil {
			_, err = io.ReadFull(r, s.hdr[:])
			if err == nil {
				br = batchReaders.Get().(*bufio.Reader)
				br.Reset(r)
			}
		} else {
			_, err = io.ReadFull(br, s.hdr[:])
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("sftp: reading request: %w", err)
		}
		n := binary.BigEndian.Uint32(s.hdr[:])
		if n > maxPacket {
			s.log.Warn("sftp: client sent an oversized packet; ending session", "length", n)
			return errPacketTooLong
		}
		if n < 5 {
			s.log.Warn("sftp: client sent a packet too short for type and id", "length", n)
			return errors.New("sftp: packet too short")
		}
		b := s.srv.getBuf(int(n))
		b.b = b.b[:n]
		if _, err := io.ReadFull(br, b.b); err != nil {
			s.srv.putBuf(b)
			return fmt.Errorf("sftp: reading request: %w", err)
		}
		if !s.initDone {
			err := s.init(b.b)
			s.srv.putBuf(b)
			if err != nil {
				return err
			}
			s.initDone = true
			continue
		}
		if b.b[0] == fxpInit {
			s.srv.putBuf(b)
			s.log.Warn("sftp: second INIT; ending session")
			return errors.New("sftp: INIT received twice")
		}
		s.inputPending = br != nil && br.Buffered() > 0
		s.dispatch(b)
	}
}

// init answers SSH_FXP_INIT with VERSION 3 and the extensions OpenSSH
// advertises, with the version strings OpenSSH uses.
func (s *session) init(p []byte) error {
	var m initMsg
	if !m.unmarshal(p) {
		s.log.Warn("sftp: first packet is not INIT", "type", p[0])
		return fmt.Errorf("sftp: request type %d before INIT", p[0])
	}
	v := versionMsg{Version: protocolVersion, Extensions: []extensionPair{
		{"posix-rename@openssh.com", "1"},
		{"statvfs@openssh.com", "2"},
		{"fstatvfs@openssh.com", "2"},
		{"hardlink@openssh.com", "1"},
		{"fsync@openssh.com", "1"},
		{"lsetstat@openssh.com", "1"},
		{"limits@openssh.com", "1"},
		{"expand-path@openssh.com", "1"},
		{"copy-data", "1"},
		{"home-directory", "1"},
		{"users-groups-by-id@openssh.com", "1"},
	}}
	v.Extensions = s.advertised(v.Extensions)
	s.sendMsg(&v)
	s.log.Debug("sftp: session started", "client_version", m.Version)
	return nil
}

// appender is every message the server sends.
type appender interface{ appendTo([]byte) []byte }

// sendMsg frames and queues one reply.
func (s *session) sendMsg(m appender) {
	b := s.srv.getBuf(smallBuf)
	b.b = m.appendTo(append(b.b[:0], 0, 0, 0, 0))
	binary.BigEndian.PutUint32(b.b, uint32(len(b.b)-4))
	s.queue(b)
}

func (s *session) sendStatus(id uint32, code uint32, msg string) {
	if msg == "" {
		msg = statusText(code)
	}
	// Built without the appender interface, which would move the message
	// to the heap: WRITE replies are on the zero-allocation path.
	m := statusMsg{ID: id, Code: code, Message: msg}
	b := s.srv.getBuf(smallBuf)
	b.b = m.appendTo(append(b.b[:0], 0, 0, 0, 0))
	binary.BigEndian.PutUint32(b.b, uint32(len(b.b)-4))
	s.queue(b)
}

// sendError answers a failed request with the status OpenSSH's
// errno_to_portable would give.
func (s *session) sendError(id uint32, err error) {
	code, msg := statusFromError(err)
	s.sendStatus(id, code, msg)
}

// emit queues the reply to data request seq once every earlier data
// request has been answered. A second reply for the same request (after a
// panic) is dropped.
func (s *session) emit(seq uint64, b *buffer) {
	s.reorderMu.Lock()
	defer s.reorderMu.Unlock()
	slot := &s.reorder[seq%reorderRing]
	if seq < s.emitSeq || *slot != nil || seq >= s.emitSeq+reorderRing {
		s.srv.putBuf(b)
		return
	}
	*slot = b
	for {
		next := &s.reorder[s.emitSeq%reorderRing]
		if *next == nil {
			return
		}
		s.queue(*next)
		*next = nil
		s.emitSeq++
		s.reorderCond.Broadcast()
	}
}

// assignSeq numbers the next data request once its reply has room in the
// reorder ring.
func (s *session) assignSeq() uint64 {
	s.reorderMu.Lock()
	defer s.reorderMu.Unlock()
	if s.reorder == nil {
		s.reorder = new([reorderRing]*buffer)
	}
	for s.nextSeq >= s.emitSeq+reorderRing {
		s.reorderCond.Wait()
	}
	seq := s.nextSeq
	s.nextSeq++
	return seq
}

// statusSeq answers data request seq with a STATUS.
func (s *session) statusSeq(seq uint64, id uint32, code uint32, msg string) {
	if msg == "" {
		msg = statusText(code)
	}
	m := statusMsg{ID: id, Code: code, Message: msg}
	b := s.srv.getBuf(smallBuf)
	b.b = m.appendTo(append(b.b[:0], 0, 0, 0, 0))
	binary.BigEndian.PutUint32(b.b, uint32(len(b.b)-4))
	s.emit(seq, b)
}

func (s *session) errorSeq(seq uint64, id uint32, err error) {
	code, msg := statusFromError(err)
	s.statusSeq(seq, id, code, msg)
}

// queue hands a reply to the writer, starting it if it is not running.
// The reply is counted before it is sent, so a writer that sees nothing
// pending cannot leave with a reply on its way.
func (s *session) queue(b *buffer) {
	s.outMu.Lock()
	if !s.writing && s.pending == 0 {
		// No writer and nothing queued: the caller writes the reply
		// itself. A client that waits for each reply (a stat, an open, a
		// read at a time: sftp -R 1, most GUI clients' metadata) otherwise
		// paid two goroutine wake-ups per request, 6-9 times OpenSSH's
		// single-threaded sftp-server's latency. Replies queued meanwhile
		// go to a writer started below, after this one.
		s.writing = true
		s.outMu.Unlock()
		if !s.writeFailed {
			if _, err := s.w.Write(b.b); err != nil {
				s.failWrite(err)
				s.writeFailed = true
			}
		}
		s.srv.putBuf(b)
		s.outMu.Lock()
		if s.pending > 0 {
			s.writerWG.Add(1)
			go s.writer()
		} else {
			s.writing = false
		}
		s.outMu.Unlock()
		return
	}
	s.pending++
	if s.out == nil {
		// Made with the first queued reply: a session whose replies all
		// went out inline (an idle one) holds no queue.
		s.out = make(chan *buffer, maxInFlight+4)
	}
	out := s.out
	if !s.writing {
		s.writing = true
		s.writerWG.Add(1)
		go s.writer()
	}
	s.outMu.Unlock()
	out <- b
}

// writer is the session's only writer: replies are written in the order
// they were queued and flushed when the queue runs dry, so a burst of
// small replies costs one write. It leaves after workerLinger without
// replies, handing its batch buffer back to the pool.
func (s *session) writer() {
	defer s.writerWG.Done()
	if vw, ok := s.w.(buffersWriter); ok {
		s.writeVectors(vw)
		return
	}
	// The batch buffer is held only while replies are queued: writeReply
	// flushes when the queue runs dry, and the buffer goes back to the
	// pool then, so a writer lingering for the next burst (or a session
	// gone idle) holds none. It also goes back before the writer says it
	// has left: the next writer may start as soon as it has.
	var bw *bufio.Writer
	putBack := func() {
		if bw != nil {
			bw.Reset(nil)
			batchWriters.Put(bw)
			bw = nil
		}
	}
	var t *time.Timer
	for {
		if bw != nil && len(s.out) == 0 && bw.Buffered() == 0 {
			putBack()
		}
		b, ok := s.nextReply(&t)
		if !ok {
			putBack()
			return
		}
		if bw == nil {
			bw = batchWriters.Get().(*bufio.Writer)
			bw.Reset(s.w)
		}
		s.writeReply(bw, b)
	}
}

// buffersWriter is an output that takes several buffers in one call and
// packs them into packets (server.Session, connection.Channel).
type buffersWriter interface {
	WriteBuffers(bufs [][]byte) (int, error)
}

// Bounds of one WriteBuffers call: enough replies to fill the
// transport's 256 KiB write batch, few enough that the first reply of a
// run does not wait on the last.
const (
	vectorMaxReplies = 64
	vectorMaxBytes   = 256 << 10
)

// writeVectors is the writer for a buffersWriter: each run of queued
// replies goes out in one WriteBuffers call, so consecutive replies share
// packets instead of each starting its own, and no batch buffer is needed.
func (s *session) writeVectors(vw buffersWriter) {
	var batch [vectorMaxReplies]*buffer
	var bufs [vectorMaxReplies][]byte
	var t *time.Timer
	for {
		b, ok := s.nextReply(&t)
		if !ok {
			return
		}
		n, size := 0, 0
		for {
			batch[n], bufs[n] = b, b.b
			n++
			size += len(b.b)
			if n == vectorMaxReplies || size >= vectorMaxBytes {
				break
			}
			select {
			case b, ok = <-s.out:
			default:
				ok = false
			}
			if !ok || b == nil {
				break
			}
		}
		if !s.writeFailed {
			if _, err := vw.WriteBuffers(bufs[:n]); err != nil {
				s.failWrite(err)
				s.writeFailed = true
			}
		}
		for i := range n {
			s.srv.putBuf(batch[i])
			batch[i], bufs[i] = nil, nil
		}
		s.outMu.Lock()
		s.pending -= n
		s.outMu.Unlock()
	}
}

// nextReply waits for the next queued reply, lingering workerLinger for
// one; ok is false when the writer should leave (the queue was closed, or
// it stayed empty with nothing pending).
// t is the calling writer's timer, created on first use.
func (s *session) nextReply(t **time.Timer) (*buffer, bool) {
	select {
	case b, ok := <-s.out:
		return b, ok
	default:
	}
	if *t == nil {
		*t = time.NewTimer(workerLinger)
	} else {
		(*t).Reset(workerLinger)
	}
	for {
		select {
		case b, ok := <-s.out:
			(*t).Stop()
			return b, ok
		case <-(*t).C:
			s.outMu.Lock()
			if s.pending == 0 {
				s.writing = false
				s.outMu.Unlock()
				return nil, false
			}
			s.outMu.Unlock()
			(*t).Reset(workerLinger)
		}
	}
}

func (s *session) writeReply(bw *bufio.Writer, b *buffer) {
	if !s.writeFailed {
		var err error
		if len(b.b) >= directWrite {
			// A DATA reply goes out as is: copying it into the batch
			// buffer would cost more than the write it saves.
			if err = bw.Flush(); err == nil {
				_, err = s.w.Write(b.b)
			}
		} else {
			_, err = bw.Write(b.b)
		}
		if err != nil {
			s.failWrite(err)
			s.writeFailed = true
		}
	}
	s.srv.putBuf(b)
	if !s.writeFailed && len(s.out) == 0 {
		if err := bw.Flush(); err != nil {
			s.failWrite(err)
			s.writeFailed = true
		}
	}
	s.outMu.Lock()
	s.pending--
	s.outMu.Unlock()
}

func (s *session) failWrite(err error) {
	err = fmt.Errorf("sftp: writing reply: %w", err)
	s.writeErr.CompareAndSwap(nil, &err)
}

// acquire claims a slot for a data request once no request in flight
// conflicts with it: same file (through this handle or another), one a
// write, and the other a read or an overlapping write. sftp-server, one
// request at a time, answers a READ after a WRITE with what it wrote;
// downloads (reads only) and uploads (writes only) keep running in
// parallel.
func (s *session) acquire(h *handle, off, end int64, write bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.workerMu.Lock()
		s.data = &dataState{jobs: make(chan job, maxInFlight)}
		s.workerMu.Unlock()
	}
	for {
		free, conflict := -1, false
		for i := range s.data.slots {
			sl := &s.data.slots[i]
			if !sl.busy {
				if free < 0 {
					free = i
				}
				continue
			}
			// A READ and a WRITE of one file are ordered whatever their
			// ranges: a write past the end changes what a read beyond
			// the old end returns (EOF or a hole's zeros). Two WRITEs
			// are ordered where they overlap.
			if (sl.h == h || h.file != (fileID{}) && sl.h.file == h.file) && (write || sl.write) &&
				(write != sl.write || off < sl.end && sl.off < end) {
				conflict = true
				break
			}
		}
		if !conflict && free >= 0 {
			s.data.slots[free] = slot{h: h, off: off, end: end, write: write, busy: true}
			s.busy++
			return free
		}
		s.cond.Wait()
	}
}

func (s *session) release(i int) {
	s.mu.Lock()
	s.data.slots[i] = slot{}
	s.busy--
	s.mu.Unlock()
	s.cond.Broadcast()
}

// barrier waits until no data request is in flight, so the next request
// sees the effect of every request before it.
// parkable reports whether the dispatcher may park: Start was given a
// ReadNotifier and no data request is in flight.
func (s *session) parkable() bool {
	if s.notifier == nil {
		return false
	}
	s.mu.Lock()
	idle := s.busy == 0
	s.mu.Unlock()
	return idle
}

func (s *session) barrier() {
	s.mu.Lock()
	for s.busy > 0 {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

func (s *session) lookup(b []byte) *handle {
	if len(b) != 4 {
		return nil
	}
	return s.handles[binary.BigEndian.Uint32(b)]
}

// dispatch routes one request; it owns b.
func (s *session) dispatch(b *buffer) {
	if s.refused(b) {
		return
	}
	p := b.b
	switch p[0] {
	case fxpRead:
		seq := s.assignSeq()
		var m readReq
		if !m.unmarshal(p) {
			s.srv.putBuf(b)
			s.statusSeq(seq, binary.BigEndian.Uint32(p[1:5]), StatusBadMessage, "")
			return
		}
		h := s.lookup(m.Handle)
		s.srv.putBuf(b)
		if h == nil || h.dir {
			s.statusSeq(seq, m.ID, StatusFailure, "")
			return
		}
		n := int(m.Length)
		if n > s.srv.opts.MaxReadLen {
			n = s.srv.opts.MaxReadLen
		}
		if m.Offset > math.MaxInt64 {
			// A negative off_t: sftp-server's lseek(2) fails with EINVAL,
			// which it answers BAD_MESSAGE.
			s.statusSeq(seq, m.ID, StatusBadMessage, "")
			return
		}
		if n == 0 {
			// An empty DATA, at any offset, as sftp-server sends without
			// reading: EOF would tell the client that the file ends here.
			s.emit(seq, s.dataReply(m.ID, nil))
			return
		}
		if !h.read {
			s.statusSeq(seq, m.ID, StatusFailure, "")
			return
		}
		if m.Offset > math.MaxInt64-uint64(n) {
			// The range's end overflows off_t: read(2) fails with EINVAL.
			s.statusSeq(seq, m.ID, StatusBadMessage, "")
			return
		}
		off := int64(m.Offset)
		i := s.acquire(h, off, off+int64(n), false)
		s.runOrStart(job{kind: jobRead, slot: i, seq: seq, id: m.ID, h: h, off: off, length: n})
	case fxpWrite:
		seq := s.assignSeq()
		var m writeReq
		if !m.unmarshal(p) {
			id := binary.BigEndian.Uint32(p[1:5])
			s.srv.putBuf(b)
			s.statusSeq(seq, id, StatusBadMessage, "")
			return
		}
		h := s.lookup(m.Handle)
		if h == nil || h.dir {
			s.srv.putBuf(b)
			s.statusSeq(seq, m.ID, StatusFailure, "")
			return
		}
		if !h.write {
			s.srv.putBuf(b)
			s.statusSeq(seq, m.ID, StatusPermissionDenied, "")
			return
		}
		if m.Offset > math.MaxInt64-uint64(len(m.Data)) {
			s.srv.putBuf(b)
			s.statusSeq(seq, m.ID, StatusBadMessage, "")
			return
		}
		off, end := int64(m.Offset), int64(m.Offset)+int64(len(m.Data))
		if h.append {
			// O_APPEND ignores the offset: every append conflicts.
			off, end = 0, math.MaxInt64
		}
		i := s.acquire(h, off, end, true)
		s.runOrStart(job{kind: jobWrite, slot: i, seq: seq, id: m.ID, h: h, off: int64(m.Offset), data: m.Data, req: b})
	default:
		s.barrier()
		s.serial(p)
		s.srv.putBuf(b)
	}
}

// badMessage answers an unparsable request with SSH_FX_BAD_MESSAGE.
func (s *session) badMessage(b *buffer) {
	p := b.b
	id := binary.BigEndian.Uint32(p[1:5])
	s.log.Debug("sftp: malformed request", "type", p[0], "id", id)
	s.srv.putBuf(b)
	s.sendStatus(id, StatusBadMessage, "")
}

// startJob queues a data request holding a slot (so the queue, as long as
// the slots, never blocks) and starts a worker when every running one is
// busy and fewer than Options.Workers run.
// runOrStart runs a data request in the dispatcher when nothing else is
// waiting: no further request already read and no job queued. A client
// that waits for each reply is then served without a hand-off to a
// worker; a pipelining one still gets concurrent pread/pwrite (the
// dispatcher finds its next request buffered).
func (s *session) runOrStart(j job) {
	if !s.inputPending && len(s.data.jobs) == 0 {
		s.runJob(&j)
		return
	}
	s.startJob(j)
}

func (s *session) startJob(j job) {
	s.workerMu.Lock()
	s.data.jobs <- j
	if s.running < s.srv.opts.Workers && len(s.data.jobs) > s.idle {
		s.running++
		s.workers.Add(1)
		go s.worker(s.data.jobs)
	}
	s.workerMu.Unlock()
}

// worker runs jobs until the queue stays empty for workerLinger or is
// closed. It leaves only under workerMu with the queue empty, so no job
// queued before is left without a worker.
func (s *session) worker(jobs chan job) {
	defer s.workers.Done()
	var t *time.Timer
	for {
		var j job
		var ok bool
		select {
		case j, ok = <-jobs:
		default:
			if t == nil {
				t = time.NewTimer(workerLinger)
			} else {
				t.Reset(workerLinger)
			}
			s.workerMu.Lock()
			s.idle++
			s.workerMu.Unlock()
			select {
			case j, ok = <-jobs:
				t.Stop()
				s.workerMu.Lock()
				s.idle--
				s.workerMu.Unlock()
			case <-t.C:
				s.workerMu.Lock()
				s.idle--
				if len(jobs) == 0 {
					s.running--
					s.workerMu.Unlock()
					return
				}
				s.workerMu.Unlock()
				continue
			}
		}
		if !ok {
			return
		}
		s.runJob(&j)
	}
}

func (s *session) runJob(j *job) {
	defer s.release(j.slot)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("sftp: panic in request", "panic", p, "stack", string(debug.Stack()))
			s.statusSeq(j.seq, j.id, StatusFailure, "")
		}
	}()
	switch j.kind {
	case jobRead:
		s.read(j)
	case jobWrite:
		s.write(j)
	}
}

// dataHeader is length, type, id and data length of SSH_FXP_DATA.
const dataHeader = 4 + 1 + 4 + 4

// dataReply frames a DATA reply holding data.
func (s *session) dataReply(id uint32, data []byte) *buffer {
	b := s.srv.getBuf(dataHeader + len(data))
	buf := append(b.b[:dataHeader], data...)
	binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
	buf[4] = fxpData
	binary.BigEndian.PutUint32(buf[5:], id)
	binary.BigEndian.PutUint32(buf[9:], uint32(len(data)))
	b.b = buf
	return b
}

// read answers READ by reading the file straight into the reply buffer.
func (s *session) read(j *job) {
	b := s.srv.getBuf(dataHeader + j.length)
	buf := b.b[:dataHeader+j.length]
	n, err := j.h.f.ReadAt(buf[dataHeader:], j.off)
	if n == 0 {
		s.srv.putBuf(b)
		if err == nil || errors.Is(err, io.EOF) {
			s.statusSeq(j.seq, j.id, StatusEOF, "")
		} else {
			s.errorSeq(j.seq, j.id, err)
		}
		return
	}
	if err := s.readLimit.Wait(s.ctx, n); err != nil {
		s.srv.putBuf(b)
		s.statusSeq(j.seq, j.id, StatusFailure, "")
		return
	}
	buf = buf[:dataHeader+n]
	binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
	buf[4] = fxpData
	binary.BigEndian.PutUint32(buf[5:], j.id)
	binary.BigEndian.PutUint32(buf[9:], uint32(n))
	b.b = buf
	j.h.bytesRead.Add(int64(n))
	s.emit(j.seq, b)
}

// write answers WRITE from the request buffer with pwrite.
func (s *session) write(j *job) {
	defer s.srv.putBuf(j.req)
	h := j.h
	if err := s.writeLimit.Wait(s.ctx, len(j.data)); err != nil {
		s.statusSeq(j.seq, j.id, StatusFailure, "")
		return
	}
	err := s.chargedWrite(h, j.data, j.off)
	if err != nil {
		// Logged once per handle: a pipelining client has many more
		// WRITEs in flight (psftp some hundreds), each refused alike, and
		// a line for each flooded the log.
		if !h.writeFailed.Swap(true) {
			if errors.Is(err, errQuota) {
				s.log.Info("sftp: quota refused a write", "path", h.path)
			} else {
				s.log.Info("sftp: write failed", "path", h.path, "err", err)
			}
		}
		s.abandonUpload(h)
		s.errorSeq(j.seq, j.id, err)
		return
	}
	h.bytesWritten.Add(int64(len(j.data)))
	s.statusSeq(j.seq, j.id, StatusOK, "")
}

// chargedWrite writes data at off (or appends), charged to the quota.
// The charge is decided and the data written under the QuotaLock's read
// lock, so no truncate or removal in any session of the account runs
// between them.
func (s *session) chargedWrite(h *handle, data []byte, off int64) error {
	if h.abandoned.Load() {
		return errUploadDiscarded
	}
	if s.srv.opts.Quota != nil {
		l := s.srv.opts.QuotaLock
		l.mu.RLock()
		defer l.mu.RUnlock()
		if err := s.chargeWrite(h, off, int64(len(data))); err != nil {
			return err
		}
		defer s.settleWrite(h)
	}
	var err error
	if h.append {
		_, err = h.f.Write(data)
	} else {
		_, err = h.f.WriteAt(data, off)
	}
	if err != nil {
		h.c.mu.Lock()
		h.c.shortWrite = true
		h.c.mu.Unlock()
	}
	return err
}

// settleWrite ends a write charged by chargeWrite. A write that failed
// (ENOSPC, EDQUOT, EFBIG, or EIO) was charged up to its end and left the
// file shorter; an in-place file keeps what was written and its charge
// stayed until the next recount (1.4 MB over on a 2 MB disk for one
// 3 MB put). Once none of the file's writes is in flight (another may
// have been charged for a range it has not written yet), the file is
// measured and what it lacks of its charge is given back. Still under the
// QuotaLock's read lock, so no shrink has released any of it meanwhile.
// An atomic upload gives back all it held instead (abandonUpload).
func (s *session) settleWrite(h *handle) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing--
	if c.writing > 0 || !c.shortWrite || h.tmp != "" {
		return
	}
	c.shortWrite = false
	fi, err := h.f.Stat()
	if err != nil || fi.Size() >= c.size {
		return
	}
	s.srv.opts.Quota.Release(s.ctx, c.size-fi.Size(), 0)
	if c.orphan {
		c.orphanCharged -= min(c.orphanCharged, c.size-fi.Size())
	}
	c.size = fi.Size()
}

// unlinked reports whether fi, an open file's Stat, has no name left.
func unlinked(fi fs.FileInfo) bool {
	_, _, nlink, ok := vfs.Owner(fi)
	return ok && nlink == 0
}

// chargeWrite reserves quota for the bytes a write adds past the file's
// end, with the QuotaLock's read lock held.
func (s *session) chargeWrite(h *handle, off, n int64) error {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.abandoned.Load() {
		// Emptied by abandonUpload after chargedWrite looked: a charge
		// now would count bytes the CLOSE throws away.
		return errUploadDiscarded
	}
	if g := s.srv.opts.QuotaLock.shrinks.Load(); g != c.shrinks {
		// A file was truncated or removed since size was measured, and
		// its size released: charge from what the file holds now.
		if fi, err := h.f.Stat(); err == nil {
			c.size = fi.Size()
			c.orphan = unlinked(fi)
		}
		c.shrinks = g
	}
	end := off + n
	if h.append {
		end = c.size + n
	}
	if end > c.size {
		if err := s.reserve(h.path, end-c.size, 0); err != nil {
			return err
		}
		if c.orphan {
			c.orphanCharged += end - c.size
		}
		c.size = end
	}
	c.writing++
	return nil
}

// abandonUpload empties an atomic upload at its first failed write and
// gives its space back. CLOSE discards such an upload anyway (see
// finish), but until then its temporary file held what it had written:
// uploads racing for an account's last megabytes (rclone runs four at
// once) each stopped at a share of what was left, and all four failed
// again, in step, at every retry, though one of them fit; on a full disk
// the same. Emptied at once, the space goes to the uploads still running.
// Later writes to the handle are refused (chargedWrite).
func (s *session) abandonUpload(h *handle) {
	if h.tmp == "" || !h.abandoned.CompareAndSwap(false, true) {
		return
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.f.Truncate(0); err != nil {
		s.log.Warn("sftp: cannot empty a failed upload", "path", h.tmp, "err", err)
		return
	}
	if q := s.srv.opts.Quota; q != nil {
		q.Release(s.ctx, h.c.size, 0)
	}
	h.c.size = 0
}

// lockShrink takes the account's QuotaLock for an operation that may
// shrink or unlink a file, when a quota is kept; the returned function
// releases it.
func (s *session) lockShrink() func() {
	if s.srv.opts.Quota == nil {
		return func() {}
	}
	return s.srv.opts.QuotaLock.Shrink()
}

// releaseUnlinked gives back what a file held once a name of it was
// removed or replaced; fi is its Lstat from before, taken under
// lockShrink. Only regular files are charged (OPEN charges them; links
// and directories cost nothing), and a file is charged once however many
// names it has (hardlink@openssh.com charges nothing), so its bytes and
// its count go back only with its last name: while another link keeps the
// data, releasing it would let an account link, remove and upload again
// without limit.
func (s *session) releaseUnlinked(fi fs.FileInfo) {
	q := s.srv.opts.Quota
	if q == nil || fi == nil || !fi.Mode().IsRegular() {
		return
	}
	if _, _, nlink, ok := vfs.Owner(fi); ok && nlink > 1 {
		return
	}
	q.Release(s.ctx, fi.Size(), 1)
}

// resolve turns a client path into the FS's absolute view: relative
// paths start at Home, and ".." stops at "/".
func (s *session) resolve(p string) string {
	if p == "" {
		p = "."
	}
	if !strings.HasPrefix(p, "/") {
		p = s.srv.opts.Home + "/" + p
	}
	return path.Clean(p)
}

// mustBeDir reports whether a client path ends in "/" (or "/."), which
// path resolution (POSIX.1-2017 §4.13) takes to name a directory: the
// kernel fails such a path to a file with ENOTDIR, but resolve's
// path.Clean drops the slash.
func mustBeDir(raw string) bool {
	return strings.HasSuffix(raw, "/") || strings.HasSuffix(raw, "/.")
}

// checkRawPath fails what resolve's cleaning would hide of a client path:
// an empty path, which names nothing (ENOENT, as open(2), stat(2) and the
// rest give sftp-server; only REALPATH takes "" for "."), and a trailing
// slash on an existing non-directory (following links, as the kernel
// does), ENOTDIR. sftp-server answers both NO_SUCH_FILE. A path that does
// not resolve is left to the request, which reports it as usual.
func (s *session) checkRawPath(raw, p string) error {
	if raw == "" {
		return &fs.PathError{Op: "stat", Path: raw, Err: syscall.ENOENT}
	}
	if p == "/" || !mustBeDir(raw) {
		return nil
	}
	if fi, err := s.fs.Stat(p); err == nil && !fi.IsDir() {
		return &fs.PathError{Op: "stat", Path: p, Err: syscall.ENOTDIR}
	}
	return nil
}

// slashOnLink reports whether raw ends in a slash and p, its resolved
// form, is a symbolic link. The kernel follows a link named with a
// trailing slash ("ldir/" is the directory ldir points to) where
// path.Clean dropped the slash, so requests on the name itself must not
// act on the link: lstat(2) follows it, and unlink(2) and rename(2) fail
// with ENOTDIR, readlink(2) with EINVAL (the target is no link).
func (s *session) slashOnLink(raw, p string) bool {
	if p == "/" || !mustBeDir(raw) {
		return false
	}
	fi, err := s.fs.Lstat(p)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

func (s *session) newHandle(h *handle) ([]byte, bool) {
	if len(s.handles) >= s.srv.opts.MaxHandles {
		return nil, false
	}
	for {
		s.nextHandle++
		if _, used := s.handles[s.nextHandle]; !used {
			break
		}
	}
	h.id = s.nextHandle
	h.start = time.Now()
	if h.c == nil {
		h.c = &h.own
	}
	s.handles[h.id] = h
	s.srv.openHandles.Add(1)
	return binary.BigEndian.AppendUint32(nil, h.id), true
}

// finish closes h. commit is false when the session ends without CLOSE:
// an atomic upload is then discarded.
func (s *session) finish(h *handle, commit bool) error {
	delete(s.handles, h.id)
	// Counted until the upload is committed, not only until the map
	// forgets it.
	defer s.srv.openHandles.Add(-1)
	if h.dir {
		return h.f.Close()
	}
	q := s.srv.opts.Quota
	result := "ok"
	var err error
	if h.tmp != "" {
		// An upload the session's end cut off (no CLOSE: the connection
		// dropped) is renamed into place with what arrived, when
		// KeepInterruptedUploads says so: see there.
		// Not under NoOverwrite (h.excl): a kept partial file could be
		// neither resumed nor replaced there, so the client's retry
		// would be refused for good.
		keep := !commit && s.srv.opts.KeepInterruptedUploads && h.bytesWritten.Load() > 0 &&
			!h.writeFailed.Load() && !h.abandoned.Load() && !h.excl
		rename := commit || keep
		switch {
		case keep:
			result = "aborted: what arrived was kept, for the client to resume"
		case !commit:
			result = "aborted"
		case h.writeFailed.Load():
			result = "failed: a write failed; previous version kept"
			err = errUploadDiscarded
		}
		if err == nil && rename {
			// fsync before rename: after a crash the name points at
			// either the old or the complete new contents.
			err = h.f.Sync()
		}
		if cerr := h.f.Close(); err == nil {
			err = cerr
		}
		if rename && err == nil {
			err = s.commitUpload(h, commit)
			switch {
			case errors.Is(err, errTargetChanged):
				result = "aborted: " + err.Error() + "; what arrived was discarded"
			case err != nil:
				result = "failed: " + err.Error()
			}
		}
		if !rename || err != nil {
			if rerr := s.fs.Remove(h.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				s.log.Warn("sftp: cannot remove temporary upload", "path", h.tmp, "err", rerr)
			}
			if q != nil {
				q.Release(s.ctx, h.c.size, 1)
			}
		}
	} else {
		err = h.f.Close()
		if q != nil && s.srv.opts.QuotaLock.detach(h) {
			// The last handle on the file: what was charged for it
			// after it lost its last name goes back with it.
			h.c.mu.Lock()
			orphanCharged := h.c.orphanCharged
			h.c.orphanCharged = 0
			h.c.mu.Unlock()
			if orphanCharged > 0 {
				q.Release(s.ctx, orphanCharged, 0)
			}
		}
		switch {
		case err != nil:
			result = "failed: " + err.Error()
		case !commit:
			result = "aborted"
		case h.writeFailed.Load():
			// The file holds what was written before the failure (an
			// in-place upload, a reput past the quota): not a success.
			result = "failed: a write failed"
		}
	}
	if t := s.srv.opts.TransferLog; t != nil {
		t(TransferRecord{
			User: s.srv.opts.User, Path: h.path,
			BytesRead: h.bytesRead.Load(), BytesWritten: h.bytesWritten.Load(), Upload: h.write,
			Start: h.start, Duration: time.Since(h.start), Result: result,
		})
	}
	return err
}

// targetState is what stood at an atomic upload's target when it was
// opened: nothing, or a regular file with this identity, size and
// modification time.
type targetState struct {
	exists bool
	id     fileID
	size   int64
	mtime  time.Time
}

func targetStateOf(fi fs.FileInfo) targetState {
	st := targetState{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	if dev, ino, ok := vfs.FileID(fi); ok {
		st.id = fileID{dev, ino}
	}
	return st
}

// errTargetChanged ends an interrupted upload whose target changed
// since its OPEN: what arrived is discarded.
var errTargetChanged = errors.New("the target changed since the upload began")

// keepOver reports whether an interrupted upload may be renamed over its
// target: only while the target is the file that stood at OPEN, unchanged,
// or is still absent. A client whose connection dropped often reconnects
// and uploads the file again before the server notices the dead
// connection, and two clients may upload one file at once: the complete
// file another session wrote, created or removed since is newer than the
// partial one, which would replace it when the dropped session ended.
// Called under the shrink lock, which orders it against the other
// sessions' commits, removals and renames when a quota is kept.
func (s *session) keepOver(h *handle) bool {
	fi, err := s.fs.Lstat(h.path)
	if err != nil {
		return !h.replaced.exists && errors.Is(err, fs.ErrNotExist)
	}
	if !h.replaced.exists || !fi.Mode().IsRegular() {
		return false
	}
	now := targetStateOf(fi)
	return now.id == h.replaced.id && now.size == h.replaced.size && now.mtime.Equal(h.replaced.mtime)
}

// commitUpload renames an atomic upload's temporary file over its target
// and releases what the replaced target held at that moment: the target
// may have changed or gone (and been released by REMOVE) since OPEN. An
// interrupted upload (commit false) is renamed only over the target it
// was opened for (keepOver).
func (s *session) commitUpload(h *handle, commit bool) error {
	defer s.lockShrink()()
	if !commit && !s.keepOver(h) {
		return errTargetChanged
	}
	if h.excl {
		return s.fs.Rename(h.tmp, h.path)
	}
	var old fs.FileInfo
	if s.srv.opts.Quota != nil {
		if fi, err := s.fs.Lstat(h.path); err == nil && fi.Mode().IsRegular() {
			old = fi
		}
	}
	err := s.fs.PosixRename(h.tmp, h.path)
	if err == nil {
		s.releaseUnlinked(old)
	}
	return err
}

// tempName returns a fresh temporary upload name beside target.
func tempName(target string) string {
	return path.Join(path.Dir(target), tempPrefix+rand.Text())
}

// tempRandLen is the length of rand.Text's output: 26 base32 characters.
const tempRandLen = 26

// isTemp reports whether a name has exactly the form tempName gives
// (prefix and 26 characters of the base32 alphabet). Such names are hidden
// from listings, removed when stale, and reserved: clients may not create
// them, so none of a user's own files is ever taken for one.
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

// reserved reports whether p, a resolved path (see session.resolve), names
// a temporary upload. It must see the path as the file system will: a
// client path such as ".ferry-upload-<random>/." passes a check of its
// last component but names the temporary file once cleaned.
func reserved(p string) bool { return isTemp(path.Base(p)) }

// reservedTarget reports whether a symbolic link's target text passes
// through a temporary upload's name: OPEN with CREAT through a dangling
// link would create the reserved file.
func reservedTarget(target string) bool {
	for _, c := range strings.Split(target, "/") {
		if isTemp(c) {
			return true
		}
	}
	return false
}

var _ = os.O_RDONLY
