package kex

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"io"
	"math/big"
	"slices"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

const (
	kexFailedReason = wire.DisconnectKeyExchangeFailed
	protocolReason  = wire.DisconnectProtocolError
)

// serve runs the method's Server on scripted client packets.
func serve(t *testing.T, m Method, packets ...[]byte) ([][]byte, error) {
	t.Helper()
	st := &scriptTransport{packets: packets}
	_, err := m.Server(st, testMagics(), newTestHostKey(), detRand(3))
	return st.written, err
}

// dial runs the method's Client on scripted server packets.
func dial(t *testing.T, m Method, packets ...[]byte) ([][]byte, error) {
	t.Helper()
	st := &scriptTransport{packets: packets}
	_, err := m.Client(st, testMagics(), detRand(4))
	return st.written, err
}

// firstClientMessage is the message a real client opens with.
func firstClientMessage(t *testing.T, name string) []byte {
	t.Helper()
	w, err := dial(t, mustMethod(t, name, nil))
	if !errors.Is(err, io.EOF) || len(w) != 1 {
		t.Fatalf("client wrote %d messages, err %v", len(w), err)
	}
	return w[0]
}

// dhBadValues are public values outside 1 < y < p-1 (RFC 4253 §8).
func dhBadValues(p *big.Int) map[string]*big.Int {
	one := big.NewInt(1)
	return map[string]*big.Int{
		"0":      big.NewInt(0),
		"1":      big.NewInt(1),
		"p-1":    new(big.Int).Sub(p, one),
		"p":      new(big.Int).Set(p),
		"p+1":    new(big.Int).Add(p, one),
		"2^8192": new(big.Int).Lsh(one, 8192),
	}
}

func TestDHPublicValueValidation(t *testing.T) {
	for _, tc := range []struct{ name, primeHex string }{
		{"diffie-hellman-group1-sha1", oakleyGroup2Hex},
		{"diffie-hellman-group14-sha1", modpGroup14Hex},
		{"diffie-hellman-group14-sha256", modpGroup14Hex},
		{"diffie-hellman-group16-sha512", modpGroup16Hex},
		{"diffie-hellman-group18-sha512", modpGroup18Hex},
	} {
		p := mustHex(tc.primeHex)
		m := mustMethod(t, tc.name, nil)
		for label, v := range dhBadValues(p) {
			t.Run(tc.name+"/e="+label, func(t *testing.T) {
				w, err := serve(t, m, (&kexDHInitMsg{X: v}).marshal())
				wantDisconnect(t, err, kexFailedReason)
				if len(w) != 0 {
					t.Fatal("server replied to an invalid e")
				}
			})
			t.Run(tc.name+"/f="+label, func(t *testing.T) {
				_, err := dial(t, m, (&kexDHReplyMsg{HostKey: []byte("k"), Y: v, Signature: []byte("s")}).marshal())
				wantDisconnect(t, err, kexFailedReason)
			})
		}
		// The extremes of the valid range are accepted.
		for _, v := range []*big.Int{big.NewInt(2), new(big.Int).Sub(p, big.NewInt(2))} {
			if _, err := serve(t, m, (&kexDHInitMsg{X: v}).marshal()); err != nil {
				t.Errorf("%s: e = %v rejected: %v", tc.name, v, err)
			}
		}
	}
}

func TestGEXPublicValueValidation(t *testing.T) {
	p := mustHex(modpGroup15Hex)
	req := (&kexDHGexRequestMsg{MinBits: 2048, PreferredBits: 3072, MaxBits: 3072}).marshal()
	group := (&kexDHGexGroupMsg{P: p, G: big.NewInt(2)}).marshal()
	for _, name := range []string{"diffie-hellman-group-exchange-sha256", "diffie-hellman-group-exchange-sha1"} {
		m := mustMethod(t, name, nil)
		for label, v := range dhBadValues(p) {
			t.Run(name+"/e="+label, func(t *testing.T) {
				w, err := serve(t, m, req, (&kexDHGexInitMsg{X: v}).marshal())
				wantDisconnect(t, err, kexFailedReason)
				if len(w) != 1 {
					t.Fatalf("server wrote %d messages, want only GROUP", len(w))
				}
			})
			t.Run(name+"/f="+label, func(t *testing.T) {
				_, err := dial(t, m, group, (&kexDHGexReplyMsg{HostKey: []byte("k"), Y: v, Signature: []byte("s")}).marshal())
				wantDisconnect(t, err, kexFailedReason)
			})
		}
	}
}

