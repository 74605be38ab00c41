// Package daemon runs `ferry serve`: its configuration file, host keys,
// listeners and the server wiring on top of package server.
//
// The configuration is TOML whose keys are sshd_config(5)'s keyword names in
// snake_case (MaxAuthTries → max_auth_tries), with sshd's value syntax where
// sshd has one (RekeyLimit, MaxStartups, PerSourcePenalties, algorithm lists
// with +/-/^), so an admin who knows sshd can read it without a manual.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/transport"
)

// Defaults. Where sshd has a default for the same keyword, ferry's is the
// same unless a comment says why not.
const (
	DefaultDataDir = "./ferry-data"
	// DefaultRSABits is ssh-keygen's default since OpenSSH 8.8.
	DefaultRSABits = 3072
	// DefaultMaxAuthTries is sshd's DEFAULT_AUTH_FAIL_MAX.
	DefaultMaxAuthTries = 6
	// required_rsa_size's range: sshd's SSH_RSA_MINIMUM_MODULUS_SIZE, and
	// the largest RSA key ssh-keygen makes.
	minRequiredRSASize = 1024
	maxRequiredRSASize = 16384
	// DefaultLoginGraceTime is sshd's LoginGraceTime default.
	DefaultLoginGraceTime = 120 * time.Second
	// DefaultMaxSessions is sshd's DEFAULT_SESSIONS_MAX.
	DefaultMaxSessions = 10
	// DefaultClientAliveCountMax is sshd's ClientAliveCountMax default.
	DefaultClientAliveCountMax = 3
	// DefaultMaxHandles bounds open SFTP handles per session. OpenSSH's
	// sftp-server allows 512 open handles per session (its handle table
	// limit); 256 is plenty for parallel transfers and halves the file
	// descriptors a single session can pin.
	DefaultMaxHandles = 256
	// DefaultUmask is the conventional 022: files 0644, directories 0755.
	DefaultUmask fs.FileMode = 0o022
)

// Bounds on values an admin writes. None of these is peer-growable; they
// catch typos (an extra zero) that would otherwise let one connection hold
// an absurd amount of resources.
const (
	// maxConfigFile bounds the configuration file we read: a complete,
	// commented configuration is a few KiB.
	maxConfigFile = 1 << 20
	// maxNesting bounds nesting of arrays, tables and dotted keys in the
	// file (see checkNesting); the schema needs 2.
	maxNesting = 16
	// maxAuthTriesLimit: sshd accepts any int, but past a few hundred
	// tries per connection the limit no longer limits anything.
	maxAuthTriesLimit = 1000
	// maxSessionsLimit bounds max_sessions; each session is a channel with
	// its own window buffers (RFC 4254 §5.1).
	maxSessionsLimit = 1024
	// maxConnectionsLimit bounds max_connections_per_account (a
	// descriptor each, RLIMIT_NOFILE is commonly 65536).
	maxConnectionsLimit = 65536
	// maxHandlesLimit bounds sftp.max_handles: each handle may hold a file
	// descriptor, and RLIMIT_NOFILE is commonly 65536.
	maxHandlesLimit = 65536
	// maxBannerBytes bounds the banner file. ferry sends it whole in one
	// USERAUTH_BANNER to every client before authentication; a packet
	// over 256 KiB fails ferry's transport and OpenSSH's client alike
	// (PACKET_MAX_SIZE), which cut every login, and sshd ignores a banner
	// file over 1 MiB. 64 KiB is pages of legal text.
	maxBannerBytes = 64 << 10
	// maxStartupsLimit bounds max_startups and per_source_max_startups:
	// each unauthenticated connection holds a goroutine and a socket.
	maxStartupsLimit = 1 << 20
	// maxPenaltySources bounds max-sources4/6 in per_source_penalties:
	// each tracked source is a map entry in the penalty table.
	maxPenaltySources = 1 << 24
	// maxDuration bounds every duration setting: 400 days is longer than
	// any sensible timeout and keeps arithmetic on it far from overflow.
	maxDuration = 400 * 24 * time.Hour
	// minRekeyBytes is sshd's floor for RekeyLimit ("RekeyLimit too small").
	minRekeyBytes = 16
)

// RekeyNever as RekeyLimit.Interval is sshd's "none": no time-based rekey.
// It is a real duration, so it can be handed to transport.Config as is.
const RekeyNever time.Duration = math.MaxInt64

// Config is the resolved configuration of `ferry serve`. Load it with
// LoadConfig (or start from Default), apply command-line overrides with
// ApplyOverrides, then call Validate. Algorithm lists are resolved and ready
// for transport.Config.
type Config struct {
	// Path is the file the configuration came from; "" for defaults only.
	Path string

	Listen []string // host:port; IPv6 hosts in brackets
	// DataDir holds the database, host keys and homes. A relative path is
	// relative to the working directory of the process.
	DataDir string
	// Database is a database URL; "" means SQLite at <data_dir>/ferry.db
	// (see DatabaseURL).
	Database string
	// HostKeys are private key files; nil means the default files in
	// DataDir, generated on first start (see LoadOrCreateHostKeys).
	HostKeys []string

	KexAlgorithms            []string
	Ciphers                  []string
	MACs                     []string
	HostKeyAlgorithms        []string
	PubkeyAcceptedAlgorithms []string
	// CASignatureAlgorithms is sshd's CASignatureAlgorithms: what a
	// certificate authority may have signed a user certificate with,
	// apart from what users may sign with (SHA-1 stays out of it by
	// default even when ssh-rsa is enabled for old clients' own keys).
	CASignatureAlgorithms []string
	// Compression is sshd's Compression; Compressions is the resulting
	// list for transport.Config. zlib is always the delayed
	// zlib@openssh.com (see transport's algorithm table).
	Compression  bool
	Compressions []string
	RekeyLimit   RekeyLimit

	MaxAuthTries int
	// RequiredRSASize is the smallest RSA user or CA key accepted, in bits
	// (sshd's RequiredRSASize; ferry's default 2048 is stricter than
	// sshd's 1024).
	RequiredRSASize int
	// LoginGraceTime bounds the time to authenticate; 0 means no limit.
	LoginGraceTime time.Duration
	MaxStartups    MaxStartups
	// PerSourceMaxStartups limits unauthenticated connections per source
	// block; 0 means none.
	PerSourceMaxStartups       int
	PerSourcePenalties         PerSourcePenalties
	PerSourcePenaltyExemptList []netip.Prefix
	PerSourceNetBlockSize      NetBlockSize
	MaxSessions                int
	// MaxConnectionsPerAccount bounds each account's authenticated
	// connections on this server unless the account sets its own
	// (ferry user --max-connections); 0 means unlimited.
	MaxConnectionsPerAccount int
	// ClientAliveInterval is 0 when keepalives are off.
	ClientAliveInterval time.Duration
	ClientAliveCountMax int

	PasswordAuthentication       bool
	PubkeyAuthentication         bool
	KbdInteractiveAuthentication bool
	// AuthenticationMethods lists the method sequences a user must
	// complete, any one of them (sshd's AuthenticationMethods); nil means
	// any single method.
	AuthenticationMethods [][]string
	TrustedUserCAKeys     string // "" means none
	// RevokedKeys is a file of public keys no login may use, as a key, as
	// the key of a certificate or as the CA that signed one (sshd's
	// RevokedKeys in its plain-text form); "" means none.
	RevokedKeys string
	Banner      string // "" means none

	AllowTCPForwarding Forwarding
	// GatewayPorts lets "ssh -R" listen on the address the client names
	// (sshd's GatewayPorts clientspecified); off, it listens on the
	// loopback only.
	GatewayPorts    bool
	PermitOpen      PermitOpen
	AcceptEnv       []string
	ProxyProtocol   bool
	AllowedCommands []string

	// RunAs is the user to switch to after binding when started as root.
	RunAs string
	// ShellUID and ShellGID, when non-nil, are the credentials commands
	// (allowed_commands) run with.
	ShellUID *uint32
	ShellGID *uint32

	SFTP    SFTPConfig
	Log     LogConfig
	Metrics MetricsConfig
}

// RekeyLimit is sshd's RekeyLimit: rekey after Bytes of traffic or after
// Interval. Zero values mean transport's defaults (1 GiB, 1 hour).
type RekeyLimit struct {
	Bytes    uint64
	Interval time.Duration // RekeyNever for sshd's "none"
}

// MaxStartups is sshd's start:rate:full early drop of unauthenticated
// connections: beyond Start, refuse with probability Rate% rising linearly
// to 100% at Full.
type MaxStartups struct {
	Start, Rate, Full int
}

// NetBlockSize is sshd's PerSourceNetBlockSize: how many leading address
// bits make one "source" for per-source limits and penalties.
type NetBlockSize struct {
	IPv4, IPv6 int
}

