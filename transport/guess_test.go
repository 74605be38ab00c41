package transport_test

import (
	"bufio"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// readPlainPacket reads one unencrypted binary packet and returns its
// payload.
func readPlainPacket(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	var l [4]byte
	if _, err := io.ReadFull(br, l[:]); err != nil {
		t.Fatalf("reading packet length: %v", err)
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > 64<<10 {
		t.Fatalf("packet length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatalf("reading packet: %v", err)
	}
	return b[1 : int(n)-int(b[0])]
}

// TestFirstKexPacketFollows: RFC 4253 §7.1. A client that guesses the
// key exchange sends its first kex packet right after KEXINIT. When the
// guess is right (both sides' first kex and host key algorithms agree)
// the server must use that packet; when it is wrong the server must
// ignore exactly one packet and use the client's next one.
func TestFirstKexPacketFollows(t *testing.T) {
	x25519Init := func() []byte {
		k, _ := ecdh.X25519().GenerateKey(rand.Reader)
		return wire.AppendString([]byte{wire.MsgKexECDHInit}, k.PublicKey().Bytes())
	}
	hybridInit := func() []byte {
		dk, _ := mlkem.GenerateKey768()
		k, _ := ecdh.X25519().GenerateKey(rand.Reader)
		return wire.AppendString([]byte{wire.MsgKexECDHInit}, append(dk.EncapsulationKey().Bytes(), k.PublicKey().Bytes()...))
	}
	garbage := wire.AppendStringS([]byte{wire.MsgKexECDHInit}, "a wrong guess")
	cases := []struct {
		name    string
		kex     []string
		packets [][]byte // sent after KEXINIT
	}{
		// The server prefers curve25519-sha256 and ssh-ed25519.
		{"right guess", []string{"curve25519-sha256", "mlkem768x25519-sha256"}, [][]byte{x25519Init()}},
		{"wrong guess", []string{"mlkem768x25519-sha256", "curve25519-sha256"}, [][]byte{garbage, hybridInit()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := allAlgorithmsConfig()
			cfg.KeyExchanges = []string{"curve25519-sha256", "mlkem768x25519-sha256"}
			cfg.HostKeyAlgorithms = []string{"ssh-ed25519"}
			addr, results := startServer(t, cfg)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			kexinit := append([]byte{wire.MsgKexInit}, make([]byte, 16)...)
			for _, l := range [][]string{tc.kex, {"ssh-ed25519"}, {"aes128-ctr"}, {"aes128-ctr"},
				{"hmac-sha2-256"}, {"hmac-sha2-256"}, {"none"}, {"none"}, nil, nil} {
				kexinit = wire.AppendNameList(kexinit, l)
			}
			kexinit = wire.AppendUint32(wire.AppendBool(kexinit, true), 0)
			out := []byte("SSH-2.0-guesser\r\n")
			out = append(out, plainPacket(kexinit)...)
			for _, p := range tc.packets {
				out = append(out, plainPacket(p)...)
			}
			if _, err := nc.Write(out); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(nc)
			if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
				t.Fatalf("version line %q, %v", line, err)
			}
			if p := readPlainPacket(t, br); p[0] != wire.MsgKexInit {
				t.Fatalf("server's first message %d, want KEXINIT", p[0])
			}
			if p := readPlainPacket(t, br); p[0] != wire.MsgKexECDHReply {
				t.Fatalf("server answered with message %d, want the kex reply (31)", p[0])
			}
			nc.Close()
			waitResult(t, results)
		})
	}
}
