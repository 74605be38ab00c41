package store

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ferry-sftp/ferry/keys"
)

// ParsedKey is what the store keeps of one authorized_keys line.
type ParsedKey struct {
	Line        string // canonical line
	Fingerprint string // "SHA256:..."
	Type        string
	Comment     string
}

// KeyParser parses and canonicalizes one authorized_keys line. Options.KeyParser
// lets a caller substitute its own; the default is DefaultKeyParser.
type KeyParser func(line string) (ParsedKey, error)

// DefaultKeyParser parses the line with package keys (sshd(8) AUTHORIZED_KEYS
// FILE FORMAT: [options] keytype base64-key [comment]; options are checked
// and the key itself must parse), and canonicalizes it: options as written,
// the key re-encoded, the comment trimmed.
func DefaultKeyParser(line string) (ParsedKey, error) {
	line = strings.TrimRight(line, "\r\n")
	options, _, _, _, err := splitAuthorizedKey(line)
	if err != nil {
		return ParsedKey{}, err
	}
	ak, err := keys.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return ParsedKey{}, fmt.Errorf("%w authorized key: %v", ErrInvalid, err)
	}
	typ := ak.Key.Type()
	if keys.IsCertificateType(typ) {
		// sshd matches a presented certificate only against
		// cert-authority lines, by its CA, and a CA is a plain key: a
		// certificate line authorizes nothing, and a customer who pastes
		// id_ed25519-cert.pub would be left wondering why it fails.
		return ParsedKey{}, fmt.Errorf("%w authorized key: %s is a certificate, which authorizes nothing here; add the plain public key (the .pub file without -cert), or the CA's public key with cert-authority", ErrInvalid, typ)
	}
	return ParsedKey{
		Line:        canonicalKeyLine(options, typ, ak.Key.Marshal(), ak.Comment),
		Fingerprint: keys.FingerprintSHA256(ak.Key),
		Type:        typ,
		Comment:     ak.Comment,
	}, nil
}

func canonicalKeyLine(options, typ string, blob []byte, comment string) string {
	var b strings.Builder
	if options != "" {
		b.WriteString(options)
		b.WriteByte(' ')
	}
	b.WriteString(typ)
	b.WriteByte(' ')
	b.WriteString(base64.StdEncoding.EncodeToString(blob))
	if comment != "" {
		b.WriteByte(' ')
		b.WriteString(comment)
	}
	return b.String()
}

// looksLikeKeyType reports whether a field is a key type name rather than
// an options list. sshd tries to read a key first and falls back to
// options; option names never contain these prefixes or suffixes.
func looksLikeKeyType(f string) bool {
	return strings.HasPrefix(f, "ssh-") || strings.HasPrefix(f, "ecdsa-sha2-") ||
		strings.HasPrefix(f, "sk-") || strings.HasSuffix(f, "@openssh.com")
}

// splitAuthorizedKey splits a line into its options text (verbatim),
// key type, decoded blob and comment. Package keys parses the options but
// does not return their text, which the canonical line keeps as written.
func splitAuthorizedKey(line string) (options, typ string, blob []byte, comment string, err error) {
	if len(line) > MaxKeyLineLength {
		return "", "", nil, "", fmt.Errorf("%w authorized key: line longer than %d bytes", ErrInvalid, MaxKeyLineLength)
	}
	if strings.ContainsAny(line, "\r\n\x00") {
		return "", "", nil, "", fmt.Errorf("%w authorized key: one line expected", ErrInvalid)
	}
	rest := strings.Trim(line, " \t")
	if rest == "" || rest[0] == '#' {
		return "", "", nil, "", fmt.Errorf("%w authorized key: empty line", ErrInvalid)
	}
	first, _, _ := strings.Cut(rest, " ")
	if first, _, _ = strings.Cut(first, "\t"); !looksLikeKeyType(first) {
		// Options end at the first space or tab outside double quotes
		// (sshd(8): "spaces are permitted within double quotes").
		quoted := false
		i := 0
		for ; i < len(rest); i++ {
			c := rest[i]
			if c == '\\' && quoted && i+1 < len(rest) && rest[i+1] == '"' {
				i++
				continue
			}
			if c == '"' {
				quoted = !quoted
			}
			if !quoted && (c == ' ' || c == '\t') {
				break
			}
		}
		if quoted {
			return "", "", nil, "", fmt.Errorf("%w authorized key: unterminated quote in options", ErrInvalid)
		}
		options, rest = rest[:i], strings.TrimLeft(rest[i:], " \t")
	}
	fields := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(fields) < 2 {
		return "", "", nil, "", fmt.Errorf("%w authorized key: want [options] keytype base64 [comment]", ErrInvalid)
	}
	typ = fields[0]
	if !looksLikeKeyType(typ) {
		return "", "", nil, "", fmt.Errorf("%w authorized key: unknown key type %q", ErrInvalid, typ)
	}
	blob, err = base64.StdEncoding.DecodeString(fields[1])
	if err != nil || len(blob) == 0 {
		return "", "", nil, "", fmt.Errorf("%w authorized key: bad base64 key data", ErrInvalid)
	}
	// The comment is the rest of the line after the key, spaces included.
	rest = strings.TrimLeft(rest[len(typ):], " \t")
	comment = strings.Trim(rest[len(fields[1]):], " \t")
	return options, typ, blob, comment, nil
}