// PenaltyOverflow says what happens when the penalty table is full
// (sshd's overflow/overflow6).
type PenaltyOverflow int

const (
	// OverflowPermissive stops penalising new sources when the table is full.
	OverflowPermissive PenaltyOverflow = iota
	// OverflowDenyAll refuses every new connection while the table is full.
	OverflowDenyAll
)

// PerSourcePenalties is sshd's PerSourcePenalties (OpenSSH 9.8): sources
// that misbehave are refused for a while, the penalty growing with repeated
// offences from Min up to Max.
type PerSourcePenalties struct {
	Enabled          bool
	Crash            time.Duration
	AuthFail         time.Duration
	InvalidUser      time.Duration
	NoAuth           time.Duration
	GraceExceeded    time.Duration
	RefuseConnection time.Duration
	Max, Min         time.Duration
	MaxSources4      int
	MaxSources6      int
	Overflow         PenaltyOverflow
	Overflow6        PenaltyOverflow
}

// DefaultPerSourcePenalties are sshd's defaults (servconf.c,
// fill_default_server_options).
func DefaultPerSourcePenalties() PerSourcePenalties {
	return PerSourcePenalties{
		Enabled:          true,
		Crash:            90 * time.Second,
		AuthFail:         5 * time.Second,
		InvalidUser:      5 * time.Second,
		NoAuth:           time.Second,
		GraceExceeded:    10 * time.Second,
		RefuseConnection: 10 * time.Second,
		Max:              10 * time.Minute,
		Min:              15 * time.Second,
		MaxSources4:      65536,
		MaxSources6:      65536,
		Overflow:         OverflowPermissive,
		Overflow6:        OverflowPermissive,
	}
}

// Forwarding is sshd's AllowTcpForwarding.
type Forwarding int

const (
	ForwardingNo     Forwarding = iota
	ForwardingYes               // local (direct-tcpip) and remote (tcpip-forward)
	ForwardingLocal             // direct-tcpip only (RFC 4254 §7.2)
	ForwardingRemote            // tcpip-forward only (RFC 4254 §7.1)
)

// AllowsLocal reports whether direct-tcpip channels are allowed.
func (f Forwarding) AllowsLocal() bool { return f == ForwardingYes || f == ForwardingLocal }

// AllowsRemote reports whether tcpip-forward requests are allowed.
func (f Forwarding) AllowsRemote() bool { return f == ForwardingYes || f == ForwardingRemote }

func (f Forwarding) String() string {
	switch f {
	case ForwardingYes:
		return "yes"
	case ForwardingLocal:
		return "local"
	case ForwardingRemote:
		return "remote"
	}
	return "no"
}

// PermitOpen is sshd's PermitOpen: where direct-tcpip may connect. Any
// allows every destination; otherwise only Targets (none when empty).
type PermitOpen struct {
	Any     bool
	Targets []PermitTarget
}

// PermitTarget is one host:port of PermitOpen. Host "*" matches any host,
// Port 0 ("*") any port.
type PermitTarget struct {
	Host string
	Port int
}

// Allows reports whether a direct-tcpip request to host:port is permitted.
func (p PermitOpen) Allows(host string, port int) bool {
	if p.Any {
		return true
	}
	for _, t := range p.Targets {
		if (t.Host == "*" || strings.EqualFold(t.Host, host)) && (t.Port == 0 || t.Port == port) {
			return true
		}
	}
	return false
}

// SFTPConfig is the [sftp] section.
type SFTPConfig struct {
	// AtomicUploads writes uploads to a temporary file renamed into place
	// on close, so a half-finished upload never replaces a file.
	AtomicUploads bool
	// KeepInterruptedUploads renames an atomic upload cut off by a
	// dropped connection into place with what arrived, so that clients
	// can resume it (sftp.Options.KeepInterruptedUploads).
	KeepInterruptedUploads bool
	Umask                  fs.FileMode
	MaxHandles             int
	// ReadLimit and WriteLimit are bytes per second per session; 0 means
	// unlimited.
	ReadLimit  int64
	WriteLimit int64
}

// LogConfig is the [log] section.
type LogConfig struct {
	Level       slog.Level
	Format      string // "text" or "json"
	TransferLog bool
}

// MetricsConfig is the [metrics] section.
type MetricsConfig struct {
	Listen string // host:port for the Prometheus endpoint; "" means off
	// Pprof also serves Go's runtime profiles under /debug/pprof/ on the
	// metrics listener (heap, goroutines, CPU), for diagnosing memory and
	// CPU in production. Off by default: profiles reveal internals, and
	// a CPU profile costs CPU while it runs.
	Pprof bool
}

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{
		Listen:                   []string{"0.0.0.0:2222", "[::]:2222"},
		DataDir:                  DefaultDataDir,
		KexAlgorithms:            transport.DefaultAlgorithms(transport.KindKex),
		Ciphers:                  transport.DefaultAlgorithms(transport.KindCipher),
		MACs:                     transport.DefaultAlgorithms(transport.KindMAC),
		HostKeyAlgorithms:        transport.DefaultAlgorithms(transport.KindHostKey),
		PubkeyAcceptedAlgorithms: defaultPubkeyAlgorithms(),
		CASignatureAlgorithms:    defaultCASignatureAlgorithms(),
		Compression:              true,
		Compressions:             compressionList(true),
		MaxAuthTries:             DefaultMaxAuthTries,
		RequiredRSASize:          auth.DefaultMinRSABits,
		LoginGraceTime:           DefaultLoginGraceTime,
		MaxStartups:              MaxStartups{Start: 10, Rate: 30, Full: 100},
		PerSourcePenalties:       DefaultPerSourcePenalties(),
		PerSourceNetBlockSize:    NetBlockSize{IPv4: 32, IPv6: 128},
		MaxSessions:              DefaultMaxSessions,
		ClientAliveCountMax:      DefaultClientAliveCountMax,

		PasswordAuthentication:       true,
		PubkeyAuthentication:         true,
		KbdInteractiveAuthentication: true,

		AllowTCPForwarding: ForwardingNo,
		PermitOpen:         PermitOpen{Any: true},
		AcceptEnv:          []string{"LANG", "LC_*"},

		SFTP: SFTPConfig{
			AtomicUploads:          true,
			KeepInterruptedUploads: true,
			Umask:                  DefaultUmask,
			MaxHandles:             DefaultMaxHandles,
		},
		Log: LogConfig{Level: slog.LevelInfo, Format: "text", TransferLog: true},
	}
}

// compressionList maps sshd's Compression to a transport list. "yes" has
// meant delayed compression since OpenSSH 7.4; RFC 4253 "zlib", which
// exposes the decompressor before authentication, is never offered here.
func compressionList(on bool) []string {
	if on {
		return []string{"none", "zlib@openssh.com"}
	}
	return []string{"none"}
}

// ConfigError is a bad setting. It names the key (dotted for sections, e.g.
// "sftp.umask") and, when it came from a file, the file and line.
type ConfigError struct {
	File string // "" for defaults, flags and values set in code
	Line int    // 1-based; 0 when unknown
	Key  string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

func keyErr(key string, format string, args ...any) error {
	return &ConfigError{Key: key, Err: fmt.Errorf(format, args...)}
}

// LoadConfig reads a configuration file; path "" means Default(). The
// result is validated.
func LoadConfig(path string) (*Config, error) {
	if path == "" {
		c := Default()
		return c, c.Validate()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, maxConfigFile)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses and validates configuration text; name is used in
// error messages.
func ParseConfig(name string, data []byte) (*Config, error) {
	c := Default()
	c.Path = name
	if line, err := checkNesting(data); err != nil {
		return nil, &ConfigError{File: name, Line: line, Err: err}
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{File: name, Line: pe.Position.Line, Key: pe.LastKey, Err: errors.New(pe.Message)}
		}
		return nil, &ConfigError{File: name, Err: err}
	}
	p := fileParser{name: name, md: &md, top: top, sections: map[string]map[string]toml.Primitive{}, lines: map[string]int{}}
	if err := p.apply(c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.File == "" {
			ce.File = name
			ce.Line = p.lines[ce.Key]
		}
		return nil, err
	}
	return c, nil
}

// checkNesting bounds how deeply arrays, tables and dotted keys nest
// before the TOML parser sees the text: BurntSushi/toml v1.6.0 takes time
// and memory quadratic in the depth (30000 nested keys took over a minute
// and hundreds of MiB), and ferry's schema never nests deeper than 2. It
// skips strings and comments, and reports the line where the limit is
// passed.
func checkNesting(data []byte) (line int, err error) {
	line = 1
	depth, dots := 0, 0
	for i := 0; i < len(data); i++ {
		switch b := data[i]; b {
		case '\n':
			line++
			dots = 0
		case '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			delim := string(b)
			multi := i+2 < len(data) && data[i+1] == b && data[i+2] == b
			if multi {
				delim = strings.Repeat(delim, 3)
				i += 2
			}
			for i++; i < len(data); i++ {
				if data[i] == '\\' && b == '"' {
					if i+1 < len(data) && data[i+1] == '\n' {
						line++
					}
					i++
					continue
				}
				if data[i] == '\n' {
					if !multi {
						line++
						dots = 0
						break // unterminated; the parser reports it
					}
					line++
					continue
				}
				if bytes.HasPrefix(data[i:], []byte(delim)) {
					i += len(delim) - 1
					break
				}
			}
		case '[', '{':
			if depth++; depth > maxNesting {
				return line, fmt.Errorf("arrays and tables nested deeper than %d", maxNesting)
			}
		case ']', '}':
			depth = max(depth-1, 0)
		case '.':
			if dots++; dots > maxNesting {
				return line, fmt.Errorf("more than %d dots in one line outside strings (keys nested too deeply)", maxNesting)
			}
		}
	}
	return 0, nil
}

// fileParser applies a decoded TOML document to a Config, key by key in
// document order, so the first error reported is the first in the file.
type fileParser struct {
	name     string
	md       *toml.MetaData
	top      map[string]toml.Primitive
	sections map[string]map[string]toml.Primitive
	lines    map[string]int
}

// valueFunc lets a closure receive a raw TOML value through
// MetaData.PrimitiveDecode, which only hands values to Unmarshalers.
type valueFunc func(v any) error

func (f valueFunc) UnmarshalTOML(v any) error { return f(v) }

var errProbe = errors.New("probe")

// line finds where key is defined: decoding a Primitive into an
// Unmarshaler that fails makes BurntSushi/toml report the key's position,
// which it does not otherwise expose.
func (p *fileParser) line(prim toml.Primitive) int {
	err := p.md.PrimitiveDecode(prim, valueFunc(func(any) error { return errProbe }))
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Position.Line
	}
	return 0
}

