package kex

import (
	"crypto"
	"io"
	"math/big"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Group is a finite field Diffie-Hellman group for group exchange
// (RFC 4419): a safe prime modulus P and a generator G.
type Group struct {
	P, G *big.Int
}

// Bits returns the size of the modulus in bits (0 for a zero Group).
func (g Group) Bits() int {
	if g.P == nil {
		return 0
	}
	return g.P.BitLen()
}

// valid checks the shape ParseModuli guarantees, for Groups built by hand:
// an odd modulus and a generator in (1, p-1).
func (g Group) valid() bool {
	return g.P != nil && g.G != nil && g.P.Bit(0) == 1 && g.G.Sign() > 0 && g.G.BitLen() > 1 &&
		g.G.Cmp(new(big.Int).Sub(g.P, big.NewInt(1))) < 0
}

// dhGroup is a Group with the values every exchange in it needs. Its
// fields are never modified after newDHGroup, so exchanges share it.
type dhGroup struct {
	p, g    *big.Int
	pMinus1 *big.Int
	// expBits is the private exponent size.
	expBits int
}

func newDHGroup(p, g *big.Int) *dhGroup {
	return &dhGroup{
		p:       p,
		g:       g,
		pMinus1: new(big.Int).Sub(p, big.NewInt(1)),
		expBits: exponentBits(p.BitLen()),
	}
}

// exponentBits is the private exponent size for a safe-prime group of the
// given size. NIST SP 800-56A Rev. 3 §5.6.1.1.4 asks for at least twice the
// group's security strength s; Appendix D lists s for the MODP groups
// (2048: 112, 3072: 128, 4096: 152, 6144: 176, 8192: 200) and SP 800-57
// gives 80 for 1024-bit groups. We never go below 256 bits, which covers the
// 128-bit ciphers even over the small legacy groups, like OpenSSH's
// dh_gen_key sizing the exponent at twice the cipher's key need. A longer
// exponent than 2s buys nothing (the modulus is then the weaker link) and
// costs modexp time on every login.
func exponentBits(pBits int) int {
	var s int
	switch {
	case pBits <= 1024:
		s = 80
	case pBits <= 2048:
		s = 112
	case pBits <= 3072:
		s = 128
	case pBits <= 4096:
		s = 152
	case pBits <= 6144:
		s = 176
	default:
		s = 200
	}
	return max(2*s, 256)
}

// maxExponentTries bounds the rejection loop in newPrivate. A draw is
// rejected only when it is below 2 (probability 2^-255), so a second try
// never happens with a working rand; the bound stops a broken one (all
// zeros) from spinning forever.
const maxExponentTries = 8

// newPrivate draws a private exponent x with 2 <= x < 2^expBits from rand.
// It reads rand directly (not via crypto/rand.Int) so the draw is
// deterministic under a deterministic rand, for known-answer tests.
func (gr *dhGroup) newPrivate(rand io.Reader) (*big.Int, error) {
	buf := make([]byte, (gr.expBits+7)/8)
	x := new(big.Int)
	for range maxExponentTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, kexFailed("reading randomness: %v", err)
		}
		if extra := len(buf)*8 - gr.expBits; extra > 0 {
			buf[0] &= 0xff >> extra
		}
		x.SetBytes(buf)
		if x.BitLen() > 1 {
			return x, nil
		}
	}
	return nil, kexFailed("randomness source returns zeros")
}

// public returns g^x mod p.
func (gr *dhGroup) public(x *big.Int) *big.Int {
	return new(big.Int).Exp(gr.g, x, gr.p)
}

// checkPublic enforces 1 < y < p-1 (RFC 4253 §8): 0, 1 and p-1 confine
// the shared secret to {0, 1, p-1}, letting a man in the middle who
// substitutes them know K (small-subgroup confinement); values >= p are not
// group elements at all. In a safe-prime group every other value has order
// q or 2q, so this check is complete.
func (gr *dhGroup) checkPublic(y *big.Int) error {
	if y.Sign() <= 0 || y.BitLen() == 1 || y.Cmp(gr.pMinus1) >= 0 {
		return kexFailed("DH public value out of range")
	}
	return nil
}

// shared returns K = y^x mod p, encoded as an mpint.
func (gr *dhGroup) shared(y, x *big.Int) []byte {
	k := new(big.Int).Exp(y, x, gr.p)
	return wire.AppendMPInt(nil, k)
}

// dhMethod is a fixed-group method: diffie-hellman-group{1,14,16,18}-*
// (RFC 4253 §8, RFC 8268).
//
//	C -> S  30  mpint e
//	S -> C  31  string K_S, mpint f, string signature over H
//
//	H = HASH(string V_C || string V_S || string I_C || string I_S ||
//	         string K_S || mpint e || mpint f || mpint K)
type dhMethod struct {
	group *dhGroup
	hash  crypto.Hash
}

// newDHMethod parses the group's prime from its hex constant. Parsing per
// method (microseconds) instead of keeping package-level *big.Int values
// keeps the package free of shared mutable state.
func newDHMethod(primeHex string, hash crypto.Hash) Method {
	return &dhMethod{group: newDHGroup(mustHex(primeHex), big.NewInt(2)), hash: hash}
}

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("kex: bad built-in prime") // constants are checked by TestGroupPrimesFromPi
	}
	return v
}

func (dm *dhMethod) Server(t Transport, m *Magics, hk HostKey, rand io.Reader) (*Result, error) {
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	if err := expect(p, wire.MsgKexDHInit); err != nil {
		return nil, err
	}
	var init kexDHInitMsg
	if !init.unmarshal(p) {
		return nil, malformed("SSH_MSG_KEXDH_INIT")
	}
	gr := dm.group
	if err := gr.checkPublic(init.X); err != nil {
		return nil, err
	}
	y, err := gr.newPrivate(rand)
	if err != nil {
		return nil, err
	}
	f := gr.public(y)
	k := gr.shared(init.X, y)
	ks := hk.PublicKeyBlob()
	eh := newExchangeHash(dm.hash, m, ks)
	eh.mpint(init.X)
	eh.mpint(f)
	eh.raw(k)
	H := eh.sum()
	sig, err := sign(hk, rand, H)
	if err != nil {
		return nil, err
	}
	if err := t.WritePacket((&kexDHReplyMsg{HostKey: ks, Y: f, Signature: sig}).marshal()); err != nil {
		return nil, err
	}
	return &Result{H: H, K: k, HostKeyBlob: ks, Signature: sig, Hash: dm.hash}, nil
}

func (dm *dhMethod) Client(t Transport, m *Magics, rand io.Reader) (*Result, error) {
	gr := dm.group
	x, err := gr.newPrivate(rand)
	if err != nil {
		return nil, err
	}
	e := gr.public(x)
	if err := t.WritePacket((&kexDHInitMsg{X: e}).marshal()); err != nil {
		return nil, err
	}
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	if err := expect(p, wire.MsgKexDHReply); err != nil {
		return nil, err
	}
	var reply kexDHReplyMsg
	if !reply.unmarshal(p) {
		return nil, malformed("SSH_MSG_KEXDH_REPLY")
	}
	if err := gr.checkPublic(reply.Y); err != nil {
		return nil, err
	}
	k := gr.shared(reply.Y, x)
	eh := newExchangeHash(dm.hash, m, reply.HostKey)
	eh.mpint(e)
	eh.mpint(reply.Y)
	eh.raw(k)
	return &Result{H: eh.sum(), K: k, HostKeyBlob: cloneBytes(reply.HostKey), Signature: cloneBytes(reply.Signature), Hash: dm.hash}, nil
}
