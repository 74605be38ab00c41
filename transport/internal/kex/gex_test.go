package kex

import (
	"bytes"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

func TestChooseGroupBuiltin(t *testing.T) {
	gm := mustMethod(t, "diffie-hellman-group-exchange-sha256", nil).(*gexMethod)
	var sizes []int
	for _, g := range gm.groups {
		sizes = append(sizes, g.p.BitLen())
	}
	if fmt.Sprint(sizes) != "[3072 4096 6144 8192]" {
		t.Fatalf("built-in groups %v, want RFC 3526 groups 15-18", sizes)
	}
	for _, tc := range []struct {
		req  gexRequest
		want int // 0: refused
	}{
		{gexRequest{min: 2048, n: 3072, max: 8192}, 3072}, // OpenSSH's request for 128-bit ciphers
		{gexRequest{min: 2048, n: 7680, max: 8192}, 8192}, // OpenSSH's for 192-bit
		{gexRequest{min: 2048, n: 8192, max: 8192}, 8192},
		{gexRequest{min: 2048, n: 4000, max: 8192}, 4096}, // smallest at least n
		{gexRequest{min: 1024, n: 1024, max: 8192}, 3072}, // n raised to the server minimum
		{gexRequest{min: 1024, n: 2048, max: 3072}, 3072},
		{gexRequest{min: 4000, n: 5000, max: 6000}, 4096}, // none >= n within max: the largest that fits
		{gexRequest{min: 2048, n: 20000, max: 30000}, 8192},
		{gexRequest{min: 0, n: 0, max: 0xffffffff}, 3072},
		{gexRequest{min: 1024, n: 1024, max: 2048}, 0}, // client max below server minimum
		{gexRequest{min: 2048, n: 2048, max: 2048}, 0}, // ditto (OpenSSH DH_GRP_MIN alone)
		{gexRequest{min: 5000, n: 5500, max: 6000}, 0}, // no group in range
		{gexRequest{min: 4096, n: 3072, max: 8192}, 0}, // n < min
		{gexRequest{min: 2048, n: 8192, max: 4096}, 0}, // n > max
		{gexRequest{min: 8192, n: 8192, max: 2048}, 0}, // min > max
		{gexRequest{min: 9000, n: 9000, max: 9000}, 0}, // above MaxGEXBits
		{gexRequest{min: 0xffffffff, n: 0xffffffff, max: 0xffffffff}, 0},
		{gexRequest{n: 1024, old: true}, 3072},
		{gexRequest{n: 3072, old: true}, 3072},
		{gexRequest{n: 5000, old: true}, 6144},
		{gexRequest{n: 0xffffffff, old: true}, 8192},
	} {
		g, err := gm.chooseGroup(tc.req, detRand(1))
		got := 0
		if err == nil {
			got = g.p.BitLen()
		} else {
			wantDisconnect(t, err, kexFailedReason)
		}
		if got != tc.want {
			t.Errorf("chooseGroup(%+v) = %d bits (err %v), want %d", tc.req, got, err, tc.want)
		}
	}
}

// TestGEXRefusedRequestSendsNothing: a request the server cannot serve ends
// the exchange before GROUP.
func TestGEXRefusedRequestSendsNothing(t *testing.T) {
	m := mustMethod(t, "diffie-hellman-group-exchange-sha256", nil)
	w, err := serve(t, m, (&kexDHGexRequestMsg{MinBits: 1024, PreferredBits: 1024, MaxBits: 2048}).marshal())
	wantDisconnect(t, err, kexFailedReason)
	if len(w) != 0 {
		t.Fatal("server sent GROUP for a refused request")
	}
}

func TestGEXOptions(t *testing.T) {
	p14 := mustHex(modpGroup14Hex)
	p15 := mustHex(modpGroup15Hex)
	g2 := big.NewInt(2)
	sizes := func(gm *gexMethod) string {
		var s []int
		for _, g := range gm.groups {
			s = append(s, g.p.BitLen())
		}
		return fmt.Sprint(s)
	}
	for _, tc := range []struct {
		name    string
		opts    *Options
		minBits int
		groups  string
	}{
		{"nil", nil, 3072, "[3072 4096 6144 8192]"},
		{"zero", &Options{}, 3072, "[3072 4096 6144 8192]"},
		{"4096", &Options{GEXMinBits: 4096}, 4096, "[4096 6144 8192]"},
		{"below floor", &Options{GEXMinBits: 1024}, 2048, "[3072 4096 6144 8192]"},
		{"above ceiling", &Options{GEXMinBits: 16384}, 8192, "[8192]"},
		{"moduli", &Options{GEXMinBits: 2048, Moduli: []Group{{P: p15, G: g2}, {P: p14, G: g2}}}, 2048, "[2048 3072]"},
		// Groups below the minimum are dropped; none left: the built-ins.
		{"moduli too small", &Options{Moduli: []Group{{P: p14, G: g2}}}, 3072, "[3072 4096 6144 8192]"},
		{"moduli nil values", &Options{GEXMinBits: 2048, Moduli: []Group{{}, {P: p14}, {G: g2}}}, 2048, "[3072 4096 6144 8192]"},
		{"moduli bad shape", &Options{GEXMinBits: 2048, Moduli: []Group{
			{P: new(big.Int).Sub(p14, big.NewInt(1)), G: g2}, {P: p14, G: big.NewInt(1)}, {P: p14, G: new(big.Int).Neg(g2)}, {P: p14, G: p14},
		}}, 2048, "[3072 4096 6144 8192]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gm := mustMethod(t, "diffie-hellman-group-exchange-sha1", tc.opts).(*gexMethod)
			if gm.minBits != tc.minBits {
				t.Errorf("minBits = %d, want %d", gm.minBits, tc.minBits)
			}
			if got := sizes(gm); got != tc.groups {
				t.Errorf("groups = %s, want %s", got, tc.groups)
			}
		})
	}
	// The method copies the caller's groups.
	p := new(big.Int).Set(p14)
	gm := mustMethod(t, "diffie-hellman-group-exchange-sha256", &Options{GEXMinBits: 2048, Moduli: []Group{{P: p, G: g2}}}).(*gexMethod)
	p.SetInt64(7)
	if gm.groups[0].p.Cmp(p14) != 0 {
		t.Fatal("changing the caller's Group changed the method's group")
	}
}

