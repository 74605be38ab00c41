package keys

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // ssh-dss is legacy but still in the wild (RFC 4253 §6.6).
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
)

// Signer is a private key able to make SSH signatures.
type Signer interface {
	PublicKey() PublicKey
	// Sign signs data with the given signature algorithm, or the key's
	// default algorithm when algorithm is "" (rsa-sha2-512 for RSA).
	Sign(rand io.Reader, data []byte, algorithm string) (*Signature, error)
}

// DefaultRSABits is the RSA size GenerateKey uses when bits is 0; it is
// ssh-keygen's default since OpenSSH 8.8.
const DefaultRSABits = 3072

// NewSignerFromKey wraps a standard library private key: *rsa.PrivateKey,
// *ecdsa.PrivateKey (P-256/384/521), ed25519.PrivateKey or *dsa.PrivateKey.
// The parameter is crypto.PrivateKey rather than crypto.Signer because
// *dsa.PrivateKey has no Sign method.
func NewSignerFromKey(k crypto.PrivateKey) (Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("keys: invalid RSA private key: %w", err)
		}
		pub, err := NewRSAPublicKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		return &rsaSigner{priv: k, pub: pub}, nil
	case *ecdsa.PrivateKey:
		pub, err := NewECDSAPublicKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		return &ecdsaSigner{priv: k, pub: pub}, nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, errors.New("keys: invalid ed25519 private key")
		}
		pub, err := NewEd25519PublicKey(k.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		return &ed25519Signer{priv: k, pub: pub}, nil
	case *ed25519.PrivateKey:
		return NewSignerFromKey(*k)
	case *dsa.PrivateKey:
		pub, err := NewDSAPublicKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		if k.X == nil || k.X.Sign() <= 0 || k.X.Cmp(k.Q) >= 0 ||
			new(big.Int).Exp(k.G, k.X, k.P).Cmp(k.Y) != 0 {
			return nil, errors.New("keys: invalid DSA private key")
		}
		return &dsaSigner{priv: k, pub: pub}, nil
	}
	return nil, fmt.Errorf("keys: unsupported private key type %T", k)
}

// GenerateKey makes a new key: "ssh-ed25519", "ssh-rsa" (bits, 0 means
// DefaultRSABits), "ecdsa-sha2-nistp256/384/521" (bits ignored) or
// "ssh-dss" (1024 bits only; legacy, for tests and old peers).
func GenerateKey(keyType string, bits int) (Signer, error) {
	switch keyType {
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return NewSignerFromKey(priv)
	case KeyRSA:
		if bits == 0 {
			bits = DefaultRSABits
		}
		if bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("keys: RSA size %d outside [%d, %d]", bits, MinRSABits, MaxRSABits)
		}
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		return NewSignerFromKey(priv)
	case KeyECDSAP256, KeyECDSAP384, KeyECDSAP521:
		priv, err := ecdsa.GenerateKey(curveByKeyType(keyType).curve, rand.Reader)
		if err != nil {
			return nil, err
		}
		return NewSignerFromKey(priv)
	case KeyDSA:
		if bits != 0 && bits != 1024 {
			return nil, errors.New("keys: ssh-dss keys are 1024 bits")
		}
		priv := new(dsa.PrivateKey)
		if err := dsa.GenerateParameters(&priv.Parameters, rand.Reader, dsa.L1024N160); err != nil {
			return nil, err
		}
		if err := dsa.GenerateKey(priv, rand.Reader); err != nil {
			return nil, err
		}
		return NewSignerFromKey(priv)
	}
	return nil, fmt.Errorf("keys: cannot generate %q keys", sanitize(keyType))
}

// pickAlgorithm resolves "" to the key type's preferred algorithm and checks
// that alg is one the key type can make.
func pickAlgorithm(keyType, alg string) (string, error) {
	algs := signatureAlgorithms[keyType]
	if alg == "" {
		return algs[0], nil
	}
	if !slices.Contains(algs, alg) {
		return "", fmt.Errorf("%w: cannot sign %q with a %s key", ErrWrongAlgorithm, sanitize(alg), keyType)
	}
	return alg, nil
}

type rsaSigner struct {
	priv *rsa.PrivateKey
	pub  *RSAPublicKey
}

func (s *rsaSigner) PublicKey() PublicKey { return s.pub }

func (s *rsaSigner) Sign(r io.Reader, data []byte, algorithm string) (*Signature, error) {
	alg, err := pickAlgorithm(KeyRSA, algorithm)
	if err != nil {
		return nil, err
	}
	h := rsaHash(alg)
	blob, err := rsa.SignPKCS1v15(r, s.priv, h, hashData(h, data))
	if err != nil {
		return nil, err
	}
	return &Signature{Format: alg, Blob: blob}, nil
}

type ecdsaSigner struct {
	priv *ecdsa.PrivateKey
	pub  *ECDSAPublicKey
}

func (s *ecdsaSigner) PublicKey() PublicKey { return s.pub }

func (s *ecdsaSigner) Sign(r io.Reader, data []byte, algorithm string) (*Signature, error) {
	alg, err := pickAlgorithm(s.pub.c.keyType, algorithm)
	if err != nil {
		return nil, err
	}
	sr, ss, err := ecdsa.Sign(r, s.priv, hashData(s.pub.c.hash, data))
	if err != nil {
		return nil, err
	}
	return &Signature{Format: alg, Blob: appendECDSASignatureBlob(nil, sr, ss)}, nil
}

type ed25519Signer struct {
	priv ed25519.PrivateKey
	pub  *Ed25519PublicKey
}

func (s *ed25519Signer) PublicKey() PublicKey { return s.pub }

func (s *ed25519Signer) Sign(_ io.Reader, data []byte, algorithm string) (*Signature, error) {
	alg, err := pickAlgorithm(KeyEd25519, algorithm)
	if err != nil {
		return nil, err
	}
	return &Signature{Format: alg, Blob: ed25519.Sign(s.priv, data)}, nil
}

type dsaSigner struct {
	priv *dsa.PrivateKey
	pub  *DSAPublicKey
}

func (s *dsaSigner) PublicKey() PublicKey { return s.pub }

func (s *dsaSigner) Sign(r io.Reader, data []byte, algorithm string) (*Signature, error) {
	alg, err := pickAlgorithm(KeyDSA, algorithm)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = rand.Reader
	}
	sr, ss, err := dsa.Sign(r, s.priv, hashData(crypto.SHA1, data))
	if err != nil {
		return nil, err
	}
	blob := make([]byte, dsaSigLen)
	sr.FillBytes(blob[:dsaSigLen/2])
	ss.FillBytes(blob[dsaSigLen/2:])
	return &Signature{Format: alg, Blob: blob}, nil
}

// certSigner signs with a key and presents its certificate.
type certSigner struct {
	cert   *Certificate
	signer Signer
}

// NewCertSigner returns a Signer that presents cert as its public key and
// signs with s, whose public key must be the certified key. Sign accepts the
// certificate algorithm names (rsa-sha2-256-cert-v01@openssh.com) and makes
// the plain signatures they stand for.
func NewCertSigner(cert *Certificate, s Signer) (Signer, error) {
	if !Equal(cert.Key, s.PublicKey()) {
		return nil, errors.New("keys: certificate does not certify the signer's key")
	}
	return &certSigner{cert: cert, signer: s}, nil
}

func (s *certSigner) PublicKey() PublicKey { return s.cert }

func (s *certSigner) Sign(r io.Reader, data []byte, algorithm string) (*Signature, error) {
	return s.signer.Sign(r, data, UnderlyingAlgorithm(algorithm))
}
