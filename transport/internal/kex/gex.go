package kex

import (
	"cmp"
	"crypto"
	"encoding/binary"
	"io"
	"math/big"
	"slices"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Group exchange modulus limits.
const (
	// MinGEXBits is the smallest modulus ever used for group exchange:
	// OpenSSH's DH_GRP_MIN, raised from RFC 4419's 1024 after the Logjam
	// precomputation attacks (CVE-2015-4000).
	MinGEXBits = 2048
	// MaxGEXBits is the largest modulus, RFC 4419 §3's 8192 (OpenSSH's
	// DH_GRP_MAX). It also bounds the cost a client can make us spend on
	// modular exponentiation and the size of a GROUP we accept as client.
	MaxGEXBits = 8192
	// DefaultGEXMinBits is the default smallest modulus a ferry server
	// offers: 3072 bits matches the 128-bit strength of the other default
	// methods (NIST SP 800-57 Part 1 Table 2).
	DefaultGEXMinBits = 3072
)

// gexMethod is diffie-hellman-group-exchange-sha1/-sha256 (RFC 4419):
//
//	C -> S  34  uint32 min, uint32 n, uint32 max   (or 30  uint32 n, the old request)
//	S -> C  31  mpint p, mpint g
//	C -> S  32  mpint e
//	S -> C  33  string K_S, mpint f, string signature over H
//
//	H = HASH(string V_C || string V_S || string I_C || string I_S ||
//	         string K_S || uint32 min || uint32 n || uint32 max ||
//	         mpint p || mpint g || mpint e || mpint f || mpint K)
//
// where min and max are left out after an old request (RFC 4419 §5,
// OpenSSH kexgex_hash). The uint32 values are hashed as the client sent
// them, not as the server clamped them.
type gexMethod struct {
	hash    crypto.Hash
	minBits int
	// groups are the groups the server offers, sorted by size, all of at
	// least minBits and at most MaxGEXBits.
	groups []*dhGroup
}

func newGEXMethod(opts *Options, hash crypto.Hash) Method {
	minBits := opts.GEXMinBits
	if minBits == 0 {
		minBits = DefaultGEXMinBits
	}
	minBits = min(max(minBits, MinGEXBits), MaxGEXBits)
	gm := &gexMethod{hash: hash, minBits: minBits}
	for _, g := range opts.Moduli {
		if b := g.Bits(); b >= minBits && b <= MaxGEXBits && g.valid() {
			// Copies, so later changes to the caller's Group values cannot
			// reach a running exchange.
			gm.groups = append(gm.groups, newDHGroup(new(big.Int).Set(g.P), new(big.Int).Set(g.G)))
		}
	}
	if len(gm.groups) == 0 {
		// Like OpenSSH's dh_new_group_fallback without /etc/ssh/moduli.
		for _, h := range []string{modpGroup15Hex, modpGroup16Hex, modpGroup17Hex, modpGroup18Hex} {
			p := mustHex(h)
			if p.BitLen() >= minBits {
				gm.groups = append(gm.groups, newDHGroup(p, big.NewInt(2)))
			}
		}
	}
	slices.SortStableFunc(gm.groups, func(a, b *dhGroup) int { return cmp.Compare(a.p.BitLen(), b.p.BitLen()) })
	return gm
}

// gexRequest is a client's request as received, for the exchange hash.
type gexRequest struct {
	min, n, max uint32
	old         bool
}

func (r gexRequest) hashInto(eh *exchangeHash) {
	if !r.old {
		eh.uint32(r.min)
	}
	eh.uint32(r.n)
	if !r.old {
		eh.uint32(r.max)
	}
}

// chooseGroup picks the group for a request: the smallest one of at least
// the preferred size, or failing that the largest one the client accepts
// (RFC 4419 §3 leaves the choice to the server; this is OpenSSH's
// choose_dh rule). Sizes are first clamped to what the server allows.
// Among several groups of the chosen size, one is picked at random, as
// OpenSSH does with a moduli file.
func (gm *gexMethod) chooseGroup(req gexRequest, rand io.Reader) (*dhGroup, error) {
	lo, want, hi := gm.minBits, int(min(req.n, MaxGEXBits)), MaxGEXBits
	if !req.old {
		// RFC 4419 §3 requires min <= n <= max.
		if req.min > req.n || req.n > req.max {
			return nil, kexFailed("group exchange request min %d, n %d, max %d out of order", req.min, req.n, req.max)
		}
		lo = max(lo, int(min(req.min, MaxGEXBits+1)))
		hi = min(hi, int(min(req.max, MaxGEXBits)))
	}
	want = min(max(want, lo), hi)
	if lo > hi {
		return nil, kexFailed("no DH group between %d and %d bits (server minimum %d)", lo, hi, gm.minBits)
	}
	size := 0
	for _, g := range gm.groups {
		b := g.p.BitLen()
		if b >= want && b <= hi {
			size = b
			break
		}
	}
	if size == 0 {
		for _, g := range slices.Backward(gm.groups) {
			if b := g.p.BitLen(); b <= hi && b >= lo {
				size = b
				break
			}
		}
	}
	if size == 0 {
		return nil, kexFailed("no DH group between %d and %d bits", lo, hi)
	}
	var same []*dhGroup
	for _, g := range gm.groups {
		if g.p.BitLen() == size {
			same = append(same, g)
		}
	}
	if len(same) == 1 {
		return same[0], nil
	}
	var b [4]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, kexFailed("reading randomness: %v", err)
	}
	// The choice is public (it is sent in the clear); modulo bias is
	// harmless.
	return same[binary.BigEndian.Uint32(b[:])%uint32(len(same))], nil
}

