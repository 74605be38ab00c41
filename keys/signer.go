package keys

import "io"

// Signer is a private key able to make SSH signatures.
type Signer interface {
	PublicKey() PublicKey
	// Sign signs data with the given signature algorithm, or the key's
	// default algorithm when algorithm is "" (rsa-sha2-512 for RSA).
	Sign(rand io.Reader, data []byte, algorithm string) (*Signature, error)
}