// TestGEXClientGroupValidation: the client refuses groups outside the size
// it asked for (min 2048, max 8192), even moduli and degenerate
// generators.
func TestGEXClientGroupValidation(t *testing.T) {
	p := mustHex(modpGroup15Hex)
	oakley := mustHex(oakleyGroup2Hex)
	big8193 := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 8192), big.NewInt(1))
	m := mustMethod(t, "diffie-hellman-group-exchange-sha256", nil)
	for _, tc := range []struct {
		name string
		p, g *big.Int
	}{
		{"1024-bit modulus", oakley, big.NewInt(2)},
		{"8193-bit modulus", big8193, big.NewInt(2)},
		{"even modulus", new(big.Int).Sub(p, big.NewInt(1)), big.NewInt(2)},
		{"g=0", p, big.NewInt(0)},
		{"g=1", p, big.NewInt(1)},
		{"g=p-1", p, new(big.Int).Sub(p, big.NewInt(1))},
		{"g=p", p, p},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := dial(t, m, (&kexDHGexGroupMsg{P: tc.p, G: tc.g}).marshal())
			wantDisconnect(t, err, kexFailedReason)
			if len(w) != 1 {
				t.Fatal("client sent INIT for a rejected group")
			}
		})
	}
}

// nistPoints returns encodings that must be rejected for the curve:
// off the curve, wrong length, compressed, the point at infinity.
func nistPoints(t *testing.T, c ecdh.Curve) map[string][]byte {
	priv, err := c.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := priv.PublicKey().Bytes()
	coord := (len(good) - 1) / 2
	offCurve := slices.Clone(good)
	offCurve[len(offCurve)-1] ^= 1
	compressed := append([]byte{2 + good[len(good)-1]&1}, good[1:1+coord]...)
	hybridForm := slices.Clone(good)
	hybridForm[0] = 6 + good[len(good)-1]&1
	return map[string][]byte{
		"off curve":   offCurve,
		"zero point":  append([]byte{4}, make([]byte, 2*coord)...),
		"short":       good[:len(good)-1],
		"long":        append(slices.Clone(good), 0),
		"compressed":  compressed,
		"hybrid form": hybridForm,
		"infinity":    {0},
		"empty":       {},
		"no prefix":   good[1:],
	}
}

func TestECDHPointValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		curve ecdh.Curve
	}{
		{"ecdh-sha2-nistp256", ecdh.P256()},
		{"ecdh-sha2-nistp384", ecdh.P384()},
		{"ecdh-sha2-nistp521", ecdh.P521()},
	} {
		m := mustMethod(t, tc.name, nil)
		for label, pt := range nistPoints(t, tc.curve) {
			t.Run(tc.name+"/server/"+label, func(t *testing.T) {
				w, err := serve(t, m, (&kexECDHInitMsg{ClientPubKey: pt}).marshal())
				wantDisconnect(t, err, kexFailedReason)
				if len(w) != 0 {
					t.Fatal("server replied to an invalid point")
				}
			})
			t.Run(tc.name+"/client/"+label, func(t *testing.T) {
				_, err := dial(t, m, (&kexECDHReplyMsg{HostKey: []byte("k"), EphemeralKey: pt, Signature: []byte("s")}).marshal())
				wantDisconnect(t, err, kexFailedReason)
			})
		}
	}
}