// TestGEXWithModuli runs a full exchange over groups from a moduli file,
// with the client asking for 2048 bits, and checks the random pick among
// several equal-size groups stays among them.
func TestGEXWithModuli(t *testing.T) {
	// Two distinct 2048-bit safe primes: group 14, and group 14's formula
	// is the only one we can vouch for, so use group 14 twice with
	// generators 2 and 5 (both fine for a safe prime's big subgroup or the
	// whole group).
	g14 := moduliLine(modpGroup14Hex, 2048, "2")
	g14b := moduliLine(modpGroup14Hex, 2048, "5")
	groups, err := ParseModuli(strings.NewReader(g14 + g14b))
	if err != nil || len(groups) != 2 {
		t.Fatalf("ParseModuli = %d groups, %v", len(groups), err)
	}
	m := mustMethod(t, "diffie-hellman-group-exchange-sha256", &Options{GEXMinBits: 2048, Moduli: groups})
	hk := newTestHostKey()
	seen := map[int64]bool{}
	for i := range 8 {
		cp, sp := newPipe()
		done := make(chan error, 1)
		go func() {
			defer sp.close()
			_, err := m.Server(sp, testMagics(), hk, detRand(byte(i)))
			done <- err
		}()
		res, err := m.(*gexMethod).client(cp, testMagics(), detRand(100), gexRequest{min: 2048, n: 2048, max: 8192})
		cp.close()
		if serr := <-done; err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		hk.verify(t, res.HostKeyBlob, res.Signature, res.H)
		var grp kexDHGexGroupMsg
		if !grp.unmarshal(sp.written[0]) || grp.P.BitLen() != 2048 {
			t.Fatal("server did not send a 2048-bit group")
		}
		seen[grp.G.Int64()] = true
	}
	if !seen[2] || !seen[5] {
		t.Errorf("over 8 exchanges the server offered generators %v, want both 2 and 5", seen)
	}
}

// moduliLine formats a group as a moduli(5) line: size is bits-1.
func moduliLine(primeHex string, bits int, gen string) string {
	return fmt.Sprintf("20250101000000 2 6 100 %d %s %s\n", bits-1, gen, primeHex)
}

