package keys

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // legacy "DSA PRIVATE KEY" files.
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// ErrEncryptedKey is returned for passphrase-protected private keys, which
// ferry does not decrypt: host keys are stored unencrypted with file
// permissions guarding them, as sshd requires.
var ErrEncryptedKey = errors.New("keys: private key is encrypted with a passphrase; ferry needs an unencrypted key (remove the passphrase with ssh-keygen -p)")

// openSSHMagic starts the OpenSSH private key format (PROTOCOL.key).
const openSSHMagic = "openssh-key-v1\x00"

// openSSHBlockSize is the padding block of the unencrypted private section:
// the "none" cipher's block size in OpenSSH (sshkey.c).
const openSSHBlockSize = 8

// MaxPrivateKeyFile bounds the input of ParsePrivateKey. The largest key we
// accept (16384-bit RSA in PEM) is under 13 KiB.
const MaxPrivateKeyFile = 64 * 1024

// ErrPublicKeyFile is ParsePrivateKey's error for a public key: a .pub file
// (one authorized_keys line) or an RFC 4716 block named where a private key
// belongs, a common slip in a host key setting.
var ErrPublicKeyFile = errors.New("keys: this is a public key, not a private key (name the file without .pub)")

// IsPublicKeyText reports whether data starts with a public key as a .pub
// file holds it ("ssh-ed25519 AAAA... comment", options allowed) or an
// RFC 4716 public key block.
func IsPublicKeyText(data []byte) bool {
	line, _, _ := bytes.Cut(bytes.TrimLeft(data, " \t\r\n"), []byte("\n"))
	if string(bytes.TrimSpace(line)) == RFC4716Begin {
		return true
	}
	_, err := ParseAuthorizedKey(line)
	return err == nil
}

// ParsePrivateKey parses a private key file: the OpenSSH format
// ("BEGIN OPENSSH PRIVATE KEY"), PEM PKCS#1 RSA, SEC 1 EC, PKCS#8 (RSA,
// ECDSA, Ed25519) or the legacy "DSA PRIVATE KEY" format. Encrypted keys give
// ErrEncryptedKey. Security key (sk-*) private keys are refused: they sign
// only through a FIDO authenticator.
func ParsePrivateKey(data []byte) (Signer, error) {
	if len(data) > MaxPrivateKeyFile {
		return nil, fmt.Errorf("keys: private key file larger than %d bytes", MaxPrivateKeyFile)
	}
	// Like OpenSSL's PEM_read_bio_PrivateKey, which sshd and ssh-keygen
	// load PEM keys with, pass over blocks that hold no private key: an
	// "EC PARAMETERS" block heads what openssl ecparam -genkey writes.
	var block *pem.Block
	var skipped []string
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(skipped) > 0 {
				return nil, fmt.Errorf("keys: no private key among PEM blocks %s", sanitize(strings.Join(skipped, ", ")))
			}
			if IsPublicKeyText(data) {
				return nil, ErrPublicKeyFile
			}
			return nil, errors.New("keys: no PEM private key found")
		}
		if privateKeyPEMTypes[block.Type] {
			break
		}
		skipped = append(skipped, fmt.Sprintf("%q", block.Type))
	}
	if block.Headers["Proc-Type"] == "4,ENCRYPTED" || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, ErrEncryptedKey
	}
	switch block.Type {
	case "OPENSSH PRIVATE KEY":
		s, _, err := parseOpenSSHPrivateKey(block.Bytes)
		return s, err
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		return NewSignerFromKey(k)
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		return NewSignerFromKey(k)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		return NewSignerFromKey(k)
	case "DSA PRIVATE KEY":
		k, err := parseDSAPrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		return NewSignerFromKey(k)
	}
	return nil, fmt.Errorf("keys: unsupported PEM block %q", sanitize(block.Type))
}

// privateKeyPEMTypes are the PEM block types ParsePrivateKey reads (or
// refuses as encrypted); other blocks are passed over.
var privateKeyPEMTypes = map[string]bool{
	"OPENSSH PRIVATE KEY":   true,
	"RSA PRIVATE KEY":       true,
	"EC PRIVATE KEY":        true,
	"PRIVATE KEY":           true,
	"DSA PRIVATE KEY":       true,
	"ENCRYPTED PRIVATE KEY": true,
}

