package transport

// Tier says whether an algorithm is offered without configuration.
type Tier int

const (
	// TierDefault algorithms are offered out of the box. They are chosen so
	// that ssh-audit reports no failures while every mainstream client still
	// connects.
	TierDefault Tier = iota
	// TierCompat algorithms are sound but not preferred (NIST curves,
	// SHA-1 HMACs, group14-sha256); offered only when configured, for old
	// clients and FIPS shops.
	TierCompat
	// TierLegacy algorithms are broken or deprecated (CBC modes, 64-bit
	// block ciphers, MD5, SHA-1 signatures and key exchange). Implemented
	// because hosting customers still have clients that need them, never
	// offered unless explicitly enabled.
	TierLegacy
)

func (t Tier) String() string {
	switch t {
	case TierDefault:
		return "default"
	case TierCompat:
		return "compat"
	case TierLegacy:
		return "legacy"
	}
	return "unknown"
}
