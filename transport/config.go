package transport

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ferry-sftp/ferry/keys"
)

// Defaults for Config fields left zero.
const (
	// DefaultRekeyBytes: OpenSSH's RekeyLimit default depends on the
	// cipher block size; 1 GiB is the and many auditors' figure.
	DefaultRekeyBytes = 1 << 30
	// DefaultRekeyInterval bounds how long one set of keys is used.
	DefaultRekeyInterval = time.Hour
	// DefaultKexTimeout bounds one key exchange (initial or rekey). A peer
	// that starts a rekey and stalls holds our writers back (they block, by
	// design); this is what finally cuts it off.
	DefaultKexTimeout = 60 * time.Second
	// maxPacketsPerKey forces a rekey long before the 32-bit sequence
	// number wraps (RFC 4344 §3.1).
	maxPacketsPerKey = 1 << 31
)

// DefaultServerSigAlgs is the server-sig-algs extension value (RFC 8308
// §3.1): the public key algorithms ferry accepts for user authentication.
var defaultServerSigAlgs = []string{
	"ssh-ed25519",
	"sk-ssh-ed25519@openssh.com",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"sk-ecdsa-sha2-nistp256@openssh.com",
	"rsa-sha2-512",
	"rsa-sha2-256",
}

// Config configures the server side of the transport. A Config may be
// shared by many connections and must not be modified once in use.
type Config struct {
	// HostKeys are the server's host keys. The negotiated host key
	// algorithm selects which one signs the exchange hash.
	HostKeys []keys.Signer

	// Algorithm lists in preference order; nil means the defaults
	// (DefaultAlgorithms). Use ParseAlgorithmList for sshd_config syntax.
	KeyExchanges      []string
	HostKeyAlgorithms []string
	Ciphers           []string
	MACs              []string
	Compressions      []string

	// RekeyBytes and RekeyInterval start a new key exchange after that
	// much traffic in either direction or that much time.
	RekeyBytes    uint64
	RekeyInterval time.Duration
	// KexTimeout bounds each key exchange.
	KexTimeout time.Duration
	// Deadline, if set, bounds everything from the version exchange on,
	// as SetDeadline does once the Conn exists (key exchanges tighten it
	// but never extend it). A server sets it to the end of its login grace
	// time; a Config shared by connections leaves it zero and sets it on a
	// per-connection copy.
	Deadline time.Time

	// SoftwareVersion is the softwareversion part of the identification
	// string, e.g. "ferry_0.1.0".
	SoftwareVersion string

	// ServerSigAlgs is sent in EXT_INFO as server-sig-algs; nil means the
	// default list of public key algorithms accepted for authentication.
	ServerSigAlgs []string

	// GEXMinBits is the smallest group offered for DH group exchange;
	// zero means 3072 (RFC 9142 §3.1 recommends ≥ 3072 bits).
	GEXMinBits int

	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader

	// Logger receives debug-level protocol events; nil means none.
	Logger *slog.Logger
}

// ClientConfig configures the client side of the transport, used by
// ferry's tests, probes and benchmarks.
type ClientConfig struct {
	KeyExchanges      []string
	HostKeyAlgorithms []string
	Ciphers           []string
	MACs              []string
	Compressions      []string

	// HostKeyCallback is called with the server's host key after its
	// signature over the exchange hash verified; a non-nil error aborts.
	// Nil accepts any key (tests only).
	HostKeyCallback func(key keys.PublicKey) error

	RekeyBytes    uint64
	RekeyInterval time.Duration
	KexTimeout    time.Duration

	SoftwareVersion string

	// DisableStrictKex and DisableExtInfo leave the corresponding
	// pseudo-algorithms out of the first KEXINIT (probes use them).
	DisableStrictKex bool
	DisableExtInfo   bool

	Rand   io.Reader
	Logger *slog.Logger
}

// settings is the resolved, per-connection view of either config.
type settings struct {
	kex, hostKey, ciphers, macs, compressions []string
	rekeyBytes                                uint64
	rekeyInterval, kexTimeout                 time.Duration
	version                                   string
	rand                                      io.Reader
	log                                       *slog.Logger
	gexMinBits                                int
}

func (s *settings) fill() error {
	for _, x := range []struct {
		kind AlgorithmKind
		list *[]string
	}{{KindKex, &s.kex}, {KindHostKey, &s.hostKey}, {KindCipher, &s.ciphers}, {KindMAC, &s.macs}, {KindCompression, &s.compressions}} {
		if *x.list == nil {
			*x.list = DefaultAlgorithms(x.kind)
		} else if err := ValidateAlgorithms(x.kind, *x.list); err != nil {
			return fmt.Errorf("transport: %w", err)
		}
	}
	if s.rekeyBytes == 0 {
		s.rekeyBytes = DefaultRekeyBytes
	}
	if s.rekeyInterval == 0 {
		s.rekeyInterval = DefaultRekeyInterval
	}
	if s.kexTimeout == 0 {
		s.kexTimeout = DefaultKexTimeout
	}
	if s.version == "" {
		s.version = "ferry"
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.gexMinBits == 0 {
		s.gexMinBits = 3072
	}
	return nil
}