func (p *fileParser) fail(key string, line int, err error) error {
	return &ConfigError{File: p.name, Line: line, Key: key, Err: err}
}

func (p *fileParser) apply(c *Config) error {
	for _, k := range p.md.Keys() {
		if _, isSection := sectionKeys[k[0]]; !isSection {
			if len(k) > 1 {
				if _, ok := topLevelKeys[k[0]]; ok {
					// e.g. "listen.x = 1" made listen a table.
					return p.fail(k[0], p.lineOfKey(k), fmt.Errorf("wrong type: %s is a value, not a table", k[0]))
				}
				return p.fail(k.String(), p.lineOfKey(k), unknownKeyErr(k[0], topLevelKeys))
			}
			if err := p.applyTop(c, k[0]); err != nil {
				return err
			}
			continue
		}
		// [sftp], [log] and [metrics]. A section can be implicit
		// ("sftp.umask = ..." at top level), so it is loaded on first
		// sight of any key in it.
		vals, err := p.section(k[0])
		if err != nil {
			return err
		}
		if len(k) == 1 {
			continue
		}
		dotted := k.String()
		if len(k) > 2 {
			return p.fail(dotted, p.lineOfKey(k), fmt.Errorf("unknown key (%s.%s is not a table)", k[0], k[1]))
		}
		set, ok := sectionKeys[k[0]][k[1]]
		if !ok {
			return p.fail(dotted, p.line(vals[k[1]]), unknownKeyErr(k[1], sectionKeys[k[0]]))
		}
		if err := p.set(c, dotted, vals[k[1]], set); err != nil {
			return err
		}
	}
	return nil
}

func (p *fileParser) section(name string) (map[string]toml.Primitive, error) {
	if vals, ok := p.sections[name]; ok {
		return vals, nil
	}
	prim := p.top[name]
	// Decoding a non-table into a map succeeds silently in
	// BurntSushi/toml v1.6.0, so look at the raw value first.
	var raw any
	_ = p.md.PrimitiveDecode(prim, valueFunc(func(v any) error { raw = v; return nil }))
	var vals map[string]toml.Primitive
	if _, ok := raw.(map[string]any); !ok {
		return nil, p.fail(name, p.line(prim), wrongType(raw, fmt.Sprintf("a table ([%s])", name)))
	}
	if err := p.md.PrimitiveDecode(prim, &vals); err != nil {
		return nil, p.fail(name, p.line(prim), err)
	}
	p.sections[name] = vals
	return vals, nil
}

// lineOfKey finds the line of a nested key by walking down its tables.
func (p *fileParser) lineOfKey(k toml.Key) int {
	prim := p.top[k[0]]
	for _, name := range k[1:] {
		var m map[string]toml.Primitive
		if err := p.md.PrimitiveDecode(prim, &m); err != nil {
			break
		}
		next, ok := m[name]
		if !ok {
			break
		}
		prim = next
	}
	return p.line(prim)
}

func (p *fileParser) applyTop(c *Config, name string) error {
	prim := p.top[name]
	set, ok := topLevelKeys[name]
	if !ok {
		return p.fail(name, p.line(prim), unknownKeyErr(name, topLevelKeys))
	}
	return p.set(c, name, prim, set)
}

func (p *fileParser) set(c *Config, key string, prim toml.Primitive, set setter) error {
	line := p.line(prim)
	p.lines[key] = line
	var setErr error
	_ = p.md.PrimitiveDecode(prim, valueFunc(func(v any) error {
		setErr = set(c, v)
		return setErr
	}))
	if setErr != nil {
		return p.fail(key, line, setErr)
	}
	return nil
}

// unknownKeyErr suggests the snake_case name when an admin wrote sshd's
// CamelCase keyword, or a known key one edit away.
func unknownKeyErr[V any](name string, known map[string]V) error {
	if s := snakeCase(name); s != name {
		if _, ok := known[s]; ok {
			return fmt.Errorf("unknown key (did you mean %q?)", s)
		}
	}
	best := ""
	for k := range known {
		if closeTo(strings.ToLower(name), k) && (best == "" || k < best) {
			best = k
		}
	}
	if best != "" {
		return fmt.Errorf("unknown key (did you mean %q?)", best)
	}
	return errors.New("unknown key")
}

