// Package auth implements the server side of the SSH user authentication
// protocol: the "ssh-userauth" service of RFC 4252, the methods "none"
// (§5.2), "publickey" (§7), "password" (§8), "keyboard-interactive"
// (RFC 4256), and OpenSSH's "publickey-hostbound-v00@openssh.com" (OpenSSH
// PROTOCOL §2.5) and user certificates (OpenSSH PROTOCOL.certkeys).
//
// Run drives the exchange as one straight-line loop over a packet Conn and
// asks an Authenticator, implemented by the account store or a library
// user, for every decision. The loop is written so that the attack classes
// seen in other SSH servers cannot be expressed:
//
//   - nothing but SERVICE_REQUEST, USERAUTH_REQUEST and (while a
//     keyboard-interactive challenge is pending) USERAUTH_INFO_RESPONSE is
//     accepted before USERAUTH_SUCCESS (CVE-2018-10933, CVE-2025-32433);
//   - a public key only authorizes in the request whose signature it
//     verified, with the Authenticator's answer for that very key
//     (CVE-2024-45337);
//   - known and unknown users take the same path and get byte-identical
//     FAILURE replies no earlier than Config.FailureDelay after the request
//     (user enumeration, CVE-2018-15473 class);
//   - every count the client can grow is bounded (CVE-2025-26466 class).
package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/ferry-sftp/ferry/keys"
)

// Conn is what the authentication layer needs from the transport; package
// transport's *Conn satisfies it.
type Conn interface {
	// ReadPacket returns the next non-transport message; the slice is valid
	// until the next call.
	ReadPacket() ([]byte, error)
	WritePacket(payload []byte) error
	SessionID() []byte
	// HostKey is the host key that signed the first key exchange, against
	// which publickey-hostbound-v00@openssh.com requests are checked.
	HostKey() keys.PublicKey
}

// Peer describes the connection being authenticated, as the transport knows
// it before any user name was sent.
type Peer struct {
	RemoteAddr    net.Addr
	LocalAddr     net.Addr
	ClientVersion string // the client's identification string, without CR LF
}

// ConnMetadata is what an Authenticator learns about the connection and the
// request it is asked about.
type ConnMetadata interface {
	// User is the user name of the request, valid UTF-8 of at most
	// MaxUserLen bytes without NUL.
	User() string
	RemoteAddr() net.Addr
	LocalAddr() net.Addr
	ClientVersion() string
	SessionID() []byte
}

// ErrDenied is the error an Authenticator returns to refuse a request. Any
// other non-nil error refuses it too (and is logged); a *wire.DisconnectError
// ends the connection with its reason.
var ErrDenied = errors.New("auth: access denied")

// Authenticator decides who may log in. Every method returns the user's
// permissions on success and ErrDenied (or another error) on failure.
//
// Unknown users must take the same path as known ones: for a user that does
// not exist an implementation should do the same work it would for one that
// does (hash the password against a dummy hash, look up the keys table) so
// its running time does not reveal whether the user exists. The auth layer
// adds Config.FailureDelay and sends identical FAILURE bytes either way.
type Authenticator interface {
	// Password checks a password (RFC 4252 §8). The slice is only valid
	// during the call.
	Password(ctx context.Context, meta ConnMetadata, password []byte) (*Permissions, error)
	// PublicKey is asked whether key may log in as meta.User(). It is
	// called both for a query without a signature (to decide on PK_OK) and
	// again after the signature of a request has been verified; only the
	// second call's answer authorizes (CVE-2024-45337 class). For a
	// certificate, key is the *keys.Certificate, and the call comes only
	// after the certificate passed the CA, validity and critical option
	// checks; the auth layer then checks its principals (the login name,
	// or Permissions.CertPrincipals) and adds the certificate's
	// force-command and extension restrictions.
	PublicKey(ctx context.Context, meta ConnMetadata, key keys.PublicKey) (*Permissions, error)
	// KeyboardInteractive runs challenge rounds (RFC 4256) through
	// challenge. The number of rounds and prompts is bounded by
	// MaxChallengeRounds and MaxPrompts.
	KeyboardInteractive(ctx context.Context, meta ConnMetadata, challenge Challenger) (*Permissions, error)
}

