// Package password hashes and verifies account passwords.
//
// New hashes are argon2id (RFC 9106) in the PHC string format
// ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash", salt and hash in unpadded
// standard base64). Hashes imported from existing systems are verified in
// their own format and reported as needing a rehash, so the daemon can
// replace them with argon2id after the next successful login:
//
//   - bcrypt "$2a$", "$2b$", "$2y$" (golang.org/x/crypto/bcrypt)
//   - SHA-crypt "$5$" (SHA-256) and "$6$" (SHA-512), with "rounds=" (Ulrich
//     Drepper, "Unix crypt using SHA-256 and SHA-512", 2007)
//   - MD5-crypt "$1$" (Poul-Henning Kamp's FreeBSD scheme, as in glibc), and
//     Apache's "$apr1$" variant of it (htpasswd -m)
//
// Any of them may carry the scheme prefix Dovecot and pure-ftpd's SQL
// back ends write before a crypt string ("{SHA512-CRYPT}$6$...",
// "{BLF-CRYPT}$2y$...", "{MD5-CRYPT}$1$...", "{CRYPT}$1$...",
// "{ARGON2ID}$argon2id$..."): the prefix names the format the string
// already shows, so it is checked against it and dropped.
//
// The hash functions themselves come from the standard library; this package
// only implements the crypt(3) schemes that chain them.
//
// A stored hash is attacker-influenced input (a control panel, an import
// file): every cost parameter is bounded before any work is done, so a
// hostile hash cannot make one login spend seconds or gigabytes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters for new hashes: OWASP Password Storage Cheat Sheet
// (2023) first recommendation, m=19 MiB, t=2, p=1. One verify costs about
// 20-30 ms of one core on a 2020s server, which bounds an online guesser and
// keeps a burst of logins from exhausting memory (19 MiB each).
const (
	DefaultMemory  = 19 * 1024 // KiB
	DefaultTime    = 2
	DefaultThreads = 1
	// DefaultSaltLen is RFC 9106 §3.1's recommended 128-bit salt.
	DefaultSaltLen = 16
	// DefaultKeyLen is RFC 9106 §4's 256-bit tag.
	DefaultKeyLen = 32
)

// Bounds on the cost parameters a stored hash may ask for. They admit every
// standard setting (RFC 9106 §4's second choice m=64 MiB,t=3,p=4; bcrypt
// cost 12; SHA-crypt up to a million rounds) and stop a planted hash from
// turning a login into a denial of service.
const (
	// MaxArgon2Memory (KiB) is RFC 9106 §4's 64 MiB option.
	MaxArgon2Memory = 64 * 1024
	// MaxArgon2Time allows a few times OWASP's iteration counts.
	MaxArgon2Time = 10
	// MaxArgon2Threads: p lanes of m/p each; more than this is no real
	// setting.
	MaxArgon2Threads = 16
	// Salt and tag lengths: RFC 9106 §3.1 requires ≥ 8-byte salts and
	// ≥ 4-byte tags; 64 bytes is already more than any tool writes.
	minArgon2SaltLen = 8
	maxArgon2SaltLen = 64
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 64
	// MaxBcryptCost: cost 14 takes about a second; every cost above doubles it.
	MaxBcryptCost = 14
	// MaxSHACryptRounds stops "rounds=999999999" (Drepper's own upper
	// clamp) from pinning a core for minutes; 1e6 is ~0.5 s.
	MaxSHACryptRounds = 1_000_000
	// MaxPasswordLength bounds the candidate password: SHA-crypt's work is
	// proportional to rounds × length. SSH's password field is otherwise
	// limited only by the packet size (RFC 4253 §6.1, 35000 bytes).
	MaxPasswordLength = 1024
	// MaxSHACryptPasswordLength bounds passwords checked against imported
	// SHA-crypt hashes, whose cost is rounds × length: 256 bytes keeps the
	// worst case near a second while admitting every real password (the
	// account is rehashed to argon2id at its first login).
	MaxSHACryptPasswordLength = 256
)

