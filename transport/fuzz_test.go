package transport

import (
	"bytes"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

func FuzzKexInit(f *testing.F) {
	f.Add((&kexInitMsg{KexAlgos: []string{"curve25519-sha256", "ext-info-c", strictKexClient},
		ServerHostKeyAlgos: []string{"ssh-ed25519"}, CiphersClientServer: []string{"aes128-ctr"},
		CiphersServerClient: []string{"aes128-ctr"}, MACsClientServer: []string{"hmac-sha2-256"},
		MACsServerClient: []string{"hmac-sha2-256"}, CompressionClientServer: []string{"none"},
		CompressionServerClient: []string{"none"}}).marshal())
	f.Add([]byte{wire.MsgKexInit})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m kexInitMsg
		if !m.unmarshal(data) {
			return
		}
		// Whatever parses must survive a round trip (a boolean byte other
		// than 0/1 means TRUE, RFC 4251 §5, so compare values, not bytes)
		// and negotiate against our defaults without panicking.
		var again kexInitMsg
		if !again.unmarshal(m.marshal()) || !reflect.DeepEqual(&again, &m) {
			t.Fatalf("round trip differs")
		}
		server := &kexInitMsg{KexAlgos: DefaultAlgorithms(KindKex), ServerHostKeyAlgos: DefaultAlgorithms(KindHostKey),
			CiphersClientServer: DefaultAlgorithms(KindCipher), CiphersServerClient: DefaultAlgorithms(KindCipher),
			MACsClientServer: DefaultAlgorithms(KindMAC), MACsServerClient: DefaultAlgorithms(KindMAC),
			CompressionClientServer: DefaultAlgorithms(KindCompression), CompressionServerClient: DefaultAlgorithms(KindCompression)}
		if a, err := negotiateAll(&m, server); err == nil && isPseudoKex(a.Kex) {
			t.Fatalf("negotiated pseudo-algorithm %q", a.Kex)
		}
	})
}

func FuzzVersion(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"), false)
	f.Add([]byte("banner\r\nSSH-2.0-x\n"), true)
	f.Add([]byte("SSH-1.5-x\r\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, isClient bool) {
		v, _, err := readVersion(bytes.NewReader(data), isClient)
		if err == nil && (len(v) > maxVersionLineLen || !bytes.HasPrefix([]byte(v), []byte("SSH-"))) {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzServerHandshake feeds arbitrary bytes after a valid identification
// line to a real server handshake: it must fail cleanly, never panic or
// hang.
func FuzzServerHandshake(f *testing.F) {
	f.Add([]byte{0, 0, 0, 12, 4, wire.MsgKexInit, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(append([]byte{0, 0, 1, 0}, make([]byte, 256)...))
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		f.Fatal(err)
	}
	cfg := &Config{HostKeys: []keys.Signer{hk}, KexTimeout: 2 * time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			// Drain what the server writes so it never blocks on the pipe.
			io.Copy(io.Discard, a)
		}()
		go func() {
			a.Write([]byte("SSH-2.0-fuzz\r\n"))
			a.Write(data)
			a.Close()
		}()
		b.SetDeadline(time.Now().Add(5 * time.Second))
		c, err := Server(b, cfg)
		if err == nil {
			c.Close()
			t.Fatalf("handshake succeeded on fuzz input")
		}
	})
}
