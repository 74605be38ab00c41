package auth

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

type message interface {
	marshal() []byte
	unmarshal([]byte) bool
}

// messageCase is one message value, a fresh value of its type to parse
// into, and its exact wire bytes built by hand.
type messageCase struct {
	name  string
	msg   message
	fresh func() message
	wire  []byte
	typed bool // starts with a message number
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func messageCases() []messageCase {
	u32 := func(v uint32) []byte { return wire.AppendUint32(nil, v) }
	return []messageCase{
		{"serviceRequest", &serviceRequestMsg{Service: "ssh-userauth"}, func() message { return new(serviceRequestMsg) },
			cat([]byte{5}, str("ssh-userauth")), true},
		{"serviceAccept", &serviceAcceptMsg{Service: "ssh-userauth"}, func() message { return new(serviceAcceptMsg) },
			cat([]byte{6}, str("ssh-userauth")), true},
		{"userAuthRequest none", &userAuthRequestMsg{User: []byte("alice"), Service: "ssh-connection", Method: "none", Payload: []byte{}},
			func() message { return new(userAuthRequestMsg) },
			cat([]byte{50}, str("alice"), str("ssh-connection"), str("none")), true},
		{"userAuthRequest password", &userAuthRequestMsg{User: []byte("bob"), Service: "ssh-connection", Method: "password",
			Payload: (&passwordRequest{Password: []byte("pw")}).marshal()},
			func() message { return new(userAuthRequestMsg) },
			cat([]byte{50}, str("bob"), str("ssh-connection"), str("password"), []byte{0}, str("pw")), true},
		{"passwordRequest", &passwordRequest{Password: []byte("secret")}, func() message { return new(passwordRequest) },
			cat([]byte{0}, str("secret")), false},
		{"passwordRequest change", &passwordRequest{Change: true, Password: []byte("old"), NewPassword: []byte("new")},
			func() message { return new(passwordRequest) },
			cat([]byte{1}, str("old"), str("new")), false},
		{"publicKeyRequest query", &publicKeyRequest{Algorithm: "ssh-ed25519", PubKey: []byte("KEY")},
			func() message { return new(publicKeyRequest) },
			cat([]byte{0}, str("ssh-ed25519"), str("KEY")), false},
		{"publicKeyRequest signed", &publicKeyRequest{HasSig: true, Algorithm: "rsa-sha2-256", PubKey: []byte("KEY"), Signature: []byte("SIG")},
			func() message { return new(publicKeyRequest) },
			cat([]byte{1}, str("rsa-sha2-256"), str("KEY"), str("SIG")), false},
		{"publicKeyRequest hostbound", &publicKeyRequest{Hostbound: true, HasSig: true, Algorithm: "ssh-ed25519",
			PubKey: []byte("KEY"), HostKey: []byte("HOST"), Signature: []byte("SIG")},
			func() message { return &publicKeyRequest{Hostbound: true} },
			cat([]byte{1}, str("ssh-ed25519"), str("KEY"), str("HOST"), str("SIG")), false},
		{"publicKeyRequest hostbound query", &publicKeyRequest{Hostbound: true, Algorithm: "ssh-ed25519",
			PubKey: []byte("KEY"), HostKey: []byte("HOST")},
			func() message { return &publicKeyRequest{Hostbound: true} },
			cat([]byte{0}, str("ssh-ed25519"), str("KEY"), str("HOST")), false},
		{"keyboardInteractiveRequest", &keyboardInteractiveRequest{Language: "", Submethods: "pam"},
			func() message { return new(keyboardInteractiveRequest) },
			cat(str(""), str("pam")), false},
		{"userAuthFailure", &userAuthFailureMsg{Methods: []string{"publickey", "password"}, PartialSuccess: true},
			func() message { return new(userAuthFailureMsg) },
			cat([]byte{51}, str("publickey,password"), []byte{1}), true},
		{"userAuthFailure empty", &userAuthFailureMsg{},
			func() message { return new(userAuthFailureMsg) },
			cat([]byte{51}, str(""), []byte{0}), true},
		{"userAuthSuccess", &userAuthSuccessMsg{}, func() message { return new(userAuthSuccessMsg) }, []byte{52}, true},
		{"userAuthBanner", &userAuthBannerMsg{Message: "hello\r\n", Language: "en"},
			func() message { return new(userAuthBannerMsg) },
			cat([]byte{53}, str("hello\r\n"), str("en")), true},
		{"userAuthPKOK", &userAuthPKOKMsg{Algorithm: "ssh-ed25519", PubKey: []byte("KEY")},
			func() message { return new(userAuthPKOKMsg) },
			cat([]byte{60}, str("ssh-ed25519"), str("KEY")), true},
		{"passwdChangeReq", &passwdChangeReqMsg{Prompt: "expired", Language: ""},
			func() message { return new(passwdChangeReqMsg) },
			cat([]byte{60}, str("expired"), str("")), true},
		{"infoRequest", &infoRequestMsg{Name: "n", Instruction: "i", Prompts: []Prompt{{"Password: ", false}, {"Code: ", true}}},
			func() message { return new(infoRequestMsg) },
			cat([]byte{60}, str("n"), str("i"), str(""), u32(2), str("Password: "), []byte{0}, str("Code: "), []byte{1}), true},
		{"infoRequest no prompts", &infoRequestMsg{Prompts: []Prompt{}},
			func() message { return new(infoRequestMsg) },
			cat([]byte{60}, str(""), str(""), str(""), u32(0)), true},
		{"infoResponse", &infoResponseMsg{Responses: [][]byte{[]byte("a"), []byte("")}},
			func() message { return new(infoResponseMsg) },
			cat([]byte{61}, u32(2), str("a"), str("")), true},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range messageCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.msg.marshal()
			if !bytes.Equal(got, tc.wire) {
				t.Fatalf("marshal = %x, want %x", got, tc.wire)
			}
			m := tc.fresh()
			if !m.unmarshal(tc.wire) {
				t.Fatal("unmarshal failed")
			}
			if !reflect.DeepEqual(m, tc.msg) {
				t.Fatalf("unmarshal = %+v, want %+v", m, tc.msg)
			}
			if again := m.marshal(); !bytes.Equal(again, tc.wire) {
				t.Fatalf("re-marshal = %x", again)
			}
		})
	}
}

