package kex

import (
	"crypto"
	"crypto/ecdh"
	"crypto/subtle"
	"io"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// ephemeralMethod runs the two-message exchange shared by ECDH (RFC 5656
// §4), curve25519 (RFC 8731 §3) and the ML-KEM hybrid
// (draft-ietf-sshm-mlkem-hybrid-kex):
//
//	C -> S  30  string Q_C
//	S -> C  31  string K_S, string Q_S, string signature over H
//
//	H = HASH(string V_C || string V_S || string I_C || string I_S ||
//	         string K_S || string Q_C || string Q_S || K)
//
// The methods differ only in how Q_C, Q_S and K are made, which the
// agreement supplies; K arrives already encoded (mpint or string).
type ephemeralMethod struct {
	agreement agreement
	hash      crypto.Hash
}

// agreement is the ephemeral key agreement inside an ephemeralMethod.
type agreement interface {
	// clientInit makes the client's ephemeral keys, returning Q_C and the
	// state needed to finish.
	clientInit(rand io.Reader) (clientAgreement, []byte, error)
	// serverReply validates Q_C and returns Q_S and the encoded K.
	serverReply(rand io.Reader, qc []byte, hash crypto.Hash) (qs, k []byte, err error)
	// hybrid reports whether the messages are the hybrid INIT/REPLY.
	hybrid() bool
}

type clientAgreement interface {
	// finish validates Q_S and returns the encoded K.
	finish(qs []byte, hash crypto.Hash) ([]byte, error)
}

func (em *ephemeralMethod) Server(t Transport, m *Magics, hk HostKey, rand io.Reader) (*Result, error) {
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	var qc []byte
	if em.agreement.hybrid() {
		var init kexHybridInitMsg
		if err := expect(p, wire.MsgKexHybridInit); err != nil {
			return nil, err
		}
		if !init.unmarshal(p) {
			return nil, malformed("SSH_MSG_KEX_HYBRID_INIT")
		}
		qc = init.ClientInit
	} else {
		var init kexECDHInitMsg
		if err := expect(p, wire.MsgKexECDHInit); err != nil {
			return nil, err
		}
		if !init.unmarshal(p) {
			return nil, malformed("SSH_MSG_KEX_ECDH_INIT")
		}
		qc = init.ClientPubKey
	}
	// qc aliases the transport's buffer, valid until the next ReadPacket;
	// everything below finishes before we read again.
	qs, k, err := em.agreement.serverReply(rand, qc, em.hash)
	if err != nil {
		return nil, err
	}
	ks := hk.PublicKeyBlob()
	eh := newExchangeHash(em.hash, m, ks)
	eh.string(qc)
	eh.string(qs)
	eh.raw(k)
	H := eh.sum()
	sig, err := sign(hk, rand, H)
	if err != nil {
		return nil, err
	}
	var reply []byte
	if em.agreement.hybrid() {
		reply = (&kexHybridReplyMsg{HostKey: ks, ServerReply: qs, Signature: sig}).marshal()
	} else {
		reply = (&kexECDHReplyMsg{HostKey: ks, EphemeralKey: qs, Signature: sig}).marshal()
	}
	if err := t.WritePacket(reply); err != nil {
		return nil, err
	}
	return &Result{H: H, K: k, HostKeyBlob: ks, Signature: sig, Hash: em.hash}, nil
}

func (em *ephemeralMethod) Client(t Transport, m *Magics, rand io.Reader) (*Result, error) {
	state, qc, err := em.agreement.clientInit(rand)
	if err != nil {
		return nil, err
	}
	var init []byte
	if em.agreement.hybrid() {
		init = (&kexHybridInitMsg{ClientInit: qc}).marshal()
	} else {
		init = (&kexECDHInitMsg{ClientPubKey: qc}).marshal()
	}
	if err := t.WritePacket(init); err != nil {
		return nil, err
	}
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	var ks, qs, sig []byte
	if em.agreement.hybrid() {
		var reply kexHybridReplyMsg
		if err := expect(p, wire.MsgKexHybridReply); err != nil {
			return nil, err
		}
		if !reply.unmarshal(p) {
			return nil, malformed("SSH_MSG_KEX_HYBRID_REPLY")
		}
		ks, qs, sig = reply.HostKey, reply.ServerReply, reply.Signature
	} else {
		var reply kexECDHReplyMsg
		if err := expect(p, wire.MsgKexECDHReply); err != nil {
			return nil, err
		}
		if !reply.unmarshal(p) {
			return nil, malformed("SSH_MSG_KEX_ECDH_REPLY")
		}
		ks, qs, sig = reply.HostKey, reply.EphemeralKey, reply.Signature
	}
	k, err := state.finish(qs, em.hash)
	if err != nil {
		return nil, err
	}
	eh := newExchangeHash(em.hash, m, ks)
	eh.string(qc)
	eh.string(qs)
	eh.raw(k)
	return &Result{H: eh.sum(), K: k, HostKeyBlob: cloneBytes(ks), Signature: cloneBytes(sig), Hash: em.hash}, nil
}

// x25519Size is the size of X25519 scalars, public keys and shared
// secrets (RFC 7748 §5).
const x25519Size = 32

// x25519Agreement is curve25519-sha256 (RFC 8731).
type x25519Agreement struct{}

func (x25519Agreement) hybrid() bool { return false }

// newX25519Key reads the private scalar from rand, so a deterministic rand
// gives a deterministic exchange (crypto/ecdh's GenerateKey ignores its
// rand argument since Go 1.26). Any 32 bytes are a valid X25519 scalar:
// clamping happens inside the scalar multiplication (RFC 7748 §5).
func newX25519Key(rand io.Reader) (*ecdh.PrivateKey, error) {
	var seed [x25519Size]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, kexFailed("reading randomness: %v", err)
	}
	return ecdh.X25519().NewPrivateKey(seed[:])
}

