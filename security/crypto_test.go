package security

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math/big"
	"slices"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// group14P is the RFC 3526 §3 2048-bit MODP prime.
func group14P() *big.Int {
	p, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
	return p
}

// TestMalformedKexValues sends invalid public values in the key exchange:
// DH e of 0, 1, p-1, p (RFC 4253 §8: e must be in [1, p-1], and 1 and p-1
// give a predictable secret), an off-curve P-256 point (invalid-curve
// attacks), an all-zero X25519 key (RFC 8731 §3: the all-zero shared
// secret must be refused), and wrong lengths. Each must end the
// connection without an answer and without a panic.
func TestMalformedKexValues(t *testing.T) {
	s := newServer(t, probeConfig+`kex_algorithms = "+ecdh-sha2-nistp256,diffie-hellman-group14-sha256"
`, testUser{name: "alice", password: alicePassword})
	p := group14P()
	offCurve := append([]byte{4}, make([]byte, 64)...)
	offCurve[32], offCurve[64] = 1, 1 // (0...01, 0...01) is not on P-256
	bigLen := make([]byte, 2000)
	rand.Read(bigLen)
	cases := []struct {
		name, kex string
		value     []byte // KEXDH_INIT/KEX_ECDH_INIT body after the type
	}{
		{"dh-e-0", "diffie-hellman-group14-sha256", wire.AppendMPInt(nil, big.NewInt(0))},
		{"dh-e-1", "diffie-hellman-group14-sha256", wire.AppendMPInt(nil, big.NewInt(1))},
		{"dh-e-p-1", "diffie-hellman-group14-sha256", wire.AppendMPInt(nil, new(big.Int).Sub(p, big.NewInt(1)))},
		{"dh-e-p", "diffie-hellman-group14-sha256", wire.AppendMPInt(nil, p)},
		{"dh-e-negative", "diffie-hellman-group14-sha256", wire.AppendString(nil, []byte{0xff, 0x01})},
		{"dh-e-huge", "diffie-hellman-group14-sha256", wire.AppendMPIntBytes(nil, bigLen)},
		{"dh-trailing", "diffie-hellman-group14-sha256", append(wire.AppendMPInt(nil, big.NewInt(5)), 0)},
		{"p256-off-curve", "ecdh-sha2-nistp256", wire.AppendString(nil, offCurve)},
		{"p256-infinity", "ecdh-sha2-nistp256", wire.AppendString(nil, []byte{0})},
		{"p256-compressed", "ecdh-sha2-nistp256", wire.AppendString(nil, append([]byte{2}, make([]byte, 32)...))},
		{"p256-short", "ecdh-sha2-nistp256", wire.AppendString(nil, offCurve[:40])},
		{"x25519-all-zero", "curve25519-sha256", wire.AppendString(nil, make([]byte, 32))},
		{"x25519-order-1", "curve25519-sha256", wire.AppendString(nil, append([]byte{1}, make([]byte, 31)...))},
		{"x25519-31-bytes", "curve25519-sha256", wire.AppendString(nil, make([]byte, 31))},
		{"x25519-empty", "curve25519-sha256", wire.AppendString(nil, nil)},
		{"mlkem-short", "mlkem768x25519-sha256", wire.AppendString(nil, make([]byte, 100))},
		{"mlkem-zero", "mlkem768x25519-sha256", wire.AppendString(nil, make([]byte, 1184+32))},
		{"no-string", "curve25519-sha256", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.addr)
			c.writePacket(kexInitWith(tc.kex, "aes128-ctr", strictKexClient))
			c.writePacket(append([]byte{wire.MsgKexDHInit}, tc.value...))
			reason, seen := c.readDisconnect()
			if slices.Contains(seen, wire.MsgKexDHReply) {
				t.Fatalf("server answered an invalid %s value", tc.kex)
			}
			if reason != wire.DisconnectKeyExchangeFailed && reason != wire.DisconnectProtocolError {
				t.Fatalf("DISCONNECT reason %d, want KEY_EXCHANGE_FAILED or PROTOCOL_ERROR", reason)
			}
			t.Logf("reason %d", reason)
		})
	}
	s.assertServing("alice", alicePassword)
}