// MethodsPolicy is an optional interface for an Authenticator that sets
// AuthenticationMethods per user. The answer must not depend on whether the
// user exists (return the default for unknown users), or the FAILURE
// method lists would tell an attacker which users exist. A nil or empty
// result means Config's lists. Lists naming a method that is not enabled are
// dropped, as sshd does; submethods ("keyboard-interactive:pam") are not
// supported.
type MethodsPolicy interface {
	AuthenticationMethods(ctx context.Context, meta ConnMetadata) [][]string
}

// UserCAChecker is an optional interface for an Authenticator that trusts
// certificate authorities per user (like sshd's AuthorizedKeysFile
// cert-authority lines) in addition to Config.TrustedUserCAKeys.
type UserCAChecker interface {
	IsUserCA(ctx context.Context, meta ConnMetadata, ca keys.PublicKey) bool
}

// Permissions is what an authenticated user may do. Authenticators fill it
// from authorized_keys options and the account; the auth layer adds the
// restrictions of a certificate.
type Permissions struct {
	// ForceCommand replaces any command the client asks for (authorized_keys
	// command=, certificate force-command).
	ForceCommand      string
	NoPTY             bool
	NoPortForwarding  bool
	NoAgentForwarding bool
	NoX11Forwarding   bool
	NoUserRC          bool
	// PermitOpen and PermitListen restrict forwarding (authorized_keys
	// permitopen= and permitlisten=); empty means unrestricted unless
	// NoPortForwarding.
	PermitOpen   []string
	PermitListen []string
	// Environment holds NAME=value pairs (authorized_keys environment=).
	Environment []string
	// NoTouchRequired accepts FIDO signatures without the user-presence
	// flag (authorized_keys no-touch-required); VerifyRequired demands the
	// user-verification flag (verify-required). OpenSSH PROTOCOL.u2f.
	NoTouchRequired bool
	VerifyRequired  bool
	// ExpiresAt, when not zero, is when the login stops being valid (a
	// certificate's valid-before or authorized_keys expiry-time=).
	ExpiresAt time.Time
	// CertPrincipals, set by PublicKey when it authorizes a certificate
	// through an authorized_keys cert-authority line with principals=,
	// are the names one of which the certificate must list; the login
	// name then need not be among them (sshd match_principals_option).
	// Nil means the certificate must list the login name.
	CertPrincipals []string
	// Extensions is free-form data for the application (account id, home).
	Extensions map[string]string
}

// Clone returns a deep copy, so the auth layer can add certificate
// restrictions without changing a value the Authenticator may share.
func (p *Permissions) Clone() *Permissions {
	if p == nil {
		return nil
	}
	c := *p
	c.PermitOpen = append([]string(nil), p.PermitOpen...)
	c.PermitListen = append([]string(nil), p.PermitListen...)
	c.Environment = append([]string(nil), p.Environment...)
	c.CertPrincipals = slices.Clone(p.CertPrincipals)
	if p.Extensions != nil {
		c.Extensions = make(map[string]string, len(p.Extensions))
		for k, v := range p.Extensions {
			c.Extensions[k] = v
		}
	}
	return &c
}

// Result describes a successful authentication.
type Result struct {
	User        string
	Permissions *Permissions
	// Methods are the methods that succeeded, in order (more than one with
	// AuthenticationMethods).
	Methods []string
	// PublicKey is the key whose signature was verified in the last
	// successful publickey step, or nil. It is the very key the
	// Authenticator approved in that step.
	PublicKey keys.PublicKey
	// PublicKeys are all keys verified, one per publickey step.
	PublicKeys []keys.PublicKey
}

