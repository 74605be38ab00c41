package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Certificate types, PROTOCOL.certkeys.
const (
	UserCert = 1
	HostCert = 2
)

// CertTimeInfinity is the valid-before value of a certificate that never
// expires (ssh-keygen -V with no end: "forever").
const CertTimeInfinity = 1<<64 - 1

// MaxCertPrincipals bounds the principals of a certificate; it is OpenSSH's
// SSHKEY_CERT_MAX_PRINCIPALS.
const MaxCertPrincipals = 256

// maxCertOptions bounds the critical options and extensions of a
// certificate, each. OpenSSH defines 3 critical options and 6 extensions;
// 64 leaves room for private extensions while bounding the map a blob builds.
const maxCertOptions = 64

// Certificate is an OpenSSH certificate (PROTOCOL.certkeys). It implements
// PublicKey: Type is the -cert-v01@openssh.com name and Verify verifies a
// signature made by the certified key.
//
// A parsed certificate remembers its exact bytes; modify the fields only to
// build a new certificate and then call SignCert.
type Certificate struct {
	Nonce           []byte
	Key             PublicKey
	Serial          uint64
	CertType        uint32
	KeyID           string
	ValidPrincipals []string
	ValidAfter      uint64
	ValidBefore     uint64
	// CriticalOptions and Extensions map names to values. The value is the
	// string inside the option's data (force-command, source-address), ""
	// for flag options with empty data, and for an option whose data is
	// not one string (a private extension may carry anything,
	// PROTOCOL.certkeys) the data itself. SignCert writes "" as empty data
	// and any other value as one string.
	CriticalOptions map[string]string
	Extensions      map[string]string
	Reserved        []byte
	SignatureKey    PublicKey
	Signature       *Signature

	raw    []byte // whole blob, set by parsing and SignCert
	signed []byte // prefix of raw covered by Signature
	// criticalData and extensionData are the data fields of a parsed
	// certificate's options, which CheckCertificate checks as sshd's
	// cert_option_list does; nil when built in code (see optionData).
	criticalData, extensionData map[string][]byte
}

// fieldAppender is implemented by every plain key type: it appends the
// fields that follow the format name in its blob, which a certificate embeds
// after the nonce (PROTOCOL.certkeys).
type fieldAppender interface {
	appendFields(b []byte) []byte
}

func parseKeyBody(typ string, r *wire.Reader) (PublicKey, error) {
	switch typ {
	case KeyRSA:
		return parseRSA(r)
	case KeyDSA:
		return parseDSA(r)
	case KeyECDSAP256, KeyECDSAP384, KeyECDSAP521:
		return parseECDSA(typ, r)
	case KeyEd25519:
		return parseEd25519(r)
	case KeySKECDSAP256:
		return parseSKECDSA(r)
	case KeySKEd25519:
		return parseSKEd25519(r)
	}
	return nil, fmt.Errorf("keys: unknown key type %q", sanitize(typ))
}

func parseStringList(b []byte, max int) ([]string, bool) {
	r := wire.NewReader(b)
	var out []string
	for !r.Empty() {
		s := r.Bytes()
		if !r.Ok() || len(out) == max {
			return nil, false
		}
		out = append(out, string(s))
	}
	return out, true
}

// parseCertOptions parses the critical options or extensions field: a
// sequence of (string name, string data) with unique names. The data is
// opaque here, as in OpenSSH's cert_parse: what each known option's data
// must hold is checked by CheckCertificate, and an unknown extension's data
// can be anything.
func parseCertOptions(b []byte) (map[string]string, map[string][]byte, bool) {
	r := wire.NewReader(b)
	var (
		m    map[string]string
		data map[string][]byte
	)
	for !r.Empty() {
		name := r.String()
		d := r.Bytes()
		if !r.Ok() || len(m) == maxCertOptions || name == "" {
			return nil, nil, false
		}
		if _, dup := m[name]; dup {
			return nil, nil, false
		}
		val := string(d)
		if v, ok := optionString(d); ok {
			val = v
		}
		if m == nil {
			m = make(map[string]string)
			data = make(map[string][]byte)
		}
		m[name] = val
		data[name] = bytes.Clone(d)
	}
	return m, data, true
}