// x25519Shared computes the X25519 shared secret with the peer's public
// value, which must be exactly 32 bytes. An all-zero result means the peer
// sent a low-order point and would let an attacker fix K; RFC 8731 §3
// requires aborting. crypto/ecdh already refuses it; the explicit check
// keeps the rule visible and independent of that.
func x25519Shared(priv *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if len(peer) != x25519Size {
		return nil, kexFailed("X25519 public key is %d bytes, want %d", len(peer), x25519Size)
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, kexFailed("invalid X25519 public key: %v", err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, kexFailed("X25519: %v", err)
	}
	var zero [x25519Size]byte
	if subtle.ConstantTimeCompare(secret, zero[:]) == 1 {
		return nil, kexFailed("X25519 shared secret is all zero")
	}
	return secret, nil
}

func (x25519Agreement) clientInit(rand io.Reader) (clientAgreement, []byte, error) {
	priv, err := newX25519Key(rand)
	if err != nil {
		return nil, nil, err
	}
	return x25519Client{priv}, priv.PublicKey().Bytes(), nil
}

func (x25519Agreement) serverReply(rand io.Reader, qc []byte, _ crypto.Hash) (qs, k []byte, err error) {
	priv, err := newX25519Key(rand)
	if err != nil {
		return nil, nil, err
	}
	return x25519ServerReply(priv, qc)
}

func x25519ServerReply(priv *ecdh.PrivateKey, qc []byte) (qs, k []byte, err error) {
	secret, err := x25519Shared(priv, qc)
	if err != nil {
		return nil, nil, err
	}
	// RFC 8731 §3.1: the 32 output bytes, read as a big-endian unsigned
	// integer, enter H and the KDF as an mpint.
	return priv.PublicKey().Bytes(), wire.AppendMPIntBytes(nil, secret), nil
}

type x25519Client struct{ priv *ecdh.PrivateKey }

func (c x25519Client) finish(qs []byte, _ crypto.Hash) ([]byte, error) {
	secret, err := x25519Shared(c.priv, qs)
	if err != nil {
		return nil, err
	}
	return wire.AppendMPIntBytes(nil, secret), nil
}

// nistCurve names one of the RFC 5656 §10.1 required curves.
type nistCurve int

const (
	nistP256 nistCurve = iota
	nistP384
	nistP521
)

// nistAgreement is ecdh-sha2-nistp* (RFC 5656 §4). RFC 5656 §6.2 fixes the
// hash by curve size: SHA-256 up to 256 bits, SHA-384 up to 384, SHA-512
// above.
type nistAgreement struct {
	curve ecdh.Curve
	// pointSize is the length of an uncompressed point, 0x04 || X || Y
	// (SEC 1 §2.3.3). RFC 5656 §3.1 makes the uncompressed form the one
	// every implementation must support; OpenSSH sends and accepts only
	// it, so we do too.
	pointSize int
}

func newNISTMethod(c nistCurve) Method {
	switch c {
	case nistP256:
		return &ephemeralMethod{agreement: nistAgreement{ecdh.P256(), 1 + 2*32}, hash: crypto.SHA256}
	case nistP384:
		return &ephemeralMethod{agreement: nistAgreement{ecdh.P384(), 1 + 2*48}, hash: crypto.SHA384}
	default:
		return &ephemeralMethod{agreement: nistAgreement{ecdh.P521(), 1 + 2*66}, hash: crypto.SHA512}
	}
}

func (nistAgreement) hybrid() bool { return false }

// shared validates the peer's point and computes the shared x-coordinate.
// crypto/ecdh's NewPublicKey checks the point is on the curve and not the
// point at infinity (SEC 1 §3.2.2.1, RFC 5656 §4 "MUST" validation),
// closing invalid-curve attacks; it also rejects compressed encodings,
// which the explicit length check reports more clearly.
func (a nistAgreement) shared(priv *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if len(peer) != a.pointSize || peer[0] != 4 {
		return nil, kexFailed("ECDH public key is not an uncompressed %d-byte point", a.pointSize)
	}
	pub, err := a.curve.NewPublicKey(peer)
	if err != nil {
		return nil, kexFailed("invalid ECDH public key: %v", err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, kexFailed("ECDH: %v", err)
	}
	return secret, nil
}

// generate makes an ephemeral key. Since Go 1.26 crypto/ecdh ignores rand
// unless GODEBUG=cryptocustomrand=1; tests that need fixed NIST keys call
// serverReplyWith directly.
func (a nistAgreement) generate(rand io.Reader) (*ecdh.PrivateKey, error) {
	priv, err := a.curve.GenerateKey(rand)
	if err != nil {
		return nil, kexFailed("generating ECDH key: %v", err)
	}
	return priv, nil
}

func (a nistAgreement) clientInit(rand io.Reader) (clientAgreement, []byte, error) {
	priv, err := a.generate(rand)
	if err != nil {
		return nil, nil, err
	}
	return nistClient{a, priv}, priv.PublicKey().Bytes(), nil
}

func (a nistAgreement) serverReply(rand io.Reader, qc []byte, _ crypto.Hash) (qs, k []byte, err error) {
	priv, err := a.generate(rand)
	if err != nil {
		return nil, nil, err
	}
	return a.serverReplyWith(priv, qc)
}

func (a nistAgreement) serverReplyWith(priv *ecdh.PrivateKey, qc []byte) (qs, k []byte, err error) {
	secret, err := a.shared(priv, qc)
	if err != nil {
		return nil, nil, err
	}
	// RFC 5656 §4: K is the x-coordinate as an mpint.
	return priv.PublicKey().Bytes(), wire.AppendMPIntBytes(nil, secret), nil
}

type nistClient struct {
	a    nistAgreement
	priv *ecdh.PrivateKey
}

func (c nistClient) finish(qs []byte, _ crypto.Hash) ([]byte, error) {
	secret, err := c.a.shared(c.priv, qs)
	if err != nil {
		return nil, err
	}
	return wire.AppendMPIntBytes(nil, secret), nil
}