func snakeCase(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// closeTo reports whether a and b differ by at most one insertion,
// deletion, substitution or transposition.
func closeTo(a, b string) bool {
	if len(a) > 64 || len(b) > 64 {
		return false
	}
	if a == b {
		return true
	}
	la, lb := len(a), len(b)
	if la == lb {
		diff := -1
		n := 0
		for i := range la {
			if a[i] != b[i] {
				if n == 0 {
					diff = i
				}
				n++
			}
		}
		if n == 1 {
			return true
		}
		return n == 2 && diff+1 < la && a[diff] == b[diff+1] && a[diff+1] == b[diff]
	}
	if la > lb {
		a, b, la, lb = b, a, lb, la
	}
	if lb-la != 1 {
		return false
	}
	for i := range la {
		if a[i] != b[i] {
			return a[i:] == b[i+1:]
		}
	}
	return true
}

type setter func(c *Config, v any) error

// topLevelKeys maps each top-level key to the function that parses it.
// An immutable table.
var topLevelKeys = map[string]setter{
	"listen": func(c *Config, v any) error {
		l, err := asStrings(v)
		if err != nil {
			return err
		}
		c.Listen = l
		return nil
	},
	"data_dir":                   stringSetter(func(c *Config) *string { return &c.DataDir }),
	"database":                   stringSetter(func(c *Config) *string { return &c.Database }),
	"host_keys":                  func(c *Config, v any) (err error) { c.HostKeys, err = asStringsOrNil(v); return },
	"kex_algorithms":             algSetter(transport.KindKex, func(c *Config) *[]string { return &c.KexAlgorithms }),
	"ciphers":                    algSetter(transport.KindCipher, func(c *Config) *[]string { return &c.Ciphers }),
	"macs":                       algSetter(transport.KindMAC, func(c *Config) *[]string { return &c.MACs }),
	"host_key_algorithms":        algSetter(transport.KindHostKey, func(c *Config) *[]string { return &c.HostKeyAlgorithms }),
	"pubkey_accepted_algorithms": pubkeyAlgSetter,
	"ca_signature_algorithms":    caAlgSetter,
	"compression": func(c *Config, v any) error {
		on, err := parseCompression(v)
		if err != nil {
			return err
		}
		c.Compression, c.Compressions = on, compressionList(on)
		return nil
	},
	"rekey_limit": func(c *Config, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		c.RekeyLimit, err = ParseRekeyLimit(s)
		return err
	},
	"max_auth_tries": intSetter(1, maxAuthTriesLimit, func(c *Config) *int { return &c.MaxAuthTries }),
	"required_rsa_size": intSetter(minRequiredRSASize, maxRequiredRSASize,
		func(c *Config) *int { return &c.RequiredRSASize }),
	"login_grace_time": durationSetter(func(c *Config) *time.Duration { return &c.LoginGraceTime }),
	"max_startups": func(c *Config, v any) error {
		var s string
		switch v := v.(type) {
		case int64:
			s = strconv.FormatInt(v, 10)
		case string:
			s = v
		default:
			return wrongType(v, `a string "start:rate:full" or an integer`)
		}
		m, err := ParseMaxStartups(s)
		c.MaxStartups = m
		return err
	},
	"per_source_max_startups": func(c *Config, v any) error {
		if s, ok := v.(string); ok {
			if s == "none" {
				c.PerSourceMaxStartups = 0
				return nil
			}
			return fmt.Errorf(`bad value %q: want an integer or "none"`, s)
		}
		n, err := asIntRange(v, 1, maxStartupsLimit)
		c.PerSourceMaxStartups = int(n)
		return err
	},
	"per_source_penalties": func(c *Config, v any) error {
		var s string
		switch v := v.(type) {
		case bool:
			s = map[bool]string{true: "yes", false: "no"}[v]
		case string:
			s = v
		default:
			return wrongType(v, "a string or a boolean")
		}
		p, err := ParsePerSourcePenalties(s)
		c.PerSourcePenalties = p
		return err
	},
	"per_source_penalty_exempt_list": func(c *Config, v any) error {
		var entries []string
		if s, ok := v.(string); ok {
			if s != "none" {
				entries = strings.Split(s, ",")
			}
		} else {
			var err error
			if entries, err = asStrings(v); err != nil {
				return err
			}
		}
		c.PerSourcePenaltyExemptList = nil
		for _, e := range entries {
			p, err := parsePrefix(strings.TrimSpace(e))
			if err != nil {
				return err
			}
			c.PerSourcePenaltyExemptList = append(c.PerSourcePenaltyExemptList, p)
		}
		return nil
	},
	"per_source_net_block_size": func(c *Config, v any) error {
		var s string
		switch v := v.(type) {
		case int64:
			s = strconv.FormatInt(v, 10)
		case string:
			s = v
		default:
			return wrongType(v, `a string "ipv4bits:ipv6bits"`)
		}
		n, err := ParseNetBlockSize(s)
		c.PerSourceNetBlockSize = n
		return err
	},
	"max_sessions":                   intSetter(0, maxSessionsLimit, func(c *Config) *int { return &c.MaxSessions }),
	"max_connections_per_account":    intSetter(0, maxConnectionsLimit, func(c *Config) *int { return &c.MaxConnectionsPerAccount }),
	"client_alive_interval":          durationSetter(func(c *Config) *time.Duration { return &c.ClientAliveInterval }),
	"client_alive_count_max":         intSetter(0, maxAuthTriesLimit, func(c *Config) *int { return &c.ClientAliveCountMax }),
	"password_authentication":        boolSetter(func(c *Config) *bool { return &c.PasswordAuthentication }),
	"pubkey_authentication":          boolSetter(func(c *Config) *bool { return &c.PubkeyAuthentication }),
	"kbd_interactive_authentication": boolSetter(func(c *Config) *bool { return &c.KbdInteractiveAuthentication }),
	"authentication_methods": func(c *Config, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		c.AuthenticationMethods, err = ParseAuthenticationMethods(s)
		return err
	},
	"trusted_user_ca_keys": noneStringSetter(func(c *Config) *string { return &c.TrustedUserCAKeys }),
	"revoked_keys":         noneStringSetter(func(c *Config) *string { return &c.RevokedKeys }),
	"banner":               noneStringSetter(func(c *Config) *string { return &c.Banner }),
	"allow_tcp_forwarding": func(c *Config, v any) error {
		f, err := parseForwarding(v)
		c.AllowTCPForwarding = f
		return err
	},
	"permit_open": func(c *Config, v any) error {
		var entries []string
		if s, ok := v.(string); ok {
			entries = strings.Fields(s)
		} else {
			var err error
			if entries, err = asStrings(v); err != nil {
				return err
			}
		}
		p, err := ParsePermitOpen(entries)
		c.PermitOpen = p
		return err
	},
	"accept_env":       func(c *Config, v any) (err error) { c.AcceptEnv, err = asStringsOrNil(v); return },
	"proxy_protocol":   boolSetter(func(c *Config) *bool { return &c.ProxyProtocol }),
	"gateway_ports":    boolSetter(func(c *Config) *bool { return &c.GatewayPorts }),
	"allowed_commands": func(c *Config, v any) (err error) { c.AllowedCommands, err = asStringsOrNil(v); return },
	"run_as":           stringSetter(func(c *Config) *string { return &c.RunAs }),
	"shell_uid":        idSetter(func(c *Config) **uint32 { return &c.ShellUID }),
	"shell_gid":        idSetter(func(c *Config) **uint32 { return &c.ShellGID }),
}

// sectionKeys maps each section to its keys. An immutable table.
var sectionKeys = map[string]map[string]setter{
	"sftp": {
		"atomic_uploads":           boolSetter(func(c *Config) *bool { return &c.SFTP.AtomicUploads }),
		"keep_interrupted_uploads": boolSetter(func(c *Config) *bool { return &c.SFTP.KeepInterruptedUploads }),
		"umask": func(c *Config, v any) error {
			m, err := parseUmask(v)
			c.SFTP.Umask = m
			return err
		},
		"max_handles": intSetter(1, maxHandlesLimit, func(c *Config) *int { return &c.SFTP.MaxHandles }),
		"read_limit":  sizeSetter(func(c *Config) *int64 { return &c.SFTP.ReadLimit }),
		"write_limit": sizeSetter(func(c *Config) *int64 { return &c.SFTP.WriteLimit }),
	},
	"log": {
		"level": func(c *Config, v any) error {
			s, err := asString(v)
			if err != nil {
				return err
			}
			c.Log.Level, err = parseLogLevel(s)
			return err
		},
		"format": func(c *Config, v any) error {
			s, err := asString(v)
			if err != nil {
				return err
			}
			if s != "text" && s != "json" {
				return fmt.Errorf(`bad value %q: want "text" or "json"`, s)
			}
			c.Log.Format = s
			return nil
		},
		"transfer_log": boolSetter(func(c *Config) *bool { return &c.Log.TransferLog }),
	},
	"metrics": {
		"listen": stringSetter(func(c *Config) *string { return &c.Metrics.Listen }),
		"pprof":  boolSetter(func(c *Config) *bool { return &c.Metrics.Pprof }),
	},
}

func stringSetter(f func(*Config) *string) setter {
	return func(c *Config, v any) error {
		s, err := asString(v)
		*f(c) = s
		return err
	}
}

// noneStringSetter is for sshd's file options where "none" means unset.
func noneStringSetter(f func(*Config) *string) setter {
	return func(c *Config, v any) error {
		s, err := asString(v)
		if s == "none" {
			s = ""
		}
		*f(c) = s
		return err
	}
}

func boolSetter(f func(*Config) *bool) setter {
	return func(c *Config, v any) error {
		b, err := asBool(v)
		*f(c) = b
		return err
	}
}

func intSetter(lo, hi int, f func(*Config) *int) setter {
	return func(c *Config, v any) error {
		n, err := asIntRange(v, int64(lo), int64(hi))
		*f(c) = int(n)
		return err
	}
}

func durationSetter(f func(*Config) *time.Duration) setter {
	return func(c *Config, v any) error {
		d, err := parseDurationValue(v)
		*f(c) = d
		return err
	}
}

func sizeSetter(f func(*Config) *int64) setter {
	return func(c *Config, v any) error {
		var n int64
		switch v := v.(type) {
		case int64:
			if v < 0 {
				return fmt.Errorf("must not be negative (got %d)", v)
			}
			n = v
		case string:
			u, err := ParseSize(v)
			if err != nil {
				return err
			}
			if u > math.MaxInt64 {
				return fmt.Errorf("bad size %q: too large", v)
			}
			n = int64(u)
		default:
			return wrongType(v, `a size like "10M" or an integer`)
		}
		*f(c) = n
		return nil
	}
}

func idSetter(f func(*Config) **uint32) setter {
	return func(c *Config, v any) error {
		// 0 would run customer commands as root; 2^32-1 is (uid_t)-1,
		// which setuid(2) treats as "unchanged".
		n, err := asIntRange(v, 1, math.MaxUint32-1)
		if err != nil {
			return err
		}
		id := uint32(n)
		*f(c) = &id
		return nil
	}
}

func algSetter(kind transport.AlgorithmKind, f func(*Config) *[]string) setter {
	return algListSetter(
		func(spec string) ([]string, error) { return transport.ParseAlgorithmList(kind, spec) },
		func(l []string) error { return transport.ValidateAlgorithms(kind, l) }, f)
}

var (
	pubkeyAlgSetter = signatureAlgSetter("pubkey", allPubkeyAlgorithms, defaultPubkeyAlgorithms,
		func(c *Config) *[]string { return &c.PubkeyAcceptedAlgorithms })
	caAlgSetter = signatureAlgSetter("ca signature", allCASignatureAlgorithms, defaultCASignatureAlgorithms,
		func(c *Config) *[]string { return &c.CASignatureAlgorithms })
)

// signatureAlgSetter sets a list of public key algorithms, a kind
// transport has no table for.
func signatureAlgSetter(kind string, all, defaults func() []string, f func(*Config) *[]string) setter {
	return algListSetter(
		func(spec string) ([]string, error) { return resolveAlgorithmList(kind, all(), defaults(), spec) },
		func(l []string) error { return validateSignatureAlgorithms(kind, all(), l) }, f)
}

// algListSetter sets an algorithm list written in sshd_config's list
// syntax (resolved by parse) or as a TOML array of names (checked by
// validate).
func algListSetter(parse func(string) ([]string, error), validate func([]string) error, f func(*Config) *[]string) setter {
	return func(c *Config, v any) error {
		switch v := v.(type) {
		case string:
			l, err := parse(v)
			if err != nil {
				return err
			}
			*f(c) = l
			return nil
		case []any:
			l, err := asStrings(v)
			if err != nil {
				return err
			}
			if err := validate(l); err != nil {
				return err
			}
			*f(c) = l
			return nil
		}
		return wrongType(v, `a string ("+name,...", "-name", "^name" or "a,b") or an array of names`)
	}
}

// tomlType names a decoded TOML value's type as the TOML spec does.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	case time.Time:
		return "datetime"
	}
	return fmt.Sprintf("%T", v)
}

