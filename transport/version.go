package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Version exchange limits, RFC 4253 §4.2.
const (
	// maxVersionLineLen: "The maximum length of the string is 255
	// characters, including the Carriage Return and Line Feed."
	maxVersionLineLen = 255
	// maxPreBannerBytes bounds the lines a server may send before its
	// version string (the client side reads these). OpenSSH allows 1024
	// lines; 8 KiB is ample for any real banner and caps memory and time.
	maxPreBannerBytes = 8 * 1024
)

// errSSH1 is returned for a peer speaking SSH-1.x only.
var errSSH1 = &DisconnectError{Reason: wire.DisconnectProtocolVersionNotSupport, Message: "Protocol major versions differ."}

// readVersion reads the peer's identification line. A server reads the
// client's line, which must be the first line the client sends (the RFC
// lets only servers send other lines first); a client skips up to
// maxPreBannerBytes of server lines. CR-less LF line ends are tolerated,
// as OpenSSH does. It returns the version string without CR LF and any
// bytes read past the line, which belong to the binary packet protocol.
func readVersion(r io.Reader, isClient bool) (version string, rest []byte, err error) {
	buf := make([]byte, 0, 512)
	chunk := make([]byte, 512)
	total := 0
	for {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := buf[:i]
			after := buf[i+1:]
			if i+1 > maxVersionLineLen {
				return "", nil, protocolError("identification line longer than %d bytes", maxVersionLineLen)
			}
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if bytes.HasPrefix(line, []byte("SSH-")) {
				v, err := checkVersion(line)
				if err != nil {
					return "", nil, err
				}
				return v, append([]byte(nil), after...), nil
			}
			if !isClient {
				return "", nil, protocolError("client did not send an SSH identification string first")
			}
			buf = append(buf[:0], after...)
			continue
		}
		if len(buf) >= maxVersionLineLen {
			return "", nil, protocolError("identification line longer than %d bytes", maxVersionLineLen)
		}
		if total >= maxPreBannerBytes {
			return "", nil, protocolError("more than %d bytes before the identification string", maxPreBannerBytes)
		}
		n, err := r.Read(chunk)
		total += n
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if bytes.IndexByte(buf, '\n') >= 0 {
				continue
			}
			if errors.Is(err, io.EOF) {
				return "", nil, fmt.Errorf("ssh: connection closed during version exchange: %w", io.ErrUnexpectedEOF)
			}
			return "", nil, err
		}
	}
}

// checkVersion validates "SSH-protoversion-softwareversion SP comments".
func checkVersion(line []byte) (string, error) {
	for _, c := range line {
		// RFC 4253 §4.2: printable US-ASCII, plus space before comments.
		if c < 0x20 || c > 0x7e {
			return "", protocolError("identification string contains a non-printable byte")
		}
	}
	s := string(line)
	rest := strings.TrimPrefix(s, "SSH-")
	proto, soft, ok := strings.Cut(rest, "-")
	if !ok || soft == "" {
		return "", protocolError("malformed identification string")
	}
	switch proto {
	case "2.0", "1.99": // 1.99: a peer that also speaks 2.0 (RFC 4253 §5.1)
		return s, nil
	}
	if strings.HasPrefix(proto, "1.") {
		return "", errSSH1
	}
	return "", &DisconnectError{Reason: wire.DisconnectProtocolVersionNotSupport, Message: "unsupported protocol version " + proto}
}