// Params are the argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams returns the parameters Hash uses.
func DefaultParams() Params {
	return Params{Memory: DefaultMemory, Time: DefaultTime, Threads: DefaultThreads, SaltLen: DefaultSaltLen, KeyLen: DefaultKeyLen}
}

var (
	// ErrUnknownFormat: the hash is none of the supported formats.
	ErrUnknownFormat = errors.New("password: unknown hash format")
	// ErrMalformed: the hash names a supported format but does not parse.
	ErrMalformed = errors.New("password: malformed hash")
	// ErrTooExpensive: the hash asks for more work than the bounds above.
	ErrTooExpensive = errors.New("password: hash parameters exceed limits")
	// ErrPasswordTooLong: the candidate exceeds MaxPasswordLength.
	ErrPasswordTooLong = errors.New("password: password too long")
)

// Hasher hashes with fixed argon2id parameters. The zero value is not
// usable; use New or the package-level functions (which use DefaultParams).
type Hasher struct {
	params Params
	// idKey is argon2.IDKey; tests replace it to observe which parameters
	// the real and the dummy verification run.
	idKey func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
	// slots bounds the argon2id computations running at once, each of
	// which holds its memory parameter (19 MiB by default, up to
	// MaxArgon2Memory for an imported hash) until it ends. Without it,
	// 100 connections guessing passwords at once (max_startups' default
	// full) held 100 of them: ferry serve reached 2.1 GB resident. More
	// computations than cores at once would not finish any sooner.
	slots chan struct{}
}

// newHasher returns a Hasher with at most slots argon2id computations at
// once.
func newHasher(p Params, slots int) *Hasher {
	return &Hasher{params: p, idKey: argon2.IDKey, slots: make(chan struct{}, max(slots, 1))}
}

// argon2id runs idKey in one of the Hasher's slots, waiting for one.
func (h *Hasher) argon2id(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return h.idKey(password, salt, time, memory, threads, keyLen)
}

// New returns a Hasher producing argon2id hashes with p. It rejects
// parameters outside the verification bounds (a hash this Hasher wrote
// must verify). A Hasher runs as many argon2id computations at once as
// GOMAXPROCS; share one among all logins of a server so that this bounds
// their memory.
func New(p Params) (*Hasher, error) {
	if err := checkArgon2(p); err != nil {
		return nil, err
	}
	return newHasher(p, runtime.GOMAXPROCS(0)), nil
}

func defaultHasher() *Hasher {
	return newHasher(DefaultParams(), runtime.GOMAXPROCS(0))
}

// Hash returns an argon2id PHC string for password with DefaultParams.
func Hash(password string) (string, error) { return defaultHasher().Hash(password) }

// Verify reports whether password matches hash. needsRehash is true after a
// successful match when hash is not argon2id with DefaultParams.
func Verify(hash, password string) (ok, needsRehash bool, err error) {
	return defaultHasher().Verify(hash, password)
}

// DummyVerify costs what Verify of an argon2id hash with DefaultParams
// costs, and always fails. Call it for unknown users and accounts without a
// password so that response time does not reveal which names exist.
func DummyVerify(password string) { defaultHasher().DummyVerify(password) }

// NeedsRehash reports whether hash is anything but argon2id with
// DefaultParams.
func NeedsRehash(hash string) bool { return defaultHasher().NeedsRehash(hash) }

// Params returns the Hasher's argon2id parameters.
func (h *Hasher) Params() Params { return h.params }

