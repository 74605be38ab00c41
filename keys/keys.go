package keys

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Key format names (RFC 4253 §6.6, RFC 5656 §6.2, RFC 8709 §4, PROTOCOL.u2f).
const (
	KeyRSA          = "ssh-rsa"
	KeyDSA          = "ssh-dss"
	KeyECDSAP256    = "ecdsa-sha2-nistp256"
	KeyECDSAP384    = "ecdsa-sha2-nistp384"
	KeyECDSAP521    = "ecdsa-sha2-nistp521"
	KeyEd25519      = "ssh-ed25519"
	KeySKECDSAP256  = "sk-ecdsa-sha2-nistp256@openssh.com"
	KeySKEd25519    = "sk-ssh-ed25519@openssh.com"
	CertRSA         = "ssh-rsa-cert-v01@openssh.com"
	CertDSA         = "ssh-dss-cert-v01@openssh.com"
	CertECDSAP256   = "ecdsa-sha2-nistp256-cert-v01@openssh.com"
	CertECDSAP384   = "ecdsa-sha2-nistp384-cert-v01@openssh.com"
	CertECDSAP521   = "ecdsa-sha2-nistp521-cert-v01@openssh.com"
	CertEd25519     = "ssh-ed25519-cert-v01@openssh.com"
	CertSKECDSAP256 = "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
	CertSKEd25519   = "sk-ssh-ed25519-cert-v01@openssh.com"
)

// Signature algorithm names that differ from key format names: RFC 8332
// (RSA with SHA-2) and their certificate forms, PROTOCOL.certkeys.
const (
	SigRSASHA1       = "ssh-rsa"
	SigRSASHA256     = "rsa-sha2-256"
	SigRSASHA512     = "rsa-sha2-512"
	CertSigRSASHA256 = "rsa-sha2-256-cert-v01@openssh.com"
	CertSigRSASHA512 = "rsa-sha2-512-cert-v01@openssh.com"
)

// signatureAlgorithms lists, per key format, the signature algorithms the key
// can produce, in the order a client prefers them (RFC 8332 §3: SHA-512
// first, SHA-1 last).
var signatureAlgorithms = map[string][]string{
	KeyRSA:          {SigRSASHA512, SigRSASHA256, SigRSASHA1},
	KeyDSA:          {KeyDSA},
	KeyECDSAP256:    {KeyECDSAP256},
	KeyECDSAP384:    {KeyECDSAP384},
	KeyECDSAP521:    {KeyECDSAP521},
	KeyEd25519:      {KeyEd25519},
	KeySKECDSAP256:  {KeySKECDSAP256},
	KeySKEd25519:    {KeySKEd25519},
	CertRSA:         {CertSigRSASHA512, CertSigRSASHA256, CertRSA},
	CertDSA:         {CertDSA},
	CertECDSAP256:   {CertECDSAP256},
	CertECDSAP384:   {CertECDSAP384},
	CertECDSAP521:   {CertECDSAP521},
	CertEd25519:     {CertEd25519},
	CertSKECDSAP256: {CertSKECDSAP256},
	CertSKEd25519:   {CertSKEd25519},
}

// keyTypeOfAlgorithm inverts signatureAlgorithms. Built once; never written.
var keyTypeOfAlgorithm = func() map[string]string {
	m := make(map[string]string)
	for kt, algs := range signatureAlgorithms {
		for _, a := range algs {
			m[a] = kt
		}
	}
	return m
}()

// certAlgorithmBase maps a certificate key format or signature algorithm to
// the algorithm of the signature the certified key makes: a user
// authenticating with rsa-sha2-512-cert-v01@openssh.com signs with
// rsa-sha2-512 (PROTOCOL.certkeys; RFC 8332 §3.3 for the RSA names).
var certAlgorithmBase = map[string]string{
	CertSigRSASHA512: SigRSASHA512,
	CertSigRSASHA256: SigRSASHA256,
	CertRSA:          SigRSASHA1,
	CertDSA:          KeyDSA,
	CertECDSAP256:    KeyECDSAP256,
	CertECDSAP384:    KeyECDSAP384,
	CertECDSAP521:    KeyECDSAP521,
	CertEd25519:      KeyEd25519,
	CertSKECDSAP256:  KeySKECDSAP256,
	CertSKEd25519:    KeySKEd25519,
}