func wrongType(v any, want string) error {
	return fmt.Errorf("wrong type: want %s, got %s", want, tomlType(v))
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", wrongType(v, "a string")
	}
	return s, nil
}

func asStrings(v any) ([]string, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, wrongType(v, "an array of strings")
	}
	out := make([]string, 0, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("wrong type: element %d: want a string, got %s", i+1, tomlType(e))
		}
		out = append(out, s)
	}
	return out, nil
}

// asStringsOrNil is asStrings with an empty array meaning "none" (nil).
func asStringsOrNil(v any) ([]string, error) {
	l, err := asStrings(v)
	if len(l) == 0 {
		return nil, err
	}
	return l, err
}

// asBool takes a TOML boolean or sshd's "yes"/"no".
func asBool(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "yes":
			return true, nil
		case "no":
			return false, nil
		}
		return false, fmt.Errorf(`bad value %q: want true, false, "yes" or "no"`, v)
	}
	return false, wrongType(v, "a boolean")
}

func asIntRange(v any, lo, hi int64) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, wrongType(v, "an integer")
	}
	if n < 0 && lo >= 0 {
		return 0, fmt.Errorf("must not be negative (got %d)", n)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("out of range: %d is not between %d and %d", n, lo, hi)
	}
	return n, nil
}

// parseDurationValue takes a duration string or an integer number of
// seconds, as sshd's time options do.
func parseDurationValue(v any) (time.Duration, error) {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("must not be negative (got %d)", v)
		}
		if v > int64(maxDuration/time.Second) {
			return 0, fmt.Errorf("bad duration %d: longer than %v", v, maxDuration)
		}
		return time.Duration(v) * time.Second, nil
	case string:
		return ParseDuration(v)
	}
	return 0, wrongType(v, `a duration like "30s" or an integer number of seconds`)
}

// ParseDuration parses sshd_config(5)'s TIME FORMATS ("90", "30s", "2m",
// "1h30m", "1w2d"; a bare number is seconds; units s, m, h, d, w in either
// case) and, failing that, Go's time.ParseDuration ("500ms", "1.5h").
func ParseDuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf(`bad duration %q: %s (want e.g. "30s", "2m", "1h30m" or seconds)`, s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return bad("empty")
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("must not be negative (got %q)", s)
	}
	if d, ok := parseSSHDTime(t); ok {
		if d > maxDuration {
			return bad(fmt.Sprintf("longer than %v", maxDuration))
		}
		return d, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return bad("not a duration")
	}
	if d > maxDuration {
		return bad(fmt.Sprintf("longer than %v", maxDuration))
	}
	return d, nil
}

func parseSSHDTime(s string) (time.Duration, bool) {
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, false // no digits, or too many to be a sane value
		}
		n, _ := strconv.Atoi(s[:i])
		unit := time.Second
		s = s[i:]
		if s != "" {
			switch s[0] {
			case 's', 'S':
			case 'm', 'M':
				unit = time.Minute
			case 'h', 'H':
				unit = time.Hour
			case 'd', 'D':
				unit = 24 * time.Hour
			case 'w', 'W':
				unit = 7 * 24 * time.Hour
			default:
				return 0, false
			}
			s = s[1:]
		}
		part := time.Duration(n) * unit
		if part/unit != time.Duration(n) || total > maxDuration {
			return maxDuration + 1, true
		}
		total += part
	}
	return total, true
}

// ParseSize parses sshd's size syntax: an integer with an optional K, M, G
// or T suffix (powers of 1024, either case), e.g. "512M", "1G".
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("must not be negative (got %q)", s)
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf(`bad size %q: want an integer with an optional K, M, G or T suffix, e.g. "10M"`, s)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return n * mult, nil
}

// ParseRekeyLimit parses sshd's RekeyLimit: "<size>|default [<time>|none]".
// A missing time keeps transport's default interval.
func ParseRekeyLimit(s string) (RekeyLimit, error) {
	var r RekeyLimit
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return r, fmt.Errorf(`bad rekey limit %q: want "<size>|default [<time>|none]", e.g. "1G 1h"`, s)
	}
	if f[0] != "default" {
		n, err := ParseSize(f[0])
		if err != nil {
			return r, err
		}
		if n != 0 && n < minRekeyBytes {
			return r, fmt.Errorf("bad rekey limit %q: at least %d bytes", s, minRekeyBytes)
		}
		r.Bytes = n
	}
	if len(f) == 2 {
		if f[1] == "none" {
			r.Interval = RekeyNever
		} else {
			d, err := ParseDuration(f[1])
			if err != nil {
				return r, err
			}
			r.Interval = d
		}
	}
	return r, nil
}

// ParseMaxStartups parses sshd's MaxStartups: "start:rate:full" or a single
// number n (refuse every unauthenticated connection beyond n).
func ParseMaxStartups(s string) (MaxStartups, error) {
	bad := func(why string) (MaxStartups, error) {
		return MaxStartups{}, fmt.Errorf(`bad max_startups %q: %s (want "start:rate:full", e.g. "10:30:100", or a single number)`, s, why)
	}
	parts := strings.Split(strings.TrimSpace(s), ":")
	var n [3]int
	for i, p := range parts {
		if i >= 3 {
			return bad("too many fields")
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			return bad("not a number")
		}
		n[i] = v
	}
	var m MaxStartups
	switch len(parts) {
	case 1:
		m = MaxStartups{Start: n[0], Rate: 100, Full: n[0]}
	case 3:
		m = MaxStartups{Start: n[0], Rate: n[1], Full: n[2]}
	default:
		return bad("want 1 or 3 fields")
	}
	if err := m.check(); err != nil {
		return bad(err.Error())
	}
	return m, nil
}

func (m MaxStartups) check() error {
	switch {
	case m.Start <= 0 || m.Full <= 0:
		return errors.New("start and full must be positive")
	case m.Start > m.Full:
		return errors.New("start exceeds full")
	case m.Rate < 1 || m.Rate > 100:
		return errors.New("rate must be between 1 and 100")
	case m.Full > maxStartupsLimit:
		return fmt.Errorf("full exceeds %d", maxStartupsLimit)
	}
	return nil
}

// ParseNetBlockSize parses sshd's PerSourceNetBlockSize "ipv4bits[:ipv6bits]".
func ParseNetBlockSize(s string) (NetBlockSize, error) {
	n := NetBlockSize{IPv4: 32, IPv6: 128}
	v4, v6, has6 := strings.Cut(strings.TrimSpace(s), ":")
	var err error
	if n.IPv4, err = strconv.Atoi(v4); err != nil || n.IPv4 < 0 || n.IPv4 > 32 {
		return NetBlockSize{}, fmt.Errorf(`bad net block size %q: IPv4 bits must be 0-32 (want e.g. "32:128")`, s)
	}
	if has6 {
		if n.IPv6, err = strconv.Atoi(v6); err != nil || n.IPv6 < 0 || n.IPv6 > 128 {
			return NetBlockSize{}, fmt.Errorf(`bad net block size %q: IPv6 bits must be 0-128 (want e.g. "32:128")`, s)
		}
	}
	return n, nil
}