func TestParseModuli(t *testing.T) {
	g14 := moduliLine(modpGroup14Hex, 2048, "2")
	g15 := moduliLine(modpGroup15Hex, 3072, "5")
	groups, err := ParseModuli(strings.NewReader(
		"#    $OpenBSD: moduli,v 1.38 2025/01/01 djm Exp $\n" +
			"# Time Type Tests Tries Size Generator Modulus\n" +
			"\n" + g14 + "   \t\n" + g15 +
			// Valid lines that are not usable: kept out, no error.
			strings.Replace(g14, " 2 6 ", " 1 6 ", 1) + // not a safe prime
			strings.Replace(g14, " 2 6 ", " 4 6 ", 1) + // Sophie Germain type
			strings.Replace(g14, " 2 6 ", " 2 7 ", 1) + // composite bit set
			strings.Replace(g14, " 2 6 ", " 2 0 ", 1) + // untested
			strings.Replace(g14, " 6 100 ", " 6 0 ", 1) + // zero trials
			moduliLine(oakleyGroup2Hex, 1024, "2"), // below MinGEXBits
	))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Bits() != 2048 || groups[1].Bits() != 3072 ||
		groups[0].G.Int64() != 2 || groups[1].G.Int64() != 5 ||
		groups[0].P.Cmp(mustHex(modpGroup14Hex)) != 0 || groups[1].P.Cmp(mustHex(modpGroup15Hex)) != 0 {
		t.Fatalf("ParseModuli = %+v", groups)
	}
	empty, err := ParseModuli(strings.NewReader("# nothing\n"))
	if err != nil || len(empty) != 0 {
		t.Fatalf("comment-only file: %v, %v", empty, err)
	}
}

func TestParseModuliErrors(t *testing.T) {
	g14 := strings.TrimSuffix(moduliLine(modpGroup14Hex, 2048, "2"), "\n")
	f := strings.Fields(g14)
	set := func(i int, v string) string {
		c := append([]string(nil), f...)
		c[i] = v
		return strings.Join(c, " ")
	}
	p := mustHex(modpGroup14Hex)
	even := new(big.Int).Sub(p, big.NewInt(1)).Text(16)
	pm1 := new(big.Int).Sub(p, big.NewInt(1)).Text(16)
	for _, tc := range []struct{ name, line, want string }{
		{"six fields", strings.Join(f[:6], " "), "6 fields"},
		{"eight fields", g14 + " extra", "8 fields"},
		{"timestamp letters", set(0, "2025010100000x"), "timestamp"},
		{"timestamp long", set(0, "202501010000001"), "timestamp"},
		{"type letters", set(1, "two"), "type"},
		{"type 6", set(1, "6"), "type"},
		{"negative type", set(1, "-2"), "type"},
		{"tests 0x20", set(2, "32"), "tests"},
		{"tries negative", set(3, "-1"), "trial"},
		{"size letters", set(4, "2k"), "size"},
		{"size huge", set(4, "70000"), "size"},
		{"size mismatch", set(4, "3071"), "bits"},
		{"generator sign", set(5, "-2"), "generator"},
		{"generator 0x", set(5, "0x2"), "generator"},
		{"generator 1", set(5, "1"), "generator out of range"},
		{"generator 0", set(5, "0"), "generator out of range"},
		{"generator p-1", set(5, pm1), "generator"},
		{"modulus sign", set(6, "+"+f[6]), "modulus"},
		{"modulus even", set(6, even), "even"},
		{"modulus too long", set(6, strings.Repeat("f", 2050)), "modulus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseModuli(strings.NewReader("# ok\n" + tc.line + "\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2") {
				t.Fatalf("error = %v, want one naming line 2 and %q", err, tc.want)
			}
		})
	}
}

func TestParseModuliBounds(t *testing.T) {
	_, err := ParseModuli(bytes.NewReader(make([]byte, MaxModuliFileSize+1)))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized file: %v", err)
	}
	long := strings.Repeat("1", maxModuliLine+1)
	if _, err := ParseModuli(strings.NewReader(long)); err == nil {
		t.Fatal("accepted an over-long line")
	}
	g14 := moduliLine(modpGroup14Hex, 2048, "2")
	many := strings.Repeat(g14, MaxModuliGroups)
	groups, err := ParseModuli(strings.NewReader(many))
	if err != nil || len(groups) != MaxModuliGroups {
		t.Fatalf("%d groups: %d, %v", MaxModuliGroups, len(groups), err)
	}
	if _, err := ParseModuli(strings.NewReader(many + g14)); err == nil || !strings.Contains(err.Error(), "usable groups") {
		t.Fatalf("%d groups: %v", MaxModuliGroups+1, err)
	}
}
