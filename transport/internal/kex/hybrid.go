package kex

import (
	"crypto"
	"crypto/ecdh"
	"crypto/mlkem"
	"io"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Sizes of the hybrid exchange values (draft-ietf-sshm-mlkem-hybrid-kex;
// FIPS 203 §8 for the ML-KEM-768 sizes):
//
//	C_INIT  = ML-KEM-768 encapsulation key (1184) || X25519 public key (32)
//	S_REPLY = ML-KEM-768 ciphertext (1088)        || X25519 public key (32)
const (
	hybridClientInitSize  = mlkem.EncapsulationKeySize768 + x25519Size
	hybridServerReplySize = mlkem.CiphertextSize768 + x25519Size
)

// mlkem768x25519 is mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex,
// OpenSSH 9.9 kexmlkem768x25519.c). The shared secret is
// K = HASH(K_PQ || K_CL), and unlike the ECDH methods it enters H and the
// KDF as an SSH string, not an mpint (the draft, and OpenSSH's
// sshbuf_put_string of the digest).
type mlkem768x25519 struct{}

func (mlkem768x25519) hybrid() bool { return true }

// hybridSecret combines the two shared secrets, returning K encoded as a
// string.
func hybridSecret(hash crypto.Hash, kpq, kcl []byte) []byte {
	h := hash.New()
	h.Write(kpq)
	h.Write(kcl)
	return wire.AppendString(make([]byte, 0, 4+hash.Size()), h.Sum(nil))
}

func (mlkem768x25519) clientInit(rand io.Reader) (clientAgreement, []byte, error) {
	// The decapsulation key comes from a 64-byte seed read from rand
	// (FIPS 203 ML-KEM.KeyGen_internal(d, z)), so a deterministic rand gives
	// a deterministic exchange, as for X25519.
	var seed [mlkem.SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, nil, kexFailed("reading randomness: %v", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(seed[:])
	if err != nil {
		return nil, nil, kexFailed("ML-KEM key generation: %v", err)
	}
	priv, err := newX25519Key(rand)
	if err != nil {
		return nil, nil, err
	}
	qc := make([]byte, 0, hybridClientInitSize)
	qc = append(qc, dk.EncapsulationKey().Bytes()...)
	qc = append(qc, priv.PublicKey().Bytes()...)
	return hybridClient{dk, priv}, qc, nil
}

func (a mlkem768x25519) serverReply(rand io.Reader, qc []byte, hash crypto.Hash) (qs, k []byte, err error) {
	priv, err := newX25519Key(rand)
	if err != nil {
		return nil, nil, err
	}
	return a.serverReplyWith(qc, hash, priv, (*mlkem.EncapsulationKey768).Encapsulate)
}

// serverReplyWith is serverReply with the randomness made explicit:
// crypto/mlkem's Encapsulate always draws from the system source, so
// known-answer tests pass crypto/mlkem/mlkemtest's derandomized one.
func (mlkem768x25519) serverReplyWith(qc []byte, hash crypto.Hash, priv *ecdh.PrivateKey,
	encapsulate func(*mlkem.EncapsulationKey768) (sharedKey, ciphertext []byte)) (qs, k []byte, err error) {
	if len(qc) != hybridClientInitSize {
		return nil, nil, kexFailed("hybrid C_INIT is %d bytes, want %d", len(qc), hybridClientInitSize)
	}
	// NewEncapsulationKey768 performs the FIPS 203 §7.2 modulus check on
	// the encoded key, as OpenSSH's libcrux validate_public_key does.
	ek, err := mlkem.NewEncapsulationKey768(qc[:mlkem.EncapsulationKeySize768])
	if err != nil {
		return nil, nil, kexFailed("invalid ML-KEM-768 encapsulation key: %v", err)
	}
	kcl, err := x25519Shared(priv, qc[mlkem.EncapsulationKeySize768:])
	if err != nil {
		return nil, nil, err
	}
	kpq, ct := encapsulate(ek)
	qs = make([]byte, 0, hybridServerReplySize)
	qs = append(qs, ct...)
	qs = append(qs, priv.PublicKey().Bytes()...)
	return qs, hybridSecret(hash, kpq, kcl), nil
}

type hybridClient struct {
	dk   *mlkem.DecapsulationKey768
	priv *ecdh.PrivateKey
}

func (c hybridClient) finish(qs []byte, hash crypto.Hash) ([]byte, error) {
	if len(qs) != hybridServerReplySize {
		return nil, kexFailed("hybrid S_REPLY is %d bytes, want %d", len(qs), hybridServerReplySize)
	}
	// A corrupted ciphertext does not fail here: ML-KEM's implicit
	// rejection yields an unrelated key, and the mismatch surfaces as a
	// bad host key signature over H.
	kpq, err := c.dk.Decapsulate(qs[:mlkem.CiphertextSize768])
	if err != nil {
		return nil, kexFailed("ML-KEM decapsulation: %v", err)
	}
	kcl, err := x25519Shared(c.priv, qs[mlkem.CiphertextSize768:])
	if err != nil {
		return nil, err
	}
	return hybridSecret(hash, kpq, kcl), nil
}
