package security

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// kexInitGuess is kexInitWith with first_kex_packet_follows set (the
// boolean before the trailing reserved uint32).
func kexInitGuess(kex, cipherName string, pseudo ...string) []byte {
	b := kexInitWith(kex, cipherName, pseudo...)
	b[len(b)-5] = 1
	return b
}

// TestKexGuessWrongPreferred: RFC 4253 §7 calls a guess wrong when the two
// sides' preferred kex algorithms differ, even if negotiation then picks
// the client's first choice. The server prefers mlkem768x25519-sha256;
// a client offering only curve25519-sha256 with a guessed ECDH_INIT must
// have that packet ignored and its real one (sent again, as OpenSSH and
// x/crypto do) answered.
func TestKexGuessWrongPreferred(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	c := dialRaw(t, s.addr)
	c.cipherName = "aes128-ctr"
	ki := kexInitGuess("curve25519-sha256", "aes128-ctr", "kex-strict-c-v00@openssh.com")
	if err := c.writePacket(ki); err != nil {
		t.Fatal(err)
	}
	guess, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.writePacket(wire.AppendString([]byte{wire.MsgKexECDHInit}, guess.PublicKey().Bytes())); err != nil {
		t.Fatal(err)
	}
	c.kex(ki, true, true)
	if err := c.writePacket(serviceRequest("ssh-userauth")); err != nil {
		t.Fatal(err)
	}
	p, err := c.readPacket()
	for err == nil && p[0] == wire.MsgExtInfo {
		p, err = c.readPacket()
	}
	if err != nil || p[0] != wire.MsgServiceAccept {
		t.Fatalf("after the key exchange got %v, %v; want SERVICE_ACCEPT\n%s", p, err, s.log)
	}
}
