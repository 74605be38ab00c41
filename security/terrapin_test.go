package security

import (
	"slices"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

const (
	strictKexClient = "kex-strict-c-v00@openssh.com" // OpenSSH PROTOCOL §1.10
	extInfoClient   = "ext-info-c"                   // RFC 8308 §2.1
)

func ignoreMsg() []byte { return wire.AppendStringS([]byte{wire.MsgIgnore}, "terrapin") }

// TestTerrapinInjection: CVE-2023-48795 shifts sequence numbers by
// injecting a message the server ignores during the plaintext initial key
// exchange. With strict kex offered, an IGNORE before our KEXINIT or
// between KEXINIT and NEWKEYS must end the connection before the server
// answers the key exchange; without strict kex RFC 4253 allows it, which
// the control case checks (so the probe is known to reach the check).
func TestTerrapinInjection(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	for _, tc := range []struct {
		name          string
		strict        bool
		beforeKexInit bool
	}{
		{"ignore-before-kexinit", true, true},
		{"ignore-after-kexinit", true, false},
		{"control-no-strict/ignore-before-kexinit", false, true},
		{"control-no-strict/ignore-after-kexinit", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.addr)
			pseudo := []string{extInfoClient}
			if tc.strict {
				pseudo = append(pseudo, strictKexClient)
			}
			ki := kexInit(pseudo...)
			if tc.beforeKexInit {
				c.writePacket(ignoreMsg())
			}
			c.writePacket(ki)
			if !tc.beforeKexInit {
				c.writePacket(ignoreMsg())
			}
			if tc.strict {
				c.writePacket(wire.AppendString([]byte{wire.MsgKexECDHInit}, make([]byte, 32)))
				reason, seen := c.readDisconnect()
				if reason != wire.DisconnectProtocolError {
					t.Fatalf("DISCONNECT reason %d, want %d (PROTOCOL_ERROR)", reason, wire.DisconnectProtocolError)
				}
				if slices.Contains(seen, wire.MsgKexECDHReply) {
					t.Fatal("server answered the key exchange after an injected packet")
				}
				return
			}
			c.kex(ki, false, false)
			if err := c.writePacket(serviceRequest("ssh-userauth")); err != nil {
				t.Fatal(err)
			}
			for {
				p, err := c.readPacket()
				if err != nil {
					t.Fatalf("control: %v", err)
				}
				if p[0] == wire.MsgServiceAccept {
					break
				}
			}
		})
	}
	s.assertServing("alice", alicePassword)
}

// TestStrictKexSequenceReset checks the other half of the Terrapin fix:
// under strict kex both sides reset their sequence numbers after NEWKEYS,
// so a client that does not reset (or resets without strict kex) fails
// MAC verification; and EXT_INFO is the server's first packet after
// NEWKEYS (RFC 8308 §2.4), so its loss cannot go unnoticed.
func TestStrictKexSequenceReset(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	for _, tc := range []struct {
		name              string
		strict, extInfo   bool
		clientResets      bool
		wantServiceAccept bool
	}{
		{"strict/reset", true, true, true, true},
		{"strict/no-reset", true, true, false, false},
		{"no-strict/no-reset", false, true, false, true},
		{"no-strict/reset", false, true, true, false},
		{"strict/no-ext-info", true, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.addr)
			var pseudo []string
			if tc.extInfo {
				pseudo = append(pseudo, extInfoClient)
			}
			if tc.strict {
				pseudo = append(pseudo, strictKexClient)
			}
			ki := kexInit(pseudo...)
			c.writePacket(ki)
			c.kex(ki, tc.clientResets, tc.strict)
			if tc.extInfo {
				p, err := c.readPacket()
				if err != nil {
					t.Fatalf("first packet after NEWKEYS: %v", err)
				}
				if p[0] != wire.MsgExtInfo {
					t.Fatalf("first packet after NEWKEYS is %d, want EXT_INFO", p[0])
				}
				r := wire.NewReader(p[1:])
				n := r.Uint32()
				var names []string
				for i := uint32(0); i < n && r.Ok(); i++ {
					names = append(names, r.String())
					r.Bytes()
				}
				if !r.Done() || !slices.Contains(names, "server-sig-algs") {
					t.Fatalf("EXT_INFO %q (well-formed %v), want server-sig-algs", names, r.Done())
				}
			}
			if err := c.writePacket(serviceRequest("ssh-userauth")); err != nil {
				t.Fatal(err)
			}
			if tc.wantServiceAccept {
				p, err := c.readPacket()
				if err != nil || p[0] != wire.MsgServiceAccept {
					t.Fatalf("want SERVICE_ACCEPT, got %v %v", p, err)
				}
				return
			}
			reason, seen := c.readDisconnect()
			if slices.Contains(seen, wire.MsgServiceAccept) {
				t.Fatal("server accepted a packet with the wrong sequence number")
			}
			if reason != wire.DisconnectMACError {
				t.Fatalf("DISCONNECT reason %d, want %d (MAC_ERROR)", reason, wire.DisconnectMACError)
			}
		})
	}
}