// ParsePerSourcePenalties parses sshd's PerSourcePenalties (OpenSSH 9.8):
// "yes", "no", or space-separated settings over sshd's defaults. As in
// sshd, giving any setting turns penalties on, and overflow6 follows
// overflow unless given.
func ParsePerSourcePenalties(s string) (PerSourcePenalties, error) {
	p := DefaultPerSourcePenalties()
	f := strings.Fields(s)
	if len(f) == 0 {
		return p, errors.New(`empty per_source_penalties: want "yes", "no" or settings like "authfail:5s max:10m"`)
	}
	if len(f) == 1 {
		switch strings.ToLower(f[0]) {
		case "yes":
			return p, nil
		case "no":
			p.Enabled = false
			return p, nil
		}
	}
	overflow6Set := false
	for _, arg := range f {
		name, val, ok := strings.Cut(arg, ":")
		lname := strings.ToLower(name)
		if !ok {
			if lname == "yes" || lname == "no" {
				return p, fmt.Errorf("bad per_source_penalties: %q must appear alone", arg)
			}
			return p, fmt.Errorf("bad per_source_penalties: unknown setting %q", arg)
		}
		var dur *time.Duration
		switch name {
		case "crash":
			dur = &p.Crash
		case "authfail":
			dur = &p.AuthFail
		case "invaliduser":
			dur = &p.InvalidUser
		case "noauth":
			dur = &p.NoAuth
		case "grace-exceeded":
			dur = &p.GraceExceeded
		case "refuseconnection":
			dur = &p.RefuseConnection
		case "max":
			dur = &p.Max
		case "min":
			dur = &p.Min
		case "max-sources4", "max-sources6":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxPenaltySources {
				return p, fmt.Errorf("bad per_source_penalties: %s must be between 1 and %d", arg, maxPenaltySources)
			}
			if name == "max-sources4" {
				p.MaxSources4 = n
			} else {
				p.MaxSources6 = n
			}
		case "overflow", "overflow6":
			var o PenaltyOverflow
			switch val {
			case "permissive":
				o = OverflowPermissive
			case "deny-all":
				o = OverflowDenyAll
			default:
				return p, fmt.Errorf(`bad per_source_penalties: %s: want "permissive" or "deny-all"`, arg)
			}
			if name == "overflow" {
				p.Overflow = o
			} else {
				p.Overflow6, overflow6Set = o, true
			}
		default:
			return p, fmt.Errorf("bad per_source_penalties: unknown setting %q", arg)
		}
		if dur != nil {
			d, err := ParseDuration(val)
			if err != nil {
				return p, fmt.Errorf("bad per_source_penalties: %s: %w", name, err)
			}
			*dur = d
		}
	}
	if !overflow6Set {
		p.Overflow6 = p.Overflow
	}
	p.Enabled = true
	return p, nil
}

// authMethodNames are the methods ferry's auth package implements
// (RFC 4252 §7, §8; RFC 4256).
var authMethodNames = []string{"publickey", "password", "keyboard-interactive"}

// ParseAuthenticationMethods parses sshd's AuthenticationMethods: "any", or
// space-separated lists of comma-separated methods, each list a sequence
// that must all succeed.
func ParseAuthenticationMethods(s string) ([][]string, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, errors.New(`empty authentication_methods: want "any" or lists like "publickey,password"`)
	}
	if len(f) == 1 && f[0] == "any" {
		return nil, nil
	}
	var out [][]string
	for _, list := range f {
		var seq []string
		for _, m := range strings.Split(list, ",") {
			if !slices.Contains(authMethodNames, m) {
				if m == "any" {
					return nil, errors.New(`bad authentication_methods: "any" must appear alone`)
				}
				return nil, fmt.Errorf("bad authentication_methods: unknown method %q (want %s)", m, strings.Join(authMethodNames, ", "))
			}
			seq = append(seq, m)
		}
		out = append(out, seq)
	}
	return out, nil
}

func parseCompression(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch v {
		case "yes", "delayed":
			return true, nil
		case "no":
			return false, nil
		}
		return false, fmt.Errorf(`bad value %q: want true, false, "yes", "delayed" or "no"`, v)
	}
	return false, wrongType(v, `a boolean or "yes"/"delayed"/"no"`)
}

func parseForwarding(v any) (Forwarding, error) {
	switch v := v.(type) {
	case bool:
		if v {
			return ForwardingYes, nil
		}
		return ForwardingNo, nil
	case string:
		switch v {
		case "yes", "all":
			return ForwardingYes, nil
		case "no":
			return ForwardingNo, nil
		case "local":
			return ForwardingLocal, nil
		case "remote":
			return ForwardingRemote, nil
		}
		return ForwardingNo, fmt.Errorf(`bad value %q: want true, false, "yes", "no", "local" or "remote"`, v)
	}
	return ForwardingNo, wrongType(v, `a boolean or "yes"/"no"/"local"/"remote"`)
}

// ParsePermitOpen parses sshd's PermitOpen entries: "any", "none", or
// host:port targets where host or port may be "*" and an IPv6 host is in
// brackets.
func ParsePermitOpen(entries []string) (PermitOpen, error) {
	if len(entries) == 0 {
		return PermitOpen{}, errors.New(`empty permit_open: want "any", "none" or "host:port" entries`)
	}
	if len(entries) == 1 {
		switch entries[0] {
		case "any":
			return PermitOpen{Any: true}, nil
		case "none":
			return PermitOpen{}, nil
		}
	}
	var p PermitOpen
	for _, e := range entries {
		if e == "any" || e == "none" {
			return PermitOpen{}, fmt.Errorf("bad permit_open: %q must appear alone", e)
		}
		host, port, err := net.SplitHostPort(e)
		if err != nil || host == "" {
			return PermitOpen{}, fmt.Errorf(`bad permit_open entry %q: want "host:port" (host or port may be "*")`, e)
		}
		t := PermitTarget{Host: host}
		if port != "*" {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				return PermitOpen{}, fmt.Errorf("bad permit_open entry %q: bad port number", e)
			}
			t.Port = n
		}
		p.Targets = append(p.Targets, t)
	}
	return p, nil
}

// parsePrefix takes an address or a CIDR block, as sshd's
// PerSourcePenaltyExemptList does.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: want an address or address/bits, e.g. \"192.0.2.0/24\"", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: host bits set (did you mean %s?)", s, p.Masked())
		}
		// Addresses are matched unmapped (penaltySettings.exempted): an
		// IPv4-mapped block means the IPv4 block, as a bare mapped
		// address already does.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q: want an address or address/bits, e.g. \"192.0.2.0/24\"", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// parseUmask takes an octal string ("022", "0o022") or a TOML integer
// (write it as 0o022: a decimal 22 is 0o26).
func parseUmask(v any) (fs.FileMode, error) {
	var n uint64
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("must not be negative (got %d)", v)
		}
		n = uint64(v)
	case string:
		s := strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O")
		var err error
		n, err = strconv.ParseUint(s, 8, 32)
		if err != nil || s == "" {
			return 0, fmt.Errorf(`bad octal umask %q: want octal digits, e.g. "022"`, v)
		}
	default:
		return 0, wrongType(v, `an octal string like "022" or an integer like 0o022`)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("bad octal umask %#o: only permission bits (0-0777) allowed", n)
	}
	return fs.FileMode(n), nil
}

func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf(`bad log level %q: want "debug", "info", "warn" or "error"`, s)
}

// pubkeyAlgorithms are the user-authentication public key algorithms
// (RFC 4252 §7) ferry's keys package verifies, in OpenSSH's default order
// (certificates first). Legacy ones use SHA-1 (ssh-rsa, RFC 8332 §3) or
// 1024-bit DSA and are off unless configured. An immutable table.
var pubkeyAlgorithms = []struct {
	name   string
	legacy bool
}{
	{"ssh-ed25519-cert-v01@openssh.com", false},
	{"ecdsa-sha2-nistp256-cert-v01@openssh.com", false},
	{"ecdsa-sha2-nistp384-cert-v01@openssh.com", false},
	{"ecdsa-sha2-nistp521-cert-v01@openssh.com", false},
	{"sk-ssh-ed25519-cert-v01@openssh.com", false},
	{"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", false},
	{"rsa-sha2-512-cert-v01@openssh.com", false},
	{"rsa-sha2-256-cert-v01@openssh.com", false},
	{"ssh-ed25519", false},
	{"ecdsa-sha2-nistp256", false},
	{"ecdsa-sha2-nistp384", false},
	{"ecdsa-sha2-nistp521", false},
	{"sk-ssh-ed25519@openssh.com", false},
	{"sk-ecdsa-sha2-nistp256@openssh.com", false},
	{"rsa-sha2-512", false},
	{"rsa-sha2-256", false},
	{"ssh-rsa-cert-v01@openssh.com", true},
	{"ssh-dss-cert-v01@openssh.com", true},
	{"ssh-rsa", true},
	{"ssh-dss", true},
}

