package transport_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// pipePair connects our client and our server over loopback TCP.
func pipePair(t testing.TB, scfg *transport.Config, ccfg *transport.ClientConfig) (client, server *transport.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *transport.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		c, err := transport.Server(nc, scfg)
		ch <- res{c, err}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, cerr := transport.Client(nc, ccfg)
	r := <-ch
	if cerr != nil || r.err != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// exchange sends n messages each way concurrently and checks them.
func exchange(t *testing.T, a, b *transport.Conn, n, size int) {
	t.Helper()
	msgs := make([][]byte, n)
	for i := range msgs {
		m := make([]byte, 1+size)
		m[0] = wire.MsgChannelData // bulk data: blocks (never queues) during a rekey
		rand.Read(m[1:])
		msgs[i] = m
	}
	send := func(c *transport.Conn) chan error {
		done := make(chan error, 1)
		go func() {
			for _, m := range msgs {
				if err := c.WritePacket(m); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		return done
	}
	recv := func(c *transport.Conn) error {
		for i, m := range msgs {
			p, err := c.ReadPacket()
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			if !bytes.Equal(p, m) {
				return fmt.Errorf("message %d differs", i)
			}
		}
		return nil
	}
	// Each side keeps reading after its messages arrived, as a real
	// connection's read loop does: a rekey that either side starts
	// completes only while the other side reads.
	recvThenDrain := func(c *transport.Conn) chan error {
		done := make(chan error, 1)
		go func() {
			err := recv(c)
			done <- err
			for err == nil {
				_, err = c.ReadPacket()
			}
		}()
		return done
	}
	da, db := send(a), send(b)
	ra, rb := recvThenDrain(a), recvThenDrain(b)
	for _, ch := range []chan error{ra, rb, da, db} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

// authenticated marks both ends as past user authentication, so that
// connection-protocol numbers are allowed.
func authenticated(t testing.TB, client, server *transport.Conn) {
	t.Helper()
	if err := server.WritePacket([]byte{wire.MsgUserAuthSuccess}); err != nil {
		t.Fatal(err)
	}
	p, err := client.ReadPacket()
	if err != nil || p[0] != wire.MsgUserAuthSuccess {
		t.Fatalf("client read %v, %v", p, err)
	}
}

func TestSelfInteropEveryAlgorithm(t *testing.T) {
	scfg := allAlgorithmsConfig()
	type tc struct {
		kind transport.AlgorithmKind
		name string
	}
	var cases []tc
	for _, k := range []transport.AlgorithmKind{transport.KindKex, transport.KindHostKey, transport.KindCipher, transport.KindMAC, transport.KindCompression} {
		names, _ := transport.SupportedAlgorithms(k)
		for _, n := range names {
			cases = append(cases, tc{k, n})
		}
	}
	for _, c := range cases {
		t.Run(string(c.kind)+"="+c.name, func(t *testing.T) {
			ccfg := &transport.ClientConfig{}
			switch c.kind {
			case transport.KindKex:
				ccfg.KeyExchanges = []string{c.name}
			case transport.KindHostKey:
				ccfg.HostKeyAlgorithms = []string{c.name}
			case transport.KindCipher:
				ccfg.Ciphers = []string{c.name}
			case transport.KindMAC:
				ccfg.Ciphers = []string{"aes128-ctr"}
				ccfg.MACs = []string{c.name}
			case transport.KindCompression:
				ccfg.Compressions = []string{c.name}
			}
			client, server := pipePair(t, scfg, ccfg)
			authenticated(t, client, server)
			exchange(t, client, server, 20, 40000)
			a := server.Algorithms()
			got := map[transport.AlgorithmKind]string{transport.KindKex: a.Kex, transport.KindHostKey: a.HostKey,
				transport.KindCipher: a.CipherIn, transport.KindMAC: a.MACIn, transport.KindCompression: a.CompressionIn}[c.kind]
			if got != c.name {
				t.Fatalf("negotiated %q, want %q", got, c.name)
			}
			if !server.StrictKex() || !client.StrictKex() {
				t.Error("strict kex not negotiated between our own ends")
			}
			if !bytes.Equal(server.SessionID(), client.SessionID()) || len(server.SessionID()) == 0 {
				t.Error("session ids differ")
			}
		})
	}
}

func TestRekeyUnderLoad(t *testing.T) {
	for _, cipher := range []string{"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "3des-cbc"} {
		t.Run(cipher, func(t *testing.T) {
			scfg := allAlgorithmsConfig()
			scfg.RekeyBytes = 256 << 10 // the server rekeys every 256 KiB
			client, server := pipePair(t, scfg, &transport.ClientConfig{Ciphers: []string{cipher}, Compressions: []string{"zlib@openssh.com"}})
			sid := bytes.Clone(server.SessionID())
			authenticated(t, client, server)
			exchange(t, client, server, 200, 30000) // ~6 MB each way: many rekeys
			if !bytes.Equal(server.SessionID(), sid) {
				t.Error("session id changed across rekeys")
			}
		})
	}
}
