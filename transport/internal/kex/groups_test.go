package kex

import (
	"math/big"
	"testing"
)

// piFixed returns floor(pi * 2^prec) to within a few units, from Machin's
// formula pi = 16 arctan(1/5) - 4 arctan(1/239) in fixed point.
func piFixed(prec uint) *big.Int {
	arctanInv := func(x int64) *big.Int {
		one := new(big.Int).Lsh(big.NewInt(1), prec)
		x2 := big.NewInt(x * x)
		term := new(big.Int).Quo(one, big.NewInt(x))
		sum := new(big.Int).Set(term)
		t := new(big.Int)
		for n := int64(1); term.Sign() != 0; n++ {
			term.Quo(term, x2)
			t.Quo(term, big.NewInt(2*n+1))
			if n%2 == 1 {
				sum.Sub(sum, t)
			} else {
				sum.Add(sum, t)
			}
		}
		return sum
	}
	pi := new(big.Int).Mul(big.NewInt(16), arctanInv(5))
	return pi.Sub(pi, new(big.Int).Mul(big.NewInt(4), arctanInv(239)))
}

// TestGroupPrimesFromPi recomputes every built-in prime from its defining
// formula, p = 2^N - 2^(N-64) - 1 + 2^64 * (floor(2^(N-130) * pi) + delta),
// with the deltas of RFC 2409 §6.2 and RFC 3526 §2-7. A typo in a hex
// constant cannot pass this.
func TestGroupPrimesFromPi(t *testing.T) {
	const guard = 64 // bits of slack for the truncation errors of the series
	pi := piFixed(MaxGEXBits + guard)
	for _, g := range []struct {
		name  string
		hex   string
		bits  uint
		delta int64
	}{
		{"Oakley group 2", oakleyGroup2Hex, 1024, 129093},
		{"group 14", modpGroup14Hex, 2048, 124476},
		{"group 15", modpGroup15Hex, 3072, 1690314},
		{"group 16", modpGroup16Hex, 4096, 240904},
		{"group 17", modpGroup17Hex, 6144, 929484},
		{"group 18", modpGroup18Hex, 8192, 4743158},
	} {
		f := new(big.Int).Rsh(pi, MaxGEXBits+guard-(g.bits-130))
		f.Add(f, big.NewInt(g.delta))
		want := new(big.Int).Lsh(f, 64)
		want.Add(want, new(big.Int).Lsh(big.NewInt(1), g.bits))
		want.Sub(want, new(big.Int).Lsh(big.NewInt(1), g.bits-64))
		want.Sub(want, big.NewInt(1))
		if got := mustHex(g.hex); got.Cmp(want) != 0 {
			t.Errorf("%s: constant differs from the RFC formula", g.name)
		}
		if got := mustHex(g.hex); got.BitLen() != int(g.bits) {
			t.Errorf("%s: %d bits, want %d", g.name, got.BitLen(), g.bits)
		}
	}
}

// TestGroupPrimesAreSafe checks p and (p-1)/2 are (probable) primes. It is
// slow for the large groups (seconds), so short mode checks only the
// small ones.
func TestGroupPrimesAreSafe(t *testing.T) {
	groups := map[string]string{"Oakley group 2": oakleyGroup2Hex, "group 14": modpGroup14Hex}
	if !testing.Short() {
		groups["group 15"] = modpGroup15Hex
		groups["group 16"] = modpGroup16Hex
		groups["group 17"] = modpGroup17Hex
		groups["group 18"] = modpGroup18Hex
	}
	for name, h := range groups {
		p := mustHex(h)
		q := new(big.Int).Rsh(p, 1)
		if !p.ProbablyPrime(1) || !q.ProbablyPrime(1) {
			t.Errorf("%s is not a safe prime", name)
		}
	}
}
