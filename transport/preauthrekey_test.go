package transport_test

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// TestNoRekeyBeforeAuth: a rekey limit reached during authentication
// (rekey_limit's interval shorter than a person typing a password or OTP)
// must not start a key exchange before USERAUTH_SUCCESS, as OpenSSH's
// ssh_packet_need_rekeying never does. OpenSSH's client refuses a KEXINIT
// during authentication ("bad message during authentication: type 20"),
// and with zlib@openssh.com the USERAUTH_SUCCESS queued behind our
// unanswered KEXINIT, and the rest of that exchange, went out under the
// compression SetAuthenticated turns on, which our own client could not
// read either.
func TestNoRekeyBeforeAuth(t *testing.T) {
	for _, comp := range []string{"zlib@openssh.com", "none"} {
		t.Run(comp, func(t *testing.T) {
			scfg := allAlgorithmsConfig()
			scfg.RekeyInterval = 50 * time.Millisecond
			clientKex := newKexCounter()
			client, server := pipePair(t, scfg, &transport.ClientConfig{Compressions: []string{comp}, Logger: slog.New(clientKex)})
			time.Sleep(100 * time.Millisecond) // the "user" types past the rekey interval

			request := append([]byte{wire.MsgUserAuthRequest}, "password"...)
			if err := client.WritePacket(request); err != nil {
				t.Fatal(err)
			}
			p, err := server.ReadPacket()
			if err != nil || !bytes.Equal(p, request) {
				t.Fatalf("server read %q, %v", p, err)
			}
			// As package server does: USERAUTH_SUCCESS buffered, then
			// SetAuthenticated, then a flush.
			if err := server.WritePacketMore([]byte{wire.MsgUserAuthSuccess}); err != nil {
				t.Fatal(err)
			}
			server.SetAuthenticated()
			if err := server.Flush(); err != nil {
				t.Fatal(err)
			}
			go func() { // the server's read loop, which runs any exchange
				for {
					if _, err := server.ReadPacket(); err != nil {
						return
					}
				}
			}()
			client.SetDeadline(time.Now().Add(10 * time.Second))
			if p, err := client.ReadPacket(); err != nil || !bytes.Equal(p, []byte{wire.MsgUserAuthSuccess}) {
				t.Fatalf("client read %q, %v; want USERAUTH_SUCCESS", p, err)
			}
			if n := clientKex.n.Load(); n != 1 {
				t.Fatalf("the client went through %d key exchanges before USERAUTH_SUCCESS, want 1 (OpenSSH's client fails on a KEXINIT during authentication)", n)
			}
			// After authentication the overdue rekey runs, and data
			// still flows both ways through it.
			// The data write waits for that exchange, which completes
			// while the client reads.
			data := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 5}, "hello"...)
			werr := make(chan error, 1)
			go func() { werr <- server.WritePacket(data) }()
			if p, err := client.ReadPacket(); err != nil || !bytes.Equal(p, data) {
				t.Fatalf("client read %q, %v after authentication", p, err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSetDeadlineKeepsKexTimeout: clearing the connection's deadline while
// a key exchange we started is waiting for the peer's KEXINIT must not
// lift the exchange's own timeout. Package server clears the login
// deadline right after USERAUTH_SUCCESS, the packet with which an overdue
// rekey_limit interval now starts an exchange; a client that never
// answered it held the connection, and every data writer on it, forever.
func TestSetDeadlineKeepsKexTimeout(t *testing.T) {
	scfg := allAlgorithmsConfig()
	scfg.RekeyInterval = 50 * time.Millisecond
	scfg.KexTimeout = 300 * time.Millisecond
	client, server := pipePair(t, scfg, &transport.ClientConfig{})
	_ = client // never reads: it does not answer the server's KEXINIT
	time.Sleep(100 * time.Millisecond)
	if err := server.WritePacket([]byte{wire.MsgUserAuthSuccess}); err != nil {
		t.Fatal(err)
	}
	server.SetDeadline(time.Now().Add(time.Hour))
	server.SetDeadline(time.Time{})
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, err := server.ReadPacket(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	select {
	case err := <-readErr:
		t.Logf("server ended the stalled exchange: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server still waits for the client's KEXINIT 10 s into a 300 ms key exchange timeout")
	}
}
