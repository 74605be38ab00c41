package connection

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// payloadCase is one request payload type: a sample value, its encoding
// and its parser.
type payloadCase struct {
	name  string
	value any
	bytes []byte
	parse func([]byte) (any, error)
}

func wrap[T any](f func([]byte) (*T, error)) func([]byte) (any, error) {
	return func(b []byte) (any, error) {
		v, err := f(b)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
}

func payloadCases() []payloadCase {
	pty := &PtyRequest{Term: "xterm-256color", Columns: 80, Rows: 24, WidthPx: 640, HeightPx: 480,
		Modes: []TerminalMode{{Opcode: 1, Value: 3}, {Opcode: 53, Value: 1}, {Opcode: 128, Value: 38400}, {Opcode: 129, Value: 38400}}}
	return []payloadCase{
		{"pty-req", pty, pty.Marshal(), wrap(ParsePtyRequest)},
		{"x11-req", &X11Request{SingleConnection: true, AuthProtocol: "MIT-MAGIC-COOKIE-1", AuthCookie: "0123abcd", ScreenNumber: 2}, nil, wrap(ParseX11Request)},
		{"env", &EnvRequest{Name: "LANG", Value: "en_US.UTF-8"}, nil, wrap(ParseEnvRequest)},
		{"exec", &ExecRequest{Command: "scp -t /tmp"}, nil, wrap(ParseExecRequest)},
		{"subsystem", &SubsystemRequest{Name: "sftp"}, nil, wrap(ParseSubsystemRequest)},
		{"window-change", &WindowChange{Columns: 132, Rows: 50, WidthPx: 1, HeightPx: 2}, nil, wrap(ParseWindowChange)},
		{"signal", &Signal{Name: "TERM"}, nil, wrap(ParseSignal)},
		{"exit-status", &ExitStatus{Status: 127}, nil, wrap(ParseExitStatus)},
		{"exit-signal", &ExitSignal{Signal: "KILL", CoreDumped: true, ErrorMessage: "killed", LanguageTag: "en"}, nil, wrap(ParseExitSignal)},
		{"break", &Break{LengthMillis: 500}, nil, wrap(ParseBreak)},
		{"direct-tcpip", &DirectTCPIP{HostToConnect: "db.internal", PortToConnect: 5432, OriginatorAddr: "10.0.0.1", OriginatorPort: 40000}, nil, wrap(ParseDirectTCPIP)},
		{"forwarded-tcpip", &ForwardedTCPIP{ConnectedAddr: "0.0.0.0", ConnectedPort: 8080, OriginatorAddr: "::1", OriginatorPort: 1}, nil, wrap(ParseForwardedTCPIP)},
		{"tcpip-forward", &TCPIPForward{AddressToBind: "localhost", PortToBind: 0}, nil, wrap(ParseTCPIPForward)},
		{"tcpip-forward reply", &TCPIPForwardReply{PortBound: 40001}, nil, wrap(ParseTCPIPForwardReply)},
		{"streamlocal-forward", &StreamlocalForward{SocketPath: "/tmp/s.sock"}, nil, wrap(ParseStreamlocalForward)},
		{"direct-streamlocal", &DirectStreamlocal{SocketPath: "/run/app.sock", Reserved: "", ReservedPort: 0}, nil, wrap(ParseDirectStreamlocal)},
		{"forwarded-streamlocal", &ForwardedStreamlocal{SocketPath: "/run/app.sock", Reserved: "x"}, nil, wrap(ParseForwardedStreamlocal)},
	}
}

type marshaler interface{ Marshal() []byte }

func TestRequestPayloadRoundTrip(t *testing.T) {
	for _, tc := range payloadCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.value.(marshaler).Marshal()
			if tc.bytes != nil && !bytes.Equal(b, tc.bytes) {
				t.Fatalf("Marshal = % x, want % x", b, tc.bytes)
			}
			got, err := tc.parse(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.value) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.value)
			}
			for i := 0; i < len(b); i++ {
				if _, err := tc.parse(b[:i]); !errors.Is(err, ErrMalformedRequest) {
					t.Errorf("truncated to %d of %d bytes: err %v", i, len(b), err)
				}
			}
			if _, err := tc.parse(append(b, 0)); !errors.Is(err, ErrMalformedRequest) {
				t.Errorf("trailing byte: err %v", err)
			}
		})
	}
}

func TestPtyRequestWireFormat(t *testing.T) {
	// RFC 4254 §6.2 and §8: string TERM, 4 × uint32, string modes.
	want := []byte{
		0, 0, 0, 5, 'x', 't', 'e', 'r', 'm',
		0, 0, 0, 80, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 11,
		1, 0, 0, 0, 3, // VINTR = 3
		128, 0, 0, 0x96, 0, // TTY_OP_ISPEED = 38400
		0, // TTY_OP_END
	}
	p := &PtyRequest{Term: "xterm", Columns: 80, Rows: 24, Modes: []TerminalMode{{1, 3}, {128, 38400}}}
	if got := p.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal = % x\nwant      % x", got, want)
	}
}

func TestParseTerminalModes(t *testing.T) {
	cases := []struct {
		name    string
		in      []byte
		want    []TerminalMode
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"end only", []byte{0}, nil, false},
		{"one", []byte{1, 0, 0, 0, 3, 0}, []TerminalMode{{1, 3}}, false},
		{"no end", []byte{1, 0, 0, 0, 3}, []TerminalMode{{1, 3}}, false},
		{"ignored after end", []byte{1, 0, 0, 0, 3, 0, 0xff, 0xff}, []TerminalMode{{1, 3}}, false},
		{"stops at 160", []byte{2, 0, 0, 0, 4, 160, 1, 2}, []TerminalMode{{2, 4}}, false},
		{"truncated argument", []byte{1, 0, 0, 3}, nil, true},
		{"too many", bytes.Repeat([]byte{1, 0, 0, 0, 3}, maxTerminalModes+1), nil, true},
		{"max", bytes.Repeat([]byte{1, 0, 0, 0, 3}, maxTerminalModes), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTerminalModes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// A pty-req whose modes are malformed is rejected as a whole.
	bad := (&PtyRequest{Term: "x"}).Marshal()
	bad = append(bad[:len(bad)-5], 0, 0, 0, 2, 1, 0)
	if _, err := ParsePtyRequest(bad); !errors.Is(err, ErrMalformedRequest) {
		t.Fatalf("pty-req with truncated mode: %v", err)
	}
}

func TestParseEmpty(t *testing.T) {
	if err := ParseEmpty(RequestEOW, nil); err != nil {
		t.Fatal(err)
	}
	if err := ParseEmpty(RequestShell, []byte{0}); !errors.Is(err, ErrMalformedRequest) {
		t.Fatalf("payload on shell: %v", err)
	}
}
