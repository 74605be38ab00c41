package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// FuzzParseMessages feeds arbitrary bytes to every auth message parser.
// Whatever parses must marshal to bytes that parse to the same value.
func FuzzParseMessages(f *testing.F) {
	for _, tc := range messageCases() {
		f.Add(tc.wire)
	}
	f.Add([]byte{60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{61, 0x7f, 0xff, 0xff, 0xff})
	fresh := []func() message{
		func() message { return new(serviceRequestMsg) },
		func() message { return new(serviceAcceptMsg) },
		func() message { return new(userAuthRequestMsg) },
		func() message { return new(passwordRequest) },
		func() message { return new(publicKeyRequest) },
		func() message { return &publicKeyRequest{Hostbound: true} },
		func() message { return new(keyboardInteractiveRequest) },
		func() message { return new(userAuthFailureMsg) },
		func() message { return new(userAuthSuccessMsg) },
		func() message { return new(userAuthBannerMsg) },
		func() message { return new(userAuthPKOKMsg) },
		func() message { return new(passwdChangeReqMsg) },
		func() message { return new(infoRequestMsg) },
		func() message { return new(infoResponseMsg) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range fresh {
			m := newMsg()
			if !m.unmarshal(data) {
				continue
			}
			again := newMsg()
			if !again.unmarshal(m.marshal()) {
				t.Fatalf("%T: re-marshalled message does not parse", m)
			}
			if !reflect.DeepEqual(m, again) {
				t.Fatalf("%T: round trip changed %+v to %+v", m, m, again)
			}
		}
		parseNonePayload(data)
	})
}

// scriptConn is a Conn that replays a fixed list of client packets and
// records what the server sends, for fuzzing without goroutines.
type scriptConn struct {
	in      [][]byte
	out     [][]byte
	hostKey keys.PublicKey
}

func (c *scriptConn) ReadPacket() ([]byte, error) {
	if len(c.in) == 0 {
		return nil, io.EOF
	}
	p := c.in[0]
	c.in = c.in[1:]
	return p, nil
}

func (c *scriptConn) WritePacket(p []byte) error {
	c.out = append(c.out, bytes.Clone(p))
	return nil
}

func (c *scriptConn) SessionID() []byte       { return testSessionID }
func (c *scriptConn) HostKey() keys.PublicKey { return c.hostKey }

// splitPackets turns fuzz input into packets: uint16 length, then bytes.
func splitPackets(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func joinPackets(ps ...[]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

// fuzzKeys are fixed so seeds can carry valid signatures.
func fuzzKeys(tb testing.TB) (user, host *testSigner) {
	u := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	h := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	return newSigner(tb, u), newSigner(tb, h)
}

// FuzzUserAuthRequest runs the whole state machine on arbitrary client
// packet sequences: no panic, bounded replies, and success only with the
// real credentials.
func FuzzUserAuthRequest(f *testing.F) {
	user, host := fuzzKeys(f)
	svc := serviceRequest("ssh-userauth")
	f.Add(joinPackets(svc, noneRequest("alice"), passwordRequestMsg("alice", "wrong"), passwordRequestMsg("alice", "correct horse")))
	f.Add(joinPackets(svc, pkQuery("alice", "ssh-ed25519", user.PublicKey().Marshal()),
		pkSigned(f, user, testSessionID, "alice", "alice", "ssh-ed25519")))
	f.Add(joinPackets(svc, kiRequest("alice"), infoResponse("123456")))
	f.Add(joinPackets(svc, kiRequest("alice"), passwordRequestMsg("alice", "x"), kiRequest("alice"), infoResponse("1", "2")))
	f.Add(joinPackets(svc, []byte{wire.MsgChannelOpen}, []byte{wire.MsgUserAuthSuccess}))
	f.Add(joinPackets(svc, userAuthRequest("alice", "ssh-connection", "password", boolean(true), str("a"), str("b"))))
	f.Add(joinPackets(svc, userAuthRequest("alice", "ssh-connection", methodPublicKeyHostbound, boolean(false),
		str("ssh-ed25519"), blob(user.PublicKey().Marshal()), blob(host.PublicKey().Marshal()))))
	f.Fuzz(func(t *testing.T, data []byte) {
		packets := splitPackets(data)
		fa := newFake()
		fa.users["alice"].keys[string(user.PublicKey().Marshal())] = &Permissions{}
		fa.ki = func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
			a, err := ch.Challenge("", "", []Prompt{{"Code: ", true}})
			if err != nil {
				return nil, err
			}
			if meta.User() == "alice" && a[0] == "123456" {
				return &Permissions{}, nil
			}
			return nil, ErrDenied
		}
		cfg := testConfig(fa)
		if len(data) > 0 && data[0]&1 == 1 {
			cfg.AuthenticationMethods = [][]string{{"publickey", "password"}, {"keyboard-interactive"}}
		}
		conn := &scriptConn{in: packets, hostKey: host.PublicKey()}
		res, err := Run(context.Background(), conn, Peer{RemoteAddr: testRemote()}, cfg)
		// One reply per packet at most, plus the banner-free start;
		// INFO_REQUEST and FAILURE never both answer one packet.
		if len(conn.out) > len(packets)+1 {
			t.Fatalf("%d replies to %d packets", len(conn.out), len(packets))
		}
		if err != nil {
			var de *wire.DisconnectError
			if !errors.As(err, &de) && !errors.Is(err, io.EOF) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if res != nil {
				t.Fatal("result with error")
			}
			return
		}
		if last := conn.out[len(conn.out)-1]; !bytes.Equal(last, []byte{wire.MsgUserAuthSuccess}) {
			t.Fatalf("success without USERAUTH_SUCCESS last: %x", last)
		}
		if res.User != "alice" {
			t.Fatalf("authenticated as %q", res.User)
		}
		if res.PublicKey != nil && !keys.Equal(res.PublicKey, user.PublicKey()) {
			t.Fatal("authenticated with a key nobody allowed")
		}
	})
}
