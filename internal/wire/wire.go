// Package wire implements the SSH data types of RFC 4251 §5 (byte, boolean,
// uint32, uint64, string, mpint, name-list) and the message numbers of
// RFC 4250 §4.1, shared by every layer of ferry.
//
// Parsing uses golang.org/x/crypto/cryptobyte; the helpers below add the
// SSH-specific encodings (uint32-length strings, mpint, name-list). Appending
// is done with plain functions so data-path code can build packets into a
// reused buffer without allocating.
package wire

import (
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Message numbers, RFC 4250 §4.1 and OpenSSH PROTOCOL.
const (
	MsgDisconnect     = 1
	MsgIgnore         = 2
	MsgUnimplemented  = 3
	MsgDebug          = 4
	MsgServiceRequest = 5
	MsgServiceAccept  = 6
	MsgExtInfo        = 7 // RFC 8308
	MsgNewCompress    = 8 // RFC 8308 §3.2, never used by ferry

	MsgKexInit = 20
	MsgNewKeys = 21

	// Key exchange method specific messages (30-49). Their meaning depends on
	// the negotiated method: ECDH/curve25519/ML-KEM use 30/31, fixed-group DH
	// uses 30/31, DH group exchange (RFC 4419) uses 30-34.
	MsgKexDHInit          = 30
	MsgKexDHReply         = 31
	MsgKexECDHInit        = 30
	MsgKexECDHReply       = 31
	MsgKexHybridInit      = 30
	MsgKexHybridReply     = 31
	MsgKexDHGexRequestOld = 30
	MsgKexDHGexGroup      = 31
	MsgKexDHGexInit       = 32
	MsgKexDHGexReply      = 33
	MsgKexDHGexRequest    = 34

	MsgUserAuthRequest = 50
	MsgUserAuthFailure = 51
	MsgUserAuthSuccess = 52
	MsgUserAuthBanner  = 53
	// 60-79 are method specific.
	MsgUserAuthPKOK               = 60
	MsgUserAuthPasswdChangeReq    = 60
	MsgUserAuthInfoRequest        = 60
	MsgUserAuthInfoResponse       = 61
	MsgUserAuthGSSAPIExchangeComp = 63

	MsgGlobalRequest  = 80
	MsgRequestSuccess = 81
	MsgRequestFailure = 82

	MsgChannelOpen             = 90
	MsgChannelOpenConfirmation = 91
	MsgChannelOpenFailure      = 92
	MsgChannelWindowAdjust     = 93
	MsgChannelData             = 94
	MsgChannelExtendedData     = 95
	MsgChannelEOF              = 96
	MsgChannelClose            = 97
	MsgChannelRequest          = 98
	MsgChannelSuccess          = 99
	MsgChannelFailure          = 100

	// OpenSSH PROTOCOL §1.9 transport-level ping.
	MsgPing = 192
	MsgPong = 193
)

// Disconnect reason codes, RFC 4250 §4.2.2.
const (
	DisconnectHostNotAllowedToConnect    = 1
	DisconnectProtocolError              = 2
	DisconnectKeyExchangeFailed          = 3
	DisconnectReserved                   = 4
	DisconnectMACError                   = 5
	DisconnectCompressionError           = 6
	DisconnectServiceNotAvailable        = 7
	DisconnectProtocolVersionNotSupport  = 8
	DisconnectHostKeyNotVerifiable       = 9
	DisconnectConnectionLost             = 10
	DisconnectByApplication              = 11
	DisconnectTooManyConnections         = 12
	DisconnectAuthCancelledByUser        = 13
	DisconnectNoMoreAuthMethodsAvailable = 14
	DisconnectIllegalUserName            = 15
)

// Channel open failure reason codes, RFC 4254 §5.1.
const (
	OpenAdministrativelyProhibited = 1
	OpenConnectFailed              = 2
	OpenUnknownChannelType         = 3
	OpenResourceShortage           = 4
)

// ExtendedDataStderr is the only extended data type, RFC 4254 §5.2.
const ExtendedDataStderr = 1

// MaxNameListLen bounds a name-list we are willing to parse. OpenSSH's
// longest default lists are well under 2 KiB; 64 KiB leaves room for every
// real client while stopping a peer from making us split megabytes
// (CVE-2025-26466 class resource use).
const MaxNameListLen = 64 * 1024

// MaxNameListEntries bounds the number of names in a list for the same reason.
const MaxNameListEntries = 256

// ReadString reads an SSH string (uint32 length + bytes). The returned slice
// aliases s.
func ReadString(s *cryptobyte.String, out *[]byte) bool {
	var n uint32
	if !s.ReadUint32(&n) {
		return false
	}
	var v []byte
	if !s.ReadBytes(&v, int(n)) {
		return false
	}
	*out = v
	return true
}

// ReadStringAsString reads an SSH string and copies it into a Go string.
func ReadStringAsString(s *cryptobyte.String, out *string) bool {
	var b []byte
	if !ReadString(s, &b) {
		return false
	}
	*out = string(b)
	return true
}

// ReadBool reads an SSH boolean: any non-zero byte is true (RFC 4251 §5).
func ReadBool(s *cryptobyte.String, out *bool) bool {
	var b uint8
	if !s.ReadUint8(&b) {
		return false
	}
	*out = b != 0
	return true
}

// ReadNameList reads a comma separated name-list. Empty names, names with
// non-printable-ASCII bytes, and lists beyond MaxNameListLen or
// MaxNameListEntries are rejected.
func ReadNameList(s *cryptobyte.String, out *[]string) bool {
	var b []byte
	if !ReadString(s, &b) {
		return false
	}
	l, ok := ParseNameList(b)
	if !ok {
		return false
	}
	*out = l
	return true
}

// ParseNameList splits and validates the body of a name-list.
func ParseNameList(b []byte) ([]string, bool) {
	if len(b) > MaxNameListLen {
		return nil, false
	}
	if len(b) == 0 {
		return nil, true
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return nil, false
		}
	}
	names := strings.Split(string(b), ",")
	if len(names) > MaxNameListEntries {
		return nil, false
	}
	for _, n := range names {
		if n == "" {
			return nil, false
		}
	}
	return names, true
}

