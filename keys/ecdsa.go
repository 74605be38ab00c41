package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// ecdsaCurve describes one of the RFC 5656 §10.1 required curves.
type ecdsaCurve struct {
	keyType    string
	identifier string // RFC 5656 §6.1 curve identifier
	curve      elliptic.Curve
	hash       crypto.Hash // RFC 5656 §6.2.1
}

var ecdsaCurves = [...]ecdsaCurve{
	{KeyECDSAP256, "nistp256", elliptic.P256(), crypto.SHA256},
	{KeyECDSAP384, "nistp384", elliptic.P384(), crypto.SHA384},
	{KeyECDSAP521, "nistp521", elliptic.P521(), crypto.SHA512},
}

func curveByKeyType(t string) *ecdsaCurve {
	for i := range ecdsaCurves {
		if ecdsaCurves[i].keyType == t {
			return &ecdsaCurves[i]
		}
	}
	return nil
}

func curveByCurve(c elliptic.Curve) *ecdsaCurve {
	for i := range ecdsaCurves {
		if ecdsaCurves[i].curve == c {
			return &ecdsaCurves[i]
		}
	}
	return nil
}

// ECDSAPublicKey is an ecdsa-sha2-nistp256/384/521 key (RFC 5656 §3.1).
type ECDSAPublicKey struct {
	c     *ecdsaCurve
	key   *ecdsa.PublicKey
	point []byte // uncompressed SEC 1 encoding, as on the wire
}

// parseECDSAPoint reads the curve identifier and point; it checks that the
// identifier matches the key format and that the point is on the curve and
// not the point at infinity (ecdsa.ParseUncompressedPublicKey does both).
func parseECDSAPoint(c *ecdsaCurve, r *wire.Reader) (*ECDSAPublicKey, error) {
	id := r.String()
	point := r.Bytes()
	if !r.Ok() {
		return nil, fmt.Errorf("keys: malformed %s public key", c.keyType)
	}
	if id != c.identifier {
		return nil, fmt.Errorf("keys: curve %q does not match key type %s", sanitize(id), c.keyType)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(c.curve, point)
	if err != nil {
		return nil, fmt.Errorf("keys: invalid %s point", c.keyType)
	}
	return &ECDSAPublicKey{c: c, key: pub, point: append([]byte(nil), point...)}, nil
}

func parseECDSA(typ string, r *wire.Reader) (*ECDSAPublicKey, error) {
	return parseECDSAPoint(curveByKeyType(typ), r)
}

// NewECDSAPublicKey wraps a crypto/ecdsa key on P-256, P-384 or P-521.
func NewECDSAPublicKey(k *ecdsa.PublicKey) (*ECDSAPublicKey, error) {
	c := curveByCurve(k.Curve)
	if c == nil {
		return nil, errors.New("keys: unsupported ECDSA curve")
	}
	point, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keys: invalid ECDSA key: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(c.curve, point)
	if err != nil {
		return nil, fmt.Errorf("keys: invalid ECDSA key: %w", err)
	}
	return &ECDSAPublicKey{c: c, key: pub, point: point}, nil
}

func (k *ECDSAPublicKey) Type() string { return k.c.keyType }

func (k *ECDSAPublicKey) appendFields(b []byte) []byte {
	b = wire.AppendStringS(b, k.c.identifier)
	return wire.AppendString(b, k.point)
}

func (k *ECDSAPublicKey) Marshal() []byte {
	return k.appendFields(wire.AppendStringS(nil, k.c.keyType))
}

// Curve returns the RFC 5656 curve identifier: "nistp256", "nistp384" or
// "nistp521".
func (k *ECDSAPublicKey) Curve() string { return k.c.identifier }

// CryptoPublicKey returns the key as *ecdsa.PublicKey.
func (k *ECDSAPublicKey) CryptoPublicKey() any { return k.key }

// verifyECDSABlob checks an RFC 5656 §3.1.2 signature blob (mpint r, mpint
// s) over an already computed digest.
func verifyECDSABlob(key *ecdsa.PublicKey, digest, blob []byte) error {
	r := wire.NewReader(blob)
	sr := r.MPInt()
	ss := r.MPInt()
	if !r.Done() {
		return fmt.Errorf("%w: malformed ECDSA signature blob", ErrSignatureInvalid)
	}
	if !ecdsa.Verify(key, digest, sr, ss) {
		return ErrSignatureInvalid
	}
	return nil
}

func (k *ECDSAPublicKey) Verify(data []byte, sig *Signature) error {
	if err := checkFormat(k.c.keyType, sig); err != nil {
		return err
	}
	return verifyECDSABlob(k.key, hashData(k.c.hash, data), sig.Blob)
}

// appendECDSASignatureBlob encodes r and s as RFC 5656 §3.1.2 requires.
func appendECDSASignatureBlob(b []byte, r, s *big.Int) []byte {
	b = wire.AppendMPInt(b, r)
	return wire.AppendMPInt(b, s)
}
