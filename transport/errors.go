package transport

import (
	"fmt"

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
