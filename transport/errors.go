package transport

import (
	"fmt"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// DisconnectError is a fatal protocol error. It carries the reason code sent
// (or received) in SSH_MSG_DISCONNECT (RFC 4253 §11.1), so the connection
// boundary can send the right DISCONNECT and log once.
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

// protocolError returns a DisconnectError with reason PROTOCOL_ERROR.
func protocolError(format string, args ...any) error {
	return &DisconnectError{Reason: wire.DisconnectProtocolError, Message: fmt.Sprintf(format, args...)}
}

// kexError returns a DisconnectError with reason KEY_EXCHANGE_FAILED.
func kexError(format string, args ...any) error {
	return &DisconnectError{Reason: wire.DisconnectKeyExchangeFailed, Message: fmt.Sprintf(format, args...)}
}

// macError returns a DisconnectError with reason MAC_ERROR.
func macError(format string, args ...any) error {
	return &DisconnectError{Reason: wire.DisconnectMACError, Message: fmt.Sprintf(format, args...)}
}
