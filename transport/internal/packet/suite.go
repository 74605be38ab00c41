package packet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/blowfish"
	"golang.org/x/crypto/cast5"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/poly1305"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Keys are one direction's keys derived by RFC 4253 §7.2.
type Keys struct{ IV, Key, MACKey []byte }

// cipherMode says how a cipher frames a packet; the per-packet code switches
// on it once per packet, never per byte.
type cipherMode uint8

const (
	modeNone   cipherMode = iota
	modeCTR               // RFC 4344 §4
	modeCBC               // RFC 4253 §6.3
	modeGCM               // RFC 5647 as OpenSSH PROTOCOL §1.6 amends it
	modeChaCha            // OpenSSH PROTOCOL.chacha20poly1305
)

// minBlockSize is the padding multiple for stream-like modes ("none",
// chacha20-poly1305): RFC 4253 §6 asks for a multiple of max(8, block size).
const minBlockSize = 8

// aeadTagLen is the tag length of both AEAD ciphers (RFC 5647 §7.3, poly1305).
const aeadTagLen = 16

// maxTagLen is the longest MAC we implement (hmac-sha2-512).
const maxTagLen = sha512.Size

type cipherSpec struct {
	name      string
	mode      cipherMode
	keyLen    int
	ivLen     int
	blockSize int // padding multiple, at least minBlockSize
	newBlock  func(key []byte) (cipher.Block, error)
}

func newAES(key []byte) (cipher.Block, error)  { return aes.NewCipher(key) }
func new3DES(key []byte) (cipher.Block, error) { return des.NewTripleDESCipher(key) }
func newBlowfish(key []byte) (cipher.Block, error) {
	return blowfish.NewCipher(key)
}
func newCAST5(key []byte) (cipher.Block, error) { return cast5.NewCipher(key) }

// cipherSpecs is every cipher this package implements, in no particular
// preference order (preference is the handshake's business). Key and IV
// lengths are those of RFC 4253 §6.3, RFC 4344 §4, RFC 5647 §6 and OpenSSH's
// cipher.c; blowfish-cbc and cast128-cbc use 128-bit keys (RFC 4253 §6.3).
var cipherSpecs = [...]cipherSpec{
	{name: "none", mode: modeNone, blockSize: minBlockSize},
	{name: "chacha20-poly1305@openssh.com", mode: modeChaCha, keyLen: 64, blockSize: minBlockSize},
	{name: "aes128-gcm@openssh.com", mode: modeGCM, keyLen: 16, ivLen: 12, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes256-gcm@openssh.com", mode: modeGCM, keyLen: 32, ivLen: 12, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes128-ctr", mode: modeCTR, keyLen: 16, ivLen: aes.BlockSize, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes192-ctr", mode: modeCTR, keyLen: 24, ivLen: aes.BlockSize, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes256-ctr", mode: modeCTR, keyLen: 32, ivLen: aes.BlockSize, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes128-cbc", mode: modeCBC, keyLen: 16, ivLen: aes.BlockSize, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes192-cbc", mode: modeCBC, keyLen: 24, ivLen: aes.BlockSize, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "aes256-cbc", mode: modeCBC, keyLen: 32, ivLen: aes.BlockSize, blockSize: aes.BlockSize, newBlock: newAES},
	{name: "3des-cbc", mode: modeCBC, keyLen: 24, ivLen: des.BlockSize, blockSize: des.BlockSize, newBlock: new3DES},
	{name: "blowfish-cbc", mode: modeCBC, keyLen: 16, ivLen: blowfish.BlockSize, blockSize: blowfish.BlockSize, newBlock: newBlowfish},
	{name: "cast128-cbc", mode: modeCBC, keyLen: 16, ivLen: cast5.BlockSize, blockSize: cast5.BlockSize, newBlock: newCAST5},
}

type macSpec struct {
	name    string
	newHash func() hash.Hash
	keyLen  int
	tagLen  int  // truncated length for the -96 variants (RFC 2104 §5)
	etm     bool // encrypt-then-MAC, OpenSSH PROTOCOL §1.7
}

