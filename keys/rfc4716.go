package keys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// RFC 4716 (the SSH public key file format PuTTYgen's "Save public key" and
// ssh-keygen -e write) begin and end lines, §3.2.
const (
	RFC4716Begin = "---- BEGIN SSH2 PUBLIC KEY ----"
	rfc4716End   = "---- END SSH2 PUBLIC KEY ----"
)

// Limits of RFC 4716 §3.3: a header tag is at most 64 bytes and a header
// line at most 1024 bytes; continuation lines count towards the header.
// maxRFC4716Block bounds a whole block at MaxAuthorizedKeyLine, which any
// key an authorized_keys line can hold fits.
const (
	maxRFC4716Tag    = 64
	maxRFC4716Header = 1024
	maxRFC4716Block  = MaxAuthorizedKeyLine
)

// ParseRFC4716 reads the RFC 4716 public key block at the start of data
// (blank lines before it are skipped): header lines "Tag: value", a value
// continued on the next line after a trailing backslash (§3.3), then the
// base64 key blob over any number of lines. It returns the key, the value
// of the Comment header with its double quotes removed (§3.3.2; "" when
// there is none), and the input after the end line. Lines may end in LF or
// CRLF.
func ParseRFC4716(data []byte) (key PublicKey, comment string, rest []byte, err error) {
	next := func() (line []byte, ok bool) {
		if len(data) == 0 {
			return nil, false
		}
		line, data, _ = bytes.Cut(data, []byte("\n"))
		return bytes.TrimRight(line, "\r"), true
	}
	line, ok := next()
	for ok && len(bytes.TrimSpace(line)) == 0 {
		line, ok = next()
	}
	if !ok || string(bytes.TrimSpace(line)) != RFC4716Begin {
		return nil, "", nil, errors.New("keys: not an RFC 4716 public key (no " + RFC4716Begin + " line)")
	}
	var (
		body     strings.Builder
		header   strings.Builder
		inHeader = false // the previous header line ended in a backslash
		size     = 0
	)
	endHeader := func() error {
		tag, value, ok := strings.Cut(header.String(), ":")
		header.Reset()
		if !ok || tag == "" || len(tag) > maxRFC4716Tag {
			return errors.New("keys: RFC 4716 header without a tag")
		}
		if strings.EqualFold(tag, "Comment") {
			value = strings.TrimSpace(value)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			comment = value
		}
		return nil
	}
	for {
		line, ok = next()
		if !ok {
			return nil, "", nil, errors.New("keys: RFC 4716 public key without its " + rfc4716End + " line")
		}
		if size += len(line); size > maxRFC4716Block {
			return nil, "", nil, fmt.Errorf("keys: RFC 4716 public key longer than %d bytes", maxRFC4716Block)
		}
		s := string(line)
		switch {
		case inHeader:
			header.WriteString(s)
		case strings.TrimSpace(s) == rfc4716End:
			blob, err := base64.StdEncoding.DecodeString(body.String())
			if err != nil {
				return nil, "", nil, fmt.Errorf("keys: bad base64 in RFC 4716 public key: %v", err)
			}
			if key, err = ParsePublicKey(blob); err != nil {
				return nil, "", nil, err
			}
			return key, comment, data, nil
		case strings.Contains(s, ":"):
			// A header: base64 never holds a colon (§3.3).
			if body.Len() > 0 {
				return nil, "", nil, errors.New("keys: RFC 4716 header after the key data")
			}
			header.WriteString(s)
		default:
			body.WriteString(strings.TrimSpace(s))
			continue
		}
		if header.Len() > maxRFC4716Header {
			return nil, "", nil, fmt.Errorf("keys: RFC 4716 header longer than %d bytes", maxRFC4716Header)
		}
		// §3.3: a backslash at the end of a header line continues it.
		if h := header.String(); strings.HasSuffix(h, `\`) {
			header.Reset()
			header.WriteString(h[:len(h)-1])
			inHeader = true
			continue
		}
		inHeader = false
		if err := endHeader(); err != nil {
			return nil, "", nil, err
		}
	}
}
