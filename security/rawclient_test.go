package security

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// rawClient speaks the binary packet protocol (RFC 4253 §6) by hand, so a
// probe can do what ferry's own transport refuses to: inject packets
// before KEXINIT, skip the strict-kex sequence number reset, and so on.
// It only knows curve25519-sha256, ssh-ed25519 (the host key signature is
// not checked: the probes attack the server, not the reverse),
// aes128-ctr and hmac-sha2-256; every primitive is Go's.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader

	serverVersion, clientVersion string
	serverKexInit                []byte
	// cipherName is what we offered (client to server).
	cipherName string

	seqOut, seqIn uint32

	// Set after NEWKEYS.
	encOut, encIn cipher.Stream
	macOut, macIn hash.Hash
	// With aes128-gcm@openssh.com (RFC 5647, OpenSSH PROTOCOL §1.6)
	// packets are sealed and opened instead.
	gcmOut, gcmIn     cipher.AEAD
	nonceOut, nonceIn []byte
}

// rawMaxPacket bounds what the probe reads: RFC 4253 §6.1's 35000 bytes
// is all a server may send before it knows we accept more.
const rawMaxPacket = 35000

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(probeTimeout))
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), clientVersion: "SSH-2.0-ferryprobe_1.0"}
	if _, err := io.WriteString(nc, c.clientVersion+"\r\n"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading server version: %v", err)
		}
		if strings.HasPrefix(line, "SSH-") {
			c.serverVersion = strings.TrimRight(line, "\r\n")
			break
		}
	}
	if c.serverVersion == "" {
		t.Fatal("no server version line")
	}
	p, err := c.readPacket()
	if err != nil {
		t.Fatalf("reading server KEXINIT: %v", err)
	}
	if p[0] != wire.MsgKexInit {
		t.Fatalf("server's first packet is %d, want KEXINIT", p[0])
	}
	c.serverKexInit = append([]byte(nil), p...)
	return c
}

// kexInit builds our KEXINIT offering exactly one suite plus the given
// pseudo-algorithms (ext-info-c, kex-strict-c-v00@openssh.com).
func kexInit(pseudo ...string) []byte {
	return kexInitWith("curve25519-sha256", "aes128-ctr", pseudo...)
}

// kexInitWith offers one key exchange method and one cipher (kex only
// completes for curve25519-sha256 with aes128-ctr or aes128-gcm).
func kexInitWith(kex, cipherName string, pseudo ...string) []byte {
	b := []byte{wire.MsgKexInit}
	cookie := make([]byte, 16)
	rand.Read(cookie)
	b = append(b, cookie...)
	b = wire.AppendNameList(b, append([]string{kex}, pseudo...))
	b = wire.AppendNameList(b, []string{"ssh-ed25519"})
	for range 2 {
		b = wire.AppendNameList(b, []string{cipherName})
	}
	for range 2 {
		b = wire.AppendNameList(b, []string{"hmac-sha2-256"})
	}
	for range 2 {
		b = wire.AppendNameList(b, []string{"none"})
	}
	b = wire.AppendNameList(b, nil)
	b = wire.AppendNameList(b, nil)
	b = wire.AppendBool(b, false)
	return wire.AppendUint32(b, 0)
}

// writePacket frames, encrypts and MACs payload with the current keys.
func (c *rawClient) writePacket(payload []byte) error {
	const block = 16
	if c.gcmOut != nil {
		padding := block - (1+len(payload))%block
		if padding < 4 {
			padding += block
		}
		plain := append([]byte{byte(padding)}, payload...)
		plain = append(plain, make([]byte, padding)...)
		pkt := binary.BigEndian.AppendUint32(nil, uint32(len(plain)))
		pkt = c.gcmOut.Seal(pkt, c.nonceOut, plain, pkt[:4])
		c.nextNonce()
		c.seqOut++
		_, err := c.nc.Write(pkt)
		return err
	}
	padding := block - (5+len(payload))%block
	if padding < 4 {
		padding += block
	}
	pkt := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+padding))
	pkt = append(pkt, byte(padding))
	pkt = append(pkt, payload...)
	pad := make([]byte, padding)
	rand.Read(pad)
	pkt = append(pkt, pad...)
	var mac []byte
	if c.macOut != nil {
		c.macOut.Reset()
		c.macOut.Write(binary.BigEndian.AppendUint32(nil, c.seqOut))
		c.macOut.Write(pkt)
		mac = c.macOut.Sum(nil)
		c.encOut.XORKeyStream(pkt, pkt)
	}
	c.seqOut++
	_, err := c.nc.Write(append(pkt, mac...))
	return err
}