// Config configures Run. The zero value of each field selects its default.
// A Config may be shared by concurrent Runs and must not change while in use.
type Config struct {
	Authenticator Authenticator

	// BufferSuccess, when the Conn can hold a packet back (it has
	// WritePacketMore, as transport.Conn does), leaves USERAUTH_SUCCESS
	// buffered for the caller's next write or Flush to carry: a server
	// announcing its host keys right after authentication then sends both
	// in one write(2). The caller must write or Flush after Run returns.
	BufferSuccess bool

	// MaxAuthTries is the number of failed attempts a connection gets, as
	// sshd's MaxAuthTries: the MaxAuthTries-th failure is not answered with
	// FAILURE but ends the connection with "Too many authentication
	// failures" (reason PROTOCOL_ERROR, as sshd sends), so MaxAuthTries
	// passwords can be tried, not one more. Counted, as in sshd's auth2.c:
	// every failed request except a first "none", including refused public
	// key queries; not counted: PK_OK answers and partial successes.
	// Default DefaultMaxAuthTries.
	MaxAuthTries int

	// FailureDelay is the minimum time from a request's arrival to its
	// FAILURE reply, whether the user exists or not. Default
	// DefaultFailureDelay; a negative value disables the delay (tests).
	FailureDelay time.Duration

	// Banner, if set, is sent as USERAUTH_BANNER before the first reply.
	Banner string

	// Methods are the enabled methods among "publickey", "password" and
	// "keyboard-interactive". Default: all three.
	Methods []string

	// AuthenticationMethods, like sshd's, lists method sequences: the user
	// is authenticated when every method of one list has succeeded in
	// order. Default: any one enabled method.
	AuthenticationMethods [][]string

	// PubkeyAlgorithms are the accepted public key signature algorithms.
	// Default DefaultPubkeyAlgorithms (no SHA-1 "ssh-rsa", no "ssh-dss").
	PubkeyAlgorithms []string

	// CASignatureAlgorithms are the algorithms a certificate authority may
	// have signed a user certificate with. Default: PubkeyAlgorithms
	// without the -cert-v01 forms and without the SHA-1 ones (ssh-rsa,
	// ssh-dss), as sshd's CASignatureAlgorithms.
	CASignatureAlgorithms []string

	// MinRSABits refuses smaller RSA keys (user and CA). Default
	// DefaultMinRSABits, 2048; sshd's RequiredRSASize default is 1024.
	MinRSABits int

	// TrustedUserCAKeys are the CAs whose user certificates are accepted
	// (sshd TrustedUserCAKeys).
	TrustedUserCAKeys []keys.PublicKey

	// KeyboardInteractivePassword serves "keyboard-interactive" by asking
	// for the password in one prompt and checking it with
	// Authenticator.Password, for PuTTY/WinSCP users whose client only
	// does keyboard-interactive. Authenticator.KeyboardInteractive is then
	// not called.
	KeyboardInteractivePassword bool

	// PermitEmptyPasswords lets an empty password reach the
	// Authenticator; by default it fails without asking, like sshd's
	// PermitEmptyPasswords no.
	PermitEmptyPasswords bool

	// Logger receives one record per decision; nil discards.
	Logger *slog.Logger
	// Now returns the current time, for certificate validity; default
	// time.Now.
	Now func() time.Time
}

// Defaults.
const (
	// DefaultMaxAuthTries is sshd's MaxAuthTries default.
	DefaultMaxAuthTries = 6
	// DefaultFailureDelay is the floor under every FAILURE reply. sshd uses
	// 5-9 ms per user (auth2.c user_specific_delay) and doubles it when
	// exceeded; ferry's Authenticators hash passwords with a slow KDF, so
	// the floor's job is hiding the difference between a database hit and
	// a miss and throttling online guessing, for which 50 ms is ample and
	// keeps OpenSSH clients that offer several keys quick.
	DefaultFailureDelay = 50 * time.Millisecond
	// DefaultMinRSABits is stricter than sshd, whose RequiredRSASize
	// (OpenSSH 9.1) defaults to 1024 bits (sshd -T prints
	// "requiredrsasize 1024"): 1024-bit RSA has been below every
	// recommendation (NIST SP 800-131A) since 2013, so a user moving from
	// sshd with such a key is refused until Config.MinRSABits is lowered.
	DefaultMinRSABits = 2048
)