// TestMalformedPackets: zero-length and misaligned packets after NEWKEYS,
// for CTR+HMAC (length encrypted) and AES-GCM (length as AAD). The server
// must end the connection (no panic, no allocation of a bogus length).
func TestMalformedPackets(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	// Controls: the raw client's suites work, so a closed connection
	// below means the server refused the malformed packet.
	for _, cipherName := range []string{"aes128-ctr", "aes128-gcm@openssh.com"} {
		c := dialRaw(t, s.addr)
		c.cipherName = cipherName
		ki := kexInitWith("curve25519-sha256", cipherName, strictKexClient)
		c.writePacket(ki)
		c.kex(ki, true, true)
		c.writePacket(serviceRequest("ssh-userauth"))
		if p, err := c.readPacket(); err != nil || p[0] != wire.MsgServiceAccept {
			t.Fatalf("control %s: got %v %v, want SERVICE_ACCEPT", cipherName, p, err)
		}
	}
	for _, tc := range []struct {
		name, cipher string
		raw          func(c *rawClient) []byte
	}{
		{"ctr-zero-length", "aes128-ctr", func(c *rawClient) []byte {
			pkt := make([]byte, 16)
			c.macOut.Reset()
			c.macOut.Write(binary.BigEndian.AppendUint32(nil, c.seqOut))
			c.macOut.Write(pkt)
			mac := c.macOut.Sum(nil)
			c.encOut.XORKeyStream(pkt, pkt)
			return append(pkt, mac...)
		}},
		{"ctr-max-length", "aes128-ctr", func(c *rawClient) []byte {
			pkt := make([]byte, 16)
			binary.BigEndian.PutUint32(pkt, 0xffffffff)
			c.encOut.XORKeyStream(pkt, pkt)
			return pkt
		}},
		{"gcm-zero-length", "aes128-gcm@openssh.com", func(c *rawClient) []byte {
			return c.gcmOut.Seal(make([]byte, 4), c.nonceOut, nil, make([]byte, 4))
		}},
		{"gcm-zero-length-bad-tag", "aes128-gcm@openssh.com", func(c *rawClient) []byte {
			return make([]byte, 4+16)
		}},
		{"gcm-length-5", "aes128-gcm@openssh.com", func(c *rawClient) []byte {
			l := []byte{0, 0, 0, 5}
			return c.gcmOut.Seal(l, c.nonceOut, []byte{4, 1, 2, 3, 4}, l)
		}},
		{"gcm-max-length", "aes128-gcm@openssh.com", func(c *rawClient) []byte {
			return []byte{0xff, 0xff, 0xff, 0xf0}
		}},
		{"gcm-padding-too-long", "aes128-gcm@openssh.com", func(c *rawClient) []byte {
			l := []byte{0, 0, 0, 16}
			plain := make([]byte, 16)
			plain[0] = 200
			return c.gcmOut.Seal(l, c.nonceOut, plain, l)
		}},
		{"gcm-empty-payload", "aes128-gcm@openssh.com", func(c *rawClient) []byte {
			l := []byte{0, 0, 0, 16}
			plain := make([]byte, 16)
			plain[0] = 15
			return c.gcmOut.Seal(l, c.nonceOut, plain, l)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.addr)
			c.cipherName = tc.cipher
			ki := kexInitWith("curve25519-sha256", tc.cipher, strictKexClient)
			c.writePacket(ki)
			c.kex(ki, true, true)
			if _, err := c.nc.Write(tc.raw(c)); err != nil {
				t.Fatal(err)
			}
			reason, seen := c.readDisconnect()
			t.Logf("DISCONNECT reason %d after %v", reason, seen)
			if reason != wire.DisconnectProtocolError && reason != wire.DisconnectMACError {
				t.Fatalf("DISCONNECT reason %d, want PROTOCOL_ERROR or MAC_ERROR", reason)
			}
		})
	}
	s.assertServing("alice", alicePassword)
}

