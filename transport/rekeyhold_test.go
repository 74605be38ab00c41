package transport

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// TestPeerDataDuringRekey: channel data a peer sends after its own
// KEXINIT of a re-exchange (AsyncSSH 2.10 does; OpenSSH dispatches such
// messages as usual) reaches ReadPacket, in order, once the exchange is
// over, instead of ending the connection with "unexpected message 94
// during key exchange".
func TestPeerDataDuringRekey(t *testing.T) {
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvc := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srvc <- nil
			return
		}
		c, err := Server(nc, &Config{HostKeys: []keys.Signer{hk}})
		if err != nil {
			t.Errorf("server handshake: %v", err)
		}
		srvc <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, err := Client(nc, &ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	server := <-srvc
	if server == nil {
		t.FailNow()
	}
	defer client.Close()
	defer server.Close()
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)

	if err := server.WritePacket([]byte{wire.MsgUserAuthSuccess}); err != nil {
		t.Fatal(err)
	}
	if p, err := client.ReadPacket(); err != nil || p[0] != wire.MsgUserAuthSuccess {
		t.Fatalf("client read %x, %v", p, err)
	}

	data1 := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 3}, "one"...)
	data2 := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 3}, "two"...)
	// The client starts a re-exchange and, as AsyncSSH does, sends data
	// after its KEXINIT, past the gate that holds our own writers back.
	client.wmu.Lock()
	err = client.startRekeyLocked()
	for _, d := range [][]byte{data1, data2} {
		if err == nil {
			err = client.writeLocked(d, nil)
		}
	}
	if err == nil {
		err = client.flushLocked()
	}
	client.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// The client's reader runs its side of the exchange.
	go func() {
		for {
			if _, err := client.ReadPacket(); err != nil {
				return
			}
		}
	}()
	for i, want := range [][]byte{data1, data2} {
		p, err := server.ReadPacket()
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("server read #%d: %q, %v; want %q", i, p, err, want)
		}
	}
	if n := server.kexCount; n != 2 {
		t.Errorf("server went through %d key exchanges, want 2", n)
	}
	// And data after the exchange still flows.
	data3 := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 5}, "three"...)
	if err := client.WritePacket(data3); err != nil {
		t.Fatal(err)
	}
	if p, err := server.ReadPacket(); err != nil || !bytes.Equal(p, data3) {
		t.Fatalf("server read %q, %v after the exchange", p, err)
	}
}
