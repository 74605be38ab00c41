package connection

import (
	"errors"
	"fmt"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Channel types, RFC 4254 §6.1, §6.3.2, §7.2 and OpenSSH PROTOCOL §2.4-2.5.
const (
	ChannelTypeSession              = "session"
	ChannelTypeX11                  = "x11"
	ChannelTypeDirectTCPIP          = "direct-tcpip"
	ChannelTypeForwardedTCPIP       = "forwarded-tcpip"
	ChannelTypeDirectStreamlocal    = "direct-streamlocal@openssh.com"
	ChannelTypeForwardedStreamlocal = "forwarded-streamlocal@openssh.com"
	ChannelTypeAuthAgent            = "auth-agent@openssh.com"
)

// Channel request types, RFC 4254 §6, RFC 4335 and OpenSSH PROTOCOL §2.1.
const (
	RequestPtyReq        = "pty-req"
	RequestX11Req        = "x11-req"
	RequestEnv           = "env"
	RequestShell         = "shell"
	RequestExec          = "exec"
	RequestSubsystem     = "subsystem"
	RequestWindowChange  = "window-change"
	RequestXonXoff       = "xon-xoff"
	RequestSignal        = "signal"
	RequestExitStatus    = "exit-status"
	RequestExitSignal    = "exit-signal"
	RequestBreak         = "break"
	RequestEOW           = "eow@openssh.com"
	RequestAuthAgent     = "auth-agent-req@openssh.com"
	RequestKeepaliveChan = "keepalive@openssh.com"
)

// Global request types, RFC 4254 §7 and OpenSSH PROTOCOL §2.2-2.5.
const (
	GlobalTCPIPForward             = "tcpip-forward"
	GlobalCancelTCPIPForward       = "cancel-tcpip-forward"
	GlobalStreamlocalForward       = "streamlocal-forward@openssh.com"
	GlobalCancelStreamlocalForward = "cancel-streamlocal-forward@openssh.com"
	GlobalKeepalive                = "keepalive@openssh.com"
	GlobalNoMoreSessions           = "no-more-sessions@openssh.com"
	GlobalHostKeys                 = "hostkeys-00@openssh.com"
	GlobalHostKeysProve            = "hostkeys-prove-00@openssh.com"
)

// ErrMalformedRequest is returned (wrapped) by every Parse function for a
// payload that is short, has trailing bytes or breaks a field rule.
var ErrMalformedRequest = errors.New("connection: malformed request payload")

func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformedRequest, what)
}

// Terminal mode opcodes, RFC 4254 §8.
const (
	// TTYOpEnd ends the encoded terminal modes.
	TTYOpEnd = 0
	// ttyOpFirstUndefined: "Opcodes 160 to 255 are not yet defined, and cause
	// parsing to stop" (RFC 4254 §8).
	ttyOpFirstUndefined = 160
)

// maxTerminalModes bounds the decoded modes of one pty-req. RFC 4254 §8
// and OpenSSH's ttymodes.h define about 60 opcodes, each sent once, and the
// opcode space below 160 has 159 values; anything longer repeats opcodes
// for no reason but to make us allocate.
const maxTerminalModes = 159

// TerminalMode is one encoded terminal mode: opcode 1-159 and its uint32
// argument (RFC 4254 §8; 128/129 are TTY_OP_ISPEED/OSPEED).
type TerminalMode struct {
	Opcode uint8
	Value  uint32
}

// PtyRequest is the "pty-req" payload, RFC 4254 §6.2.
type PtyRequest struct {
	Term     string // TERM environment variable value, e.g. "xterm-256color"
	Columns  uint32 // terminal width, characters
	Rows     uint32 // terminal height, rows
	WidthPx  uint32
	HeightPx uint32
	// Modes are the decoded encoded terminal modes in the order sent, up to
	// TTY_OP_END or the first opcode ≥ 160.
	Modes []TerminalMode
}

