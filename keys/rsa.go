package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// RSA modulus bounds. 1024 is OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE (and
// Go's crypto/rsa refuses smaller keys); 16384 is OpenSSH's
// SSHBUF_MAX_BIGNUM (2048 bytes), which also bounds the work a peer can make
// us do per verification.
const (
	MinRSABits = 1024
	MaxRSABits = 16384
)

// maxRSAExponentBits bounds e: crypto/rsa keeps E in an int and rejects
// anything above 2^31-1; real keys use 65537.
const maxRSAExponentBits = 31

// RSAPublicKey is an ssh-rsa key (RFC 4253 §6.6), which signs with
// rsa-sha2-512, rsa-sha2-256 (RFC 8332) or ssh-rsa (SHA-1).
type RSAPublicKey struct {
	key rsa.PublicKey
}

// NewRSAPublicKey wraps a crypto/rsa key after the same checks
// ParsePublicKey applies.
func NewRSAPublicKey(k *rsa.PublicKey) (*RSAPublicKey, error) {
	if err := checkRSA(k.N, big.NewInt(int64(k.E))); err != nil {
		return nil, err
	}
	return &RSAPublicKey{key: rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E}}, nil
}

func checkRSA(n, e *big.Int) error {
	if bits := n.BitLen(); bits < MinRSABits || bits > MaxRSABits {
		return fmt.Errorf("keys: RSA modulus of %d bits outside [%d, %d]", bits, MinRSABits, MaxRSABits)
	}
	if n.Bit(0) == 0 {
		return errors.New("keys: even RSA modulus")
	}
	if e.BitLen() > maxRSAExponentBits || e.Cmp(big.NewInt(3)) < 0 || e.Bit(0) == 0 {
		return errors.New("keys: invalid RSA public exponent")
	}
	return nil
}

func parseRSA(r *wire.Reader) (*RSAPublicKey, error) {
	e := r.MPInt()
	n := r.MPInt()
	if !r.Ok() {
		return nil, errors.New("keys: malformed ssh-rsa public key")
	}
	if err := checkRSA(n, e); err != nil {
		return nil, err
	}
	return &RSAPublicKey{key: rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
}

func (k *RSAPublicKey) Type() string { return KeyRSA }

func (k *RSAPublicKey) appendFields(b []byte) []byte {
	b = wire.AppendMPInt(b, big.NewInt(int64(k.key.E)))
	return wire.AppendMPInt(b, k.key.N)
}

func (k *RSAPublicKey) Marshal() []byte {
	return k.appendFields(wire.AppendStringS(nil, KeyRSA))
}

// Bits returns the modulus size, so policy can refuse short keys.
func (k *RSAPublicKey) Bits() int { return k.key.N.BitLen() }

// CryptoPublicKey returns a copy of the key as *rsa.PublicKey.
func (k *RSAPublicKey) CryptoPublicKey() any {
	return &rsa.PublicKey{N: new(big.Int).Set(k.key.N), E: k.key.E}
}

// rsaHash returns the hash of an RSA signature algorithm.
func rsaHash(alg string) crypto.Hash {
	switch alg {
	case SigRSASHA512:
		return crypto.SHA512
	case SigRSASHA256:
		return crypto.SHA256
	case SigRSASHA1:
		return crypto.SHA1
	}
	return 0
}

func hashData(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(data)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(data)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(data)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(data)
		return d[:]
	}
	panic("keys: unsupported hash") // tables above name only these
}

func (k *RSAPublicKey) Verify(data []byte, sig *Signature) error {
	if err := checkFormat(KeyRSA, sig); err != nil {
		return err
	}
	size := (k.key.N.BitLen() + 7) / 8
	blob := sig.Blob
	if len(blob) > size || len(blob) == 0 {
		return fmt.Errorf("%w: RSA signature length %d for %d-byte modulus", ErrSignatureInvalid, len(blob), size)
	}
	if len(blob) < size {
		// Some signers strip leading zero bytes; OpenSSH's ssh-rsa.c
		// left-pads such signatures to the modulus size, and so do we.
		padded := make([]byte, size)
		copy(padded[size-len(blob):], blob)
		blob = padded
	}
	h := rsaHash(sig.Format)
	if err := rsa.VerifyPKCS1v15(&k.key, h, hashData(h, data), blob); err != nil {
		return ErrSignatureInvalid
	}
	return nil
}