// parseDSAPrivateKey parses OpenSSL's DSA private key structure:
// SEQUENCE { version INTEGER (0), p, q, g, y, x INTEGER }.
func parseDSAPrivateKey(der []byte) (*dsa.PrivateKey, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var version int
	p, q, g, y, x := new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&version) || version != 0 ||
		!seq.ReadASN1Integer(p) || !seq.ReadASN1Integer(q) || !seq.ReadASN1Integer(g) ||
		!seq.ReadASN1Integer(y) || !seq.ReadASN1Integer(x) || !seq.Empty() {
		return nil, errors.New("keys: malformed DSA private key")
	}
	return &dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: p, Q: q, G: g}, Y: y}, X: x}, nil
}

// parseOpenSSHPrivateKey parses the PROTOCOL.key format and returns the
// signer and its comment.
func parseOpenSSHPrivateKey(b []byte) (Signer, string, error) {
	if !bytes.HasPrefix(b, []byte(openSSHMagic)) {
		return nil, "", errors.New("keys: not an openssh-key-v1 private key")
	}
	r := wire.NewReader(b[len(openSSHMagic):])
	cipher := r.String()
	kdf := r.String()
	r.Bytes() // kdf options
	n := r.Uint32()
	pubBlob := r.Bytes()
	priv := r.Bytes()
	if !r.Done() {
		return nil, "", errors.New("keys: malformed openssh-key-v1 private key")
	}
	if cipher != "none" || kdf != "none" {
		return nil, "", ErrEncryptedKey
	}
	if n != 1 {
		return nil, "", fmt.Errorf("keys: openssh-key-v1 file holds %d keys, want 1", n)
	}
	if len(priv)%openSSHBlockSize != 0 {
		return nil, "", errors.New("keys: openssh-key-v1 private section not padded")
	}
	pr := wire.NewReader(priv)
	check1, check2 := pr.Uint32(), pr.Uint32()
	typ := pr.String()
	if !pr.Ok() {
		return nil, "", errors.New("keys: malformed openssh-key-v1 private section")
	}
	if check1 != check2 {
		return nil, "", errors.New("keys: openssh-key-v1 check bytes differ (corrupt or wrongly decrypted key)")
	}
	s, err := parseOpenSSHPrivateFields(typ, pr)
	if err != nil {
		return nil, "", err
	}
	comment := pr.String()
	pad := pr.Rest()
	if !pr.Ok() || len(pad) >= openSSHBlockSize {
		return nil, "", errors.New("keys: malformed openssh-key-v1 private section")
	}
	for i, c := range pad {
		if c != byte(i+1) {
			return nil, "", errors.New("keys: bad openssh-key-v1 padding")
		}
	}
	if subtle.ConstantTimeCompare(s.PublicKey().Marshal(), pubBlob) != 1 {
		return nil, "", errors.New("keys: openssh-key-v1 public key does not match private key")
	}
	return s, comment, nil
}

