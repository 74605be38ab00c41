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
	"encoding/binary"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/blowfish"
	"golang.org/x/crypto/cast5"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

// refOpener is a deliberately plain, allocation-happy reading of RFC 4253
// §6, RFC 4344, RFC 5647, OpenSSH PROTOCOL §1.6/§1.7 and
// PROTOCOL.chacha20poly1305, written from the specs and not from the
// package's tables, to check the Writer's bytes independently.
type refOpener struct {
	cipherName string
	key        []byte
	bs         int
	ctr        cipher.Stream
	cbc        cipher.BlockMode
	gcm        cipher.AEAD
	nonce      []byte
	macNew     func() hash.Hash
	macKey     []byte
	tagLen     int
	etm        bool
	seq        uint32
}

func newRefOpener(cipherName, macName string, k Keys) (*refOpener, error) {
	o := &refOpener{cipherName: cipherName, key: k.Key, bs: 8}
	var block cipher.Block
	var err error
	switch {
	case cipherName == "none":
	case cipherName == "chacha20-poly1305@openssh.com":
		o.tagLen = 16
		return o, nil
	case strings.HasPrefix(cipherName, "aes"):
		block, err = aes.NewCipher(k.Key)
	case cipherName == "3des-cbc":
		block, err = des.NewTripleDESCipher(k.Key)
	case cipherName == "blowfish-cbc":
		block, err = blowfish.NewCipher(k.Key)
	case cipherName == "cast128-cbc":
		block, err = cast5.NewCipher(k.Key)
	default:
		return nil, fmt.Errorf("ref: cipher %s", cipherName)
	}
	if err != nil {
		return nil, err
	}
	if block != nil {
		o.bs = block.BlockSize()
	}
	switch {
	case strings.HasSuffix(cipherName, "-gcm@openssh.com"):
		o.gcm, err = cipher.NewGCM(block)
		o.nonce = append([]byte(nil), k.IV...)
		o.tagLen = 16
		return o, err
	case strings.HasSuffix(cipherName, "-ctr"):
		o.ctr = cipher.NewCTR(block, k.IV)
	case strings.HasSuffix(cipherName, "-cbc"):
		o.cbc = cipher.NewCBCDecrypter(block, k.IV)
	}
	o.etm = strings.HasSuffix(macName, "-etm@openssh.com")
	base := strings.TrimSuffix(macName, "-etm@openssh.com")
	switch base {
	case "none":
	case "hmac-sha2-256":
		o.macNew, o.tagLen = sha256.New, 32
	case "hmac-sha2-512":
		o.macNew, o.tagLen = sha512.New, 64
	case "hmac-sha1":
		o.macNew, o.tagLen = sha1.New, 20
	case "hmac-sha1-96":
		o.macNew, o.tagLen = sha1.New, 12
	case "hmac-md5":
		o.macNew, o.tagLen = md5.New, 16
	case "hmac-md5-96":
		o.macNew, o.tagLen = md5.New, 12
	default:
		return nil, fmt.Errorf("ref: mac %s", macName)
	}
	o.macKey = k.MACKey
	return o, nil
}

func (o *refOpener) decrypt(b []byte) {
	switch {
	case o.ctr != nil:
		o.ctr.XORKeyStream(b, b)
	case o.cbc != nil:
		o.cbc.CryptBlocks(b, b)
	}
}

func (o *refOpener) mac(data []byte) []byte {
	m := hmac.New(o.macNew, o.macKey)
	binary.Write(m, binary.BigEndian, o.seq)
	m.Write(data)
	return m.Sum(nil)[:o.tagLen]
}