func (c *rawClient) readPacket() ([]byte, error) {
	if c.gcmIn != nil {
		l := make([]byte, 4)
		if _, err := io.ReadFull(c.br, l); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(l)
		if n < 16 || n > rawMaxPacket {
			return nil, fmt.Errorf("bad packet length %d", n)
		}
		body := make([]byte, n+16)
		if _, err := io.ReadFull(c.br, body); err != nil {
			return nil, err
		}
		plain, err := c.gcmIn.Open(nil, c.nonceIn, body, l)
		if err != nil {
			return nil, err
		}
		n2 := binary.BigEndian.Uint64(c.nonceIn[4:])
		binary.BigEndian.PutUint64(c.nonceIn[4:], n2+1)
		c.seqIn++
		if int(plain[0])+1 > len(plain) {
			return nil, errors.New("bad padding length")
		}
		return plain[1 : len(plain)-int(plain[0])], nil
	}
	first := make([]byte, 16)
	if _, err := io.ReadFull(c.br, first); err != nil {
		return nil, err
	}
	if c.encIn != nil {
		c.encIn.XORKeyStream(first, first)
	}
	n := binary.BigEndian.Uint32(first)
	if n < 12 || n > rawMaxPacket {
		return nil, fmt.Errorf("bad packet length %d", n)
	}
	pkt := make([]byte, 4+n)
	copy(pkt, first)
	if _, err := io.ReadFull(c.br, pkt[16:]); err != nil {
		return nil, err
	}
	if c.encIn != nil {
		c.encIn.XORKeyStream(pkt[16:], pkt[16:])
		mac := make([]byte, c.macIn.Size())
		if _, err := io.ReadFull(c.br, mac); err != nil {
			return nil, err
		}
		c.macIn.Reset()
		c.macIn.Write(binary.BigEndian.AppendUint32(nil, c.seqIn))
		c.macIn.Write(pkt)
		if subtle.ConstantTimeCompare(mac, c.macIn.Sum(nil)) != 1 {
			return nil, fmt.Errorf("MAC mismatch on server packet %d", c.seqIn)
		}
	}
	c.seqIn++
	padding := int(pkt[4])
	if padding+1 > int(n) {
		return nil, errors.New("bad padding length")
	}
	return pkt[5 : 4+int(n)-padding], nil
}

// readDisconnect reads until the server's DISCONNECT (returning its
// reason) or the end of the connection (returning 0).
func (c *rawClient) readDisconnect() (reason uint32, seen []byte) {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		p, err := c.readPacket()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("server did not end the connection within %v", probeTimeout)
			}
			return 0, seen
		}
		if p[0] == wire.MsgDisconnect {
			r := wire.NewReader(p[1:])
			return r.Uint32(), seen
		}
		seen = append(seen, p[0])
	}
	c.t.Fatal("server kept talking")
	return 0, seen
}

// kex runs curve25519-sha256 (RFC 8731) after our KEXINIT was sent and
// installs aes128-ctr + hmac-sha2-256 keys. With resetSeq the sequence
// numbers restart at zero after NEWKEYS, as strict kex requires.
func (c *rawClient) kex(clientKexInit []byte, resetSeqOut, resetSeqIn bool) {
	c.t.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	qc := priv.PublicKey().Bytes()
	if err := c.writePacket(wire.AppendString([]byte{wire.MsgKexECDHInit}, qc)); err != nil {
		c.t.Fatal(err)
	}
	p, err := c.readPacket()
	if err != nil {
		c.t.Fatalf("reading ECDH reply: %v", err)
	}
	if p[0] != wire.MsgKexECDHReply {
		c.t.Fatalf("got %d, want KEX_ECDH_REPLY", p[0])
	}
	r := wire.NewReader(p[1:])
	hostKey, qs, _ := r.Bytes(), r.Bytes(), r.Bytes()
	if !r.Done() {
		c.t.Fatal("malformed KEX_ECDH_REPLY")
	}
	peer, err := ecdh.X25519().NewPublicKey(qs)
	if err != nil {
		c.t.Fatal(err)
	}
	secret, err := priv.ECDH(peer)
	if err != nil {
		c.t.Fatal(err)
	}
	k := wire.AppendMPIntBytes(nil, secret)
	h := sha256.New()
	for _, s := range [][]byte{[]byte(c.clientVersion), []byte(c.serverVersion), clientKexInit, c.serverKexInit, hostKey, qc, qs} {
		h.Write(wire.AppendString(nil, s))
	}
	h.Write(k)
	exchangeHash := h.Sum(nil)
	if p, err = c.readPacket(); err != nil || p[0] != wire.MsgNewKeys {
		c.t.Fatalf("want NEWKEYS, got %v %v", p, err)
	}
	if err := c.writePacket([]byte{wire.MsgNewKeys}); err != nil {
		c.t.Fatal(err)
	}
	// RFC 4253 §7.2: HASH(K || H || X || session_id); the first exchange's
	// H is the session id, and SHA-256 gives enough bytes for every key.
	derive := func(x byte) []byte {
		h := sha256.New()
		h.Write(k)
		h.Write(exchangeHash)
		h.Write([]byte{x})
		h.Write(exchangeHash)
		return h.Sum(nil)
	}
	stream := func(key, iv []byte) cipher.Stream {
		b, err := aes.NewCipher(key[:16])
		if err != nil {
			c.t.Fatal(err)
		}
		return cipher.NewCTR(b, iv[:16])
	}
	if c.cipherName == "aes128-gcm@openssh.com" {
		b, err := aes.NewCipher(derive('C')[:16])
		if err != nil {
			c.t.Fatal(err)
		}
		if c.gcmOut, err = cipher.NewGCM(b); err != nil {
			c.t.Fatal(err)
		}
		c.nonceOut = derive('A')[:12]
		if b, err = aes.NewCipher(derive('D')[:16]); err != nil {
			c.t.Fatal(err)
		}
		if c.gcmIn, err = cipher.NewGCM(b); err != nil {
			c.t.Fatal(err)
		}
		c.nonceIn = derive('B')[:12]
	} else {
		c.encOut = stream(derive('C'), derive('A'))
		c.macOut = hmac.New(sha256.New, derive('E'))
	}
	c.encIn = stream(derive('D'), derive('B'))
	c.macIn = hmac.New(sha256.New, derive('F'))
	if resetSeqOut {
		c.seqOut = 0
	}
	if resetSeqIn {
		c.seqIn = 0
	}
}

// nextNonce increments the invocation counter, the nonce's last 8 bytes
// (RFC 5647 §7.1).
func (c *rawClient) nextNonce() {
	n := binary.BigEndian.Uint64(c.nonceOut[4:])
	binary.BigEndian.PutUint64(c.nonceOut[4:], n+1)
}