// Hash returns an argon2id PHC string for password.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > MaxPasswordLength {
		return "", ErrPasswordTooLong
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := h.argon2id([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return formatArgon2id(h.params, salt, key), nil
}

func formatArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify reports whether password matches hash (see the package comment
// for formats). A mismatch is ok=false with a nil error; err is non-nil
// only when hash itself is unusable.
func (h *Hasher) Verify(hash, password string) (ok, needsRehash bool, err error) {
	if len(password) > MaxPasswordLength {
		return false, false, ErrPasswordTooLong
	}
	hash, prefixed := trimSchemePrefix(hash)
	if prefixed {
		// Rewritten without the prefix, the one spelling ferry writes.
		ok, _, err := h.Verify(hash, password)
		return ok, ok, err
	}
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return false, false, err
		}
		got := h.argon2id([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return false, false, nil
		}
		return true, p != h.params, nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if err := checkBcrypt(hash); err != nil {
			return false, false, err
		}
		// bcrypt uses only the first 72 bytes of a password and
		// GenerateFromPassword refuses longer ones; systems that produced
		// these hashes silently truncated, so compare the same way.
		pw := []byte(password)
		if len(pw) > 72 {
			pw = pw[:72]
		}
		switch err := bcrypt.CompareHashAndPassword([]byte(hash), pw); {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			return false, false, fmt.Errorf("%w: bcrypt: %v", ErrMalformed, err)
		}
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		if len(password) > MaxSHACryptPasswordLength {
			// Refused without hashing: the client chooses the length and
			// SHA-crypt's work grows with it (measured 3.9 s for 1 KiB at
			// the maximum rounds). The hash still has to be parsed, so a
			// malformed one reports as such.
			scheme := sha512Crypt
			if strings.HasPrefix(hash, "$5$") {
				scheme = sha256Crypt
			}
			if _, err := parseCrypt(hash, scheme); err != nil {
				return false, false, err
			}
			return false, false, nil
		}
		if strings.HasPrefix(hash, "$5$") {
			return verifyCrypt(hash, password, sha256Crypt)
		}
		return verifyCrypt(hash, password, sha512Crypt)
	case strings.HasPrefix(hash, "$1$"):
		return verifyCrypt(hash, password, md5Crypt)
	case strings.HasPrefix(hash, "$apr1$"):
		return verifyCrypt(hash, password, apr1Crypt)
	}
	return false, false, ErrUnknownFormat
}

// schemePrefixes are the "{SCHEME}" tags Dovecot (doveadm pw) and
// pure-ftpd's MySQL/PostgreSQL back ends put before a crypt(3) string,
// with the crypt prefixes each may stand before. Other schemes of
// theirs ({PLAIN}, {SHA512}, {SSHA}, {PBKDF2}...) are not crypt strings
// and stay unknown.
var schemePrefixes = map[string][]string{
	"{SHA512-CRYPT}": {"$6$"},
	"{SHA256-CRYPT}": {"$5$"},
	"{MD5-CRYPT}":    {"$1$"},
	"{BLF-CRYPT}":    {"$2a$", "$2b$", "$2y$"},
	"{ARGON2ID}":     {"$argon2id$"},
	"{CRYPT}":        {"$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$"},
}

// trimSchemePrefix returns hash without a known scheme prefix that agrees
// with the crypt string after it (the tag is case-insensitive, as in
// Dovecot); otherwise hash unchanged and false.
func trimSchemePrefix(hash string) (string, bool) {
	if !strings.HasPrefix(hash, "{") {
		return hash, false
	}
	end := strings.IndexByte(hash, '}')
	if end < 0 {
		return hash, false
	}
	rest := hash[end+1:]
	for _, p := range schemePrefixes[strings.ToUpper(hash[:end+1])] {
		if strings.HasPrefix(rest, p) {
			return rest, true
		}
	}
	return hash, false
}

// verifyCrypt recomputes a crypt(3)-style hash and compares the encoded
// digests in constant time.
func verifyCrypt(hash, password string, scheme cryptScheme) (ok, needsRehash bool, err error) {
	s, err := parseCrypt(hash, scheme)
	if err != nil {
		return false, false, err
	}
	got := scheme.digest([]byte(password), s)
	if subtle.ConstantTimeCompare(got, []byte(s.encoded)) != 1 {
		return false, false, nil
	}
	return true, true, nil
}

// dummySalt is fixed: DummyVerify's only job is to cost the same as a real
// verification, and its result is discarded.
var dummySalt = [DefaultSaltLen]byte{'f', 'e', 'r', 'r', 'y', '-', 'd', 'u', 'm', 'm', 'y', '-', 's', 'a', 'l', 't'}

// DummyVerify runs the same argon2id computation Verify runs for a hash
// with the Hasher's parameters, then discards the result.
func (h *Hasher) DummyVerify(password string) {
	if len(password) > MaxPasswordLength {
		password = password[:MaxPasswordLength]
	}
	salt := dummySalt[:]
	if int(h.params.SaltLen) != len(salt) {
		salt = make([]byte, h.params.SaltLen)
	}
	key := make([]byte, h.params.KeyLen)
	got := h.argon2id([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	subtle.ConstantTimeCompare(got, key)
}

// NeedsRehash reports whether hash is anything but argon2id with the
// Hasher's parameters.
func (h *Hasher) NeedsRehash(hash string) bool {
	if !strings.HasPrefix(hash, "$argon2id$") {
		return true
	}
	p, _, _, err := parseArgon2id(hash)
	return err != nil || p != h.params
}

// parseArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash" strictly
// (the PHC string format, github.com/P-H-C/phc-string-format): the version
// field is required, parameters appear in m,t,p order, base64 is unpadded.
func parseArgon2id(hash string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformed
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: argon2id version %q", ErrMalformed, parts[2])
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, ErrMalformed
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], name)
		if !ok || !isDecimal(v) {
			return p, nil, nil, ErrMalformed
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, ErrTooExpensive
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return p, nil, nil, ErrTooExpensive
	}
	p.Memory, p.Time, p.Threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, ErrMalformed
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return p, nil, nil, ErrMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := checkArgon2(p); err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}

func checkArgon2(p Params) error {
	switch {
	case p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads):
		// RFC 9106 §3.1: t ≥ 1, p ≥ 1, m ≥ 8p KiB.
		return ErrMalformed
	case p.SaltLen < minArgon2SaltLen || p.SaltLen > maxArgon2SaltLen,
		p.KeyLen < minArgon2KeyLen || p.KeyLen > maxArgon2KeyLen:
		return ErrMalformed
	case p.Memory > MaxArgon2Memory || p.Time > MaxArgon2Time || p.Threads > MaxArgon2Threads:
		return ErrTooExpensive
	}
	return nil
}

