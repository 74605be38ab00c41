// Package kex implements the SSH key exchange methods, both the server and
// the client side, as they run after the KEXINIT messages have been
// exchanged:
//
//   - mlkem768x25519-sha256: draft-ietf-sshm-mlkem-hybrid-kex, as shipped in
//     OpenSSH 9.9 (kexmlkem768x25519.c);
//   - curve25519-sha256 and curve25519-sha256@libssh.org: RFC 8731;
//   - ecdh-sha2-nistp256/384/521: RFC 5656 §4 and §6.2;
//   - diffie-hellman-group1-sha1, -group14-sha1: RFC 4253 §8;
//     -group14-sha256, -group16-sha512, -group18-sha512: RFC 8268;
//   - diffie-hellman-group-exchange-sha1 and -sha256: RFC 4419;
//
// and the key derivation of RFC 4253 §7.2 (Derive).
//
// The handshake in package transport negotiates the method, hands every
// method-specific message (numbers 30-49) to a Method through a Transport,
// and gets back the exchange hash H and the encoded shared secret K. Host key
// signature verification on the client side is the caller's job: the method
// returns the host key blob and signature untouched.
package kex

import (
	"crypto"
	_ "crypto/sha1" // registers crypto.SHA1 for the legacy -sha1 methods
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
	"hash"
	"io"
	"math/big"
	"slices"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Transport is the handshake's packet pipe during kex. ReadPacket returns the
// next message payload (already filtered by the handshake: only kex-method
// messages 30-49 reach a Method), valid until the next call. WritePacket must
// not retain its argument.
type Transport interface {
	ReadPacket() ([]byte, error)
	WritePacket(payload []byte) error
}

// Magics are the exchange-hash inputs shared by every method (RFC 4253 §8):
// V_C and V_S (version strings without CR LF), I_C and I_S (the full KEXINIT
// payloads, starting with the message number 20).
type Magics struct {
	ClientVersion, ServerVersion, ClientKexInit, ServerKexInit []byte
}

// HostKey is the server's signing key for this kex, already bound to the
// negotiated host key algorithm.
type HostKey interface {
	// PublicKeyBlob returns K_S.
	PublicKeyBlob() []byte
	// Sign returns the signature blob (string algorithm || string
	// signature) over data, which is the exchange hash H.
	Sign(rand io.Reader, data []byte) ([]byte, error)
}

// Result is what a finished key exchange hands back to the handshake.
type Result struct {
	// H is the exchange hash.
	H []byte
	// K is the shared secret already encoded as it enters the hash and the
	// KDF: an mpint for DH, ECDH and curve25519, a string for
	// mlkem768x25519-sha256.
	K []byte
	// HostKeyBlob is K_S. On the client side the caller must check it is an
	// acceptable key for the negotiated algorithm and that Signature
	// verifies over H.
	HostKeyBlob []byte
	// Signature is the host key's signature blob over H.
	Signature []byte
	// Hash is the method's hash, used by the KDF.
	Hash crypto.Hash
}

// Method is one key exchange method. A Method value carries only its
// configuration, so one value may run any number of exchanges concurrently.
type Method interface {
	Server(t Transport, m *Magics, hk HostKey, rand io.Reader) (*Result, error)
	Client(t Transport, m *Magics, rand io.Reader) (*Result, error)
}

// Options configure the methods that have settings. The zero value (or nil)
// selects the defaults.
type Options struct {
	// GEXMinBits is the smallest modulus the server offers for
	// diffie-hellman-group-exchange-*, and the size the client asks for.
	// 0 means DefaultGEXMinBits; values are clamped to [MinGEXBits,
	// MaxGEXBits].
	GEXMinBits int
	// Moduli are the groups the server may offer for group exchange, as
	// from ParseModuli. nil means the built-in RFC 3526 groups 15-18. Groups
	// smaller than GEXMinBits are ignored; if none is left the built-in
	// groups are used, as OpenSSH falls back when /etc/ssh/moduli has no
	// match.
	Moduli []Group
}

// Method names, exactly as they appear in KEXINIT name-lists.
const (
	NameMLKEM768X25519SHA256   = "mlkem768x25519-sha256"
	NameCurve25519SHA256       = "curve25519-sha256"
	NameCurve25519SHA256LibSSH = "curve25519-sha256@libssh.org"
	NameECDHNISTP256           = "ecdh-sha2-nistp256"
	NameECDHNISTP384           = "ecdh-sha2-nistp384"
	NameECDHNISTP521           = "ecdh-sha2-nistp521"
	NameDHGroup1SHA1           = "diffie-hellman-group1-sha1"
	NameDHGroup14SHA1          = "diffie-hellman-group14-sha1"
	NameDHGroup14SHA256        = "diffie-hellman-group14-sha256"
	NameDHGroup16SHA512        = "diffie-hellman-group16-sha512"
	NameDHGroup18SHA512        = "diffie-hellman-group18-sha512"
	NameDHGroupExchangeSHA1    = "diffie-hellman-group-exchange-sha1"
	NameDHGroupExchangeSHA256  = "diffie-hellman-group-exchange-sha256"
)

// methodTable maps each implemented name to its constructor. It is an
// immutable table, in preference order (strongest first), which is also the
// order Names returns.
var methodTable = []struct {
	name string
	new  func(opts *Options) Method
}{
	{NameMLKEM768X25519SHA256, func(*Options) Method { return &ephemeralMethod{agreement: mlkem768x25519{}, hash: crypto.SHA256} }},
	{NameCurve25519SHA256, func(*Options) Method { return &ephemeralMethod{agreement: x25519Agreement{}, hash: crypto.SHA256} }},
	{NameCurve25519SHA256LibSSH, func(*Options) Method { return &ephemeralMethod{agreement: x25519Agreement{}, hash: crypto.SHA256} }},
	{NameECDHNISTP256, func(*Options) Method { return newNISTMethod(nistP256) }},
	{NameECDHNISTP384, func(*Options) Method { return newNISTMethod(nistP384) }},
	{NameECDHNISTP521, func(*Options) Method { return newNISTMethod(nistP521) }},
	{NameDHGroup16SHA512, func(*Options) Method { return newDHMethod(modpGroup16Hex, crypto.SHA512) }},
	{NameDHGroup18SHA512, func(*Options) Method { return newDHMethod(modpGroup18Hex, crypto.SHA512) }},
	{NameDHGroup14SHA256, func(*Options) Method { return newDHMethod(modpGroup14Hex, crypto.SHA256) }},
	{NameDHGroupExchangeSHA256, func(o *Options) Method { return newGEXMethod(o, crypto.SHA256) }},
	{NameDHGroup14SHA1, func(*Options) Method { return newDHMethod(modpGroup14Hex, crypto.SHA1) }},
	{NameDHGroupExchangeSHA1, func(o *Options) Method { return newGEXMethod(o, crypto.SHA1) }},
	{NameDHGroup1SHA1, func(*Options) Method { return newDHMethod(oakleyGroup2Hex, crypto.SHA1) }},
}

// New returns the named method, or false if it is not implemented.
func New(name string, opts *Options) (Method, bool) {
	if opts == nil {
		opts = &Options{}
	}
	for _, e := range methodTable {
		if e.name == name {
			return e.new(opts), true
		}
	}
	return nil, false
}

// Names returns every implemented method name, strongest first.
func Names() []string {
	names := make([]string, 0, len(methodTable))
	for _, e := range methodTable {
		names = append(names, e.name)
	}
	return names
}

// Derive implements RFC 4253 §7.2: K1 = HASH(K || H || letter ||
// session_id), extended with K2 = HASH(K || H || K1), K3 = HASH(K || H || K1
// || K2) ... until n bytes are available. K is the encoded shared secret
// (Result.K), used exactly as it entered the exchange hash.
func Derive(hash crypto.Hash, K, H []byte, letter byte, sessionID []byte, n int) []byte {
	h := hash.New()
	h.Write(K)
	h.Write(H)
	h.Write([]byte{letter})
	h.Write(sessionID)
	out := h.Sum(make([]byte, 0, n+hash.Size()))
	for len(out) < n {
		h.Reset()
		h.Write(K)
		h.Write(H)
		h.Write(out)
		out = h.Sum(out)
	}
	return out[:n:n]
}

// exchangeHash accumulates the input of H. Writing each field straight
// into the hash avoids assembling a copy of the (up to several KiB)
// transcript.
type exchangeHash struct {
	h   hash.Hash
	tmp []byte
}

func newExchangeHash(hash crypto.Hash, m *Magics, hostKey []byte) *exchangeHash {
	e := &exchangeHash{h: hash.New()}
	e.string(m.ClientVersion)
	e.string(m.ServerVersion)
	e.string(m.ClientKexInit)
	e.string(m.ServerKexInit)
	e.string(hostKey)
	return e
}

func (e *exchangeHash) string(b []byte) {
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(b)))
	e.h.Write(l[:])
	e.h.Write(b)
}