// macSpecs lists every MAC. Key lengths equal the hash output length as
// RFC 4253 §6.4 and RFC 6668 §2 specify.
var macSpecs = [...]macSpec{
	{name: "none"},
	{name: "hmac-sha2-256-etm@openssh.com", newHash: sha256.New, keyLen: 32, tagLen: 32, etm: true},
	{name: "hmac-sha2-512-etm@openssh.com", newHash: sha512.New, keyLen: 64, tagLen: 64, etm: true},
	{name: "hmac-sha2-256", newHash: sha256.New, keyLen: 32, tagLen: 32},
	{name: "hmac-sha2-512", newHash: sha512.New, keyLen: 64, tagLen: 64},
	{name: "hmac-sha1-etm@openssh.com", newHash: sha1.New, keyLen: 20, tagLen: 20, etm: true},
	{name: "hmac-sha1", newHash: sha1.New, keyLen: 20, tagLen: 20},
	{name: "hmac-sha1-96", newHash: sha1.New, keyLen: 20, tagLen: 12},
	{name: "hmac-sha1-96-etm@openssh.com", newHash: sha1.New, keyLen: 20, tagLen: 12, etm: true},
	{name: "hmac-md5", newHash: md5.New, keyLen: 16, tagLen: 16},
	{name: "hmac-md5-96", newHash: md5.New, keyLen: 16, tagLen: 12},
	{name: "hmac-md5-etm@openssh.com", newHash: md5.New, keyLen: 16, tagLen: 16, etm: true},
	{name: "hmac-md5-96-etm@openssh.com", newHash: md5.New, keyLen: 16, tagLen: 12, etm: true},
}

func lookupCipher(name string) *cipherSpec {
	for i := range cipherSpecs {
		if cipherSpecs[i].name == name {
			return &cipherSpecs[i]
		}
	}
	return nil
}

func lookupMAC(name string) *macSpec {
	for i := range macSpecs {
		if macSpecs[i].name == name {
			return &macSpecs[i]
		}
	}
	return nil
}

// CipherNames returns every implemented cipher name, "none" included.
func CipherNames() []string {
	names := make([]string, len(cipherSpecs))
	for i := range cipherSpecs {
		names[i] = cipherSpecs[i].name
	}
	return names
}

// MACNames returns every implemented MAC name, "none" included.
func MACNames() []string {
	names := make([]string, len(macSpecs))
	for i := range macSpecs {
		names[i] = macSpecs[i].name
	}
	return names
}

// CompressionNames returns every implemented compression method.
func CompressionNames() []string {
	return []string{"none", "zlib", "zlib@openssh.com"}
}

// IsAEAD reports whether the cipher authenticates by itself, so no MAC is
// negotiated for it (RFC 5647 §5.1 as OpenSSH PROTOCOL §1.6 amends it).
func IsAEAD(cipherName string) bool {
	c := lookupCipher(cipherName)
	return c != nil && (c.mode == modeGCM || c.mode == modeChaCha)
}

// CipherBlockSize returns the cipher's block size (the padding multiple), or
// 0 for an unknown cipher. The handshake uses it for RFC 4344 §3.2 rekey
// limits, which are much lower for 8-byte blocks.
func CipherBlockSize(cipherName string) int {
	if c := lookupCipher(cipherName); c != nil {
		return c.blockSize
	}
	return 0
}

// Sizes reports how many bytes of IV, cipher key and MAC key the KDF must
// derive for a cipher+MAC pair. For AEAD ciphers macName is ignored and
// macKeyLen is 0.
func Sizes(cipherName, macName string) (ivLen, keyLen, macKeyLen int, err error) {
	c := lookupCipher(cipherName)
	if c == nil {
		return 0, 0, 0, fmt.Errorf("packet: unknown cipher %q", cipherName)
	}
	if c.mode == modeGCM || c.mode == modeChaCha {
		return c.ivLen, c.keyLen, 0, nil
	}
	m := lookupMAC(macName)
	if m == nil {
		return 0, 0, 0, fmt.Errorf("packet: unknown MAC %q", macName)
	}
	return c.ivLen, c.keyLen, m.keyLen, nil
}

