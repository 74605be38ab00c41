// Package keys implements SSH public and private keys, signatures and the
// OpenSSH file formats built on them:
//
//   - public key and signature wire formats: RFC 4253 §6.6 (ssh-rsa, ssh-dss),
//     RFC 8332 (rsa-sha2-256/512), RFC 5656 §3.1 (ecdsa-sha2-nistp*),
//     RFC 8709 (ssh-ed25519), OpenSSH PROTOCOL.u2f (sk-* security keys);
//   - OpenSSH certificates, PROTOCOL.certkeys;
//   - the OpenSSH private key format (PROTOCOL.key) and the PEM formats
//     ssh-keygen has written over the years (PKCS#1, SEC 1, PKCS#8, DSA);
//   - authorized_keys lines and their options, sshd(8) "AUTHORIZED_KEYS FILE
//     FORMAT", and the from=/source-address address matching of sshd;
//   - fingerprints as ssh-keygen -l prints them.
//
// Every cryptographic primitive comes from the Go standard library or
// golang.org/x/crypto; this package only encodes, decodes and checks.
//
// Policy is the caller's: Verify checks that a signature is valid for the key
// and that its algorithm is one the key type can produce, but which
// algorithms (ssh-rsa with SHA-1, ssh-dss) or key sizes (RSAPublicKey.Bits)
// are acceptable is decided by the transport and auth layers.
package keys
