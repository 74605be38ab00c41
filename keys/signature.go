package keys

import (
	"errors"
	"fmt"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Signature is an SSH signature (RFC 4253 §6.6): the algorithm name, the
// algorithm-specific blob, and for security keys (PROTOCOL.u2f) the flags
// byte and counter that follow the blob.
type Signature struct {
	Format string
	Blob   []byte
	// Rest is empty except for sk-* signatures, where it holds
	// byte flags || uint32 counter.
	Rest []byte
}

// skRestLen is the size of the fields after an sk-* signature blob:
// byte flags, uint32 counter (PROTOCOL.u2f "SSH U2F signatures").
const skRestLen = 5

// Flags of an sk-* signature, from the FIDO authenticator data
// (PROTOCOL.u2f; CTAP2 authenticatorData flags).
const (
	SKFlagUserPresent  = 0x01
	SKFlagUserVerified = 0x04
)

// isSKSignatureFormat reports whether format carries flags and counter.
func isSKSignatureFormat(format string) bool {
	return format == KeySKECDSAP256 || format == KeySKEd25519
}

// ParseSignature parses a signature blob strictly: the format must be a
// known signature algorithm, and only sk-* signatures may carry the 5 bytes
// of flags and counter after the blob.
func ParseSignature(b []byte) (*Signature, error) {
	r := wire.NewReader(b)
	format := r.String()
	blob := r.Bytes()
	if !r.Ok() {
		return nil, errors.New("keys: short signature")
	}
	_, known := keyTypeOfAlgorithm[format]
	_, isCert := certAlgorithmBase[format]
	if !known || isCert {
		// Signature blobs always name the plain algorithm; certificate
		// names appear only in the userauth request (PROTOCOL.certkeys).
		return nil, fmt.Errorf("keys: unknown signature format %q", sanitize(format))
	}
	rest := r.Rest()
	if isSKSignatureFormat(format) {
		if len(rest) != skRestLen {
			return nil, fmt.Errorf("keys: malformed %s signature", format)
		}
	} else if len(rest) != 0 {
		return nil, fmt.Errorf("keys: trailing data after %s signature", format)
	}
	// Copy: callers parse out of packet buffers that are reused.
	s := &Signature{Format: format, Blob: append([]byte(nil), blob...)}
	if len(rest) > 0 {
		s.Rest = append([]byte(nil), rest...)
	}
	return s, nil
}

// Marshal returns the signature's wire form.
func (s *Signature) Marshal() []byte {
	b := make([]byte, 0, 8+len(s.Format)+len(s.Blob)+len(s.Rest))
	b = wire.AppendStringS(b, s.Format)
	b = wire.AppendString(b, s.Blob)
	return append(b, s.Rest...)
}

// SKFlags returns the flags and counter of a security key signature.
func (s *Signature) SKFlags() (flags byte, counter uint32, ok bool) {
	if len(s.Rest) != skRestLen {
		return 0, 0, false
	}
	r := s.Rest
	return r[0], uint32(r[1])<<24 | uint32(r[2])<<16 | uint32(r[3])<<8 | uint32(r[4]), true
}