// isDecimal reports whether s is a non-empty run of ASCII digits without a
// leading zero (PHC decimal encoding), so that one value has one spelling.
func isDecimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Check reports whether hash is a well-formed hash of a supported format
// within the cost bounds, without computing anything: for validating
// imported hashes in bulk.
func Check(hash string) error {
	hash, _ = trimSchemePrefix(hash)
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, _, err := parseArgon2id(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return checkBcrypt(hash)
	case strings.HasPrefix(hash, "$5$"):
		_, err := parseCrypt(hash, sha256Crypt)
		return err
	case strings.HasPrefix(hash, "$6$"):
		_, err := parseCrypt(hash, sha512Crypt)
		return err
	case strings.HasPrefix(hash, "$1$"):
		_, err := parseCrypt(hash, md5Crypt)
		return err
	case strings.HasPrefix(hash, "$apr1$"):
		_, err := parseCrypt(hash, apr1Crypt)
		return err
	}
	return ErrUnknownFormat
}

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// checkBcrypt checks bcrypt's fixed layout, "$2x$NN$" then 22 salt and 31
// hash characters, more strictly than x/crypto/bcrypt does (it skips the
// '$' after the cost unchecked), and the cost bound.
func checkBcrypt(hash string) error {
	if len(hash) != 60 || hash[6] != '$' || strings.Trim(hash[7:], bcryptAlphabet) != "" {
		return fmt.Errorf("%w: bcrypt", ErrMalformed)
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return fmt.Errorf("%w: bcrypt: %v", ErrMalformed, err)
	}
	if cost > MaxBcryptCost {
		return ErrTooExpensive
	}
	return nil
}