// Marshal encodes the payload; Modes are followed by TTY_OP_END.
func (p *PtyRequest) Marshal() []byte {
	b := wire.AppendStringS(nil, p.Term)
	b = wire.AppendUint32(b, p.Columns)
	b = wire.AppendUint32(b, p.Rows)
	b = wire.AppendUint32(b, p.WidthPx)
	b = wire.AppendUint32(b, p.HeightPx)
	b = wire.AppendString(b, encodeTerminalModes(p.Modes))
	return b
}

func encodeTerminalModes(modes []TerminalMode) []byte {
	b := make([]byte, 0, len(modes)*5+1)
	for _, m := range modes {
		b = append(b, m.Opcode)
		b = wire.AppendUint32(b, m.Value)
	}
	return append(b, TTYOpEnd)
}

// ParsePtyRequest decodes a "pty-req" payload.
func ParsePtyRequest(b []byte) (*PtyRequest, error) {
	r := wire.NewReader(b)
	p := &PtyRequest{
		Term:     r.String(),
		Columns:  r.Uint32(),
		Rows:     r.Uint32(),
		WidthPx:  r.Uint32(),
		HeightPx: r.Uint32(),
	}
	modes := r.Bytes()
	if !r.Done() {
		return nil, malformed("pty-req")
	}
	var err error
	if p.Modes, err = ParseTerminalModes(modes); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseTerminalModes decodes the "encoded terminal modes" string of RFC 4254
// §8. Decoding stops at TTY_OP_END or at an opcode ≥ 160, whose argument
// format is undefined; bytes after the stop are ignored as the RFC asks. A
// mode cut short, or more than maxTerminalModes modes, is an error.
func ParseTerminalModes(b []byte) ([]TerminalMode, error) {
	var modes []TerminalMode
	for len(b) > 0 {
		op := b[0]
		if op == TTYOpEnd || op >= ttyOpFirstUndefined {
			break
		}
		if len(b) < 5 {
			return nil, malformed("terminal mode truncated")
		}
		if len(modes) == maxTerminalModes {
			return nil, malformed("too many terminal modes")
		}
		modes = append(modes, TerminalMode{Opcode: op, Value: uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4])})
		b = b[5:]
	}
	return modes, nil
}

// X11Request is the "x11-req" payload, RFC 4254 §6.3.1.
type X11Request struct {
	SingleConnection bool
	AuthProtocol     string
	AuthCookie       string
	ScreenNumber     uint32
}

// Marshal encodes the payload.
func (p *X11Request) Marshal() []byte {
	b := wire.AppendBool(nil, p.SingleConnection)
	b = wire.AppendStringS(b, p.AuthProtocol)
	b = wire.AppendStringS(b, p.AuthCookie)
	return wire.AppendUint32(b, p.ScreenNumber)
}

// ParseX11Request decodes an "x11-req" payload.
func ParseX11Request(b []byte) (*X11Request, error) {
	r := wire.NewReader(b)
	p := &X11Request{SingleConnection: r.Bool(), AuthProtocol: r.String(), AuthCookie: r.String(), ScreenNumber: r.Uint32()}
	if !r.Done() {
		return nil, malformed("x11-req")
	}
	return p, nil
}

// EnvRequest is the "env" payload, RFC 4254 §6.4.
type EnvRequest struct {
	Name  string
	Value string
}

// Marshal encodes the payload.
func (p *EnvRequest) Marshal() []byte {
	return wire.AppendStringS(wire.AppendStringS(nil, p.Name), p.Value)
}

// ParseEnvRequest decodes an "env" payload.
func ParseEnvRequest(b []byte) (*EnvRequest, error) {
	r := wire.NewReader(b)
	p := &EnvRequest{Name: r.String(), Value: r.String()}
	if !r.Done() {
		return nil, malformed("env")
	}
	return p, nil
}

// ExecRequest is the "exec" payload, RFC 4254 §6.5.
type ExecRequest struct {
	Command string
}