// optionString returns the string an option's data holds, for options
// whose data is one string (force-command, source-address). Like sshd's
// sshbuf_get_cstring, it refuses trailing bytes and an embedded NUL.
func optionString(data []byte) (string, bool) {
	r := wire.NewReader(data)
	s := r.Bytes()
	if !r.Done() || bytes.IndexByte(s, 0) >= 0 {
		return "", false
	}
	return string(s), true
}

// optionData returns the data field of a critical option (critical) or
// extension: as parsed, or for a certificate built in code what
// appendCertOptions writes for its value.
func (c *Certificate) optionData(critical bool, name string) []byte {
	m, parsed := c.Extensions, c.extensionData
	if critical {
		m, parsed = c.CriticalOptions, c.criticalData
	}
	if parsed != nil {
		return parsed[name]
	}
	if v := m[name]; v != "" {
		return wire.AppendStringS(nil, v)
	}
	return nil
}

func appendCertOptions(b []byte, m map[string]string) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names) // PROTOCOL.certkeys: options appear in lexical order
	var body []byte
	for _, n := range names {
		body = wire.AppendStringS(body, n)
		if v := m[n]; v != "" {
			body = wire.AppendUint32(body, uint32(len(v)+4))
			body = wire.AppendStringS(body, v)
		} else {
			body = wire.AppendUint32(body, 0)
		}
	}
	return wire.AppendString(b, body)
}

func parseCertificate(typ string, r *wire.Reader, blob []byte) (*Certificate, error) {
	bad := func(what string) error { return fmt.Errorf("keys: malformed %s: %s", typ, what) }
	c := &Certificate{}
	c.Nonce = r.Bytes()
	if !r.Ok() {
		return nil, bad("nonce")
	}
	k, err := parseKeyBody(keyTypeOfCertType[typ], r)
	if err != nil {
		return nil, err
	}
	c.Key = k
	c.Serial = r.Uint64()
	c.CertType = r.Uint32()
	c.KeyID = r.String()
	principals := r.Bytes()
	c.ValidAfter = r.Uint64()
	c.ValidBefore = r.Uint64()
	critical := r.Bytes()
	extensions := r.Bytes()
	c.Reserved = r.Bytes()
	sigKey := r.Bytes()
	if !r.Ok() {
		return nil, bad("short certificate")
	}
	signedLen := len(blob) - len(r.Rest())
	// Rest consumed the tail; re-read the signature from it.
	sr := wire.NewReader(blob[signedLen:])
	sigBlob := sr.Bytes()
	if !sr.Done() {
		return nil, bad("signature field")
	}
	var ok bool
	if c.ValidPrincipals, ok = parseStringList(principals, MaxCertPrincipals); !ok {
		return nil, bad("principals")
	}
	if c.CriticalOptions, c.criticalData, ok = parseCertOptions(critical); !ok {
		return nil, bad("critical options")
	}
	if c.Extensions, c.extensionData, ok = parseCertOptions(extensions); !ok {
		return nil, bad("extensions")
	}
	if c.CertType != UserCert && c.CertType != HostCert {
		return nil, bad("certificate type")
	}
	ca, err := ParsePublicKey(sigKey)
	if err != nil {
		return nil, fmt.Errorf("keys: certificate signature key: %w", err)
	}
	if _, isCert := ca.(*Certificate); isCert {
		// PROTOCOL.certkeys: the signature key may not be a certificate.
		return nil, bad("signature key is a certificate")
	}
	c.SignatureKey = ca
	if c.Signature, err = ParseSignature(sigBlob); err != nil {
		return nil, fmt.Errorf("keys: certificate signature: %w", err)
	}
	c.Nonce = append([]byte(nil), c.Nonce...)
	c.Reserved = append([]byte(nil), c.Reserved...)
	c.Signature.Blob = append([]byte(nil), c.Signature.Blob...)
	c.Signature.Rest = append([]byte(nil), c.Signature.Rest...)
	if len(c.Signature.Rest) == 0 {
		c.Signature.Rest = nil
	}
	c.raw = append([]byte(nil), blob...)
	c.signed = c.raw[:signedLen]
	return c, nil
}

// Type returns the certificate format name, e.g.
// "ssh-ed25519-cert-v01@openssh.com".
func (c *Certificate) Type() string {
	return certTypeOf(c.Key)
}

