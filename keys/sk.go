package keys

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// maxSKApplicationLen bounds the FIDO application (relying party ID) string.
// CTAP2 RP IDs are DNS names (at most 253 bytes) prefixed "ssh:" by OpenSSH;
// 1 KiB leaves ample room without letting a blob carry megabytes we copy.
const maxSKApplicationLen = 1024

// SKPolicy says which FIDO flags a security key signature must carry
// (PROTOCOL.u2f; sshd(8) no-touch-required and verify-required, and the
// certificate extension no-touch-required). The zero value is sshd's
// default: user presence required, user verification not.
type SKPolicy struct {
	NoTouchRequired bool // accept signatures without the user-presence flag
	VerifyRequired  bool // require the user-verification flag (PIN/biometric)
}

// SKPublicKey is implemented by security key public keys and certificates of
// them.
type SKPublicKey interface {
	PublicKey
	// Application returns the FIDO application string, e.g. "ssh:".
	Application() string
	// VerifyWithPolicy verifies like Verify, checking the flags against p
	// instead of the default policy.
	VerifyWithPolicy(data []byte, sig *Signature, p SKPolicy) error
}

// VerifyWithPolicy verifies sig over data with k, applying p when k is a
// security key (or a certificate of one); other keys ignore p.
func VerifyWithPolicy(k PublicKey, data []byte, sig *Signature, p SKPolicy) error {
	if c, ok := k.(*Certificate); ok {
		k = c.Key
	}
	if sk, ok := k.(SKPublicKey); ok {
		return sk.VerifyWithPolicy(data, sig, p)
	}
	return k.Verify(data, sig)
}

// skSignedData builds what the authenticator signed (PROTOCOL.u2f "SSH U2F
// signatures"): SHA256(application) || flags || counter || SHA256(data).
func skSignedData(application string, rest, data []byte) []byte {
	app := sha256.Sum256([]byte(application))
	msg := sha256.Sum256(data)
	b := make([]byte, 0, 2*sha256.Size+skRestLen)
	b = append(b, app[:]...)
	b = append(b, rest...)
	return append(b, msg[:]...)
}

func checkSKSignature(keyType string, sig *Signature) error {
	if sig == nil {
		return errors.New("keys: nil signature")
	}
	if sig.Format != keyType {
		return fmt.Errorf("%w: %q signature for %s key", ErrWrongAlgorithm, sig.Format, keyType)
	}
	if len(sig.Rest) != skRestLen {
		return fmt.Errorf("%w: %s signature without flags and counter", ErrSignatureInvalid, keyType)
	}
	return nil
}

func checkSKFlags(sig *Signature, p SKPolicy) error {
	flags := sig.Rest[0]
	if !p.NoTouchRequired && flags&SKFlagUserPresent == 0 {
		return ErrUserPresence
	}
	if p.VerifyRequired && flags&SKFlagUserVerified == 0 {
		return ErrUserVerification
	}
	return nil
}

func readApplication(r *wire.Reader, keyType string) (string, error) {
	app := r.Bytes()
	if !r.Ok() || len(app) > maxSKApplicationLen {
		return "", fmt.Errorf("keys: malformed %s application", keyType)
	}
	return string(app), nil
}

// SKEd25519PublicKey is an sk-ssh-ed25519@openssh.com key (PROTOCOL.u2f).
type SKEd25519PublicKey struct {
	key ed25519.PublicKey
	app string
}

func parseSKEd25519(r *wire.Reader) (*SKEd25519PublicKey, error) {
	k, err := parseEd25519Bytes(r)
	if err != nil {
		return nil, fmt.Errorf("keys: malformed %s public key", KeySKEd25519)
	}
	app, err := readApplication(r, KeySKEd25519)
	if err != nil {
		return nil, err
	}
	return &SKEd25519PublicKey{key: k, app: app}, nil
}

func (k *SKEd25519PublicKey) Type() string        { return KeySKEd25519 }
func (k *SKEd25519PublicKey) Application() string { return k.app }

// CryptoPublicKey returns the key as ed25519.PublicKey.
func (k *SKEd25519PublicKey) CryptoPublicKey() any { return k.key }

func (k *SKEd25519PublicKey) appendFields(b []byte) []byte {
	b = wire.AppendString(b, k.key)
	return wire.AppendStringS(b, k.app)
}

func (k *SKEd25519PublicKey) Marshal() []byte {
	return k.appendFields(wire.AppendStringS(nil, KeySKEd25519))
}

// Verify requires the user-presence flag; use VerifyWithPolicy for
// no-touch-required and verify-required.
func (k *SKEd25519PublicKey) Verify(data []byte, sig *Signature) error {
	return k.VerifyWithPolicy(data, sig, SKPolicy{})
}

func (k *SKEd25519PublicKey) VerifyWithPolicy(data []byte, sig *Signature, p SKPolicy) error {
	if err := checkSKSignature(KeySKEd25519, sig); err != nil {
		return err
	}
	if len(sig.Blob) != ed25519.SignatureSize ||
		!ed25519.Verify(k.key, skSignedData(k.app, sig.Rest, data), sig.Blob) {
		return ErrSignatureInvalid
	}
	return checkSKFlags(sig, p)
}

// SKECDSAPublicKey is an sk-ecdsa-sha2-nistp256@openssh.com key
// (PROTOCOL.u2f).
type SKECDSAPublicKey struct {
	ECDSAPublicKey
	app string
}

func parseSKECDSA(r *wire.Reader) (*SKECDSAPublicKey, error) {
	k, err := parseECDSAPoint(curveByKeyType(KeyECDSAP256), r)
	if err != nil {
		return nil, fmt.Errorf("keys: malformed %s public key", KeySKECDSAP256)
	}
	app, err := readApplication(r, KeySKECDSAP256)
	if err != nil {
		return nil, err
	}
	return &SKECDSAPublicKey{ECDSAPublicKey: *k, app: app}, nil
}

func (k *SKECDSAPublicKey) Type() string        { return KeySKECDSAP256 }
func (k *SKECDSAPublicKey) Application() string { return k.app }

func (k *SKECDSAPublicKey) appendFields(b []byte) []byte {
	b = k.ECDSAPublicKey.appendFields(b)
	return wire.AppendStringS(b, k.app)
}

func (k *SKECDSAPublicKey) Marshal() []byte {
	return k.appendFields(wire.AppendStringS(nil, KeySKECDSAP256))
}

// Verify requires the user-presence flag; use VerifyWithPolicy for
// no-touch-required and verify-required.
func (k *SKECDSAPublicKey) Verify(data []byte, sig *Signature) error {
	return k.VerifyWithPolicy(data, sig, SKPolicy{})
}

func (k *SKECDSAPublicKey) VerifyWithPolicy(data []byte, sig *Signature, p SKPolicy) error {
	if err := checkSKSignature(KeySKECDSAP256, sig); err != nil {
		return err
	}
	digest := hashData(crypto.SHA256, skSignedData(k.app, sig.Rest, data))
	if err := verifyECDSABlob(k.key, digest, sig.Blob); err != nil {
		return err
	}
	return checkSKFlags(sig, p)
}