// Marshal encodes the payload.
func (p *ExecRequest) Marshal() []byte { return wire.AppendStringS(nil, p.Command) }

// ParseExecRequest decodes an "exec" payload.
func ParseExecRequest(b []byte) (*ExecRequest, error) {
	s, err := parseOneString(b, "exec")
	if err != nil {
		return nil, err
	}
	return &ExecRequest{Command: s}, nil
}

// SubsystemRequest is the "subsystem" payload, RFC 4254 §6.5.
type SubsystemRequest struct {
	Name string
}

// Marshal encodes the payload.
func (p *SubsystemRequest) Marshal() []byte { return wire.AppendStringS(nil, p.Name) }

// ParseSubsystemRequest decodes a "subsystem" payload.
func ParseSubsystemRequest(b []byte) (*SubsystemRequest, error) {
	s, err := parseOneString(b, "subsystem")
	if err != nil {
		return nil, err
	}
	return &SubsystemRequest{Name: s}, nil
}

// WindowChange is the "window-change" payload, RFC 4254 §6.7.
type WindowChange struct {
	Columns  uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
}

// Marshal encodes the payload.
func (p *WindowChange) Marshal() []byte {
	b := wire.AppendUint32(nil, p.Columns)
	b = wire.AppendUint32(b, p.Rows)
	b = wire.AppendUint32(b, p.WidthPx)
	return wire.AppendUint32(b, p.HeightPx)
}

// ParseWindowChange decodes a "window-change" payload.
func ParseWindowChange(b []byte) (*WindowChange, error) {
	r := wire.NewReader(b)
	p := &WindowChange{Columns: r.Uint32(), Rows: r.Uint32(), WidthPx: r.Uint32(), HeightPx: r.Uint32()}
	if !r.Done() {
		return nil, malformed("window-change")
	}
	return p, nil
}

// Signal is the "signal" payload, RFC 4254 §6.9: a signal name without the
// "SIG" prefix.
type Signal struct {
	Name string
}

// Marshal encodes the payload.
func (p *Signal) Marshal() []byte { return wire.AppendStringS(nil, p.Name) }

// ParseSignal decodes a "signal" payload.
func ParseSignal(b []byte) (*Signal, error) {
	s, err := parseOneString(b, "signal")
	if err != nil {
		return nil, err
	}
	return &Signal{Name: s}, nil
}

// ExitStatus is the "exit-status" payload, RFC 4254 §6.10.
type ExitStatus struct {
	Status uint32
}

// Marshal encodes the payload.
func (p *ExitStatus) Marshal() []byte { return wire.AppendUint32(nil, p.Status) }

// ParseExitStatus decodes an "exit-status" payload.
func ParseExitStatus(b []byte) (*ExitStatus, error) {
	v, err := parseOneUint32(b, "exit-status")
	if err != nil {
		return nil, err
	}
	return &ExitStatus{Status: v}, nil
}

// ExitSignal is the "exit-signal" payload, RFC 4254 §6.10.
type ExitSignal struct {
	Signal       string // name without "SIG"
	CoreDumped   bool
	ErrorMessage string
	LanguageTag  string
}

// Marshal encodes the payload.
func (p *ExitSignal) Marshal() []byte {
	b := wire.AppendStringS(nil, p.Signal)
	b = wire.AppendBool(b, p.CoreDumped)
	b = wire.AppendStringS(b, p.ErrorMessage)
	return wire.AppendStringS(b, p.LanguageTag)
}

// ParseExitSignal decodes an "exit-signal" payload.
func ParseExitSignal(b []byte) (*ExitSignal, error) {
	r := wire.NewReader(b)
	p := &ExitSignal{Signal: r.String(), CoreDumped: r.Bool(), ErrorMessage: r.String(), LanguageTag: r.String()}
	if !r.Done() {
		return nil, malformed("exit-signal")
	}
	return p, nil
}

