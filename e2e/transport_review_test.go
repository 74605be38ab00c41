package e2e

import (
	"path/filepath"
	"testing"
)

// TestOpenSSHServerRekeyLimit: with rekey_limit at sshd's smallest value
// (16 bytes), the server re-keys after nearly every packet, but only once
// authentication is over: OpenSSH's client refuses a KEXINIT while it
// authenticates ("bad message during authentication: type 20"), so a
// server that acted on its limit there failed every login. Transfers then
// run through many server-initiated exchanges, with and without
// delayed compression.
func TestOpenSSHServerRekeyLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{config: "rekey_limit = \"16\"\n"})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	data := randomBytes(t, 200001)
	writeFile(t, filepath.Join(local, "f"), data)
	roundTripEach(t, s, local, data, "k", []algorithmCase{
		{nil, "authenticated=true"},
		{[]string{"-C"}, "authenticated=true"},
		{[]string{"-o", "Ciphers=aes128-gcm@openssh.com"}, "cipher=aes128-gcm@openssh.com"},
	})
}
