package transport

import (
	"bytes"
	"reflect"
	"testing"
)

type message interface {
	marshal() []byte
	unmarshal([]byte) bool
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		in, out message
	}{
		{&kexInitMsg{Cookie: [16]byte{1, 2, 3}, KexAlgos: []string{"curve25519-sha256", "ext-info-c"},
			ServerHostKeyAlgos: []string{"ssh-ed25519"}, CiphersClientServer: []string{"aes128-ctr"},
			CiphersServerClient: []string{"aes256-ctr"}, MACsClientServer: []string{"hmac-sha2-256"},
			MACsServerClient: []string{"hmac-sha2-512"}, CompressionClientServer: []string{"none"},
			CompressionServerClient: []string{"none", "zlib@openssh.com"}, FirstKexFollows: true, Reserved: 7}, &kexInitMsg{}},
		{&disconnectMsg{Reason: 2, Message: "bye", Language: "en"}, &disconnectMsg{}},
		{&ignoreMsg{Data: []byte("pad")}, &ignoreMsg{}},
		{&debugMsg{AlwaysDisplay: true, Message: "hi"}, &debugMsg{}},
		{&unimplementedMsg{SeqNum: 42}, &unimplementedMsg{}},
		{&newKeysMsg{}, &newKeysMsg{}},
		{&extInfoMsg{Names: []string{"server-sig-algs"}, Values: [][]byte{[]byte("ssh-ed25519")}}, &extInfoMsg{}},
		{&pingMsg{Data: []byte("x")}, &pingMsg{}},
		{&pongMsg{Data: []byte("x")}, &pongMsg{}},
	}
	for _, tt := range tests {
		b := tt.in.marshal()
		if !tt.out.unmarshal(b) {
			t.Errorf("%T: unmarshal failed", tt.in)
			continue
		}
		if !bytes.Equal(tt.out.marshal(), b) {
			t.Errorf("%T: re-marshal differs", tt.in)
		}
		// Strictness: trailing bytes and truncation are rejected.
		if tt.out.unmarshal(append(bytes.Clone(b), 0)) {
			t.Errorf("%T: accepted trailing byte", tt.in)
		}
		if len(b) > 1 && tt.out.unmarshal(b[:len(b)-1]) {
			t.Errorf("%T: accepted truncated message", tt.in)
		}
		// Wrong type byte.
		bad := bytes.Clone(b)
		bad[0]++
		if tt.out.unmarshal(bad) {
			t.Errorf("%T: accepted wrong message type", tt.in)
		}
	}
	var k kexInitMsg
	k.unmarshal(tests[0].in.marshal())
	if !reflect.DeepEqual(&k, tests[0].in) {
		t.Errorf("kexInit round trip = %+v", k)
	}
}

func TestExtInfoBounded(t *testing.T) {
	m := extInfoMsg{}
	for i := 0; i <= maxExtensions; i++ {
		m.Names = append(m.Names, "x")
		m.Values = append(m.Values, nil)
	}
	var out extInfoMsg
	if out.unmarshal(m.marshal()) {
		t.Error("EXT_INFO with too many extensions accepted")
	}
}
