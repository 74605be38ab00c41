package keys

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // ssh-dss is legacy but still in the wild (RFC 4253 §6.6).
	"errors"
	"math/big"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// DSA parameter sizes. ssh-dss signs with SHA-1 and its 40-byte signature
// holds two 160-bit numbers (RFC 4253 §6.6), so q must be 160 bits (FIPS
// 186-2). OpenSSH only generates 1024-bit p; we accept up to 3072 (the
// largest FIPS 186-3 size) to bound the work of a verification.
const (
	dsaQBits    = 160
	minDSAPBits = 1024
	maxDSAPBits = 3072
	dsaSigLen   = 40
)

// DSAPublicKey is a legacy ssh-dss key (RFC 4253 §6.6).
type DSAPublicKey struct {
	key dsa.PublicKey
}

func checkDSA(p, q, g, y *big.Int) error {
	one := big.NewInt(1)
	if p.BitLen() < minDSAPBits || p.BitLen() > maxDSAPBits || q.BitLen() != dsaQBits ||
		p.Bit(0) == 0 || q.Bit(0) == 0 ||
		g.Cmp(one) <= 0 || g.Cmp(p) >= 0 || y.Cmp(one) <= 0 || y.Cmp(p) >= 0 {
		return errors.New("keys: invalid ssh-dss parameters")
	}
	return nil
}

func parseDSA(r *wire.Reader) (*DSAPublicKey, error) {
	p, q, g, y := r.MPInt(), r.MPInt(), r.MPInt(), r.MPInt()
	if !r.Ok() {
		return nil, errors.New("keys: malformed ssh-dss public key")
	}
	if err := checkDSA(p, q, g, y); err != nil {
		return nil, err
	}
	return &DSAPublicKey{key: dsa.PublicKey{Parameters: dsa.Parameters{P: p, Q: q, G: g}, Y: y}}, nil
}

// NewDSAPublicKey wraps a crypto/dsa key.
func NewDSAPublicKey(k *dsa.PublicKey) (*DSAPublicKey, error) {
	if err := checkDSA(k.P, k.Q, k.G, k.Y); err != nil {
		return nil, err
	}
	return &DSAPublicKey{key: *k}, nil
}

func (k *DSAPublicKey) Type() string { return KeyDSA }

func (k *DSAPublicKey) appendFields(b []byte) []byte {
	b = wire.AppendMPInt(b, k.key.P)
	b = wire.AppendMPInt(b, k.key.Q)
	b = wire.AppendMPInt(b, k.key.G)
	return wire.AppendMPInt(b, k.key.Y)
}

func (k *DSAPublicKey) Marshal() []byte {
	return k.appendFields(wire.AppendStringS(nil, KeyDSA))
}

// CryptoPublicKey returns the key as *dsa.PublicKey.
func (k *DSAPublicKey) CryptoPublicKey() any { return &k.key }

func (k *DSAPublicKey) Verify(data []byte, sig *Signature) error {
	if err := checkFormat(KeyDSA, sig); err != nil {
		return err
	}
	if len(sig.Blob) != dsaSigLen {
		return ErrSignatureInvalid
	}
	r := new(big.Int).SetBytes(sig.Blob[:dsaSigLen/2])
	s := new(big.Int).SetBytes(sig.Blob[dsaSigLen/2:])
	if !dsa.Verify(&k.key, hashData(crypto.SHA1, data), r, s) {
		return ErrSignatureInvalid
	}
	return nil
}