func parseOpenSSHPrivateFields(typ string, r *wire.Reader) (Signer, error) {
	bad := fmt.Errorf("keys: malformed %s private key", sanitize(typ))
	switch typ {
	case KeyRSA:
		n, e, d, iqmp, p, q := r.MPInt(), r.MPInt(), r.MPInt(), r.MPInt(), r.MPInt(), r.MPInt()
		if !r.Ok() {
			return nil, bad
		}
		if err := checkRSA(n, e); err != nil {
			return nil, err
		}
		k := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		_ = iqmp // recomputed by Precompute, which Validate checks against
		k.Precompute()
		return NewSignerFromKey(k)
	case KeyDSA:
		p, q, g, y, x := r.MPInt(), r.MPInt(), r.MPInt(), r.MPInt(), r.MPInt()
		if !r.Ok() {
			return nil, bad
		}
		return NewSignerFromKey(&dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: p, Q: q, G: g}, Y: y}, X: x})
	case KeyECDSAP256, KeyECDSAP384, KeyECDSAP521:
		c := curveByKeyType(typ)
		pub, err := parseECDSAPoint(c, r)
		if err != nil {
			return nil, err
		}
		d := r.MPInt()
		if !r.Ok() {
			return nil, bad
		}
		size := (c.curve.Params().BitSize + 7) / 8
		if d.BitLen() > size*8 {
			return nil, bad
		}
		priv, err := ecdsa.ParseRawPrivateKey(c.curve, d.FillBytes(make([]byte, size)))
		if err != nil {
			return nil, bad
		}
		if !priv.PublicKey.Equal(pub.key) {
			return nil, fmt.Errorf("keys: %s private key does not match its public key", typ)
		}
		return NewSignerFromKey(priv)
	case KeyEd25519:
		pk := r.Bytes()
		sk := r.Bytes()
		if !r.Ok() || len(pk) != ed25519.PublicKeySize || len(sk) != ed25519.PrivateKeySize {
			return nil, bad
		}
		priv := ed25519.NewKeyFromSeed(sk[:ed25519.SeedSize])
		if !bytes.Equal(priv[ed25519.SeedSize:], pk) || !bytes.Equal(sk[ed25519.SeedSize:], pk) {
			return nil, fmt.Errorf("keys: %s private key does not match its public key", typ)
		}
		return NewSignerFromKey(priv)
	case KeySKECDSAP256, KeySKEd25519:
		return nil, fmt.Errorf("keys: %s private keys sign only through a FIDO authenticator", typ)
	}
	return nil, fmt.Errorf("keys: unsupported private key type %q", sanitize(typ))
}

// MarshalPrivateKey encodes s in the unencrypted OpenSSH private key format
// (PROTOCOL.key), PEM-armored, as ssh-keygen writes it. s must come from
// this package (GenerateKey, ParsePrivateKey, NewSignerFromKey).
func MarshalPrivateKey(s Signer, comment string) ([]byte, error) {
	var fields []byte
	typ := s.PublicKey().Type()
	fields = wire.AppendStringS(fields, typ)
	switch s := s.(type) {
	case *rsaSigner:
		k := s.priv
		if len(k.Primes) != 2 {
			return nil, errors.New("keys: multi-prime RSA keys cannot be stored in OpenSSH format")
		}
		iqmp := new(big.Int).ModInverse(k.Primes[1], k.Primes[0])
		if iqmp == nil {
			return nil, errors.New("keys: invalid RSA private key")
		}
		for _, v := range []*big.Int{k.N, big.NewInt(int64(k.E)), k.D, iqmp, k.Primes[0], k.Primes[1]} {
			fields = wire.AppendMPInt(fields, v)
		}
	case *dsaSigner:
		k := s.priv
		for _, v := range []*big.Int{k.P, k.Q, k.G, k.Y, k.X} {
			fields = wire.AppendMPInt(fields, v)
		}
	case *ecdsaSigner:
		fields = s.pub.appendFields(fields)
		d, err := s.priv.Bytes()
		if err != nil {
			return nil, err
		}
		fields = wire.AppendMPIntBytes(fields, d)
	case *ed25519Signer:
		fields = wire.AppendString(fields, s.pub.key)
		fields = wire.AppendString(fields, s.priv)
	default:
		return nil, fmt.Errorf("keys: cannot store a %T private key", s)
	}
	var check [4]byte
	if _, err := rand.Read(check[:]); err != nil {
		return nil, err
	}
	priv := append(check[:], check[:]...)
	priv = append(priv, fields...)
	priv = wire.AppendStringS(priv, comment)
	for i := byte(1); len(priv)%openSSHBlockSize != 0; i++ {
		priv = append(priv, i)
	}
	out := []byte(openSSHMagic)
	out = wire.AppendStringS(out, "none")
	out = wire.AppendStringS(out, "none")
	out = wire.AppendString(out, nil)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = wire.AppendString(out, s.PublicKey().Marshal())
	out = wire.AppendString(out, priv)
	return pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: out}), nil
}