func certTypeOf(k PublicKey) string {
	return certTypeOfKeyType[k.Type()]
}

// certTypeOfKeyType inverts keyTypeOfCertType. Built once; never written.
var certTypeOfKeyType = func() map[string]string {
	m := make(map[string]string, len(keyTypeOfCertType))
	for ct, kt := range keyTypeOfCertType {
		m[kt] = ct
	}
	return m
}()

// bytesToSign encodes every field up to and including the signature key.
func (c *Certificate) bytesToSign() ([]byte, error) {
	fa, ok := c.Key.(fieldAppender)
	if !ok || c.SignatureKey == nil {
		return nil, errors.New("keys: certificate needs a plain key and a signature key")
	}
	typ := c.Type()
	b := wire.AppendStringS(nil, typ)
	b = wire.AppendString(b, c.Nonce)
	b = fa.appendFields(b)
	b = wire.AppendUint64(b, c.Serial)
	b = wire.AppendUint32(b, c.CertType)
	b = wire.AppendStringS(b, c.KeyID)
	var p []byte
	for _, s := range c.ValidPrincipals {
		p = wire.AppendStringS(p, s)
	}
	b = wire.AppendString(b, p)
	b = wire.AppendUint64(b, c.ValidAfter)
	b = wire.AppendUint64(b, c.ValidBefore)
	b = appendCertOptions(b, c.CriticalOptions)
	b = appendCertOptions(b, c.Extensions)
	b = wire.AppendString(b, c.Reserved)
	b = wire.AppendString(b, c.SignatureKey.Marshal())
	return b, nil
}

// Marshal returns the certificate blob: the parsed bytes for a parsed
// certificate, else the encoding of the fields.
func (c *Certificate) Marshal() []byte {
	if c.raw != nil {
		return c.raw
	}
	b, err := c.bytesToSign()
	if err != nil {
		return nil
	}
	var sig []byte
	if c.Signature != nil {
		sig = c.Signature.Marshal()
	}
	return wire.AppendString(b, sig)
}

// Verify verifies a signature made by the certified key. sig.Format is the
// plain algorithm (rsa-sha2-512 for rsa-sha2-512-cert-v01@openssh.com; see
// UnderlyingAlgorithm).
func (c *Certificate) Verify(data []byte, sig *Signature) error {
	return c.Key.Verify(data, sig)
}

// VerifyWithPolicy verifies like Verify, passing p on when the certified key
// is a security key.
func (c *Certificate) VerifyWithPolicy(data []byte, sig *Signature, p SKPolicy) error {
	return VerifyWithPolicy(c.Key, data, sig, p)
}

// SignCert fills Nonce (if empty) and SignatureKey, and signs the
// certificate with authority using algorithm ("" = the authority's default).
func (c *Certificate) SignCert(rand io.Reader, authority Signer, algorithm string) error {
	if len(c.Nonce) == 0 {
		c.Nonce = make([]byte, 32)
		if _, err := io.ReadFull(rand, c.Nonce); err != nil {
			return err
		}
	}
	c.SignatureKey = authority.PublicKey()
	if _, isCert := c.SignatureKey.(*Certificate); isCert {
		return errors.New("keys: a certificate cannot sign certificates")
	}
	c.raw, c.signed = nil, nil
	c.criticalData, c.extensionData = nil, nil
	tbs, err := c.bytesToSign()
	if err != nil {
		return err
	}
	sig, err := authority.Sign(rand, tbs, algorithm)
	if err != nil {
		return err
	}
	c.Signature = sig
	c.raw = wire.AppendString(tbs, sig.Marshal())
	c.signed = c.raw[:len(tbs)]
	return nil
}

// CertCheck is the policy for CheckCertificate.
type CertCheck struct {
	// Principal is the user name (user certificates) or host name (host
	// certificates) the certificate must list.
	Principal string
	// DeferPrincipal leaves matching the principals to the caller, and
	// Principal is ignored: with authorized_keys principals= the names a
	// user certificate must list depend on which cert-authority line
	// authorizes it, known only after the line is found (sshd
	// auth_check_authkey_line calls sshkey_cert_check_authority without a
	// name then). A certificate without principals is still refused.
	DeferPrincipal bool
	Now            time.Time
	// Remote is the client address matched against source-address;
	// nil fails any certificate carrying that option.
	Remote net.IP
	// IsTrustedCA reports whether the signing key is a trusted authority.
	IsTrustedCA func(PublicKey) bool
	// CASignatureAlgorithms lists the acceptable algorithms of the CA's
	// signature; nil means every algorithm except ssh-rsa (SHA-1) and
	// ssh-dss, like sshd's default CASignatureAlgorithms.
	CASignatureAlgorithms []string
}

