package password

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// cryptAlphabet is crypt(3)'s base64 alphabet (not RFC 4648's).
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Drepper's specification: rounds default to 5000 and are clamped to
// [1000, 999999999]; ferry lowers the upper clamp to MaxSHACryptRounds and
// rejects (rather than clamps) above it, since a clamped value could never
// match the stored digest anyway.
const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxSalt       = 16 // Drepper: "up to 16 characters"
	md5CryptMaxSalt       = 8  // FreeBSD md5crypt: salt is at most 8 characters
)

type cryptScheme struct {
	prefix     string
	maxSalt    int
	encodedLen int
	hasRounds  bool
	digest     func(password []byte, s *cryptSetting) []byte
}

// cryptSetting is one parsed crypt(3) string.
type cryptSetting struct {
	rounds  int
	salt    []byte
	encoded string
}

var (
	sha256Crypt = cryptScheme{prefix: "$5$", maxSalt: shaCryptMaxSalt, encodedLen: 43, hasRounds: true,
		digest: func(pw []byte, s *cryptSetting) []byte { return shaCrypt(sha256.New, sha256Order[:], pw, s) }}
	sha512Crypt = cryptScheme{prefix: "$6$", maxSalt: shaCryptMaxSalt, encodedLen: 86, hasRounds: true,
		digest: func(pw []byte, s *cryptSetting) []byte { return shaCrypt(sha512.New, sha512Order[:], pw, s) }}
	md5Crypt = cryptScheme{prefix: "$1$", maxSalt: md5CryptMaxSalt, encodedLen: 22,
		digest: func(pw []byte, s *cryptSetting) []byte { return md5CryptDigest("$1$", pw, s) }}
	// apr1Crypt is Apache's md5crypt (htpasswd -m, openssl passwd -apr1):
	// the same algorithm with "$apr1$" as the magic string it hashes.
	apr1Crypt = cryptScheme{prefix: "$apr1$", maxSalt: md5CryptMaxSalt, encodedLen: 22,
		digest: func(pw []byte, s *cryptSetting) []byte { return md5CryptDigest("$apr1$", pw, s) }}
)

// parseCrypt splits "$id$[rounds=N$]salt$encoded".
func parseCrypt(hash string, scheme cryptScheme) (*cryptSetting, error) {
	rest, ok := strings.CutPrefix(hash, scheme.prefix)
	if !ok {
		return nil, ErrUnknownFormat
	}
	s := &cryptSetting{rounds: shaCryptDefaultRounds}
	if scheme.hasRounds {
		if r, ok := strings.CutPrefix(rest, "rounds="); ok {
			num, after, ok := strings.Cut(r, "$")
			if !ok || num == "" || len(num) > 10 || strings.Trim(num, "0123456789") != "" {
				return nil, fmt.Errorf("%w: rounds", ErrMalformed)
			}
			n, err := strconv.Atoi(num)
			if err != nil {
				return nil, fmt.Errorf("%w: rounds", ErrMalformed)
			}
			if n > MaxSHACryptRounds {
				return nil, ErrTooExpensive
			}
			s.rounds = max(n, shaCryptMinRounds)
			rest = after
		}
	}
	salt, encoded, ok := strings.Cut(rest, "$")
	if !ok || len(salt) > scheme.maxSalt || len(encoded) != scheme.encodedLen {
		return nil, ErrMalformed
	}
	if strings.Trim(encoded, cryptAlphabet) != "" {
		return nil, ErrMalformed
	}
	s.salt, s.encoded = []byte(salt), encoded
	return s, nil
}

