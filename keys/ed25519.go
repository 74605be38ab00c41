package keys

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Ed25519PublicKey is an ssh-ed25519 key (RFC 8709 §4).
type Ed25519PublicKey struct {
	key ed25519.PublicKey
}

func parseEd25519Bytes(r *wire.Reader) (ed25519.PublicKey, error) {
	b := r.Bytes()
	if !r.Ok() || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("keys: malformed ssh-ed25519 public key")
	}
	return ed25519.PublicKey(append([]byte(nil), b...)), nil
}

func parseEd25519(r *wire.Reader) (*Ed25519PublicKey, error) {
	k, err := parseEd25519Bytes(r)
	if err != nil {
		return nil, err
	}
	return &Ed25519PublicKey{key: k}, nil
}

// NewEd25519PublicKey wraps a crypto/ed25519 key.
func NewEd25519PublicKey(k ed25519.PublicKey) (*Ed25519PublicKey, error) {
	if len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("keys: ed25519 public key of %d bytes", len(k))
	}
	return &Ed25519PublicKey{key: append(ed25519.PublicKey(nil), k...)}, nil
}

func (k *Ed25519PublicKey) Type() string { return KeyEd25519 }

func (k *Ed25519PublicKey) appendFields(b []byte) []byte { return wire.AppendString(b, k.key) }

func (k *Ed25519PublicKey) Marshal() []byte {
	return k.appendFields(wire.AppendStringS(nil, KeyEd25519))
}

// CryptoPublicKey returns the key as ed25519.PublicKey.
func (k *Ed25519PublicKey) CryptoPublicKey() any { return k.key }

func (k *Ed25519PublicKey) Verify(data []byte, sig *Signature) error {
	if err := checkFormat(KeyEd25519, sig); err != nil {
		return err
	}
	if len(sig.Blob) != ed25519.SignatureSize || !ed25519.Verify(k.key, data, sig.Blob) {
		return ErrSignatureInvalid
	}
	return nil
}
