package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/ferry-sftp/ferry/keys"
)

// readKeyList reads a file of public keys, one per line as in a .pub file,
// blank lines and # comments allowed: sshd's TrustedUserCAKeys and
// RevokedKeys (plain-text form), which it reads with sshkey_read. check,
// if not nil, may refuse a key; its error is reported with the line.
//
// A line with options is refused, not read for its key alone: sshd's
// sshkey_read fails on from=, expiry-time=, principals= and the rest, so
// none of them restricts anything there, and taking the key while dropping
// `from="10.0.0.0/8"` would trust a CA from everywhere and forever.
func readKeyList(path string, check func(keys.PublicKey) error) ([]keys.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := keyListOwnership(path, fi); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyListBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyListBytes {
		return nil, fmt.Errorf("%s: over %d bytes", path, maxKeyListBytes)
	}
	var out []keys.PublicKey
	n := 0
	for line := range bytes.Lines(b) {
		n++
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if len(out) == keys.MaxAuthorizedKeys {
			return nil, fmt.Errorf("%s: line %d: more than %d keys", path, n, keys.MaxAuthorizedKeys)
		}
		ak, err := keys.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, n, err)
		}
		if !ak.Options.IsZero() {
			return nil, fmt.Errorf("%s: line %d: %w", path, n, errKeyListOptions)
		}
		if check != nil {
			if err := check(ak.Key); err != nil {
				return nil, fmt.Errorf("%s: line %d: %w", path, n, err)
			}
		}
		out = append(out, ak.Key)
	}
	return out, nil
}

// maxKeyListBytes bounds a key list file: MaxAuthorizedKeys lines of the
// largest keys with comments.
const maxKeyListBytes = 64 << 20

// keyListOwnership refuses a key list that someone other than root and
// ferry's user can change, as sshd's StrictModes refuses such an
// authorized_keys file: whoever can write trusted_user_ca_keys can add a
// CA and log in to every account, and whoever can write revoked_keys can
// take a leaked key off it.
func keyListOwnership(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if euid := uint32(os.Geteuid()); st.Uid != 0 && st.Uid != euid {
		return fmt.Errorf("%s belongs to uid %d, who could change who may log in; give it to root (chown root %s)", path, st.Uid, path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others, who could change who may log in (chmod go-w %s)", path, path)
	}
	return nil
}

var errKeyListOptions = errors.New("options are not allowed here (sshd does not read them in this file)")

// loadTrustedUserCAKeys reads trusted_user_ca_keys (sshd
// TrustedUserCAKeys). A certificate is refused: a CA signs with a plain key
// (PROTOCOL.certkeys), so a certificate line would trust nothing.
func loadTrustedUserCAKeys(path string) ([]keys.PublicKey, error) {
	cas, err := readKeyList(path, func(k keys.PublicKey) error {
		if keys.IsCertificateType(k.Type()) {
			return fmt.Errorf("%s is a certificate; give the CA's plain public key", k.Type())
		}
		return nil
	})
	if errors.Is(err, errKeyListOptions) {
		err = fmt.Errorf("%w; restrict the CA's certificates with ssh-keygen -O, or trust the CA per account with a cert-authority line", err)
	}
	return cas, err
}

// revokedKeys is the revoked_keys list, by the blob of each plain key.
type revokedKeys map[string]bool

// loadRevokedKeys reads revoked_keys (sshd RevokedKeys in its plain-text
// form; OpenSSH's binary KRL is refused with a hint). A certificate listed
// revokes its key, as sshd compares only the public parts.
func loadRevokedKeys(path string) (revokedKeys, error) {
	if b, err := os.ReadFile(path); err == nil && bytes.HasPrefix(b, []byte("SSHKRL\n\x00")) {
		return nil, fmt.Errorf("%s is an OpenSSH key revocation list (ssh-keygen -k), which ferry does not read; list the revoked public keys one per line instead", path)
	}
	list, err := readKeyList(path, nil)
	if err != nil {
		return nil, err
	}
	r := make(revokedKeys, len(list))
	for _, k := range list {
		if c, ok := k.(*keys.Certificate); ok {
			k = c.Key
		}
		r[string(k.Marshal())] = true
	}
	return r, nil
}

// revokes reports whether key is revoked: the key itself, or for a
// certificate its key or the CA that signed it (sshd user_key_allowed
// checks both).
func (r revokedKeys) revokes(key keys.PublicKey) bool {
	if len(r) == 0 {
		return false
	}
	if c, ok := key.(*keys.Certificate); ok {
		return r[string(c.Key.Marshal())] || (c.SignatureKey != nil && r[string(c.SignatureKey.Marshal())])
	}
	return r[string(key.Marshal())]
}
