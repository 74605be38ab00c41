package kex

import (
	"math/big"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// One struct per key exchange message. unmarshal is strict: a wrong message
// number, a short field, a negative or non-minimal mpint, or trailing bytes
// make it return false.

// kexECDHInitMsg is SSH_MSG_KEX_ECDH_INIT (RFC 5656 §4), also used by
// curve25519-sha256 (RFC 8731 §3).
type kexECDHInitMsg struct {
	ClientPubKey []byte // Q_C
}

func (m *kexECDHInitMsg) marshal() []byte {
	b := make([]byte, 0, 1+4+len(m.ClientPubKey))
	b = append(b, wire.MsgKexECDHInit)
	return wire.AppendString(b, m.ClientPubKey)
}

func (m *kexECDHInitMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexECDHInit {
		return false
	}
	m.ClientPubKey = r.Bytes()
	return r.Done()
}

// kexECDHReplyMsg is SSH_MSG_KEX_ECDH_REPLY (RFC 5656 §4).
type kexECDHReplyMsg struct {
	HostKey      []byte // K_S
	EphemeralKey []byte // Q_S
	Signature    []byte
}

func (m *kexECDHReplyMsg) marshal() []byte {
	b := make([]byte, 0, 1+12+len(m.HostKey)+len(m.EphemeralKey)+len(m.Signature))
	b = append(b, wire.MsgKexECDHReply)
	b = wire.AppendString(b, m.HostKey)
	b = wire.AppendString(b, m.EphemeralKey)
	return wire.AppendString(b, m.Signature)
}

func (m *kexECDHReplyMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexECDHReply {
		return false
	}
	m.HostKey = r.Bytes()
	m.EphemeralKey = r.Bytes()
	m.Signature = r.Bytes()
	return r.Done()
}

// kexHybridInitMsg is SSH_MSG_KEX_HYBRID_INIT of
// draft-ietf-sshm-mlkem-hybrid-kex: the client's ML-KEM encapsulation
// key followed by its X25519 public key, in one string.
type kexHybridInitMsg struct {
	ClientInit []byte // C_INIT
}

func (m *kexHybridInitMsg) marshal() []byte {
	b := make([]byte, 0, 1+4+len(m.ClientInit))
	b = append(b, wire.MsgKexHybridInit)
	return wire.AppendString(b, m.ClientInit)
}

func (m *kexHybridInitMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexHybridInit {
		return false
	}
	m.ClientInit = r.Bytes()
	return r.Done()
}

// kexHybridReplyMsg is SSH_MSG_KEX_HYBRID_REPLY of
// draft-ietf-sshm-mlkem-hybrid-kex: the ML-KEM ciphertext followed by
// the server's X25519 public key, in one string.
type kexHybridReplyMsg struct {
	HostKey     []byte // K_S
	ServerReply []byte // S_REPLY
	Signature   []byte
}

func (m *kexHybridReplyMsg) marshal() []byte {
	b := make([]byte, 0, 1+12+len(m.HostKey)+len(m.ServerReply)+len(m.Signature))
	b = append(b, wire.MsgKexHybridReply)
	b = wire.AppendString(b, m.HostKey)
	b = wire.AppendString(b, m.ServerReply)
	return wire.AppendString(b, m.Signature)
}

func (m *kexHybridReplyMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexHybridReply {
		return false
	}
	m.HostKey = r.Bytes()
	m.ServerReply = r.Bytes()
	m.Signature = r.Bytes()
	return r.Done()
}

// kexDHInitMsg is SSH_MSG_KEXDH_INIT (RFC 4253 §8).
type kexDHInitMsg struct {
	X *big.Int // e
}

func (m *kexDHInitMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHInit}
	return wire.AppendMPInt(b, m.X)
}

func (m *kexDHInitMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHInit {
		return false
	}
	m.X = r.MPInt()
	return r.Done()
}

// kexDHReplyMsg is SSH_MSG_KEXDH_REPLY (RFC 4253 §8).
type kexDHReplyMsg struct {
	HostKey   []byte   // K_S
	Y         *big.Int // f
	Signature []byte
}

func (m *kexDHReplyMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHReply}
	b = wire.AppendString(b, m.HostKey)
	b = wire.AppendMPInt(b, m.Y)
	return wire.AppendString(b, m.Signature)
}

func (m *kexDHReplyMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHReply {
		return false
	}
	m.HostKey = r.Bytes()
	m.Y = r.MPInt()
	m.Signature = r.Bytes()
	return r.Done()
}

// kexDHGexRequestMsg is SSH_MSG_KEX_DH_GEX_REQUEST (RFC 4419 §5).
type kexDHGexRequestMsg struct {
	MinBits, PreferredBits, MaxBits uint32
}

func (m *kexDHGexRequestMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHGexRequest}
	b = wire.AppendUint32(b, m.MinBits)
	b = wire.AppendUint32(b, m.PreferredBits)
	return wire.AppendUint32(b, m.MaxBits)
}

func (m *kexDHGexRequestMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHGexRequest {
		return false
	}
	m.MinBits = r.Uint32()
	m.PreferredBits = r.Uint32()
	m.MaxBits = r.Uint32()
	return r.Done()
}

// kexDHGexRequestOldMsg is SSH_MSG_KEX_DH_GEX_REQUEST_OLD (RFC 4419 §5),
// still sent by some old clients.
type kexDHGexRequestOldMsg struct {
	PreferredBits uint32
}

func (m *kexDHGexRequestOldMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHGexRequestOld}
	return wire.AppendUint32(b, m.PreferredBits)
}

func (m *kexDHGexRequestOldMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHGexRequestOld {
		return false
	}
	m.PreferredBits = r.Uint32()
	return r.Done()
}

// kexDHGexGroupMsg is SSH_MSG_KEX_DH_GEX_GROUP (RFC 4419 §5).
type kexDHGexGroupMsg struct {
	P, G *big.Int
}

func (m *kexDHGexGroupMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHGexGroup}
	b = wire.AppendMPInt(b, m.P)
	return wire.AppendMPInt(b, m.G)
}

func (m *kexDHGexGroupMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHGexGroup {
		return false
	}
	m.P = r.MPInt()
	m.G = r.MPInt()
	return r.Done()
}

// kexDHGexInitMsg is SSH_MSG_KEX_DH_GEX_INIT (RFC 4419 §5).
type kexDHGexInitMsg struct {
	X *big.Int // e
}

func (m *kexDHGexInitMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHGexInit}
	return wire.AppendMPInt(b, m.X)
}

func (m *kexDHGexInitMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHGexInit {
		return false
	}
	m.X = r.MPInt()
	return r.Done()
}

// kexDHGexReplyMsg is SSH_MSG_KEX_DH_GEX_REPLY (RFC 4419 §5).
type kexDHGexReplyMsg struct {
	HostKey   []byte   // K_S
	Y         *big.Int // f
	Signature []byte
}

func (m *kexDHGexReplyMsg) marshal() []byte {
	b := []byte{wire.MsgKexDHGexReply}
	b = wire.AppendString(b, m.HostKey)
	b = wire.AppendMPInt(b, m.Y)
	return wire.AppendString(b, m.Signature)
}

func (m *kexDHGexReplyMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexDHGexReply {
		return false
	}
	m.HostKey = r.Bytes()
	m.Y = r.MPInt()
	m.Signature = r.Bytes()
	return r.Done()
}
