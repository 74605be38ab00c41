package kex

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// Bounds on an OpenSSH moduli(5) file.
const (
	// MaxModuliFileSize bounds the input ParseModuli reads. The moduli file
	// OpenSSH ships is about 550 KiB (a few hundred groups of 2048 to 8192
	// bits); 4 MiB leaves room for a locally generated, larger file.
	MaxModuliFileSize = 4 << 20
	// MaxModuliGroups bounds the groups kept, so group selection stays a
	// cheap scan. It is several times the size of OpenSSH's shipped file.
	MaxModuliGroups = 2048
	// maxModuliLine is the longest line accepted: an 8192-bit prime is 2048
	// hex digits, plus five short numeric fields and the generator.
	maxModuliLine = 2048 + 256
)

// moduli(5) field values (OpenSSH dh.h).
const (
	moduliTypeSafe       = 2    // p = 2q + 1 with q prime
	moduliTestsComposite = 0x01 // a test found the number composite
	moduliTestsMax       = 0x1f // all defined test bits
	moduliTypeMax        = 5    // MODULI_TYPE_STRONG, the largest defined type
)

// ParseModuli parses an OpenSSH moduli file (moduli(5), /etc/ssh/moduli):
// lines of "time type tests tries size generator modulus", where size is
// the modulus bit length minus one and generator and modulus are hex.
// Comments (#) and blank lines are skipped.
//
// Only safe primes (type 2) that passed at least one primality test and
// were never found composite are kept, as OpenSSH's parse_prime does; so are
// only moduli of MinGEXBits to MaxGEXBits bits. Other well-formed lines are
// skipped. A malformed line, a size that does not match the modulus, an
// even modulus or a generator outside (1, p-1) is an error naming the line.
// Primality itself is not re-tested: that is what ssh-keygen -M screen did
// when it wrote the file, and re-testing hundreds of large primes would
// cost seconds at every start.
func ParseModuli(r io.Reader) ([]Group, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxModuliFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("moduli: %w", err)
	}
	if len(data) > MaxModuliFileSize {
		return nil, fmt.Errorf("moduli: file larger than %d bytes", MaxModuliFileSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxModuliLine)
	var groups []Group
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		g, keep, err := parseModuliLine(text)
		if err != nil {
			return nil, fmt.Errorf("moduli: line %d: %w", line, err)
		}
		if !keep {
			continue
		}
		if len(groups) == MaxModuliGroups {
			return nil, fmt.Errorf("moduli: more than %d usable groups", MaxModuliGroups)
		}
		groups = append(groups, g)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("moduli: %w", err)
	}
	return groups, nil
}

func parseModuliLine(text string) (g Group, keep bool, err error) {
	f := strings.Fields(text)
	if len(f) != 7 {
		return g, false, fmt.Errorf("%d fields, want 7", len(f))
	}
	if len(f[0]) > 14 || !allDigits(f[0]) { // YYYYMMDDHHMMSS
		return g, false, fmt.Errorf("bad timestamp %q", f[0])
	}
	typ, err := strconv.ParseUint(f[1], 10, 8)
	if err != nil || typ > moduliTypeMax {
		return g, false, fmt.Errorf("bad type %q", f[1])
	}
	tests, err := strconv.ParseUint(f[2], 10, 8)
	if err != nil || tests > moduliTestsMax {
		return g, false, fmt.Errorf("bad tests %q", f[2])
	}
	tries, err := strconv.ParseUint(f[3], 10, 31)
	if err != nil {
		return g, false, fmt.Errorf("bad trial count %q", f[3])
	}
	size, err := strconv.ParseUint(f[4], 10, 16)
	if err != nil {
		return g, false, fmt.Errorf("bad size %q", f[4])
	}
	if !isHex(f[5]) || len(f[5]) > 16 {
		return g, false, fmt.Errorf("bad generator %q", f[5])
	}
	if !isHex(f[6]) || len(f[6]) > MaxGEXBits/4+1 {
		return g, false, fmt.Errorf("bad modulus")
	}
	bits := int(size) + 1
	if typ != moduliTypeSafe || tests&moduliTestsComposite != 0 || tests == 0 || tries == 0 ||
		bits < MinGEXBits || bits > MaxGEXBits {
		return g, false, nil
	}
	p, _ := new(big.Int).SetString(f[6], 16)
	gen, _ := new(big.Int).SetString(f[5], 16)
	if p.BitLen() != bits {
		return g, false, fmt.Errorf("modulus has %d bits, size field says %d", p.BitLen(), bits)
	}
	if p.Bit(0) == 0 {
		return g, false, fmt.Errorf("modulus is even")
	}
	if gen.BitLen() <= 1 || gen.Cmp(new(big.Int).Sub(p, big.NewInt(1))) >= 0 {
		return g, false, fmt.Errorf("generator out of range")
	}
	return Group{P: p, G: gen}, true, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isHex accepts only hex digits: big.Int.SetString alone would also take a
// sign.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}