// TestMessageStrict: trailing bytes, every truncation and a wrong message
// number are all rejected.
func TestMessageStrict(t *testing.T) {
	for _, tc := range messageCases() {
		t.Run(tc.name, func(t *testing.T) {
			// userAuthRequestMsg keeps the tail as the method payload;
			// its strictness is the payload parser's.
			if _, ok := tc.msg.(*userAuthRequestMsg); !ok {
				if tc.fresh().unmarshal(append(bytes.Clone(tc.wire), 0)) {
					t.Error("accepted a trailing byte")
				}
			}
			for n := range len(tc.wire) {
				if _, ok := tc.msg.(*userAuthRequestMsg); ok && n >= len(tc.wire)-len(tc.msg.(*userAuthRequestMsg).Payload) {
					continue
				}
				if tc.fresh().unmarshal(tc.wire[:n]) {
					t.Errorf("accepted truncation to %d bytes", n)
				}
			}
			if tc.typed {
				w := bytes.Clone(tc.wire)
				w[0] ^= 0x80
				if tc.fresh().unmarshal(w) {
					t.Error("accepted a wrong message number")
				}
			}
		})
	}
}

func TestMessageBounds(t *testing.T) {
	u32 := func(v uint32) []byte { return wire.AppendUint32(nil, v) }
	tooMany := cat([]byte{61}, u32(MaxPrompts+1))
	for range MaxPrompts + 1 {
		tooMany = append(tooMany, str("")...)
	}
	if new(infoResponseMsg).unmarshal(tooMany) {
		t.Error("infoResponse with more than MaxPrompts responses accepted")
	}
	// A huge count with no data must fail without allocating for it.
	if new(infoResponseMsg).unmarshal(cat([]byte{61}, u32(0xffffffff))) {
		t.Error("infoResponse with huge count accepted")
	}
	if new(infoRequestMsg).unmarshal(cat([]byte{60}, str(""), str(""), str(""), u32(0xffffffff))) {
		t.Error("infoRequest with huge count accepted")
	}
	big := make([]byte, MaxResponseLen+1)
	if new(infoResponseMsg).unmarshal(cat([]byte{61}, u32(1), blob(big))) {
		t.Error("oversized response accepted")
	}
	if !new(infoResponseMsg).unmarshal(cat([]byte{61}, u32(1), blob(big[:MaxResponseLen]))) {
		t.Error("response of MaxResponseLen refused")
	}
	// Name-lists are validated by wire: empty names are malformed.
	if new(userAuthFailureMsg).unmarshal(cat([]byte{51}, str("publickey,,password"), []byte{0})) {
		t.Error("malformed name-list accepted")
	}
}
