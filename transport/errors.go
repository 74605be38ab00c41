package transport

import (
	"fmt"
	"strconv"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// DisconnectError is a fatal protocol error carrying its RFC 4253 §11.1
// reason code.
type DisconnectError = wire.DisconnectError

func protocolError(format string, args ...any) error {
	return wire.ProtocolError(format, args...)
}

func kexError(format string, args ...any) error {
	return &DisconnectError{Reason: wire.DisconnectKeyExchangeFailed, Message: fmt.Sprintf(format, args...)}
}

// Bounds on a peer's text quoted in our errors, which end up in the
// server's log line for the connection: a DISCONNECT description and the
// client's name-list in a negotiation failure can each be 64 KiB to
// 256 KiB long, written by anyone before authentication. OpenSSH logs at
// most 400 bytes of a description (packet.c, "%.400s").
const (
	maxPeerDisconnectText = 400
	maxPeerNameListText   = 512
)

// clipPeerText cuts s, text a peer sent, to at most n bytes, marking the
// cut.
func clipPeerText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...(" + strconv.Itoa(len(s)-n) + " more bytes)"
}