// defaultCASignatureAlgorithms is sshd's default CASignatureAlgorithms
// (sshd_config(5), OpenSSH 8.2+): SHA-1 signatures are refused.
var defaultCASignatureAlgorithms = []string{
	KeyEd25519, KeySKEd25519,
	KeyECDSAP256, KeyECDSAP384, KeyECDSAP521, KeySKECDSAP256,
	SigRSASHA512, SigRSASHA256,
}

// Critical options of user certificates, PROTOCOL.certkeys.
const (
	OptForceCommand   = "force-command"
	OptSourceAddress  = "source-address"
	OptVerifyRequired = "verify-required"
)

// ErrCertificate wraps every reason a certificate is refused.
var ErrCertificate = errors.New("keys: certificate refused")

// CheckUserCertificate validates a user certificate for login by principal
// from remote at now, signed by a CA that isTrustedCA accepts with an
// algorithm other than ssh-rsa (SHA-1). It returns the force-command
// critical option, if any.
func (c *Certificate) CheckUserCertificate(principal string, now time.Time, remote net.IP, isTrustedCA func(PublicKey) bool) (forceCommand string, err error) {
	return c.CheckCertificate(UserCert, &CertCheck{Principal: principal, Now: now, Remote: remote, IsTrustedCA: isTrustedCA})
}

// CheckHostCertificate validates a host certificate for hostname, as a
// client does for @cert-authority entries in known_hosts.
func (c *Certificate) CheckHostCertificate(hostname string, now time.Time, isTrustedCA func(PublicKey) bool) error {
	_, err := c.CheckCertificate(HostCert, &CertCheck{Principal: hostname, Now: now, IsTrustedCA: isTrustedCA})
	return err
}

// CheckCertificate validates c as a certificate of the given type under
// policy p, following sshd's sshkey_cert_check_authority and
// auth_cert_options: signature by a trusted CA with an allowed algorithm,
// type, validity window (valid after <= now < valid before), principal
// (an empty list is always refused: sshd refuses it for trusted_user_ca_keys
// but, through an authorized_keys cert-authority line without principals=,
// takes it as valid for any user, a wildcard ferry does not grant), and
// critical options (unknown ones refuse the certificate; source-address
// must match). Extensions are the caller's (see Permit*).
func (c *Certificate) CheckCertificate(certType uint32, p *CertCheck) (forceCommand string, err error) {
	refuse := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: "+format, append([]any{ErrCertificate}, args...)...)
	}
	if c.CertType != certType {
		return refuse("certificate type %d, want %d", c.CertType, certType)
	}
	if c.SignatureKey == nil || c.Signature == nil || p.IsTrustedCA == nil || !p.IsTrustedCA(c.SignatureKey) {
		return refuse("not signed by a trusted authority")
	}
	allowed := p.CASignatureAlgorithms
	if allowed == nil {
		allowed = defaultCASignatureAlgorithms
	}
	if !slices.Contains(allowed, c.Signature.Format) {
		return refuse("CA signature algorithm %s not allowed", c.Signature.Format)
	}
	signed := c.signed
	if signed == nil {
		if signed, err = c.bytesToSign(); err != nil {
			return refuse("%v", err)
		}
	}
	// A security-key CA's flags are not checked: sshd's cert_parse
	// verifies the CA signature without asking for them, and a CA key
	// made with no-touch-required signs without the user-presence flag.
	if err := VerifyWithPolicy(c.SignatureKey, signed, c.Signature, SKPolicy{NoTouchRequired: true}); err != nil {
		return refuse("bad CA signature: %v", err)
	}
	now := p.Now.Unix()
	if now < 0 || uint64(now) < c.ValidAfter {
		return refuse("not yet valid")
	}
	if uint64(now) >= c.ValidBefore {
		return refuse("expired")
	}
	if len(c.ValidPrincipals) == 0 {
		return refuse("no principals")
	}
	if !p.DeferPrincipal && !c.hasPrincipal(certType, p.Principal) {
		return refuse("principal %q not listed", sanitize(p.Principal))
	}
	for name := range c.CriticalOptions {
		data := c.optionData(true, name)
		switch {
		case name == OptForceCommand && certType == UserCert:
			cmd, ok := optionString(data)
			if !ok {
				return refuse("malformed force-command")
			}
			if cmd == "" {
				// sshd runs the empty command, so the login can do
				// nothing; ferry's "" means no forced command, so refuse
				// rather than grant everything the CA meant to deny.
				return refuse("empty force-command")
			}
			forceCommand = cmd
		case name == OptSourceAddress && certType == UserCert:
			val, ok := optionString(data)
			if !ok {
				return refuse("malformed source-address")
			}
			ok, err := matchCIDRList(p.Remote, val)
			if err != nil {
				return refuse("invalid source-address %q", sanitize(val))
			}
			if !ok {
				return refuse("source address %v not permitted", p.Remote)
			}
		case name == OptVerifyRequired && certType == UserCert:
			// Enforced by the caller through SKPolicy.VerifyRequired.
			if len(data) != 0 {
				return refuse("malformed %s", name)
			}
		default:
			return refuse("unsupported critical option %q", sanitize(name))
		}
	}
	if certType == UserCert {
		// sshd's cert_option_list refuses a certificate whose known
		// extension carries data; unknown extensions are ignored.
		for _, name := range flagExtensions {
			if _, ok := c.Extensions[name]; ok && len(c.optionData(false, name)) != 0 {
				return refuse("malformed extension %s", name)
			}
		}
	}
	return forceCommand, nil
}