// open consumes one packet from stream and returns its payload and the rest.
func (o *refOpener) open(stream []byte) (payload, rest []byte, err error) {
	defer func() { o.seq++ }()
	short := fmt.Errorf("ref: short stream")
	if len(stream) < 4 {
		return nil, nil, short
	}
	var plain []byte // padding_length || payload || padding
	var total int
	switch {
	case o.cipherName == "chacha20-poly1305@openssh.com":
		nonce := make([]byte, 12)
		binary.BigEndian.PutUint64(nonce[4:], uint64(o.seq))
		lc, _ := chacha20.NewUnauthenticatedCipher(o.key[32:], nonce)
		l := make([]byte, 4)
		lc.XORKeyStream(l, stream[:4])
		n := int(binary.BigEndian.Uint32(l))
		total = 4 + n + 16
		if len(stream) < total {
			return nil, nil, short
		}
		mc, _ := chacha20.NewUnauthenticatedCipher(o.key[:32], nonce)
		var pk [32]byte
		mc.XORKeyStream(pk[:], pk[:])
		var tag [16]byte
		copy(tag[:], stream[4+n:total])
		if !poly1305.Verify(&tag, stream[:4+n], &pk) {
			return nil, nil, fmt.Errorf("ref: bad poly1305 tag")
		}
		mc.SetCounter(1)
		plain = make([]byte, n)
		mc.XORKeyStream(plain, stream[4:4+n])
		if n%8 != 0 {
			return nil, nil, fmt.Errorf("ref: length %d not a multiple of 8", n)
		}
	case o.gcm != nil:
		n := int(binary.BigEndian.Uint32(stream))
		total = 4 + n + 16
		if len(stream) < total {
			return nil, nil, short
		}
		plain, err = o.gcm.Open(nil, o.nonce, stream[4:total], stream[:4])
		if err != nil {
			return nil, nil, err
		}
		c := binary.BigEndian.Uint64(o.nonce[4:])
		binary.BigEndian.PutUint64(o.nonce[4:], c+1)
		if n%16 != 0 {
			return nil, nil, fmt.Errorf("ref: length %d not a multiple of 16", n)
		}
	case o.etm:
		n := int(binary.BigEndian.Uint32(stream))
		total = 4 + n + o.tagLen
		if len(stream) < total {
			return nil, nil, short
		}
		if !hmac.Equal(o.mac(stream[:4+n]), stream[4+n:total]) {
			return nil, nil, fmt.Errorf("ref: bad etm MAC")
		}
		plain = append([]byte(nil), stream[4:4+n]...)
		o.decrypt(plain)
		if n%o.bs != 0 {
			return nil, nil, fmt.Errorf("ref: length %d not a multiple of %d", n, o.bs)
		}
	default:
		if len(stream) < o.bs {
			return nil, nil, short
		}
		first := append([]byte(nil), stream[:o.bs]...)
		o.decrypt(first)
		n := int(binary.BigEndian.Uint32(first))
		total = 4 + n + o.tagLen
		if len(stream) < total {
			return nil, nil, short
		}
		if (4+n)%o.bs != 0 {
			return nil, nil, fmt.Errorf("ref: 4+length %d not a multiple of %d", 4+n, o.bs)
		}
		whole := append(first, stream[o.bs:4+n]...)
		o.decrypt(whole[o.bs:])
		if o.macNew != nil && !hmac.Equal(o.mac(whole), stream[4+n:total]) {
			return nil, nil, fmt.Errorf("ref: bad MAC")
		}
		plain = whole[4:]
	}
	pad := int(plain[0])
	if pad < 4 || pad >= len(plain) {
		return nil, nil, fmt.Errorf("ref: padding %d of %d", pad, len(plain))
	}
	// RFC 4253 §6's 16-byte minimum; for length-in-clear modes OpenSSH
	// (packet.c) pads packet_length alone to the block size and sends
	// 12-byte packets, which every implementation accepts.
	if !o.etm && o.gcm == nil && o.cipherName != "chacha20-poly1305@openssh.com" && total-o.tagLen < 16 {
		return nil, nil, fmt.Errorf("ref: packet of %d bytes is under the 16-byte minimum", total-o.tagLen)
	}
	return plain[1 : len(plain)-pad], stream[total:], nil
}
