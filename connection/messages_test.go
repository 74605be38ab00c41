package connection

import (
	"reflect"
	"testing"
)

// message is implemented by every RFC 4254 message struct.
type message interface {
	appendTo(b []byte) []byte
	unmarshal(p []byte) bool
}

// messageCases lists one value of each message with the length of its
// fixed part: a message whose last field is "rest of the packet" parses any
// extension of that part, every other one must be exact.
var messageCases = []struct {
	name   string
	msg    message
	empty  func() message
	fixed  int  // bytes before the rest-of-packet field
	isRest bool // last field is the rest of the packet
}{
	{"globalRequest", &globalRequestMsg{RequestName: "tcpip-forward", WantReply: true, Data: []byte{0, 0, 0, 1, 'x', 0, 0, 0, 80}},
		func() message { return new(globalRequestMsg) }, 1 + 4 + 13 + 1, true},
	{"requestSuccess", &requestSuccessMsg{Data: []byte{0, 0, 0x9c, 0x40}},
		func() message { return new(requestSuccessMsg) }, 1, true},
	{"requestFailure", &requestFailureMsg{}, func() message { return new(requestFailureMsg) }, 1, false},
	{"channelOpen", &channelOpenMsg{ChannelType: "direct-tcpip", SenderChannel: 3, InitialWindowSize: 1 << 21, MaximumPacketSize: 32768, TypeSpecificData: []byte{1, 2, 3}},
		func() message { return new(channelOpenMsg) }, 1 + 4 + 12 + 12, true},
	{"channelOpenConfirm", &channelOpenConfirmMsg{RecipientChannel: 3, SenderChannel: 4, InitialWindowSize: 5, MaximumPacketSize: 6, TypeSpecificData: []byte{7}},
		func() message { return new(channelOpenConfirmMsg) }, 17, true},
	{"channelOpenFailure", &channelOpenFailureMsg{RecipientChannel: 3, ReasonCode: 2, Description: "connect failed", LanguageTag: "en"},
		func() message { return new(channelOpenFailureMsg) }, 0, false},
	{"windowAdjust", &windowAdjustMsg{RecipientChannel: 9, BytesToAdd: 1 << 20}, func() message { return new(windowAdjustMsg) }, 0, false},
	{"channelData", &channelDataMsg{RecipientChannel: 9, Data: []byte("hello")}, func() message { return new(channelDataMsg) }, 0, false},
	{"extendedData", &extendedDataMsg{RecipientChannel: 9, DataTypeCode: 1, Data: []byte("oops")}, func() message { return new(extendedDataMsg) }, 0, false},
	{"channelEOF", &channelEOFMsg{RecipientChannel: 1}, func() message { return new(channelEOFMsg) }, 0, false},
	{"channelClose", &channelCloseMsg{RecipientChannel: 2}, func() message { return new(channelCloseMsg) }, 0, false},
	{"channelRequest", &channelRequestMsg{RecipientChannel: 2, RequestType: "exec", WantReply: true, Data: []byte{0, 0, 0, 2, 'l', 's'}},
		func() message { return new(channelRequestMsg) }, 1 + 4 + 8 + 1, true},
	{"channelSuccess", &channelSuccessMsg{RecipientChannel: 5}, func() message { return new(channelSuccessMsg) }, 0, false},
	{"channelFailure", &channelFailureMsg{RecipientChannel: 6}, func() message { return new(channelFailureMsg) }, 0, false},
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.msg.appendTo(nil)
			got := tc.empty()
			if !got.unmarshal(b) {
				t.Fatalf("unmarshal(% x) failed", b)
			}
			if !reflect.DeepEqual(normalize(got), normalize(tc.msg)) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.msg)
			}
			// Wrong message number.
			bad := append([]byte(nil), b...)
			bad[0]++
			if tc.empty().unmarshal(bad) {
				t.Errorf("accepted message number %d", bad[0])
			}
			// Truncations: always rejected before the rest field.
			limit := len(b)
			if tc.isRest {
				limit = tc.fixed
			}
			for i := 0; i < limit; i++ {
				if tc.empty().unmarshal(b[:i]) {
					t.Errorf("accepted %d of %d bytes", i, len(b))
				}
			}
			// Trailing bytes: rejected unless the last field takes the rest.
			if tc.empty().unmarshal(append(b, 0)) != tc.isRest {
				t.Errorf("trailing byte: accepted=%v, want %v", !tc.isRest, tc.isRest)
			}
		})
	}
}

// normalize maps nil and empty byte slices to one value for DeepEqual.
func normalize(m message) message {
	v := reflect.ValueOf(m).Elem()
	out := reflect.New(v.Type())
	out.Elem().Set(v)
	for i := 0; i < v.NumField(); i++ {
		f := out.Elem().Field(i)
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return out.Interface().(message)
}
