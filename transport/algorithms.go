package transport

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// AlgorithmKind names one of the negotiated algorithm lists of a KEXINIT
// (RFC 4253 §7.1).
type AlgorithmKind string

const (
	KindKex         AlgorithmKind = "kex"
	KindHostKey     AlgorithmKind = "hostkey"
	KindCipher      AlgorithmKind = "cipher"
	KindMAC         AlgorithmKind = "mac"
	KindCompression AlgorithmKind = "compression"
)

type algorithmInfo struct {
	name string
	tier Tier
}

// The policy table. Order within a kind is preference order; the default
// list for a kind is its TierDefault entries in this order. Compat and
// legacy entries are implemented and tested but offered only when a
// configuration asks for them (see ParseAlgorithmList).
//
// Defaults are chosen so that ssh-audit reports no failure while OpenSSH
// ≥ 7.x, PuTTY ≥ 0.70, libssh2 ≥ 1.9, paramiko ≥ 2.x and x/crypto/ssh all
// find a common algorithm in every list.
var algorithmTable = map[AlgorithmKind][]algorithmInfo{
	KindKex: {
		// Post-quantum hybrid first (OpenSSH 10 default), then RFC 8731.
		{"mlkem768x25519-sha256", TierDefault},
		{"curve25519-sha256", TierDefault},
		{"curve25519-sha256@libssh.org", TierDefault},
		// RFC 4419 with groups ≥ 3072 bits only (RFC 9142 §3.1 minimum).
		{"diffie-hellman-group-exchange-sha256", TierDefault},
		{"diffie-hellman-group16-sha512", TierDefault},
		{"diffie-hellman-group18-sha512", TierDefault},
		// NIST curves: sound, but distrusted by some auditors; FIPS shops want them.
		{"ecdh-sha2-nistp256", TierCompat},
		{"ecdh-sha2-nistp384", TierCompat},
		{"ecdh-sha2-nistp521", TierCompat},
		// 2048-bit group: below RFC 9142's recommended strength.
		{"diffie-hellman-group14-sha256", TierCompat},
		// SHA-1 exchange hashes and the 1024-bit Oakley group (Logjam).
		{"diffie-hellman-group14-sha1", TierLegacy},
		{"diffie-hellman-group1-sha1", TierLegacy},
		{"diffie-hellman-group-exchange-sha1", TierLegacy},
	},
	KindHostKey: {
		{"ssh-ed25519", TierDefault},
		{"rsa-sha2-512", TierDefault},
		{"rsa-sha2-256", TierDefault},
		{"ecdsa-sha2-nistp256", TierCompat},
		{"ecdsa-sha2-nistp384", TierCompat},
		{"ecdsa-sha2-nistp521", TierCompat},
		// SHA-1 signatures (SHAmbles) and 1024-bit DSA.
		{"ssh-rsa", TierLegacy},
		{"ssh-dss", TierLegacy},
	},
	KindCipher: {
		{"chacha20-poly1305@openssh.com", TierDefault},
		{"aes128-gcm@openssh.com", TierDefault},
		{"aes256-gcm@openssh.com", TierDefault},
		{"aes128-ctr", TierDefault},
		{"aes192-ctr", TierDefault},
		{"aes256-ctr", TierDefault},
		// CBC modes leak plaintext bits (CVE-2008-5161); 64-bit blocks
		// allow Sweet32 birthday attacks (RFC 4344 §3.2 rekey applies).
		{"aes128-cbc", TierLegacy},
		{"aes192-cbc", TierLegacy},
		{"aes256-cbc", TierLegacy},
		{"3des-cbc", TierLegacy},
		{"blowfish-cbc", TierLegacy},
		{"cast128-cbc", TierLegacy},
	},
	KindMAC: {
		{"hmac-sha2-256-etm@openssh.com", TierDefault},
		{"hmac-sha2-512-etm@openssh.com", TierDefault},
		{"hmac-sha2-256", TierDefault},
		{"hmac-sha2-512", TierDefault},
		{"hmac-sha1-etm@openssh.com", TierCompat},
		{"hmac-sha1", TierCompat},
		{"hmac-sha1-96", TierLegacy},
		{"hmac-md5", TierLegacy},
		{"hmac-md5-96", TierLegacy},
		{"hmac-sha1-96-etm@openssh.com", TierLegacy},
		{"hmac-md5-etm@openssh.com", TierLegacy},
		{"hmac-md5-96-etm@openssh.com", TierLegacy},
	},
	KindCompression: {
		{"none", TierDefault},
		// Delayed compression: starts after USERAUTH_SUCCESS, so an
		// unauthenticated peer never reaches the decompressor.
		{"zlib@openssh.com", TierDefault},
		// RFC 4253 zlib starts at the first NEWKEYS, exposing the
		// decompressor before authentication.
		{"zlib", TierCompat},
	},
}