// ListsUserPrincipal reports whether the certificate lists one of names,
// compared exactly as sshd does for user certificates (the login name, or
// match_principals_option for authorized_keys principals=).
func (c *Certificate) ListsUserPrincipal(names []string) bool {
	for _, p := range c.ValidPrincipals {
		if slices.Contains(names, p) {
			return true
		}
	}
	return false
}

// hasPrincipal matches a user name exactly (sshd), or a host name against
// the certificate's principals as case-insensitive wildcard patterns, which
// ssh(1) allows in host certificates since OpenSSH 8.5.
func (c *Certificate) hasPrincipal(certType uint32, name string) bool {
	if certType == UserCert {
		return slices.Contains(c.ValidPrincipals, name)
	}
	name = strings.ToLower(name)
	for _, p := range c.ValidPrincipals {
		if wildcardMatch(name, strings.ToLower(p)) {
			return true
		}
	}
	return false
}

// Extensions granting permissions in user certificates, PROTOCOL.certkeys.
// A certificate without one of them denies that permission.
const (
	ExtPermitX11Forwarding   = "permit-X11-forwarding"
	ExtPermitAgentForwarding = "permit-agent-forwarding"
	ExtPermitPortForwarding  = "permit-port-forwarding"
	ExtPermitPTY             = "permit-pty"
	ExtPermitUserRC          = "permit-user-rc"
	ExtNoTouchRequired       = "no-touch-required"
)

// flagExtensions are the extensions of user certificates that sshd knows;
// their data must be empty.
var flagExtensions = [...]string{
	ExtPermitX11Forwarding, ExtPermitAgentForwarding, ExtPermitPortForwarding,
	ExtPermitPTY, ExtPermitUserRC, ExtNoTouchRequired,
}

// HasExtension reports whether the certificate carries the named extension.
func (c *Certificate) HasExtension(name string) bool {
	_, ok := c.Extensions[name]
	return ok
}

// matchCIDRList matches ip against a comma-separated list of addresses and
// CIDR blocks (sshd's addr_match_cidr_list: no wildcards, no negation; a
// malformed entry is an error).
func matchCIDRList(ip net.IP, list string) (bool, error) {
	if list == "" {
		return false, errors.New("empty list")
	}
	match := false
	for _, entry := range strings.Split(list, ",") {
		n, err := parseCIDR(entry)
		if err != nil {
			return false, err
		}
		if ip != nil && n.Contains(ip) {
			match = true
		}
	}
	return match, nil
}