func defaultPubkeyAlgorithms() []string {
	var out []string
	for _, a := range pubkeyAlgorithms {
		if !a.legacy {
			out = append(out, a.name)
		}
	}
	return out
}

func allPubkeyAlgorithms() []string {
	out := make([]string, 0, len(pubkeyAlgorithms))
	for _, a := range pubkeyAlgorithms {
		out = append(out, a.name)
	}
	return out
}

// ParsePubkeyAlgorithms resolves pubkey_accepted_algorithms written in
// sshd_config's list syntax, with the same rules as
// transport.ParseAlgorithmList.
func ParsePubkeyAlgorithms(spec string) ([]string, error) {
	return resolveAlgorithmList("pubkey", allPubkeyAlgorithms(), defaultPubkeyAlgorithms(), spec)
}

func validatePubkeyAlgorithms(list []string) error {
	return validateSignatureAlgorithms("pubkey", allPubkeyAlgorithms(), list)
}

func validateSignatureAlgorithms(kind string, all, list []string) error {
	if len(list) == 0 {
		return fmt.Errorf("%s: empty algorithm list", kind)
	}
	for _, n := range list {
		if !slices.Contains(all, n) {
			return fmt.Errorf("%s: unknown algorithm %q", kind, n)
		}
	}
	return nil
}

// allCASignatureAlgorithms are the algorithms a CA can sign a certificate
// with: the plain (not -cert-v01) user algorithms.
func allCASignatureAlgorithms() []string {
	var out []string
	for _, a := range pubkeyAlgorithms {
		if !strings.Contains(a.name, "-cert-v01@") {
			out = append(out, a.name)
		}
	}
	return out
}

// defaultCASignatureAlgorithms leaves out the legacy (SHA-1) ones, as
// sshd's default has since 8.2: a CA's signature is what a chosen-prefix
// collision would forge, for every account at once.
func defaultCASignatureAlgorithms() []string {
	var out []string
	for _, a := range pubkeyAlgorithms {
		if !a.legacy && !strings.Contains(a.name, "-cert-v01@") {
			out = append(out, a.name)
		}
	}
	return out
}

// resolveAlgorithmList implements sshd_config(5)'s list syntax ("a,b"
// replaces, "+a" appends, "-a" removes, "^a" prepends; * and ? wildcards)
// for a kind transport has no table for.
func resolveAlgorithmList(kind string, all, defaults []string, spec string) ([]string, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("%s: empty algorithm list", kind)
	}
	op := byte(0)
	switch spec[0] {
	case '+', '-', '^':
		op, spec = spec[0], spec[1:]
	}
	var named []string
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("%s: empty entry in algorithm list", kind)
		}
		n := 0
		for _, a := range all {
			if ok, err := path.Match(e, a); err == nil && ok {
				n++
				if !slices.Contains(named, a) {
					named = append(named, a)
				}
			}
		}
		if n == 0 {
			if strings.ContainsAny(e, "*?") {
				return nil, fmt.Errorf("%s: pattern %q matches no algorithm", kind, e)
			}
			return nil, fmt.Errorf("%s: unknown algorithm %q", kind, e)
		}
	}
	var out []string
	switch op {
	case '+':
		out = slices.Clone(defaults)
		for _, n := range named {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	case '-':
		out = slices.DeleteFunc(slices.Clone(defaults), func(n string) bool { return slices.Contains(named, n) })
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: removing %q leaves no algorithm", kind, spec)
		}
	case '^':
		out = named
		for _, n := range defaults {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	default:
		out = named
	}
	return out, nil
}

// Overrides are settings given on the command line (--listen, --data-dir,
// --database) or by the environment (FERRY_DATA_DIR, FERRY_DATABASE, read
// by cmd/ferry). Empty fields leave the configuration alone. Apply the
// environment first and the flags second so that flags win.
type Overrides struct {
	Listen   []string // replaces listen
	DataDir  string
	Database string
}

// ApplyOverrides applies o and checks the values it set.
func (c *Config) ApplyOverrides(o Overrides) error {
	if len(o.Listen) > 0 {
		for _, a := range o.Listen {
			if err := checkListenAddr(a); err != nil {
				return &ConfigError{Key: "listen", Err: err}
			}
		}
		c.Listen = slices.Clone(o.Listen)
	}
	if o.DataDir != "" {
		c.DataDir = o.DataDir
	}
	if o.Database != "" {
		c.Database = o.Database
	}
	return nil
}

// checkListenAddr requires host:port with a numeric port; the host may be
// empty (all addresses), an IP literal (IPv6 in brackets) or a name.
func checkListenAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return fmt.Errorf("bad address %q: missing port (want host:port, e.g. \"0.0.0.0:2222\" or \"[::]:2222\")", a)
		}
		return fmt.Errorf("bad address %q: %v (want host:port, IPv6 in brackets)", a, errors.Unwrap(err))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad address %q: port must be a number 0-65535", a)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !isHostname(host) {
			return fmt.Errorf("bad address %q: %q is neither an IP address nor a host name", a, host)
		}
	}
	return nil
}