// SupportedAlgorithms returns every implemented algorithm of a kind in preference
// order, with its tier.
func SupportedAlgorithms(kind AlgorithmKind) (names []string, tiers []Tier) {
	for _, a := range algorithmTable[kind] {
		names = append(names, a.name)
		tiers = append(tiers, a.tier)
	}
	return names, tiers
}

// DefaultAlgorithms returns the names offered out of the box for a kind.
func DefaultAlgorithms(kind AlgorithmKind) []string {
	var out []string
	for _, a := range algorithmTable[kind] {
		if a.tier == TierDefault {
			out = append(out, a.name)
		}
	}
	return out
}

func algorithmTier(kind AlgorithmKind, name string) (Tier, bool) {
	for _, a := range algorithmTable[kind] {
		if a.name == name {
			return a.tier, true
		}
	}
	return 0, false
}

// ParseAlgorithmList resolves a list written in sshd_config's syntax
// (sshd_config(5), e.g. Ciphers) against the defaults for kind:
//
//	"a,b"   replaces the default list
//	"+a,b"  appends to the default list
//	"-a,b"  removes from the default list (wildcards * and ? allowed)
//	"^a,b"  puts a,b at the head of the default list
//
// With +, ^ and a plain list, wildcards expand over every implemented
// algorithm of the kind. Unknown names are an error naming the entry. The
// result is never empty.
func ParseAlgorithmList(kind AlgorithmKind, spec string) ([]string, error) {
	if _, ok := algorithmTable[kind]; !ok {
		return nil, fmt.Errorf("unknown algorithm kind %q", kind)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("%s: empty algorithm list", kind)
	}
	op := byte(0)
	switch spec[0] {
	case '+', '-', '^':
		op = spec[0]
		spec = spec[1:]
	}
	var entries []string
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("%s: empty entry in algorithm list", kind)
		}
		entries = append(entries, e)
	}
	defaults := DefaultAlgorithms(kind)

	if op == '-' {
		out := slices.Clone(defaults)
		for _, e := range entries {
			if !hasWildcard(e) {
				if _, ok := algorithmTier(kind, e); !ok {
					return nil, fmt.Errorf("%s: unknown algorithm %q", kind, e)
				}
			}
			out = slices.DeleteFunc(out, func(n string) bool { return matchPattern(e, n) })
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: removing %q leaves no algorithm", kind, spec)
		}
		return out, nil
	}

	var named []string
	all, _ := SupportedAlgorithms(kind)
	for _, e := range entries {
		if hasWildcard(e) {
			n := 0
			for _, a := range all {
				if matchPattern(e, a) && !slices.Contains(named, a) {
					named = append(named, a)
					n++
				}
			}
			if n == 0 {
				return nil, fmt.Errorf("%s: pattern %q matches no algorithm", kind, e)
			}
			continue
		}
		if _, ok := algorithmTier(kind, e); !ok {
			return nil, fmt.Errorf("%s: unknown algorithm %q", kind, e)
		}
		if !slices.Contains(named, e) {
			named = append(named, e)
		}
	}
	switch op {
	case '+':
		out := slices.Clone(defaults)
		for _, n := range named {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	case '^':
		out := slices.Clone(named)
		for _, n := range defaults {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	return named, nil
}

// ValidateAlgorithms checks that every name in list is implemented.
func ValidateAlgorithms(kind AlgorithmKind, list []string) error {
	if len(list) == 0 {
		return fmt.Errorf("%s: empty algorithm list", kind)
	}
	for _, n := range list {
		if _, ok := algorithmTier(kind, n); !ok {
			return fmt.Errorf("%s: unknown algorithm %q", kind, n)
		}
	}
	return nil
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

// matchPattern matches sshd-style wildcards. path.Match treats '/' and '['
// specially; algorithm names contain neither, so it is exact here.
func matchPattern(pattern, name string) bool {
	if !hasWildcard(pattern) {
		return pattern == name
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// negotiate implements RFC 4253 §7.1: the chosen algorithm is the first on
// the client's list that is also on the server's list. It is a pure
// function of the two lists.
func negotiate(client, server []string) (string, bool) {
	for _, c := range client {
		if i := slices.Index(server, c); i >= 0 {
			// The server's copy. Names are substrings of their parsed
			// name-list, so on a server this keeps our own list alive
			// (as long as our configuration's), where the client's
			// would keep the peer's, up to wire.MaxNameListLen, for the
			// connection's lifetime.
			return server[i], true
		}
	}
	return "", false
}
