package kex

// Interop tests against real peers, through a minimal plaintext harness:
// version exchange, KEXINIT exchange and the unencrypted binary packet
// framing of RFC 4253 §6 (before the first NEWKEYS there is no cipher or
// MAC), then the method under test. They prove the exchange hash matches
// an independent implementation's: the peer signs its own H, and we verify
// that signature over ours (our client), or the peer verifies ours and
// only then sends NEWKEYS (our server).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
)

// maxPlainPacket bounds a harness packet: RFC 4253 §6.1's 35000 bytes.
const maxPlainPacket = 35000

// plainConn is the harness side of a connection before NEWKEYS.
type plainConn struct {
	c net.Conn
	r *bufio.Reader
}

func newPlainConn(c net.Conn) *plainConn { return &plainConn{c: c, r: bufio.NewReader(c)} }

func (p *plainConn) WritePacket(payload []byte) error {
	padLen := 8 - (5+len(payload))%8
	if padLen < 4 {
		padLen += 8
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+padLen))
	b = append(b, byte(padLen))
	b = append(b, payload...)
	b = append(b, make([]byte, padLen)...)
	_, err := p.c.Write(b)
	return err
}

func (p *plainConn) ReadPacket() ([]byte, error) {
	for range 16 { // skip a bounded number of IGNORE/DEBUG messages
		var l [4]byte
		if _, err := io.ReadFull(p.r, l[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(l[:])
		if n < 5 || n > maxPlainPacket {
			return nil, fmt.Errorf("harness: packet length %d", n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(p.r, data); err != nil {
			return nil, err
		}
		pad := int(data[0])
		if pad+1 >= int(n) {
			return nil, fmt.Errorf("harness: padding %d in packet of %d", pad, n)
		}
		payload := data[1 : int(n)-pad]
		if payload[0] == wire.MsgIgnore || payload[0] == wire.MsgDebug {
			continue
		}
		return payload, nil
	}
	return nil, errors.New("harness: too many IGNORE/DEBUG messages")
}

// exchangeVersions sends ours and returns the peer's version line without
// CR LF (RFC 4253 §4.2), skipping the lines a server may send first.
func (p *plainConn) exchangeVersions(ours string) (string, error) {
	if _, err := io.WriteString(p.c, ours+"\r\n"); err != nil {
		return "", err
	}
	for range 10 {
		line, err := p.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "SSH-") {
			return line, nil
		}
	}
	return "", errors.New("harness: no version line")
}

// harnessKexInit builds a KEXINIT offering only the method under test and
// suites every peer supports.
func harnessKexInit(kex string) []byte {
	b := []byte{wire.MsgKexInit}
	cookie := make([]byte, 16)
	rand.Read(cookie)
	b = append(b, cookie...)
	for _, l := range [][]string{
		{kex}, {"ssh-ed25519"},
		{"aes128-ctr"}, {"aes128-ctr"},
		{"hmac-sha2-256"}, {"hmac-sha2-256"},
		{"none"}, {"none"},
		nil, nil,
	} {
		b = wire.AppendNameList(b, l)
	}
	b = wire.AppendBool(b, false)
	return wire.AppendUint32(b, 0)
}

// harness runs version and KEXINIT exchange on c and returns the magics.
func harness(c net.Conn, kex string, server bool) (*plainConn, *Magics, error) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	p := newPlainConn(c)
	const ours = "SSH-2.0-ferry_kextest"
	peer, err := p.exchangeVersions(ours)
	if err != nil {
		return nil, nil, err
	}
	init := harnessKexInit(kex)
	if err := p.WritePacket(init); err != nil {
		return nil, nil, err
	}
	peerInit, err := p.ReadPacket()
	if err != nil {
		return nil, nil, err
	}
	if peerInit[0] != wire.MsgKexInit {
		return nil, nil, fmt.Errorf("harness: peer sent %d, want KEXINIT", peerInit[0])
	}
	peerInit = slices.Clone(peerInit)
	if server {
		return p, &Magics{ClientVersion: []byte(peer), ServerVersion: []byte(ours), ClientKexInit: peerInit, ServerKexInit: init}, nil
	}
	return p, &Magics{ClientVersion: []byte(ours), ServerVersion: []byte(peer), ClientKexInit: init, ServerKexInit: peerInit}, nil
}

// serveOnce accepts one connection and runs our Server on it, then
// expects the peer's NEWKEYS: a peer sends it only after verifying the
// host key signature over its own H.
func serveOnce(ln net.Listener, name string, hk HostKey) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	p, magics, err := harness(c, name, true)
	if err != nil {
		return err
	}
	m, _ := New(name, nil)
	if _, err := m.Server(p, magics, hk, rand.Reader); err != nil {
		return fmt.Errorf("our server: %w", err)
	}
	if err := p.WritePacket([]byte{wire.MsgNewKeys}); err != nil {
		return err
	}
	msg, err := p.ReadPacket()
	if err != nil {
		return fmt.Errorf("waiting for the peer's NEWKEYS: %w", err)
	}
	if msg[0] != wire.MsgNewKeys {
		return fmt.Errorf("peer sent message %d, want NEWKEYS", msg[0])
	}
	return nil
}

func xcryptoSigner(t *testing.T, hk testHostKey) ssh.Signer {
	s, err := ssh.NewSignerFromKey(hk.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// xcryptoKex are the methods golang.org/x/crypto/ssh implements.
var xcryptoKex = []string{
	"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
	"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
	"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256",
	"diffie-hellman-group16-sha512",
	"diffie-hellman-group-exchange-sha1", "diffie-hellman-group-exchange-sha256",
}

// TestInteropXCryptoServer: our Client against x/crypto/ssh's server.
func TestInteropXCryptoServer(t *testing.T) {
	hk := newTestHostKey()
	for _, name := range xcryptoKex {
		t.Run(name, func(t *testing.T) {
			cc, sc := tcpPair(t)
			cfg := &ssh.ServerConfig{NoClientAuth: true}
			cfg.KeyExchanges = []string{name}
			cfg.AddHostKey(xcryptoSigner(t, hk))
			done := make(chan struct{})
			go func() {
				defer close(done)
				ssh.NewServerConn(sc, cfg) // fails once we stop after NEWKEYS
			}()
			defer func() { cc.Close(); sc.Close(); <-done }()

			p, magics, err := harness(cc, name, false)
			if err != nil {
				t.Fatal(err)
			}
			res, err := mustMethod(t, name, nil).Client(p, magics, rand.Reader)
			if err != nil {
				t.Fatalf("our client: %v", err)
			}
			pub, err := ssh.ParsePublicKey(res.HostKeyBlob)
			if err != nil {
				t.Fatal(err)
			}
			r := wire.NewReader(res.Signature)
			sig := &ssh.Signature{Format: r.String(), Blob: r.Bytes()}
			if !r.Done() {
				t.Fatalf("malformed signature blob")
			}
			if err := pub.Verify(res.H, sig); err != nil {
				t.Fatalf("x/crypto server's signature does not verify over our H: %v", err)
			}
		})
	}
}

// TestInteropXCryptoClient: x/crypto/ssh's client against our Server.
func TestInteropXCryptoClient(t *testing.T) {
	hk := newTestHostKey()
	for _, name := range xcryptoKex {
		t.Run(name, func(t *testing.T) {
			ln := listen(t)
			errc := make(chan error, 1)
			go func() { errc <- serveOnce(ln, name, hk) }()
			var seen ssh.PublicKey
			cfg := &ssh.ClientConfig{
				User:              "test",
				HostKeyAlgorithms: []string{"ssh-ed25519"},
				HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
					seen = k
					return nil
				},
				Timeout: 30 * time.Second,
			}
			cfg.KeyExchanges = []string{name}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			done := make(chan struct{})
			go func() {
				defer close(done)
				ssh.NewClientConn(c, ln.Addr().String(), cfg)
			}()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			c.Close()
			<-done
			if seen == nil || !bytes.Equal(seen.Marshal(), hk.PublicKeyBlob()) {
				t.Fatal("x/crypto client did not accept our host key")
			}
		})
	}
}

// TestInteropOpenSSHClient: OpenSSH's ssh against our Server, for every
// method both implement. ssh sends NEWKEYS only after verifying our
// signature over its H (kex_verify_host_key, then kex_send_newkeys).
func TestInteropOpenSSHClient(t *testing.T) {
	sshPath := testenv.NeedTool(t, "ssh")
	out, err := exec.Command(sshPath, "-Q", "kex").Output()
	if err != nil {
		t.Fatal(err)
	}
	supported := strings.Fields(string(out))
	hk := newTestHostKey()
	ran := 0
	for _, name := range Names() {
		if !slices.Contains(supported, name) {
			t.Logf("%s: not supported by this ssh", name)
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			ln := listen(t)
			errc := make(chan error, 1)
			go func() { errc <- serveOnce(ln, name, hk) }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			port := ln.Addr().(*net.TCPAddr).Port
			cmd := exec.CommandContext(ctx, sshPath, "-F", "/dev/null", "-vvv",
				"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-o", "KexAlgorithms="+name, "-o", "HostKeyAlgorithms=ssh-ed25519",
				"-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256", "-o", "UpdateHostKeys=no",
				"-p", fmt.Sprint(port), "test@127.0.0.1", "true")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			serr := <-errc
			cmd.Wait()
			if serr != nil {
				t.Fatalf("%v\nssh output:\n%s", serr, tail(stderr.String(), 40))
			}
		})
	}
	if ran == 0 {
		t.Skip("ssh supports none of our methods")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln := listen(t)
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	client.SetDeadline(time.Now().Add(30 * time.Second))
	r.c.SetDeadline(time.Now().Add(30 * time.Second))
	return client, r.c
}
