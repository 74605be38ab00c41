package transport

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// authenticatedPair connects a client and a server over 127.0.0.1, runs
// the first exchange and USERAUTH_SUCCESS, and leaves both with a 10 s
// deadline.
func authenticatedPair(t *testing.T) (client, server *Conn) {
	t.Helper()
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
	client, err = Client(nc, &ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	server = <-srvc
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)

	if err := server.WritePacket([]byte{wire.MsgUserAuthSuccess}); err != nil {
		t.Fatal(err)
	}
	if p, err := client.ReadPacket(); err != nil || p[0] != wire.MsgUserAuthSuccess {
		t.Fatalf("client read %x, %v", p, err)
	}
	return client, server
}

// startRekeyWithData has the client send KEXINIT and then msgs, as
// AsyncSSH does, past the gate that holds our own writers back.
func startRekeyWithData(t *testing.T, client *Conn, msgs ...[]byte) {
	t.Helper()
	client.wmu.Lock()
	err := client.startRekeyLocked()
	for _, d := range msgs {
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
}

// TestPeerDataDuringRekey: channel data a peer sends after its own
// KEXINIT of a re-exchange (AsyncSSH 2.10 does; OpenSSH dispatches such
// messages as usual) reaches ReadPacket, in order, once the exchange is
// over, instead of ending the connection with "unexpected message 94
// during key exchange".
func TestPeerDataDuringRekey(t *testing.T) {
	client, server := authenticatedPair(t)
	data1 := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 3}, "one"...)
	data2 := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 3}, "two"...)
	startRekeyWithData(t, client, data1, data2)
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

// TestPeerDataDuringRekeyWithinCredit: with SetChannelCredit, what is held
// during a re-exchange is bounded by the channel data the peer may still
// send, not by 16 MiB: data within the credit is held and delivered,
// the byte past it ends the connection with a PROTOCOL_ERROR (the peer
// overran a window, RFC 4254 §5.2), before the exchange completes.
func TestPeerDataDuringRekeyWithinCredit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		credit uint64
		ok     bool
	}{
		{"within", 6, true},
		{"past", 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := authenticatedPair(t)
			server.SetChannelCredit(func() uint64 { return tc.credit })
			data1 := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 3}, "one"...)
			// EXTENDED_DATA counts too.
			data2 := append([]byte{wire.MsgChannelExtendedData, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3}, "two"...)
			// Requests and adjusts are not channel data.
			adjust := []byte{wire.MsgChannelWindowAdjust, 0, 0, 0, 0, 0, 1, 0, 0}
			startRekeyWithData(t, client, data1, adjust, data2)
			go func() {
				for {
					if _, err := client.ReadPacket(); err != nil {
						return
					}
				}
			}()
			var got [][]byte
			var err error
			for range 3 {
				var p []byte
				if p, err = server.ReadPacket(); err != nil {
					break
				}
				got = append(got, bytes.Clone(p))
			}
			if tc.ok {
				if err != nil || len(got) != 3 || !bytes.Equal(got[2], data2) {
					t.Fatalf("server read %q, %v; want the three held messages", got, err)
				}
				return
			}
			var de *wire.DisconnectError
			if !errors.As(err, &de) || de.Reason != wire.DisconnectProtocolError || !strings.Contains(de.Message, "exceeds the windows") {
				t.Fatalf("server read %q, %v; want a PROTOCOL_ERROR for data past the credit", got, err)
			}
			if len(got) != 0 {
				t.Errorf("server delivered %q of an exchange it ended", got)
			}
		})
	}
}