func (gm *gexMethod) Server(t Transport, m *Magics, hk HostKey, rand io.Reader) (*Result, error) {
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	var req gexRequest
	switch {
	case len(p) > 0 && p[0] == wire.MsgKexDHGexRequest:
		var msg kexDHGexRequestMsg
		if !msg.unmarshal(p) {
			return nil, malformed("SSH_MSG_KEX_DH_GEX_REQUEST")
		}
		req = gexRequest{min: msg.MinBits, n: msg.PreferredBits, max: msg.MaxBits}
	case len(p) > 0 && p[0] == wire.MsgKexDHGexRequestOld:
		var msg kexDHGexRequestOldMsg
		if !msg.unmarshal(p) {
			return nil, malformed("SSH_MSG_KEX_DH_GEX_REQUEST_OLD")
		}
		req = gexRequest{n: msg.PreferredBits, old: true}
	default:
		return nil, unexpected(p, wire.MsgKexDHGexRequest, wire.MsgKexDHGexRequestOld)
	}
	gr, err := gm.chooseGroup(req, rand)
	if err != nil {
		return nil, err
	}
	if err := t.WritePacket((&kexDHGexGroupMsg{P: gr.p, G: gr.g}).marshal()); err != nil {
		return nil, err
	}
	if p, err = t.ReadPacket(); err != nil {
		return nil, err
	}
	if err := expect(p, wire.MsgKexDHGexInit); err != nil {
		return nil, err
	}
	var init kexDHGexInitMsg
	if !init.unmarshal(p) {
		return nil, malformed("SSH_MSG_KEX_DH_GEX_INIT")
	}
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
	eh := newExchangeHash(gm.hash, m, ks)
	req.hashInto(eh)
	eh.mpint(gr.p)
	eh.mpint(gr.g)
	eh.mpint(init.X)
	eh.mpint(f)
	eh.raw(k)
	H := eh.sum()
	sig, err := sign(hk, rand, H)
	if err != nil {
		return nil, err
	}
	if err := t.WritePacket((&kexDHGexReplyMsg{HostKey: ks, Y: f, Signature: sig}).marshal()); err != nil {
		return nil, err
	}
	return &Result{H: H, K: k, HostKeyBlob: ks, Signature: sig, Hash: gm.hash}, nil
}

// Client sends the modern request: min MinGEXBits, preferred the
// configured GEXMinBits, max MaxGEXBits, as OpenSSH's client does.
func (gm *gexMethod) Client(t Transport, m *Magics, rand io.Reader) (*Result, error) {
	return gm.client(t, m, rand, gexRequest{min: MinGEXBits, n: uint32(gm.minBits), max: MaxGEXBits})
}

func (gm *gexMethod) client(t Transport, m *Magics, rand io.Reader, req gexRequest) (*Result, error) {
	var out []byte
	if req.old {
		out = (&kexDHGexRequestOldMsg{PreferredBits: req.n}).marshal()
	} else {
		out = (&kexDHGexRequestMsg{MinBits: req.min, PreferredBits: req.n, MaxBits: req.max}).marshal()
	}
	if err := t.WritePacket(out); err != nil {
		return nil, err
	}
	p, err := t.ReadPacket()
	if err != nil {
		return nil, err
	}
	if err := expect(p, wire.MsgKexDHGexGroup); err != nil {
		return nil, err
	}
	var grp kexDHGexGroupMsg
	if !grp.unmarshal(p) {
		return nil, malformed("SSH_MSG_KEX_DH_GEX_GROUP")
	}
	// The server's group is checked for size (what we asked for; the
	// upper bound also caps our modexp cost) and shape. Primality is not
	// tested, as OpenSSH's client does not: it would cost up to seconds
	// for 8192 bits, and a server that wants to weaken its own session can
	// do so anyway by leaking keys.
	lo, hi := int(req.min), int(req.max)
	if req.old {
		lo, hi = MinGEXBits, MaxGEXBits
	}
	if b := grp.P.BitLen(); b < lo || b > hi || grp.P.Bit(0) == 0 {
		return nil, kexFailed("server's DH group has a %d-bit modulus, want %d..%d bits", b, lo, hi)
	}
	gr := newDHGroup(grp.P, grp.G)
	if grp.G.BitLen() <= 1 || grp.G.Cmp(gr.pMinus1) >= 0 {
		return nil, kexFailed("server's DH generator out of range")
	}
	x, err := gr.newPrivate(rand)
	if err != nil {
		return nil, err
	}
	e := gr.public(x)
	if err := t.WritePacket((&kexDHGexInitMsg{X: e}).marshal()); err != nil {
		return nil, err
	}
	if p, err = t.ReadPacket(); err != nil {
		return nil, err
	}
	if err := expect(p, wire.MsgKexDHGexReply); err != nil {
		return nil, err
	}
	var reply kexDHGexReplyMsg
	if !reply.unmarshal(p) {
		return nil, malformed("SSH_MSG_KEX_DH_GEX_REPLY")
	}
	if err := gr.checkPublic(reply.Y); err != nil {
		return nil, err
	}
	k := gr.shared(reply.Y, x)
	eh := newExchangeHash(gm.hash, m, reply.HostKey)
	req.hashInto(eh)
	eh.mpint(gr.p)
	eh.mpint(gr.g)
	eh.mpint(e)
	eh.mpint(reply.Y)
	eh.raw(k)
	return &Result{H: eh.sum(), K: k, HostKeyBlob: cloneBytes(reply.HostKey), Signature: cloneBytes(reply.Signature), Hash: gm.hash}, nil
}