// suite is one direction's negotiated cipher and MAC with its running state.
// The methods switch on mode once per packet; the bulk work is one call into
// crypto/cipher, chacha20 or hash per packet.
type suite struct {
	mode      cipherMode
	blockSize int
	cbc       bool // CBC MAC-then-encrypt gets the CVE-2008-5161 treatment

	stream cipher.Stream    // CTR
	blocks cipher.BlockMode // CBC, one direction
	aead   cipher.AEAD      // GCM
	nonce  [12]byte         // GCM: fixed field (4 bytes) || invocation counter (8 bytes)

	chachaMain   [32]byte // K_2
	chachaLength [32]byte // K_1
	lengthCipher chacha20.Cipher
	mainCipher   chacha20.Cipher
	// chachaStream XORs the payload. RFC 8439 §2.8 defines the AEAD's
	// ciphertext as the plaintext XORed with the ChaCha20 keystream from
	// block 1 under the same key and nonce, which is exactly OpenSSH's
	// payload encryption under K_2; x/crypto's AEAD has amd64 assembly
	// where its bare chacha20 has none (measured 3-4x faster). Its own
	// RFC 8439 tag is discarded: the packet's tag is OpenSSH's Poly1305
	// over length and ciphertext, computed separately.
	chachaStream cipher.AEAD
	chachaNonce  [chacha20.NonceSize]byte // zero but for the sequence number

	mac    hash.Hash // nil for none and AEAD
	tagLen int
	etm    bool
	seqBuf [4]byte
	sum    [maxTagLen]byte
}

// lengthInClear reports whether packet_length travels unencrypted (etm, GCM)
// or in its own stream (chacha): then padding makes packet_length, not
// 4+packet_length, a multiple of the block size (OpenSSH packet.c, aadlen).
func (s *suite) lengthInClear() bool {
	return s.etm || s.mode == modeGCM || s.mode == modeChaCha
}

func newSuite(cipherName, macName string, k Keys, encrypt bool) (*suite, error) {
	c := lookupCipher(cipherName)
	if c == nil {
		return nil, fmt.Errorf("packet: unknown cipher %q", cipherName)
	}
	if len(k.Key) != c.keyLen || len(k.IV) != c.ivLen {
		return nil, fmt.Errorf("packet: %s needs a %d-byte key and %d-byte IV, got %d and %d",
			c.name, c.keyLen, c.ivLen, len(k.Key), len(k.IV))
	}
	s := &suite{mode: c.mode, blockSize: c.blockSize}
	switch c.mode {
	case modeChaCha:
		// PROTOCOL.chacha20poly1305: "The first 256 bits constitute K_2 and
		// the second 256 bits become K_1."
		copy(s.chachaMain[:], k.Key[:32])
		copy(s.chachaLength[:], k.Key[32:])
		s.tagLen = aeadTagLen
		aead, err := chacha20poly1305.New(s.chachaMain[:])
		if err != nil {
			return nil, err
		}
		s.chachaStream = aead
		return s, nil
	case modeGCM:
		b, err := c.newBlock(k.Key)
		if err != nil {
			return nil, err
		}
		if s.aead, err = cipher.NewGCM(b); err != nil {
			return nil, err
		}
		copy(s.nonce[:], k.IV)
		s.tagLen = aeadTagLen
		return s, nil
	case modeCTR, modeCBC:
		b, err := c.newBlock(k.Key)
		if err != nil {
			return nil, err
		}
		switch {
		case c.mode == modeCTR:
			s.stream = cipher.NewCTR(b, k.IV)
		case encrypt:
			s.blocks = cipher.NewCBCEncrypter(b, k.IV)
		default:
			s.blocks = cipher.NewCBCDecrypter(b, k.IV)
		}
	}
	m := lookupMAC(macName)
	if m == nil {
		return nil, fmt.Errorf("packet: unknown MAC %q", macName)
	}
	if len(k.MACKey) != m.keyLen {
		return nil, fmt.Errorf("packet: %s needs a %d-byte key, got %d", m.name, m.keyLen, len(k.MACKey))
	}
	if m.newHash != nil {
		s.mac = hmac.New(m.newHash, k.MACKey)
		s.tagLen = m.tagLen
		s.etm = m.etm
	}
	s.cbc = c.mode == modeCBC && !s.etm
	return s, nil
}

// computeMAC returns the tag over seq || data (RFC 4253 §6.4), truncated to
// tagLen. It reuses s.mac and s.sum, so it allocates nothing.
func (s *suite) computeMAC(seq uint32, data []byte) []byte {
	s.mac.Reset()
	binary.BigEndian.PutUint32(s.seqBuf[:], seq)
	s.mac.Write(s.seqBuf[:])
	s.mac.Write(data)
	return s.mac.Sum(s.sum[:0])[:s.tagLen]
}