func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Validate checks the whole configuration, including values set in code
// or by ApplyOverrides. Errors are *ConfigError naming the key.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return keyErr("listen", "no listen address")
	}
	seen := map[string]bool{}
	for _, a := range c.Listen {
		if err := checkListenAddr(a); err != nil {
			return &ConfigError{Key: "listen", Err: err}
		}
		if seen[a] {
			return keyErr("listen", "duplicate address %q", a)
		}
		seen[a] = true
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return keyErr("data_dir", "empty path")
	}
	if err := validateDatabaseURL(c.Database); err != nil {
		return &ConfigError{Key: "database", Err: err}
	}
	for _, p := range c.HostKeys {
		if strings.TrimSpace(p) == "" {
			return keyErr("host_keys", "empty path")
		}
	}
	for _, a := range []struct {
		key  string
		kind transport.AlgorithmKind
		list []string
	}{
		{"kex_algorithms", transport.KindKex, c.KexAlgorithms},
		{"ciphers", transport.KindCipher, c.Ciphers},
		{"macs", transport.KindMAC, c.MACs},
		{"host_key_algorithms", transport.KindHostKey, c.HostKeyAlgorithms},
		{"compression", transport.KindCompression, c.Compressions},
	} {
		if err := transport.ValidateAlgorithms(a.kind, a.list); err != nil {
			return &ConfigError{Key: a.key, Err: err}
		}
	}
	if err := validatePubkeyAlgorithms(c.PubkeyAcceptedAlgorithms); err != nil {
		return &ConfigError{Key: "pubkey_accepted_algorithms", Err: err}
	}
	if err := validateSignatureAlgorithms("ca signature", allCASignatureAlgorithms(), c.CASignatureAlgorithms); err != nil {
		return &ConfigError{Key: "ca_signature_algorithms", Err: err}
	}
	if c.RekeyLimit.Bytes != 0 && c.RekeyLimit.Bytes < minRekeyBytes {
		return keyErr("rekey_limit", "at least %d bytes", minRekeyBytes)
	}
	if c.RekeyLimit.Interval < 0 {
		return keyErr("rekey_limit", "interval must not be negative")
	}
	if c.RequiredRSASize < minRequiredRSASize || c.RequiredRSASize > maxRequiredRSASize {
		return keyErr("required_rsa_size", "out of range: %d is not between %d and %d", c.RequiredRSASize, minRequiredRSASize, maxRequiredRSASize)
	}
	if c.MaxAuthTries < 1 || c.MaxAuthTries > maxAuthTriesLimit {
		return keyErr("max_auth_tries", "out of range: %d is not between 1 and %d", c.MaxAuthTries, maxAuthTriesLimit)
	}
	if err := checkDuration(c.LoginGraceTime); err != nil {
		return &ConfigError{Key: "login_grace_time", Err: err}
	}
	if err := c.MaxStartups.check(); err != nil {
		return keyErr("max_startups", "bad max_startups: %v", err)
	}
	if c.PerSourceMaxStartups < 0 || c.PerSourceMaxStartups > maxStartupsLimit {
		return keyErr("per_source_max_startups", "out of range: %d is not between 0 (none) and %d", c.PerSourceMaxStartups, maxStartupsLimit)
	}
	if err := c.PerSourcePenalties.check(); err != nil {
		return &ConfigError{Key: "per_source_penalties", Err: err}
	}
	if b := c.PerSourceNetBlockSize; b.IPv4 < 0 || b.IPv4 > 32 || b.IPv6 < 0 || b.IPv6 > 128 {
		return keyErr("per_source_net_block_size", "bad net block size %d:%d", b.IPv4, b.IPv6)
	}
	if c.MaxSessions < 0 || c.MaxSessions > maxSessionsLimit {
		return keyErr("max_sessions", "out of range: %d is not between 0 and %d", c.MaxSessions, maxSessionsLimit)
	}
	if err := checkDuration(c.ClientAliveInterval); err != nil {
		return &ConfigError{Key: "client_alive_interval", Err: err}
	}
	if c.ClientAliveCountMax < 0 || c.ClientAliveCountMax > maxAuthTriesLimit {
		return keyErr("client_alive_count_max", "out of range: %d is not between 0 and %d", c.ClientAliveCountMax, maxAuthTriesLimit)
	}
	if err := c.checkAuthMethods(); err != nil {
		return err
	}
	for _, f := range []struct{ key, path string }{{"trusted_user_ca_keys", c.TrustedUserCAKeys}, {"revoked_keys", c.RevokedKeys}, {"banner", c.Banner}} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return &ConfigError{Key: f.key, Err: err}
		}
		if !fi.Mode().IsRegular() {
			return keyErr(f.key, "%s is not a regular file", f.path)
		}
		// serve --check must fail on a CA file that start or reload
		// would refuse.
		if f.key == "trusted_user_ca_keys" {
			if _, err := loadTrustedUserCAKeys(f.path); err != nil {
				return &ConfigError{Key: f.key, Err: err}
			}
		}
		if f.key == "revoked_keys" {
			if _, err := loadRevokedKeys(f.path); err != nil {
				return &ConfigError{Key: f.key, Err: err}
			}
		}
		if f.key == "banner" && fi.Size() > maxBannerBytes {
			return keyErr(f.key, "%s is %d bytes; a banner may have at most %d (it is sent in one packet to every client before authentication)",
				f.path, fi.Size(), maxBannerBytes)
		}
	}
	if c.AllowTCPForwarding < ForwardingNo || c.AllowTCPForwarding > ForwardingRemote {
		return keyErr("allow_tcp_forwarding", "bad value %d", c.AllowTCPForwarding)
	}
	for _, t := range c.PermitOpen.Targets {
		if t.Host == "" || t.Port < 0 || t.Port > 65535 {
			return keyErr("permit_open", "bad target %q", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
		}
	}
	for _, e := range c.AcceptEnv {
		// sshd: "Invalid environment name".
		if e == "" || strings.ContainsAny(e, "=\x00") {
			return keyErr("accept_env", "bad environment name pattern %q", e)
		}
	}
	for _, cmd := range c.AllowedCommands {
		if strings.TrimSpace(cmd) == "" || strings.ContainsAny(cmd, "\x00\n\r") {
			return keyErr("allowed_commands", "bad command %q", cmd)
		}
	}
	if c.RunAs != "" && (strings.ContainsAny(c.RunAs, " \t:/\x00") || len(c.RunAs) > 32) {
		return keyErr("run_as", "bad user name %q", c.RunAs)
	}
	// Half a credential would run commands with the server's own group
	// (or user), which is never what the admin meant.
	if c.ShellUID != nil && c.ShellGID == nil {
		return keyErr("shell_uid", "set shell_gid too")
	}
	if c.ShellGID != nil && c.ShellUID == nil {
		return keyErr("shell_gid", "set shell_uid too")
	}
	if c.SFTP.Umask > 0o777 {
		return keyErr("sftp.umask", "bad octal umask %#o: only permission bits (0-0777) allowed", uint32(c.SFTP.Umask))
	}
	if c.SFTP.MaxHandles < 1 || c.SFTP.MaxHandles > maxHandlesLimit {
		return keyErr("sftp.max_handles", "out of range: %d is not between 1 and %d", c.SFTP.MaxHandles, maxHandlesLimit)
	}
	if c.SFTP.ReadLimit < 0 {
		return keyErr("sftp.read_limit", "must not be negative (got %d)", c.SFTP.ReadLimit)
	}
	if c.SFTP.WriteLimit < 0 {
		return keyErr("sftp.write_limit", "must not be negative (got %d)", c.SFTP.WriteLimit)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return keyErr("log.format", `bad value %q: want "text" or "json"`, c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		if err := checkListenAddr(c.Metrics.Listen); err != nil {
			return &ConfigError{Key: "metrics.listen", Err: err}
		}
		if slices.Contains(c.Listen, c.Metrics.Listen) {
			return keyErr("metrics.listen", "%q is also an SSH listen address", c.Metrics.Listen)
		}
	}
	return nil
}

func checkDuration(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("must not be negative (got %v)", d)
	}
	if d > maxDuration {
		return fmt.Errorf("bad duration %v: longer than %v", d, maxDuration)
	}
	return nil
}

func (p PerSourcePenalties) check() error {
	for _, d := range []time.Duration{p.Crash, p.AuthFail, p.InvalidUser, p.NoAuth, p.GraceExceeded, p.RefuseConnection, p.Max, p.Min} {
		if err := checkDuration(d); err != nil {
			return err
		}
	}
	if p.MaxSources4 < 1 || p.MaxSources4 > maxPenaltySources || p.MaxSources6 < 1 || p.MaxSources6 > maxPenaltySources {
		return fmt.Errorf("max-sources4/6 must be between 1 and %d", maxPenaltySources)
	}
	return nil
}

// checkAuthMethods refuses a configuration nobody can log in with: every
// method disabled, or no authentication_methods list whose methods are all
// enabled (sshd: "AuthenticationMethods cannot be satisfied").
func (c *Config) checkAuthMethods() error {
	enabled := map[string]bool{
		"publickey":            c.PubkeyAuthentication,
		"password":             c.PasswordAuthentication,
		"keyboard-interactive": c.KbdInteractiveAuthentication,
	}
	if !c.PubkeyAuthentication && !c.PasswordAuthentication && !c.KbdInteractiveAuthentication {
		return keyErr("pubkey_authentication", "every authentication method is disabled; nobody could log in")
	}
	if c.AuthenticationMethods == nil {
		return nil
	}
	for _, seq := range c.AuthenticationMethods {
		ok := len(seq) > 0
		for _, m := range seq {
			if !slices.Contains(authMethodNames, m) {
				return keyErr("authentication_methods", "unknown method %q", m)
			}
			ok = ok && enabled[m]
		}
		if ok {
			return nil
		}
	}
	return keyErr("authentication_methods", "no list can be satisfied with the enabled methods (check *_authentication)")
}

// validateDatabaseURL refuses a database setting the store cannot open,
// so that serve --check fails on it (it said "configuration OK", and
// only the start failed). The message never repeats the URL: a
// PostgreSQL URL holds the password, and an unencoded '%', '/' or '#' in
// it is the usual reason it does not parse.
func validateDatabaseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL (not repeated: it may hold a password); percent-encode % @ / ? # [ ] and spaces in its user name, password and path (% as %25)")
	}
	switch u.Scheme {
	case "sqlite", "sqlite3", "postgres", "postgresql":
		return nil
	}
	return fmt.Errorf("unsupported scheme %q: want sqlite:///path/ferry.db or postgres://", u.Scheme)
}

// DatabaseURL returns Database, or the default SQLite URL
// sqlite:///<absolute data_dir>/ferry.db.
func (c *Config) DatabaseURL() (string, error) {
	if c.Database != "" {
		return c.Database, nil
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return "", fmt.Errorf("config: data_dir: %w", err)
	}
	return "sqlite://" + filepath.ToSlash(filepath.Join(dir, "ferry.db")), nil
}

// HomeRoot is the directory holding users' homes, <data_dir>/home.
func (c *Config) HomeRoot() (string, error) {
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return "", fmt.Errorf("config: data_dir: %w", err)
	}
	return filepath.Join(dir, "home"), nil
}

// HomeDir is a user's home, <data_dir>/home/<user>. The name must be a
// single path element; the store validates user names, this is the last
// line against a name that would escape the home root.
func (c *Config) HomeDir(user string) (string, error) {
	if user == "" || user == "." || user == ".." || strings.ContainsAny(user, "/\\\x00") {
		return "", fmt.Errorf("config: user name %q cannot be a directory name", user)
	}
	root, err := c.HomeRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, user), nil
}

// RedactedDatabaseURL is DatabaseURL with any password replaced, for logs.
func (c *Config) RedactedDatabaseURL() string {
	s, err := c.DatabaseURL()
	if err != nil {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		// Not a URL (e.g. a libpq key=value string): say nothing more
		// than its scheme-less kind rather than risk printing a password.
		return "(unparsed database setting)"
	}
	// libpq and pgx also take the password (and sslpassword, a client
	// key's passphrase) as query parameters.
	if q := u.Query(); len(q) > 0 {
		redacted := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
				redacted = true
			}
		}
		if redacted {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// DSAEnabled reports whether ssh-dss is among the host key algorithms, the
// only case in which a DSA host key is generated and loaded by default.
func (c *Config) DSAEnabled() bool { return slices.Contains(c.HostKeyAlgorithms, "ssh-dss") }
