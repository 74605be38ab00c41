package kex

import (
	"bytes"
	"math/big"
	"testing"
)

// message is implemented by every kex message struct.
type message interface {
	marshal() []byte
	unmarshal([]byte) bool
}

// messageKinds returns a fresh zero value of every message type, for
// parsers that must be tried on arbitrary input.
func messageKinds() []func() message {
	return []func() message{
		func() message { return new(kexECDHInitMsg) },
		func() message { return new(kexECDHReplyMsg) },
		func() message { return new(kexHybridInitMsg) },
		func() message { return new(kexHybridReplyMsg) },
		func() message { return new(kexDHInitMsg) },
		func() message { return new(kexDHReplyMsg) },
		func() message { return new(kexDHGexRequestMsg) },
		func() message { return new(kexDHGexRequestOldMsg) },
		func() message { return new(kexDHGexGroupMsg) },
		func() message { return new(kexDHGexInitMsg) },
		func() message { return new(kexDHGexReplyMsg) },
	}
}

func bigHex(s string) *big.Int {
	v, _ := new(big.Int).SetString(s, 16)
	return v
}

// sampleMessages has one filled-in value of every message and its exact
// encoding.
var sampleMessages = []struct {
	name  string
	msg   message
	wire  string
	fresh func() message
}{
	{"ECDHInit", &kexECDHInitMsg{ClientPubKey: []byte{1, 2, 3}}, "1e" + "00000003010203", func() message { return new(kexECDHInitMsg) }},
	{"ECDHReply", &kexECDHReplyMsg{HostKey: []byte("k"), EphemeralKey: []byte{9, 9}, Signature: []byte("s")},
		"1f" + "000000016b" + "000000020909" + "0000000173", func() message { return new(kexECDHReplyMsg) }},
	{"HybridInit", &kexHybridInitMsg{ClientInit: []byte{0xaa}}, "1e" + "00000001aa", func() message { return new(kexHybridInitMsg) }},
	{"HybridReply", &kexHybridReplyMsg{HostKey: []byte("k"), ServerReply: []byte{}, Signature: []byte("s")},
		"1f" + "000000016b" + "00000000" + "0000000173", func() message { return new(kexHybridReplyMsg) }},
	{"DHInit", &kexDHInitMsg{X: bigHex("80")}, "1e" + "000000020080", func() message { return new(kexDHInitMsg) }},
	{"DHReply", &kexDHReplyMsg{HostKey: []byte("k"), Y: bigHex("7f"), Signature: []byte("s")},
		"1f" + "000000016b" + "000000017f" + "0000000173", func() message { return new(kexDHReplyMsg) }},
	{"GexRequest", &kexDHGexRequestMsg{MinBits: 2048, PreferredBits: 3072, MaxBits: 8192},
		"22" + "00000800" + "00000c00" + "00002000", func() message { return new(kexDHGexRequestMsg) }},
	{"GexRequestOld", &kexDHGexRequestOldMsg{PreferredBits: 4096}, "1e" + "00001000", func() message { return new(kexDHGexRequestOldMsg) }},
	{"GexGroup", &kexDHGexGroupMsg{P: bigHex("ff17"), G: big.NewInt(2)}, "1f" + "0000000300ff17" + "0000000102", func() message { return new(kexDHGexGroupMsg) }},
	{"GexInit", &kexDHGexInitMsg{X: bigHex("0102")}, "20" + "000000020102", func() message { return new(kexDHGexInitMsg) }},
	{"GexReply", &kexDHGexReplyMsg{HostKey: []byte("k"), Y: bigHex("ab"), Signature: []byte("s")},
		"21" + "000000016b" + "0000000200ab" + "0000000173", func() message { return new(kexDHGexReplyMsg) }},
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range sampleMessages {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.msg.marshal()
			if want := unhex(t, tc.wire); !bytes.Equal(got, want) {
				t.Fatalf("marshal = %x, want %x", got, want)
			}
			back := tc.fresh()
			if !back.unmarshal(got) {
				t.Fatal("unmarshal of marshal output failed")
			}
			if !bytes.Equal(back.marshal(), got) {
				t.Fatalf("round trip changed the message: %x", back.marshal())
			}
		})
	}
}

// TestMessageStrict: trailing bytes, truncation at every length, and a
// wrong message number are all rejected.
func TestMessageStrict(t *testing.T) {
	for _, tc := range sampleMessages {
		t.Run(tc.name, func(t *testing.T) {
			good := unhex(t, tc.wire)
			fresh := tc.fresh
			if fresh().unmarshal(append(good[:len(good):len(good)], 0)) {
				t.Error("accepted a trailing byte")
			}
			for n := range len(good) {
				if fresh().unmarshal(good[:n]) {
					t.Errorf("accepted truncation to %d bytes", n)
				}
			}
			for typ := range 256 {
				if byte(typ) == good[0] {
					continue
				}
				bad := append([]byte{byte(typ)}, good[1:]...)
				if fresh().unmarshal(bad) {
					t.Errorf("accepted message number %d", typ)
				}
			}
		})
	}
}

// TestMessageMPIntStrict: DH public values must be minimal, non-negative
// mpints (RFC 4251 §5).
func TestMessageMPIntStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		wire string
	}{
		{"negative", "1e" + "0000000180"},
		{"non-minimal zero pad", "1e" + "000000020001"},
		{"non-minimal zero", "1e" + "0000000100"},
		{"length beyond data", "1e" + "00000005aabb"},
	} {
		var m kexDHInitMsg
		if m.unmarshal(unhex(t, tc.wire)) {
			t.Errorf("%s: accepted %s", tc.name, tc.wire)
		}
	}
}