// Break is the "break" payload, RFC 4335 §3: break length in milliseconds.
type Break struct {
	LengthMillis uint32
}

// Marshal encodes the payload.
func (p *Break) Marshal() []byte { return wire.AppendUint32(nil, p.LengthMillis) }

// ParseBreak decodes a "break" payload.
func ParseBreak(b []byte) (*Break, error) {
	v, err := parseOneUint32(b, "break")
	if err != nil {
		return nil, err
	}
	return &Break{LengthMillis: v}, nil
}

// ParseEmpty checks the payload of requests that carry none: "shell",
// "eow@openssh.com" (OpenSSH PROTOCOL §2.1), "auth-agent-req@openssh.com",
// "no-more-sessions@openssh.com", "keepalive@openssh.com".
func ParseEmpty(name string, b []byte) error {
	if len(b) != 0 {
		return malformed(name + ": unexpected payload")
	}
	return nil
}

// DirectTCPIP is the "direct-tcpip" channel open data, RFC 4254 §7.2.
type DirectTCPIP struct {
	HostToConnect  string
	PortToConnect  uint32
	OriginatorAddr string
	OriginatorPort uint32
}

// Marshal encodes the payload.
func (p *DirectTCPIP) Marshal() []byte {
	return marshalAddrPair(p.HostToConnect, p.PortToConnect, p.OriginatorAddr, p.OriginatorPort)
}

// ParseDirectTCPIP decodes "direct-tcpip" channel open data.
func ParseDirectTCPIP(b []byte) (*DirectTCPIP, error) {
	h, hp, o, op, err := parseAddrPair(b, "direct-tcpip")
	if err != nil {
		return nil, err
	}
	return &DirectTCPIP{HostToConnect: h, PortToConnect: hp, OriginatorAddr: o, OriginatorPort: op}, nil
}

// ForwardedTCPIP is the "forwarded-tcpip" channel open data, RFC 4254 §7.2.
type ForwardedTCPIP struct {
	ConnectedAddr  string
	ConnectedPort  uint32
	OriginatorAddr string
	OriginatorPort uint32
}

// Marshal encodes the payload.
func (p *ForwardedTCPIP) Marshal() []byte {
	return marshalAddrPair(p.ConnectedAddr, p.ConnectedPort, p.OriginatorAddr, p.OriginatorPort)
}

// ParseForwardedTCPIP decodes "forwarded-tcpip" channel open data.
func ParseForwardedTCPIP(b []byte) (*ForwardedTCPIP, error) {
	h, hp, o, op, err := parseAddrPair(b, "forwarded-tcpip")
	if err != nil {
		return nil, err
	}
	return &ForwardedTCPIP{ConnectedAddr: h, ConnectedPort: hp, OriginatorAddr: o, OriginatorPort: op}, nil
}

// TCPIPForward is the "tcpip-forward" and "cancel-tcpip-forward" global
// request payload, RFC 4254 §7.1.
type TCPIPForward struct {
	AddressToBind string
	PortToBind    uint32
}

// Marshal encodes the payload.
func (p *TCPIPForward) Marshal() []byte {
	return wire.AppendUint32(wire.AppendStringS(nil, p.AddressToBind), p.PortToBind)
}

// ParseTCPIPForward decodes a "tcpip-forward" or "cancel-tcpip-forward"
// payload.
func ParseTCPIPForward(b []byte) (*TCPIPForward, error) {
	r := wire.NewReader(b)
	p := &TCPIPForward{AddressToBind: r.String(), PortToBind: r.Uint32()}
	if !r.Done() {
		return nil, malformed("tcpip-forward")
	}
	return p, nil
}

// TCPIPForwardReply is the REQUEST_SUCCESS data of a "tcpip-forward" whose
// port to bind was 0: the port the server bound (RFC 4254 §7.1).
type TCPIPForwardReply struct {
	PortBound uint32
}

// Marshal encodes the payload.
func (p *TCPIPForwardReply) Marshal() []byte { return wire.AppendUint32(nil, p.PortBound) }