// Bounds on what a client can make the server hold or repeat.
const (
	// MaxUserLen bounds a user name: Linux LOGIN_NAME_MAX is 256 including
	// the NUL, and no account store of ours has longer names.
	MaxUserLen = 256
	// MaxPasswordLen bounds a password. bcrypt only reads 72 bytes and no
	// password manager generates more than a few hundred; 1 KiB keeps
	// Argon2/bcrypt input cost flat while admitting every real password.
	MaxPasswordLen = 1024
	// MaxPrompts bounds the prompts of one INFO_REQUEST and so the answers
	// of one INFO_RESPONSE. sshd's auth2-chall.c and OpenSSH's client refuse
	// more than 100; real challenges have one or two.
	MaxPrompts = 32
	// MaxResponseLen bounds one keyboard-interactive answer, the same bound
	// as a password since that is what answers usually are.
	MaxResponseLen = MaxPasswordLen
	// MaxChallengeRounds bounds INFO_REQUEST rounds in one
	// keyboard-interactive attempt (password, then OTP, then a message is
	// three).
	MaxChallengeRounds = 8
	// MaxUserAuthRequests bounds all USERAUTH_REQUESTs of a connection,
	// including the PK_OK queries that MaxAuthTries does not count, so a
	// client cannot cycle queries forever (CVE-2025-26466 class). OpenSSH
	// offers at most one query per key and agents rarely hold more than a
	// dozen keys. A Config with MaxAuthTries above half of it raises the
	// cap to twice MaxAuthTries.
	MaxUserAuthRequests = 64
	// maxMethodSteps bounds the length of one AuthenticationMethods list
	// and the number of lists; sshd has no such lists longer than a few.
	maxMethodSteps = 16
)

// DefaultPubkeyAlgorithms returns the signature algorithms accepted by
// default: OpenSSH 9.x's PubkeyAcceptedAlgorithms without SHA-1 ssh-rsa and
// DSA. It returns a new slice each time (no package-level mutable state).
func DefaultPubkeyAlgorithms() []string {
	return []string{
		"ssh-ed25519-cert-v01@openssh.com",
		"ecdsa-sha2-nistp256-cert-v01@openssh.com",
		"ecdsa-sha2-nistp384-cert-v01@openssh.com",
		"ecdsa-sha2-nistp521-cert-v01@openssh.com",
		"sk-ssh-ed25519-cert-v01@openssh.com",
		"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
		"rsa-sha2-512-cert-v01@openssh.com",
		"rsa-sha2-256-cert-v01@openssh.com",
		"ssh-ed25519",
		"ecdsa-sha2-nistp256",
		"ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com",
		"sk-ecdsa-sha2-nistp256@openssh.com",
		"rsa-sha2-512",
		"rsa-sha2-256",
	}
}

// ServerSigAlgs returns the value for the server-sig-algs extension of
// EXT_INFO (RFC 8308 §3.1): the plain signature algorithms of
// PubkeyAlgorithms, since clients use it to pick an RSA signature algorithm
// before trying a key.
func (c *Config) ServerSigAlgs() []string {
	algs := c.PubkeyAlgorithms
	if len(algs) == 0 {
		algs = DefaultPubkeyAlgorithms()
	}
	var out []string
	for _, a := range algs {
		if !keys.IsCertificateType(keys.KeyTypeOfAlgorithm(a)) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// The EXT_INFO extension by which a server offers
// publickey-hostbound-v00@openssh.com (OpenSSH PROTOCOL §1.10 and §2.5).
// The transport sends it with the server's first EXT_INFO.
const (
	HostboundExtension        = "publickey-hostbound@openssh.com"
	HostboundExtensionVersion = "0"
)
