package auth

import (
	"github.com/ferry-sftp/ferry/internal/wire"
)

// Method names, RFC 4252 §5 and §7-8, RFC 4256 §3.1, OpenSSH PROTOCOL §2.5.
const (
	methodNone                = "none"
	methodPublicKey           = "publickey"
	methodPublicKeyHostbound  = "publickey-hostbound-v00@openssh.com"
	methodPassword            = "password"
	methodKeyboardInteractive = "keyboard-interactive"
)

// Service names, RFC 4252 §1 and RFC 4254 §1.
const (
	serviceUserAuth   = "ssh-userauth"
	serviceConnection = "ssh-connection"
)

// serviceRequestMsg is SSH_MSG_SERVICE_REQUEST, RFC 4253 §10.
type serviceRequestMsg struct {
	Service string
}

func (m *serviceRequestMsg) marshal() []byte {
	b := []byte{wire.MsgServiceRequest}
	return wire.AppendStringS(b, m.Service)
}

func (m *serviceRequestMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgServiceRequest {
		return false
	}
	m.Service = r.String()
	return r.Done()
}

// serviceAcceptMsg is SSH_MSG_SERVICE_ACCEPT, RFC 4253 §10.
type serviceAcceptMsg struct {
	Service string
}

func (m *serviceAcceptMsg) marshal() []byte {
	b := []byte{wire.MsgServiceAccept}
	return wire.AppendStringS(b, m.Service)
}

func (m *serviceAcceptMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgServiceAccept {
		return false
	}
	m.Service = r.String()
	return r.Done()
}

// userAuthRequestMsg is SSH_MSG_USERAUTH_REQUEST, RFC 4252 §5. Payload holds
// the method-specific fields, parsed by the method's own payload struct.
// User and Payload alias the packet, which is valid only until the next
// ReadPacket.
type userAuthRequestMsg struct {
	User    []byte
	Service string
	Method  string
	Payload []byte
}

func (m *userAuthRequestMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthRequest}
	b = wire.AppendString(b, m.User)
	b = wire.AppendStringS(b, m.Service)
	b = wire.AppendStringS(b, m.Method)
	return append(b, m.Payload...)
}

func (m *userAuthRequestMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthRequest {
		return false
	}
	m.User = r.Bytes()
	m.Service = r.String()
	m.Method = r.String()
	m.Payload = r.Rest()
	return r.Ok()
}

// parseNonePayload checks the (empty) payload of method "none", RFC 4252 §5.2.
func parseNonePayload(p []byte) bool { return len(p) == 0 }

// passwordRequest is the payload of method "password", RFC 4252 §8: a
// boolean, the password, and (only when the boolean is TRUE, a password
// change request) the new password.
type passwordRequest struct {
	Change      bool
	Password    []byte
	NewPassword []byte
}

func (p *passwordRequest) marshal() []byte {
	b := wire.AppendBool(nil, p.Change)
	b = wire.AppendString(b, p.Password)
	if p.Change {
		b = wire.AppendString(b, p.NewPassword)
	}
	return b
}

func (p *passwordRequest) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	p.Change = r.Bool()
	p.Password = r.Bytes()
	p.NewPassword = nil
	if p.Change {
		p.NewPassword = r.Bytes()
	}
	return r.Done()
}

// publicKeyRequest is the payload of method "publickey", RFC 4252 §7, and of
// "publickey-hostbound-v00@openssh.com", OpenSSH PROTOCOL §2.5, which adds
// the server host key blob after the user's key.
type publicKeyRequest struct {
	Hostbound bool // not on the wire: selects the hostbound layout
	HasSig    bool
	Algorithm string
	PubKey    []byte
	HostKey   []byte // hostbound only
	Signature []byte // only when HasSig
}

func (p *publicKeyRequest) marshal() []byte {
	b := wire.AppendBool(nil, p.HasSig)
	b = wire.AppendStringS(b, p.Algorithm)
	b = wire.AppendString(b, p.PubKey)
	if p.Hostbound {
		b = wire.AppendString(b, p.HostKey)
	}
	if p.HasSig {
		b = wire.AppendString(b, p.Signature)
	}
	return b
}

func (p *publicKeyRequest) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	p.HasSig = r.Bool()
	p.Algorithm = r.String()
	p.PubKey = r.Bytes()
	p.HostKey = nil
	if p.Hostbound {
		p.HostKey = r.Bytes()
	}
	p.Signature = nil
	if p.HasSig {
		p.Signature = r.Bytes()
	}
	return r.Done()
}

// keyboardInteractiveRequest is the payload of method
// "keyboard-interactive", RFC 4256 §3.1. Both fields are deprecated or
// advisory; they are parsed strictly and otherwise ignored.
type keyboardInteractiveRequest struct {
	Language   string
	Submethods string
}

func (p *keyboardInteractiveRequest) marshal() []byte {
	b := wire.AppendStringS(nil, p.Language)
	return wire.AppendStringS(b, p.Submethods)
}

func (p *keyboardInteractiveRequest) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	p.Language = r.String()
	p.Submethods = r.String()
	return r.Done()
}