// x25519LowOrder are u-coordinates whose X25519 output is all zero for
// every scalar: the small-order points of Curve25519 and its twist and
// their non-canonical encodings (as listed by libsodium and in
// "May the Fourth Be With You", Genkin et al.).
var x25519LowOrder = map[string]string{
	"0":        "0000000000000000000000000000000000000000000000000000000000000000",
	"1":        "0100000000000000000000000000000000000000000000000000000000000000",
	"order 8a": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"order 8b": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"p-1":      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"p":        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"p+1":      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestX25519Validation(t *testing.T) {
	bad := map[string][]byte{"empty": {}, "31 bytes": make([]byte, 31), "33 bytes": make([]byte, 33), "64 bytes": make([]byte, 64)}
	for label, h := range x25519LowOrder {
		bad["low order "+label] = unhex(t, h)
	}
	for _, name := range []string{"curve25519-sha256", "curve25519-sha256@libssh.org"} {
		m := mustMethod(t, name, nil)
		for label, pub := range bad {
			t.Run(name+"/server/"+label, func(t *testing.T) {
				w, err := serve(t, m, (&kexECDHInitMsg{ClientPubKey: pub}).marshal())
				wantDisconnect(t, err, kexFailedReason)
				if len(w) != 0 {
					t.Fatal("server replied")
				}
			})
			t.Run(name+"/client/"+label, func(t *testing.T) {
				_, err := dial(t, m, (&kexECDHReplyMsg{HostKey: []byte("k"), EphemeralKey: pub, Signature: []byte("s")}).marshal())
				wantDisconnect(t, err, kexFailedReason)
			})
		}
	}
	// x25519Shared itself rejects an all-zero result.
	priv, _ := newX25519Key(detRand(5))
	for label, h := range x25519LowOrder {
		if _, err := x25519Shared(priv, unhex(t, h)); err == nil {
			t.Errorf("x25519Shared accepted low-order point %s", label)
		}
	}
}

func TestHybridValidation(t *testing.T) {
	m := mustMethod(t, "mlkem768x25519-sha256", nil)
	good := firstClientMessage(t, "mlkem768x25519-sha256")
	var init kexHybridInitMsg
	if !init.unmarshal(good) || len(init.ClientInit) != 1216 {
		t.Fatalf("client C_INIT is %d bytes, want 1216", len(init.ClientInit))
	}
	cInit := init.ClientInit
	// Coefficients >= q = 3329 fail the FIPS 203 §7.2 modulus check.
	badEK := slices.Concat(bytes.Repeat([]byte{0xff}, 1184), cInit[1184:])
	serverBad := map[string][]byte{
		"empty":            {},
		"1215 bytes":       cInit[:1215],
		"1217 bytes":       append(slices.Clone(cInit), 0),
		"ML-KEM key only":  cInit[:1184],
		"X25519 key only":  cInit[1184:],
		"ML-KEM-1024 size": make([]byte, 1568+32),
		"bad encaps key":   badEK,
	}
	for label, h := range x25519LowOrder {
		serverBad["low order X25519 "+label] = slices.Concat(cInit[:1184], unhex(t, h))
	}
	for label, v := range serverBad {
		t.Run("server/"+label, func(t *testing.T) {
			w, err := serve(t, m, (&kexHybridInitMsg{ClientInit: v}).marshal())
			wantDisconnect(t, err, kexFailedReason)
			if len(w) != 0 {
				t.Fatal("server replied")
			}
		})
	}
	// A real S_REPLY, to corrupt.
	w, err := serve(t, m, good)
	if err != nil {
		t.Fatal(err)
	}
	var reply kexHybridReplyMsg
	if !reply.unmarshal(w[0]) || len(reply.ServerReply) != 1120 {
		t.Fatalf("server S_REPLY is %d bytes, want 1120", len(reply.ServerReply))
	}
	sr := reply.ServerReply
	clientBad := map[string][]byte{
		"empty":      {},
		"1119 bytes": sr[:1119],
		"1121 bytes": append(slices.Clone(sr), 0),
		"ciphertext": sr[:1088],
	}
	for label, h := range x25519LowOrder {
		clientBad["low order X25519 "+label] = slices.Concat(sr[:1088], unhex(t, h))
	}
	for label, v := range clientBad {
		t.Run("client/"+label, func(t *testing.T) {
			_, err := dial(t, m, (&kexHybridReplyMsg{HostKey: []byte("k"), ServerReply: v, Signature: []byte("s")}).marshal())
			wantDisconnect(t, err, kexFailedReason)
		})
	}
}

// TestTrailingBytes: a valid first message with one extra byte is a
// PROTOCOL_ERROR for every method, on both sides.
func TestTrailingBytes(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			first := firstClientMessage(t, name)
			// Without the extra byte the server gets further.
			if _, err := serve(t, m, first); !errors.Is(err, io.EOF) && err != nil {
				t.Fatalf("valid first message rejected: %v", err)
			}
			w, err := serve(t, m, append(first, 0))
			wantDisconnect(t, err, protocolReason)
			if len(w) != 0 {
				t.Fatal("server replied")
			}
			// The server's first message, with an extra byte, to the client.
			sw, _ := serve(t, m, first)
			if len(sw) == 0 {
				t.Fatal("server wrote nothing")
			}
			_, err = dial(t, m, append(sw[0], 0))
			wantDisconnect(t, err, protocolReason)
		})
	}
	// The second GEX round trip is strict too.
	m := mustMethod(t, "diffie-hellman-group-exchange-sha256", nil)
	req := firstClientMessage(t, "diffie-hellman-group-exchange-sha256")
	_, err := serve(t, m, req, append((&kexDHGexInitMsg{X: big.NewInt(4)}).marshal(), 0))
	wantDisconnect(t, err, protocolReason)
}

