package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOpenSSHAlgorithms: every algorithm ferry offers by default, each
// forced in turn on OpenSSH's side, moves a file both ways intact, and the
// server's log names the one negotiated.
func TestOpenSSHAlgorithms(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.addUser("alice", "pw-alice")
	local := t.TempDir()
	data := randomBytes(t, 300001)
	writeFile(t, filepath.Join(local, "f"), data)
	tests := []algorithmCase{
		{[]string{"-o", "Ciphers=chacha20-poly1305@openssh.com"}, "cipher=chacha20-poly1305@openssh.com"},
		{[]string{"-o", "Ciphers=aes128-gcm@openssh.com"}, "cipher=aes128-gcm@openssh.com"},
		{[]string{"-o", "Ciphers=aes256-gcm@openssh.com"}, "cipher=aes256-gcm@openssh.com"},
		{[]string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256-etm@openssh.com"}, "mac=hmac-sha2-256-etm@openssh.com"},
		{[]string{"-o", "Ciphers=aes192-ctr", "-o", "MACs=hmac-sha2-512-etm@openssh.com"}, "mac=hmac-sha2-512-etm@openssh.com"},
		{[]string{"-o", "Ciphers=aes256-ctr", "-o", "MACs=hmac-sha2-256"}, "mac=hmac-sha2-256"},
		{[]string{"-o", "Ciphers=aes256-ctr", "-o", "MACs=hmac-sha2-512"}, "mac=hmac-sha2-512"},
		// mlkem768x25519-sha256 needs OpenSSH 9.9; Debian 12 has 9.2.
		{[]string{"-o", "KexAlgorithms=curve25519-sha256"}, "kex=curve25519-sha256"},
		{[]string{"-o", "KexAlgorithms=curve25519-sha256@libssh.org"}, "kex=curve25519-sha256@libssh.org"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group-exchange-sha256"}, "kex=diffie-hellman-group-exchange-sha256"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group16-sha512"}, "kex=diffie-hellman-group16-sha512"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group18-sha512"}, "kex=diffie-hellman-group18-sha512"},
		{[]string{"-o", "HostKeyAlgorithms=rsa-sha2-512"}, "hostkey=rsa-sha2-512"},
		{[]string{"-o", "HostKeyAlgorithms=rsa-sha2-256"}, "hostkey=rsa-sha2-256"},
		{[]string{"-C"}, "kex=curve25519-sha256"}, // zlib@openssh.com: the log does not name it; the transfer checks it
		// Compression across key re-exchanges: OpenSSH starts a new zlib
		// stream at every NEWKEYS (RFC 4253 §6.2), so a server that kept
		// its stream broke the first rekey after authentication.
		{[]string{"-C", "-o", "RekeyLimit=64K"}, "kex=curve25519-sha256"},
	}
	roundTripEach(t, s, local, data, "r", tests)
}

// TestOpenSSHLegacyAlgorithms: the compat and legacy tiers, off by
// default, are offered once listed in the configuration with OpenSSH's
// "+" syntax, and each one, forced on OpenSSH's side, moves a file both
// ways intact under the name the server logs.
func TestOpenSSHLegacyAlgorithms(t *testing.T) {
	t.Parallel()
	local := t.TempDir()
	data := randomBytes(t, 200003)
	writeFile(t, filepath.Join(local, "f"), data)

	plain := startServer(t, serverOpts{})
	plain.addUser("alice", "pw-alice")
	r := plain.sftpBatch(t, local, "alice", "pw-alice", "pwd\n", "-o", "Ciphers=aes128-cbc", "-o", "LogLevel=INFO")
	if r.code != 255 || !strings.Contains(r.out, "no matching cipher found") {
		t.Errorf("aes128-cbc against the default configuration: exit %d, want 255 and no matching cipher:\n%s", r.code, r.out)
	}

	s := startServer(t, serverOpts{config: `ciphers = "+aes128-cbc,aes256-cbc,3des-cbc"
macs = "+hmac-sha1,hmac-sha1-96,hmac-md5,hmac-sha1-etm@openssh.com"
kex_algorithms = "+diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,diffie-hellman-group-exchange-sha1,ecdh-sha2-nistp256,ecdh-sha2-nistp521,diffie-hellman-group14-sha256"
host_key_algorithms = "+ssh-rsa,ecdsa-sha2-nistp256"
`})
	s.addUser("alice", "pw-alice")
	tests := []algorithmCase{
		{[]string{"-o", "Ciphers=aes128-cbc"}, "cipher=aes128-cbc"},
		{[]string{"-o", "Ciphers=aes256-cbc"}, "cipher=aes256-cbc"},
		{[]string{"-o", "Ciphers=3des-cbc"}, "cipher=3des-cbc"}, // 64-bit block: rekeys every 512 KiB
		{[]string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"}, "mac=hmac-sha1"},
		{[]string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1-96"}, "mac=hmac-sha1-96"},
		{[]string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-md5"}, "mac=hmac-md5"},
		{[]string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1-etm@openssh.com"}, "mac=hmac-sha1-etm@openssh.com"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group14-sha1"}, "kex=diffie-hellman-group14-sha1"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group1-sha1"}, "kex=diffie-hellman-group1-sha1"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group-exchange-sha1"}, "kex=diffie-hellman-group-exchange-sha1"},
		{[]string{"-o", "KexAlgorithms=ecdh-sha2-nistp256"}, "kex=ecdh-sha2-nistp256"},
		{[]string{"-o", "KexAlgorithms=ecdh-sha2-nistp521"}, "kex=ecdh-sha2-nistp521"},
		{[]string{"-o", "KexAlgorithms=diffie-hellman-group14-sha256"}, "kex=diffie-hellman-group14-sha256"},
		{[]string{"-o", "HostKeyAlgorithms=ssh-rsa"}, "hostkey=ssh-rsa"},
		{[]string{"-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256"}, "hostkey=ecdsa-sha2-nistp256"},
	}
	roundTripEach(t, s, local, data, "l", tests)
}

// algorithmCase forces OpenSSH's side with opts and names what the
// server's "connection closed" line must then show.
type algorithmCase struct {
	opts    []string
	logWant string // a field of the server's "connection closed" line
}

// roundTripEach moves data (the file "f" in local) up and back for each
// case, under remote names prefix0, prefix1..., and checks both copies and
// the server's log line for that connection.
func roundTripEach(t *testing.T, s *server, local string, data []byte, prefix string, tests []algorithmCase) {
	t.Helper()
	for i, tt := range tests {
		name := strings.Join(tt.opts, " ")
		remote := fmt.Sprintf("%s%d", prefix, i)
		logRE := regexp.MustCompile(`(?m)msg="connection closed" .* ` + regexp.QuoteMeta(tt.logWant) + `( |$)`)
		before := len(logRE.FindAllString(s.stderr.String(), -1))
		r := s.sftpBatch(t, local, "alice", "pw-alice", fmt.Sprintf("put f %s\nget %s %s.back\n", remote, remote, remote), tt.opts...)
		if r.code != 0 {
			t.Errorf("%s: exit %d:\n%s", name, r.code, r.out)
			continue
		}
		if got := readFile(t, filepath.Join(s.home("alice"), remote)); !bytes.Equal(got, data) {
			t.Errorf("%s: upload: %d bytes differ", name, len(got))
		}
		if got := readFile(t, filepath.Join(local, remote+".back")); !bytes.Equal(got, data) {
			t.Errorf("%s: download: %d bytes differ", name, len(got))
		}
		// The server logs the close just after the client exits.
		if !s.waitLog(func(log string) bool { return len(logRE.FindAllString(log, -1)) > before }) {
			t.Errorf("%s: the server log does not show %q for this connection", name, tt.logWant)
		}
	}
}