// incNonce advances the GCM invocation counter: RFC 5647 §7.1 treats the
// last 8 bytes of the IV as a 64-bit big-endian counter incremented per
// packet, the first 4 bytes stay fixed.
func (s *suite) incNonce() {
	c := binary.BigEndian.Uint64(s.nonce[4:])
	binary.BigEndian.PutUint64(s.nonce[4:], c+1)
}

// chachaCiphers returns the two chacha20 instances for a packet: the nonce
// is the sequence number, big-endian in the last 8 bytes of the IETF 96-bit
// nonce, which is the original 64-bit-nonce ChaCha20 OpenSSH uses as long as
// the block counter stays below 2^32 (a packet is far smaller).
//
// The instances live in s and are overwritten per packet: the constructor's
// result is copied out so it never escapes, keeping packets allocation-free.
func (s *suite) chachaCiphers(seq uint32) (length, main *chacha20.Cipher) {
	var nonce [chacha20.NonceSize]byte
	binary.BigEndian.PutUint32(nonce[8:], seq)
	lc, err := chacha20.NewUnauthenticatedCipher(s.chachaLength[:], nonce[:])
	if err != nil {
		panic(err) // key and nonce sizes are fixed above
	}
	s.lengthCipher = *lc
	mc, err := chacha20.NewUnauthenticatedCipher(s.chachaMain[:], nonce[:])
	if err != nil {
		panic(err)
	}
	s.mainCipher = *mc
	return &s.lengthCipher, &s.mainCipher
}

// chachaXOR XORs b with the K_2 keystream from block 1 in place. The 16
// bytes after b are overwritten (the discarded RFC 8439 tag): callers pass
// a b followed by the packet's tag space.
func (s *suite) chachaXOR(seq uint32, b []byte) {
	// The nonce lives in s: a local array would escape through the
	// interface call and cost an allocation per packet.
	binary.BigEndian.PutUint32(s.chachaNonce[8:], seq)
	s.chachaStream.Seal(b[:0], s.chachaNonce[:], b, nil)
}

// seal encrypts and authenticates pkt in place. pkt is
// packet_length || padding_length || payload || padding || tagLen spare bytes.
func (s *suite) seal(seq uint32, pkt []byte) {
	body := pkt[:len(pkt)-s.tagLen]
	tag := pkt[len(body):]
	switch s.mode {
	case modeChaCha:
		lc, mc := s.chachaCiphers(seq)
		var polyKey [64]byte
		mc.XORKeyStream(polyKey[:], polyKey[:]) // block 0 → poly1305 key
		lc.XORKeyStream(body[:4], body[:4])
		// Payload from block 1; the AEAD's tag lands in the tag space and
		// is overwritten below.
		s.chachaXOR(seq, body[4:])
		var t [16]byte
		poly1305.Sum(&t, body, (*[32]byte)(polyKey[:32]))
		copy(tag, t[:])
		return
	case modeGCM:
		s.aead.Seal(body[4:4], s.nonce[:], body[4:], body[:4])
		s.incNonce()
		return
	}
	if s.etm {
		s.encrypt(body[4:])
		copy(tag, s.computeMAC(seq, body))
		return
	}
	if s.mac != nil {
		copy(tag, s.computeMAC(seq, body))
	}
	s.encrypt(body)
}

func (s *suite) encrypt(b []byte) {
	switch s.mode {
	case modeCTR:
		s.stream.XORKeyStream(b, b)
	case modeCBC:
		s.blocks.CryptBlocks(b, b)
	}
}

// decrypt is encrypt's inverse; the BlockMode already knows the direction.
func (s *suite) decrypt(b []byte) { s.encrypt(b) }

// errMAC is the one MAC failure the peer learns about; the text is fixed so
// the DISCONNECT a peer sees does not depend on where the check failed.
func errMAC() error {
	return wire.Errorf(wire.DisconnectMACError, "corrupted MAC on input")
}

// errShortBuffer reports a programming error in the Reader (never a peer's).
var errShortBuffer = errors.New("packet: internal buffer too short")

// macEqual compares tags in constant time.
func macEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// chachaVerify checks the poly1305 tag over the encrypted length and
// payload (PROTOCOL.chacha20poly1305) in constant time.
func chachaVerify(data, tag []byte, polyKey *[64]byte) bool {
	var t [16]byte
	poly1305.Sum(&t, data, (*[32]byte)(polyKey[:32]))
	return macEqual(t[:], tag)
}