// keyTypeOfCertType maps a certificate format to the format of the key it
// certifies.
var keyTypeOfCertType = map[string]string{
	CertRSA:         KeyRSA,
	CertDSA:         KeyDSA,
	CertECDSAP256:   KeyECDSAP256,
	CertECDSAP384:   KeyECDSAP384,
	CertECDSAP521:   KeyECDSAP521,
	CertEd25519:     KeyEd25519,
	CertSKECDSAP256: KeySKECDSAP256,
	CertSKEd25519:   KeySKEd25519,
}

// SignatureAlgorithmsFor returns the signature algorithms a key of the given
// format can make, preferred first, or nil for an unknown format. The result
// is a fresh slice the caller may modify.
func SignatureAlgorithmsFor(keyType string) []string {
	return slices.Clone(signatureAlgorithms[keyType])
}

// KeyTypeOfAlgorithm returns the key format that makes signatures with the
// given algorithm ("rsa-sha2-256" → "ssh-rsa",
// "rsa-sha2-512-cert-v01@openssh.com" → "ssh-rsa-cert-v01@openssh.com"), or
// "" when the algorithm is unknown. This is how a server maps the public key
// algorithm named in SSH_MSG_USERAUTH_REQUEST (RFC 4252 §7) to the blob it
// must parse.
func KeyTypeOfAlgorithm(alg string) string {
	return keyTypeOfAlgorithm[alg]
}

// UnderlyingAlgorithm returns the algorithm of the signature made by the
// key inside a certificate for a certificate algorithm
// ("rsa-sha2-256-cert-v01@openssh.com" → "rsa-sha2-256"); other algorithms
// are returned unchanged.
func UnderlyingAlgorithm(alg string) string {
	if a, ok := certAlgorithmBase[alg]; ok {
		return a
	}
	return alg
}

// IsCertificateType reports whether a key format name is an OpenSSH
// certificate format.
func IsCertificateType(keyType string) bool {
	_, ok := keyTypeOfCertType[keyType]
	return ok
}

// PublicKey is an SSH public key of any supported format, including
// certificates.
type PublicKey interface {
	// Type returns the key format name, e.g. "ssh-ed25519".
	Type() string
	// Marshal returns the key's wire blob (RFC 4253 §6.6).
	Marshal() []byte
	// Verify checks sig over data. sig.Format must be a signature
	// algorithm valid for this key type; which algorithms are allowed is
	// the caller's policy. Security keys additionally require the user
	// presence flag; see VerifyWithPolicy.
	Verify(data []byte, sig *Signature) error
}

// CryptoPublicKey is implemented by keys that can hand out their standard
// library form (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey,
// *dsa.PublicKey).
type CryptoPublicKey interface {
	CryptoPublicKey() any
}

// Errors returned by Verify. Callers compare with errors.Is.
var (
	// ErrSignatureInvalid means the signature does not verify.
	ErrSignatureInvalid = errors.New("keys: signature verification failed")
	// ErrWrongAlgorithm means the signature's algorithm cannot be made by
	// the key's type, e.g. an ssh-ed25519 signature for an RSA key.
	ErrWrongAlgorithm = errors.New("keys: signature algorithm does not match key type")
	// ErrUserPresence means a security key signature lacks the user
	// presence flag (PROTOCOL.u2f) and the policy requires it.
	ErrUserPresence = errors.New("keys: security key signature without user presence")
	// ErrUserVerification means a security key signature lacks the user
	// verification flag and verify-required is in force.
	ErrUserVerification = errors.New("keys: security key signature without user verification")
)

