package transport_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// kexInitPayload builds a client KEXINIT for the default server.
func kexInitPayload(strict bool) []byte {
	kex := []string{"curve25519-sha256"}
	if strict {
		kex = append(kex, "kex-strict-c-v00@openssh.com")
	}
	b := append([]byte{wire.MsgKexInit}, make([]byte, 16)...)
	for _, l := range [][]string{kex, {"ssh-ed25519"}, {"aes128-ctr"}, {"aes128-ctr"},
		{"hmac-sha2-256"}, {"hmac-sha2-256"}, {"none"}, {"none"}, nil, nil} {
		b = wire.AppendNameList(b, l)
	}
	return wire.AppendUint32(wire.AppendBool(b, false), 0)
}

// TestStrictKexRejectsPacketBeforeKexInit: Terrapin (CVE-2023-48795)
// relies on the peer accepting messages it did not expect in the initial
// key exchange. With strict kex an IGNORE before KEXINIT is fatal; without
// it, RFC 4253 allows it.
func TestStrictKexRejectsPacketBeforeKexInit(t *testing.T) {
	for _, strict := range []bool{true, false} {
		t.Run(map[bool]string{true: "strict", false: "not strict"}[strict], func(t *testing.T) {
			addr, results := startServer(t, allAlgorithmsConfig())
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write([]byte("SSH-2.0-probe\r\n"))
			nc.Write(plainPacket(wire.AppendStringS([]byte{wire.MsgIgnore}, "injected")))
			nc.Write(plainPacket(kexInitPayload(strict)))
			if strict {
				r := waitResult(t, results)
				if r.err == nil || !strings.Contains(r.err.Error(), "KEXINIT was not the first packet") {
					t.Fatalf("server error = %v", r.err)
				}
				return
			}
			// Without strict kex the server goes on and waits for our
			// ECDH init: nothing arrives in the results.
			select {
			case r := <-results:
				t.Fatalf("server ended the connection: %v", r.err)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

// TestStalledRekeyBoundsMemory: a peer that sends KEXINIT and then stalls
// must not make the server buffer application data (CVE-2025-22869):
// bulk writers block, control replies queue up to a bound, then the
// connection ends.
func TestStalledRekeyBoundsMemory(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := allAlgorithmsConfig()
	srvc := make(chan *transport.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c, err := transport.Server(nc, cfg)
		if err != nil {
			return
		}
		srvc <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, err := transport.Client(nc, &transport.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-srvc
	defer server.Close()
	authenticated(t, client, server)

	// The server's read loop, as the connection layer runs it.
	go func() {
		for {
			if _, err := server.ReadPacket(); err != nil {
				return
			}
		}
	}()
	// The client starts a key exchange as raw KEXINIT and never goes on.
	if err := client.WritePacket(kexInitPayload(false)); err != nil {
		t.Fatal(err)
	}
	// Swallow what the server sends (its KEXINIT) without answering.
	go io.Copy(io.Discard, nc)
	time.Sleep(200 * time.Millisecond)

	dataErr := make(chan error, 1)
	go func() {
		dataErr <- server.WritePacket(append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 4}, "data"...))
	}()
	select {
	case err := <-dataErr:
		t.Fatalf("data write during a stalled kex returned %v; want it to block", err)
	case <-time.After(300 * time.Millisecond):
	}
	// Control replies queue up to the bound, then the server gives up.
	reply := append([]byte{wire.MsgChannelWindowAdjust}, make([]byte, 1024)...)
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		werr = server.WritePacket(reply)
	}
	var d *transport.DisconnectError
	if !errors.As(werr, &d) || !strings.Contains(d.Message, "did not complete key exchange") {
		t.Fatalf("control writes: %v; want a bounded queue error", werr)
	}
	select {
	case err := <-dataErr:
		if err == nil {
			t.Fatal("blocked data write succeeded after the connection failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked data writer not released when the connection failed")
	}
}