// userAuthFailureMsg is SSH_MSG_USERAUTH_FAILURE, RFC 4252 §5.1.
type userAuthFailureMsg struct {
	Methods        []string
	PartialSuccess bool
}

func (m *userAuthFailureMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthFailure}
	b = wire.AppendNameList(b, m.Methods)
	return wire.AppendBool(b, m.PartialSuccess)
}

func (m *userAuthFailureMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthFailure {
		return false
	}
	m.Methods = r.NameList()
	m.PartialSuccess = r.Bool()
	return r.Done()
}

// userAuthSuccessMsg is SSH_MSG_USERAUTH_SUCCESS, RFC 4252 §5.1.
type userAuthSuccessMsg struct{}

func (m *userAuthSuccessMsg) marshal() []byte { return []byte{wire.MsgUserAuthSuccess} }

func (m *userAuthSuccessMsg) unmarshal(data []byte) bool {
	return len(data) == 1 && data[0] == wire.MsgUserAuthSuccess
}

// userAuthBannerMsg is SSH_MSG_USERAUTH_BANNER, RFC 4252 §5.4.
type userAuthBannerMsg struct {
	Message  string
	Language string
}

func (m *userAuthBannerMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthBanner}
	b = wire.AppendStringS(b, m.Message)
	return wire.AppendStringS(b, m.Language)
}

func (m *userAuthBannerMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthBanner {
		return false
	}
	m.Message = r.String()
	m.Language = r.String()
	return r.Done()
}

// userAuthPKOKMsg is SSH_MSG_USERAUTH_PK_OK, RFC 4252 §7: the algorithm and
// key blob of the query, echoed.
type userAuthPKOKMsg struct {
	Algorithm string
	PubKey    []byte
}

func (m *userAuthPKOKMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthPKOK}
	b = wire.AppendStringS(b, m.Algorithm)
	return wire.AppendString(b, m.PubKey)
}

func (m *userAuthPKOKMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthPKOK {
		return false
	}
	m.Algorithm = r.String()
	m.PubKey = r.Bytes()
	return r.Done()
}

// passwdChangeReqMsg is SSH_MSG_USERAUTH_PASSWD_CHANGEREQ, RFC 4252 §8.
// ferry never sends it (it does not change passwords) but parses it so the
// message number's three meanings are all covered by the fuzz target.
type passwdChangeReqMsg struct {
	Prompt   string
	Language string
}

func (m *passwdChangeReqMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthPasswdChangeReq}
	b = wire.AppendStringS(b, m.Prompt)
	return wire.AppendStringS(b, m.Language)
}

func (m *passwdChangeReqMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthPasswdChangeReq {
		return false
	}
	m.Prompt = r.String()
	m.Language = r.String()
	return r.Done()
}

// Prompt is one prompt of a keyboard-interactive INFO_REQUEST, RFC 4256 §3.2.
type Prompt struct {
	Text string
	// Echo tells the client whether to show what the user types.
	Echo bool
}

// infoRequestMsg is SSH_MSG_USERAUTH_INFO_REQUEST, RFC 4256 §3.2.
type infoRequestMsg struct {
	Name        string
	Instruction string
	Language    string
	Prompts     []Prompt
}

func (m *infoRequestMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthInfoRequest}
	b = wire.AppendStringS(b, m.Name)
	b = wire.AppendStringS(b, m.Instruction)
	b = wire.AppendStringS(b, m.Language)
	b = wire.AppendUint32(b, uint32(len(m.Prompts)))
	for _, p := range m.Prompts {
		b = wire.AppendStringS(b, p.Text)
		b = wire.AppendBool(b, p.Echo)
	}
	return b
}

func (m *infoRequestMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthInfoRequest {
		return false
	}
	m.Name = r.String()
	m.Instruction = r.String()
	m.Language = r.String()
	n := r.Uint32()
	if !r.Ok() || n > MaxPrompts {
		return false
	}
	m.Prompts = make([]Prompt, 0, n)
	for range n {
		p := Prompt{Text: r.String(), Echo: r.Bool()}
		m.Prompts = append(m.Prompts, p)
	}
	return r.Done()
}

// infoResponseMsg is SSH_MSG_USERAUTH_INFO_RESPONSE, RFC 4256 §3.4. The
// responses alias the packet.
type infoResponseMsg struct {
	Responses [][]byte
}

func (m *infoResponseMsg) marshal() []byte {
	b := []byte{wire.MsgUserAuthInfoResponse}
	b = wire.AppendUint32(b, uint32(len(m.Responses)))
	for _, resp := range m.Responses {
		b = wire.AppendString(b, resp)
	}
	return b
}

func (m *infoResponseMsg) unmarshal(data []byte) bool {
	r := wire.NewReader(data)
	if r.Byte() != wire.MsgUserAuthInfoResponse {
		return false
	}
	n := r.Uint32()
	if !r.Ok() || n > MaxPrompts {
		return false
	}
	m.Responses = make([][]byte, 0, n)
	for range n {
		resp := r.Bytes()
		if len(resp) > MaxResponseLen {
			return false
		}
		m.Responses = append(m.Responses, resp)
	}
	return r.Done()
}