// SHA-crypt's transposition of the final digest into 24-bit groups
// (Drepper's specification, step 22). Each triple is encoded as 4 characters
// with the first byte most significant; the tail is listed separately.
var (
	sha512Order = [...][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
		{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
		{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
	}
	sha256Order = [...][3]int{
		{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
	}
)

// appendCrypt64 appends n characters encoding the low bits of w, least
// significant six bits first (crypt(3)'s b64_from_24bit).
func appendCrypt64(dst []byte, w uint32, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, cryptAlphabet[w&0x3f])
		w >>= 6
	}
	return dst
}

// shaCrypt computes the encoded digest of SHA-crypt (Drepper, steps 1-22);
// the step numbers below are the specification's.
func shaCrypt(newHash func() hash.Hash, order [][3]int, pw []byte, s *cryptSetting) []byte {
	salt := s.salt
	// Steps 4-8: digest B = H(P S P).
	b := newHash()
	b.Write(pw)
	b.Write(salt)
	b.Write(pw)
	sumB := b.Sum(nil)
	size := len(sumB)

	// Steps 1-3, 9-12: digest A.
	a := newHash()
	a.Write(pw)
	a.Write(salt)
	n := len(pw)
	for ; n > size; n -= size {
		a.Write(sumB)
	}
	a.Write(sumB[:n])
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(pw)
		}
	}
	sumA := a.Sum(nil)

	// Steps 13-16: the P sequence, DP = H(P repeated len(P) times).
	dp := newHash()
	for range len(pw) {
		dp.Write(pw)
	}
	sumDP := dp.Sum(nil)
	pSeq := make([]byte, 0, len(pw))
	for len(pSeq)+size <= len(pw) {
		pSeq = append(pSeq, sumDP...)
	}
	pSeq = append(pSeq, sumDP[:len(pw)-len(pSeq)]...)

	// Steps 17-20: the S sequence, DS = H(S repeated 16+A[0] times).
	ds := newHash()
	for range 16 + int(sumA[0]) {
		ds.Write(salt)
	}
	sumDS := ds.Sum(nil)
	sSeq := sumDS[:len(salt)] // len(salt) ≤ 16 < size

	// Step 21: the rounds.
	c := newHash()
	prev := sumA
	for i := range s.rounds {
		c.Reset()
		if i&1 != 0 {
			c.Write(pSeq)
		} else {
			c.Write(prev)
		}
		if i%3 != 0 {
			c.Write(sSeq)
		}
		if i%7 != 0 {
			c.Write(pSeq)
		}
		if i&1 != 0 {
			c.Write(prev)
		} else {
			c.Write(pSeq)
		}
		prev = c.Sum(prev[:0])
	}

	// Step 22: encoding.
	out := make([]byte, 0, 86)
	for _, t := range order {
		out = appendCrypt64(out, uint32(prev[t[0]])<<16|uint32(prev[t[1]])<<8|uint32(prev[t[2]]), 4)
	}
	if size == sha512.Size {
		out = appendCrypt64(out, uint32(prev[63]), 2)
	} else {
		out = appendCrypt64(out, uint32(prev[31])<<8|uint32(prev[30]), 3)
	}
	return out
}

// md5CryptDigest computes the encoded digest of FreeBSD's md5crypt (Poul-Henning
// Kamp, 1994), the "$1$" scheme of glibc and `openssl passwd -1`, or with
// magic "$apr1$" Apache's variant.
func md5CryptDigest(magic string, pw []byte, s *cryptSetting) []byte {
	salt := s.salt
	alt := md5.New()
	alt.Write(pw)
	alt.Write(salt)
	alt.Write(pw)
	sumAlt := alt.Sum(nil)

	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write(salt)
	for n := len(pw); n > 0; n -= md5.Size {
		ctx.Write(sumAlt[:min(n, md5.Size)])
	}
	// The original writes one byte of a zeroed buffer for each set bit of
	// the length, and the password's first byte for each clear bit.
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final := ctx.Sum(nil)

	// A fixed 1000 rounds ("to slow down dictionary attacks", 1994).
	h := md5.New()
	for i := range 1000 {
		h.Reset()
		if i&1 != 0 {
			h.Write(pw)
		} else {
			h.Write(final)
		}
		if i%3 != 0 {
			h.Write(salt)
		}
		if i%7 != 0 {
			h.Write(pw)
		}
		if i&1 != 0 {
			h.Write(final)
		} else {
			h.Write(pw)
		}
		final = h.Sum(final[:0])
	}

	out := make([]byte, 0, 22)
	for _, t := range [...][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		out = appendCrypt64(out, uint32(final[t[0]])<<16|uint32(final[t[1]])<<8|uint32(final[t[2]]), 4)
	}
	return appendCrypt64(out, uint32(final[11]), 2)
}