// ParseTCPIPForwardReply decodes the reply data.
func ParseTCPIPForwardReply(b []byte) (*TCPIPForwardReply, error) {
	v, err := parseOneUint32(b, "tcpip-forward reply")
	if err != nil {
		return nil, err
	}
	return &TCPIPForwardReply{PortBound: v}, nil
}

// StreamlocalForward is the "streamlocal-forward@openssh.com" and
// "cancel-streamlocal-forward@openssh.com" payload, OpenSSH PROTOCOL §2.4.
type StreamlocalForward struct {
	SocketPath string
}

// Marshal encodes the payload.
func (p *StreamlocalForward) Marshal() []byte { return wire.AppendStringS(nil, p.SocketPath) }

// ParseStreamlocalForward decodes the payload.
func ParseStreamlocalForward(b []byte) (*StreamlocalForward, error) {
	s, err := parseOneString(b, "streamlocal-forward")
	if err != nil {
		return nil, err
	}
	return &StreamlocalForward{SocketPath: s}, nil
}

// DirectStreamlocal is the "direct-streamlocal@openssh.com" channel open
// data, OpenSSH PROTOCOL §2.4. The reserved fields are sent by OpenSSH as an
// empty string and 0.
type DirectStreamlocal struct {
	SocketPath   string
	Reserved     string
	ReservedPort uint32
}

// Marshal encodes the payload.
func (p *DirectStreamlocal) Marshal() []byte {
	b := wire.AppendStringS(nil, p.SocketPath)
	b = wire.AppendStringS(b, p.Reserved)
	return wire.AppendUint32(b, p.ReservedPort)
}

// ParseDirectStreamlocal decodes the channel open data.
func ParseDirectStreamlocal(b []byte) (*DirectStreamlocal, error) {
	r := wire.NewReader(b)
	p := &DirectStreamlocal{SocketPath: r.String(), Reserved: r.String(), ReservedPort: r.Uint32()}
	if !r.Done() {
		return nil, malformed("direct-streamlocal")
	}
	return p, nil
}

// ForwardedStreamlocal is the "forwarded-streamlocal@openssh.com" channel
// open data, OpenSSH PROTOCOL §2.4.
type ForwardedStreamlocal struct {
	SocketPath string
	Reserved   string
}

// Marshal encodes the payload.
func (p *ForwardedStreamlocal) Marshal() []byte {
	return wire.AppendStringS(wire.AppendStringS(nil, p.SocketPath), p.Reserved)
}

// ParseForwardedStreamlocal decodes the channel open data.
func ParseForwardedStreamlocal(b []byte) (*ForwardedStreamlocal, error) {
	r := wire.NewReader(b)
	p := &ForwardedStreamlocal{SocketPath: r.String(), Reserved: r.String()}
	if !r.Done() {
		return nil, malformed("forwarded-streamlocal")
	}
	return p, nil
}

func parseOneString(b []byte, what string) (string, error) {
	r := wire.NewReader(b)
	s := r.String()
	if !r.Done() {
		return "", malformed(what)
	}
	return s, nil
}

func parseOneUint32(b []byte, what string) (uint32, error) {
	r := wire.NewReader(b)
	v := r.Uint32()
	if !r.Done() {
		return 0, malformed(what)
	}
	return v, nil
}

func marshalAddrPair(a string, ap uint32, o string, op uint32) []byte {
	b := wire.AppendStringS(nil, a)
	b = wire.AppendUint32(b, ap)
	b = wire.AppendStringS(b, o)
	return wire.AppendUint32(b, op)
}

func parseAddrPair(b []byte, what string) (string, uint32, string, uint32, error) {
	r := wire.NewReader(b)
	a, ap, o, op := r.String(), r.Uint32(), r.String(), r.Uint32()
	if !r.Done() {
		return "", 0, "", 0, malformed(what)
	}
	return a, ap, o, op, nil
}