func (e *exchangeHash) uint32(v uint32) {
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], v)
	e.h.Write(l[:])
}

func (e *exchangeHash) mpint(v *big.Int) {
	e.tmp = wire.AppendMPInt(e.tmp[:0], v)
	e.h.Write(e.tmp)
}

// raw writes bytes that are already encoded, such as Result.K.
func (e *exchangeHash) raw(b []byte) { e.h.Write(b) }

func (e *exchangeHash) sum() []byte { return e.h.Sum(nil) }

// Errors. Malformed or unexpected messages are PROTOCOL_ERROR; well-formed
// messages whose values fail validation are KEY_EXCHANGE_FAILED
// (RFC 4253 §11.1 has no finer reason).

func kexFailed(format string, args ...any) error {
	return wire.Errorf(wire.DisconnectKeyExchangeFailed, "kex: "+format, args...)
}

func malformed(name string) error {
	return wire.ProtocolError("kex: malformed %s", name)
}

// unexpected reports a message number the current state does not allow.
func unexpected(payload []byte, want ...byte) error {
	if len(payload) == 0 {
		return wire.ProtocolError("kex: empty message")
	}
	return wire.ProtocolError("kex: unexpected message %d, want %v", payload[0], want)
}

// expect checks the message number of payload.
func expect(payload []byte, want byte) error {
	if len(payload) == 0 || payload[0] != want {
		return unexpected(payload, want)
	}
	return nil
}

// sign signs H with the host key, mapping failure to a disconnect: without
// a signature the exchange cannot finish.
func sign(hk HostKey, rand io.Reader, H []byte) ([]byte, error) {
	sig, err := hk.Sign(rand, H)
	if err != nil {
		return nil, kexFailed("host key signature failed: %v", err)
	}
	return sig, nil
}

// cloneBytes copies b, so a Result never aliases a Transport's read buffer.
func cloneBytes(b []byte) []byte { return slices.Clone(b) }
