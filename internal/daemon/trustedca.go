package daemon

import (
	"bytes"
	"fmt"
	"os"

	"github.com/ferry-sftp/ferry/keys"
)

// loadTrustedUserCAKeys reads trusted_user_ca_keys: one CA public key per
// line, blank lines and # comments allowed (sshd TrustedUserCAKeys).
//
// A line with options is refused, not read for its key alone: sshd reads
// this file with sshkey_read, which fails on from=, expiry-time=,
// principals= and the rest, so none of them restricts a CA there, and
// taking the key while dropping `from="10.0.0.0/8"` would trust the CA from
// everywhere and forever. A certificate is refused too: a CA signs with a
// plain key (PROTOCOL.certkeys), so a certificate line would trust nothing.
func loadTrustedUserCAKeys(path string) ([]keys.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cas []keys.PublicKey
	n := 0
	for line := range bytes.Lines(b) {
		n++
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if len(cas) == keys.MaxAuthorizedKeys {
			return nil, fmt.Errorf("%s: line %d: more than %d keys", path, n, keys.MaxAuthorizedKeys)
		}
		ak, err := keys.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, n, err)
		}
		if !ak.Options.IsZero() {
			return nil, fmt.Errorf("%s: line %d: options are not allowed here (sshd does not read them in TrustedUserCAKeys); restrict the CA's certificates with ssh-keygen -O, or trust the CA per account with a cert-authority line", path, n)
		}
		if keys.IsCertificateType(ak.Key.Type()) {
			return nil, fmt.Errorf("%s: line %d: %s is a certificate; give the CA's plain public key", path, n, ak.Key.Type())
		}
		cas = append(cas, ak.Key)
	}
	return cas, nil
}