// checkFormat returns ErrWrongAlgorithm unless alg is a signature algorithm
// of keyType.
func checkFormat(keyType string, sig *Signature) error {
	if sig == nil {
		return errors.New("keys: nil signature")
	}
	if !slices.Contains(signatureAlgorithms[keyType], sig.Format) {
		return fmt.Errorf("%w: %q signature for %s key", ErrWrongAlgorithm, sig.Format, keyType)
	}
	if len(sig.Rest) != 0 {
		return fmt.Errorf("keys: unexpected trailing data in %s signature", sig.Format)
	}
	return nil
}

// ParsePublicKey parses a public key blob (RFC 4253 §6.6 and the formats
// listed in the package comment). Parsing is strict: unknown formats,
// trailing bytes, points off the curve, keys of unsupported size and
// non-minimal integers are errors.
func ParsePublicKey(blob []byte) (PublicKey, error) {
	r := wire.NewReader(blob)
	typ := r.String()
	if !r.Ok() {
		return nil, errors.New("keys: short public key blob")
	}
	var (
		k   PublicKey
		err error
	)
	switch typ {
	case KeyRSA:
		k, err = parseRSA(r)
	case KeyDSA:
		k, err = parseDSA(r)
	case KeyECDSAP256, KeyECDSAP384, KeyECDSAP521:
		k, err = parseECDSA(typ, r)
	case KeyEd25519:
		k, err = parseEd25519(r)
	case KeySKECDSAP256:
		k, err = parseSKECDSA(r)
	case KeySKEd25519:
		k, err = parseSKEd25519(r)
	default:
		if IsCertificateType(typ) {
			return parseCertificate(typ, r, blob)
		}
		return nil, fmt.Errorf("keys: unknown key type %q", sanitize(typ))
	}
	if err != nil {
		return nil, err
	}
	if !r.Done() {
		return nil, fmt.Errorf("keys: malformed %s public key", typ)
	}
	return k, nil
}

// Equal reports whether two public keys have the same wire form.
func Equal(a, b PublicKey) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Marshal(), b.Marshal())
}

// fingerprintBlob is what a fingerprint hashes: the key blob, or for a
// certificate the blob of the certified key, as OpenSSH's
// sshkey_fingerprint does (ssh-keygen -l and sshd's log lines show the same
// fingerprint for a key and its certificates).
func fingerprintBlob(k PublicKey) []byte {
	if c, ok := k.(*Certificate); ok {
		k = c.Key
	}
	return k.Marshal()
}

// FingerprintSHA256 returns the SHA-256 fingerprint of k exactly as
// ssh-keygen -l prints it: "SHA256:" and unpadded base64. A certificate has
// its certified key's fingerprint.
func FingerprintSHA256(k PublicKey) string {
	h := sha256.Sum256(fingerprintBlob(k))
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}

// FingerprintMD5 returns the legacy MD5 fingerprint as ssh-keygen -l -E md5
// prints it: "MD5:" and colon-separated hex pairs.
func FingerprintMD5(k PublicKey) string {
	h := md5.Sum(fingerprintBlob(k))
	hx := hex.EncodeToString(h[:])
	var b strings.Builder
	b.Grow(len("MD5:") + len(hx) + len(h) - 1)
	b.WriteString("MD5:")
	for i := 0; i < len(hx); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hx[i : i+2])
	}
	return b.String()
}

// MarshalAuthorizedKey returns k in the authorized_keys / .pub form
// "type base64\n".
func MarshalAuthorizedKey(k PublicKey) []byte {
	blob := k.Marshal()
	typ := k.Type()
	out := make([]byte, 0, len(typ)+1+base64.StdEncoding.EncodedLen(len(blob))+1)
	out = append(out, typ...)
	out = append(out, ' ')
	out = base64.StdEncoding.AppendEncode(out, blob)
	return append(out, '\n')
}

// sanitize bounds and cleans peer-supplied text before it goes into an error
// message, so a hostile blob cannot put control characters or megabytes into
// logs.
func sanitize(s string) string {
	const maxShown = 64 // enough for every real algorithm name
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
