package daemon

import (
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestCertAuthorityPrincipals logs in with user certificates through an
// account's cert-authority lines, with and without principals=, and checks
// sshd's rule (auth2-pubkey.c match_principals_option): with principals=
// the certificate must list one of them and the login name is not enough;
// without it the certificate must list the login name.
func TestCertAuthorityPrincipals(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	restrictedCA, plainCA := newTestSigner(t), newTestSigner(t)
	addAccount(t, st, "alice", "pw-alice", 0, `cert-authority,principals="deploy,ops" `+authorizedLine(restrictedCA))
	addAccount(t, st, "bob", "pw-bob", 0, "cert-authority "+authorizedLine(plainCA))
	// Refused logins from 127.0.0.1 must not earn it sshd's penalty.
	addr := startDaemonWith(t, dir, "", func(c *Config) { c.PerSourcePenalties.Enabled = false })
	certSigner := func(ca ssh.Signer, principals ...string) ssh.Signer { return userCertSigner(t, ca, principals...) }
	checkCertLogins(t, addr, []certLogin{
		{"principals= listed principal", "alice", certSigner(restrictedCA, "deploy"), true},
		{"principals= second listed principal", "alice", certSigner(restrictedCA, "x", "ops"), true},
		{"principals= login name only", "alice", certSigner(restrictedCA, "alice"), false},
		{"principals= unlisted principal", "alice", certSigner(restrictedCA, "root"), false},
		{"no principals= login name", "bob", certSigner(plainCA, "bob"), true},
		{"no principals= other name", "bob", certSigner(plainCA, "deploy"), false},
	})
}