// TestMalformedUserKeys sends publickey requests with broken key blobs and
// signatures: truncated, trailing bytes, RSA with e = 0 or a 1-bit
// modulus, an off-curve ECDSA point, Ed25519 of the wrong length, an
// all-zero signature, a signature algorithm for another key type. Each
// is answered with FAILURE or a disconnect; never SUCCESS, never a panic.
func TestMalformedUserKeys(t *testing.T) {
	key := newEd25519(t)
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword, authorizedKeys: []string{authorizedLine(key)}})
	good := key.PublicKey().Marshal()
	str := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = wire.AppendString(b, p)
		}
		return b
	}
	offCurve := append([]byte{4}, make([]byte, 64)...)
	offCurve[32], offCurve[64] = 1, 1
	blobs := map[string][]byte{
		"empty":              nil,
		"truncated":          good[:len(good)-1],
		"trailing":           append(slices.Clone(good), 0),
		"ed25519-31":         str([]byte("ssh-ed25519"), make([]byte, 31)),
		"rsa-e-0":            str([]byte("ssh-rsa"), nil, append([]byte{0}, make([]byte, 256)...)),
		"rsa-1-bit":          str([]byte("ssh-rsa"), []byte{1, 0, 1}, []byte{1}),
		"rsa-huge-e":         str([]byte("ssh-rsa"), make([]byte, 600), append([]byte{0x7f}, make([]byte, 255)...)),
		"rsa-100k-modulus":   str([]byte("ssh-rsa"), []byte{1, 0, 1}, append([]byte{0x7f}, make([]byte, 12500)...)),
		"ecdsa-off-curve":    str([]byte("ecdsa-sha2-nistp256"), []byte("nistp256"), offCurve),
		"ecdsa-curve-lie":    str([]byte("ecdsa-sha2-nistp256"), []byte("nistp384"), offCurve),
		"ecdsa-infinity":     str([]byte("ecdsa-sha2-nistp256"), []byte("nistp256"), []byte{0}),
		"dsa-zero":           str([]byte("ssh-dss"), nil, nil, nil, nil),
		"cert-garbage":       str([]byte("ssh-ed25519-cert-v01@openssh.com"), make([]byte, 32), good),
		"sk-no-application":  str([]byte("sk-ssh-ed25519@openssh.com"), make([]byte, 32)),
		"unknown-type":       str([]byte("ssh-foo"), make([]byte, 32)),
		"nested-huge-length": {0xff, 0xff, 0xff, 0xff, 's'},
	}
	sigs := map[string][]byte{
		"empty":       nil,
		"zero-sig":    str([]byte("ssh-ed25519"), make([]byte, 64)),
		"short-sig":   str([]byte("ssh-ed25519"), make([]byte, 10)),
		"wrong-alg":   str([]byte("rsa-sha2-256"), make([]byte, 64)),
		"trailing":    append(str([]byte("ssh-ed25519"), make([]byte, 64)), 0),
		"huge-length": {0x7f, 0xff, 0xff, 0xff},
	}
	for name, blob := range blobs {
		blob := blob
		for sname, sig := range sigs {
			t.Run(name+"/"+sname, func(t *testing.T) {
				c := s.dial(nil)
				startAuth(t, c)
				alg := "ssh-ed25519"
				if len(blob) > 4 {
					r := wire.NewReader(blob)
					if n := r.String(); r.Ok() {
						alg = n
					}
				}
				for _, signed := range []bool{false, true} {
					req := []byte{wire.MsgUserAuthRequest}
					req = wire.AppendStringS(req, "alice")
					req = wire.AppendStringS(req, "ssh-connection")
					req = wire.AppendStringS(req, "publickey")
					req = wire.AppendBool(req, signed)
					req = wire.AppendStringS(req, alg)
					req = wire.AppendString(req, blob)
					if signed {
						req = wire.AppendString(req, sig)
					}
					if err := c.WritePacket(req); err != nil {
						return
					}
					p, err := c.ReadPacket()
					if err != nil {
						var de *wire.DisconnectError
						if !errors.As(err, &de) {
							t.Fatalf("connection ended without DISCONNECT: %v", err)
						}
						return
					}
					if p[0] == wire.MsgUserAuthSuccess || p[0] == wire.MsgUserAuthPKOK {
						t.Fatalf("malformed key answered with %d", p[0])
					}
				}
			})
		}
	}
	s.assertServing("alice", alicePassword)
}