// ReadMPInt reads a multiple precision integer (RFC 4251 §5). Negative
// values and non-minimal encodings are rejected: no SSH mpint we accept
// (DH public values, RSA parameters) is negative, and OpenSSH rejects
// non-minimal encodings too.
func ReadMPInt(s *cryptobyte.String, out *big.Int) bool {
	var b []byte
	if !ReadString(s, &b) {
		return false
	}
	if len(b) == 0 {
		out.SetInt64(0)
		return true
	}
	if b[0]&0x80 != 0 {
		return false // negative
	}
	if b[0] == 0 && (len(b) == 1 || b[1]&0x80 == 0) {
		return false // non-minimal
	}
	out.SetBytes(b)
	return true
}

// AppendUint32 appends a big-endian uint32.
func AppendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendUint64 appends a big-endian uint64.
func AppendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendBool appends an SSH boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendString appends an SSH string.
func AppendString(b []byte, s []byte) []byte {
	b = AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendStringS appends a Go string as an SSH string without converting it
// to a []byte first.
func AppendStringS(b []byte, s string) []byte {
	b = AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendNameList appends a name-list.
func AppendNameList(b []byte, names []string) []byte {
	n := 0
	for i, s := range names {
		if i > 0 {
			n++
		}
		n += len(s)
	}
	b = AppendUint32(b, uint32(n))
	for i, s := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return b
}

// AppendMPInt appends a non-negative big.Int as an mpint.
func AppendMPInt(b []byte, v *big.Int) []byte {
	if v.Sign() == 0 {
		return AppendUint32(b, 0)
	}
	if v.Sign() < 0 {
		panic("wire: negative mpint") // no caller encodes negative values
	}
	mag := v.Bytes()
	return AppendMPIntBytes(b, mag)
}

// AppendMPIntBytes appends an unsigned big-endian magnitude as an mpint,
// stripping leading zeros and adding the sign byte when the top bit is set.
// Used for shared secrets K that are produced as fixed-length byte strings
// (curve25519, ECDH), RFC 8731 §3.1.
func AppendMPIntBytes(b []byte, mag []byte) []byte {
	for len(mag) > 0 && mag[0] == 0 {
		mag = mag[1:]
	}
	if len(mag) == 0 {
		return AppendUint32(b, 0)
	}
	if mag[0]&0x80 != 0 {
		b = AppendUint32(b, uint32(len(mag)+1))
		b = append(b, 0)
	} else {
		b = AppendUint32(b, uint32(len(mag)))
	}
	return append(b, mag...)
}

// AddString adds an SSH string to a cryptobyte.Builder.
func AddString(b *cryptobyte.Builder, s []byte) {
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s) })
}