// TestWrongMessageType: messages that are valid kex numbers but not the
// one the state expects are a PROTOCOL_ERROR, and nothing is sent.
func TestWrongMessageType(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m := mustMethod(t, name, nil)
			first := firstClientMessage(t, name)
			for typ := 30; typ <= 49; typ++ {
				if byte(typ) == first[0] || (typ == 30 && first[0] == 34) {
					continue // the expected number (GEX also takes the old request, 30)
				}
				msg := append([]byte{byte(typ)}, first[1:]...)
				w, err := serve(t, m, msg)
				wantDisconnect(t, err, protocolReason)
				if len(w) != 0 {
					t.Fatalf("server replied to message %d", typ)
				}
			}
			_, err := serve(t, m, []byte{})
			wantDisconnect(t, err, protocolReason)
			// The client expects the server's reply (31), not an echo of
			// its own message number or a later GEX message.
			sw, _ := serve(t, m, first)
			for _, typ := range []byte{30, 32, 33, 34, 49} {
				if typ == sw[0][0] {
					continue
				}
				_, err := dial(t, m, append([]byte{typ}, sw[0][1:]...))
				wantDisconnect(t, err, protocolReason)
			}
		})
	}
	// GEX: INIT before a request, and a second request instead of INIT.
	m := mustMethod(t, "diffie-hellman-group-exchange-sha256", nil)
	req := firstClientMessage(t, "diffie-hellman-group-exchange-sha256")
	_, err := serve(t, m, (&kexDHGexInitMsg{X: big.NewInt(4)}).marshal())
	wantDisconnect(t, err, protocolReason)
	w, err := serve(t, m, req, req)
	wantDisconnect(t, err, protocolReason)
	if len(w) != 1 {
		t.Fatalf("server wrote %d messages, want only GROUP", len(w))
	}
}

// TestTransportErrorsPassThrough: a ReadPacket error reaches the caller
// unchanged, so the handshake can tell a dropped connection from a
// protocol violation.
func TestTransportErrorsPassThrough(t *testing.T) {
	for _, name := range Names() {
		m := mustMethod(t, name, nil)
		if _, err := serve(t, m); !errors.Is(err, io.EOF) {
			t.Errorf("%s server: err = %v, want io.EOF", name, err)
		}
		if _, err := dial(t, m); !errors.Is(err, io.EOF) {
			t.Errorf("%s client: err = %v, want io.EOF", name, err)
		}
	}
}

// TestRandFailure: a failing randomness source ends the exchange with
// KEY_EXCHANGE_FAILED instead of producing weak keys.
func TestRandFailure(t *testing.T) {
	for _, name := range Names() {
		if name == "ecdh-sha2-nistp256" || name == "ecdh-sha2-nistp384" || name == "ecdh-sha2-nistp521" {
			continue // crypto/ecdh ignores rand since Go 1.26
		}
		m := mustMethod(t, name, nil)
		st := &scriptTransport{}
		sent := 0
		if _, gex := m.(*gexMethod); gex {
			// The request needs no randomness; the exponent after GROUP does.
			st.packets = [][]byte{(&kexDHGexGroupMsg{P: mustHex(modpGroup15Hex), G: big.NewInt(2)}).marshal()}
			sent = 1
		}
		_, err := m.Client(st, testMagics(), errReader{})
		wantDisconnect(t, err, kexFailedReason)
		if len(st.written) != sent {
			t.Errorf("%s: client sent a message without randomness", name)
		}
		// The server too: it needs randomness for its own ephemeral value.
		first := firstClientMessage(t, name)
		st = &scriptTransport{packets: [][]byte{first}}
		if _, gex := m.(*gexMethod); gex {
			// Builtin groups are all one per size, so GROUP needs no
			// randomness; the exponent after INIT does.
			st.packets = append(st.packets, (&kexDHGexInitMsg{X: big.NewInt(4)}).marshal())
		}
		_, err = m.Server(st, testMagics(), newTestHostKey(), errReader{})
		wantDisconnect(t, err, kexFailedReason)
	}
}