// AddStringS adds a Go string as an SSH string.
func AddStringS(b *cryptobyte.Builder, s string) {
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

// AddBool adds an SSH boolean.
func AddBool(b *cryptobyte.Builder, v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// AddNameList adds a name-list.
func AddNameList(b *cryptobyte.Builder, names []string) {
	b.AddBytes(AppendNameList(nil, names))
}

// AddMPInt adds a non-negative mpint.
func AddMPInt(b *cryptobyte.Builder, v *big.Int) {
	b.AddBytes(AppendMPInt(nil, v))
}

// Reader wraps cryptobyte.String with an error latch so a message's
// unmarshal can read all fields and check once at the end, keeping message
// parsers straight-line. Any failed read sets ok to false and all later reads
// return zero values.
type Reader struct {
	s  cryptobyte.String
	ok bool
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{s: cryptobyte.String(b), ok: true} }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	var v uint8
	if r.ok && !r.s.ReadUint8(&v) {
		r.ok = false
	}
	return v
}

// Uint32 reads a uint32.
func (r *Reader) Uint32() uint32 {
	var v uint32
	if r.ok && !r.s.ReadUint32(&v) {
		r.ok = false
	}
	return v
}

// Uint64 reads a uint64.
func (r *Reader) Uint64() uint64 {
	var v uint64
	if r.ok && !r.s.ReadUint64(&v) {
		r.ok = false
	}
	return v
}

// Bool reads a boolean.
func (r *Reader) Bool() bool {
	var v bool
	if r.ok && !ReadBool(&r.s, &v) {
		r.ok = false
	}
	return v
}

// Bytes reads an SSH string; the result aliases the input.
func (r *Reader) Bytes() []byte {
	var v []byte
	if r.ok && !ReadString(&r.s, &v) {
		r.ok = false
	}
	return v
}

// String reads an SSH string into a Go string.
func (r *Reader) String() string {
	return string(r.Bytes())
}

// NameList reads a name-list.
func (r *Reader) NameList() []string {
	var v []string
	if r.ok && !ReadNameList(&r.s, &v) {
		r.ok = false
	}
	return v
}

// MPInt reads an mpint.
func (r *Reader) MPInt() *big.Int {
	v := new(big.Int)
	if r.ok && !ReadMPInt(&r.s, v) {
		r.ok = false
	}
	return v
}

// Rest returns the unread bytes and consumes them.
func (r *Reader) Rest() []byte {
	if !r.ok {
		return nil
	}
	v := []byte(r.s)
	r.s = nil
	return v
}

// Ok reports whether every read so far succeeded.
func (r *Reader) Ok() bool { return r.ok }

// Done reports whether every read succeeded and the input is exhausted:
// the strict check for a message with no trailing data.
func (r *Reader) Done() bool { return r.ok && len(r.s) == 0 }

// Empty reports whether no input is left to read.
func (r *Reader) Empty() bool { return len(r.s) == 0 }

// DisconnectError is a fatal protocol error. It carries the reason code sent
// (or received) in SSH_MSG_DISCONNECT (RFC 4253 §11.1), so the connection
// boundary can send the right DISCONNECT and log once. Every layer returns
// it for errors that must end the connection.
type DisconnectError struct {
	Reason  uint32
	Message string
	// Remote is true when the peer sent the DISCONNECT.
	Remote bool
}

func (e *DisconnectError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	return fmt.Sprintf("ssh: %s disconnect (reason %d): %s", who, e.Reason, e.Message)
}

// Errorf returns a DisconnectError with the given reason.
func Errorf(reason uint32, format string, args ...any) error {
	return &DisconnectError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ProtocolError returns a DisconnectError with reason PROTOCOL_ERROR.
func ProtocolError(format string, args ...any) error {
	return Errorf(DisconnectProtocolError, format, args...)
}
