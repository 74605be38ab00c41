package transport

import (
	"github.com/ferry-sftp/ferry/internal/wire"
)

// kexInitMsg is SSH_MSG_KEXINIT, RFC 4253 §7.1.
type kexInitMsg struct {
	Cookie                  [16]byte
	KexAlgos                []string
	ServerHostKeyAlgos      []string
	CiphersClientServer     []string
	CiphersServerClient     []string
	MACsClientServer        []string
	MACsServerClient        []string
	CompressionClientServer []string
	CompressionServerClient []string
	LanguagesClientServer   []string
	LanguagesServerClient   []string
	FirstKexFollows         bool
	Reserved                uint32
}

func (m *kexInitMsg) marshal() []byte {
	b := make([]byte, 0, 1024)
	b = append(b, wire.MsgKexInit)
	b = append(b, m.Cookie[:]...)
	for _, l := range [][]string{m.KexAlgos, m.ServerHostKeyAlgos, m.CiphersClientServer, m.CiphersServerClient,
		m.MACsClientServer, m.MACsServerClient, m.CompressionClientServer, m.CompressionServerClient,
		m.LanguagesClientServer, m.LanguagesServerClient} {
		b = wire.AppendNameList(b, l)
	}
	b = wire.AppendBool(b, m.FirstKexFollows)
	return wire.AppendUint32(b, m.Reserved)
}

func (m *kexInitMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgKexInit {
		return false
	}
	for i := range m.Cookie {
		m.Cookie[i] = r.Byte()
	}
	for _, l := range []*[]string{&m.KexAlgos, &m.ServerHostKeyAlgos, &m.CiphersClientServer, &m.CiphersServerClient,
		&m.MACsClientServer, &m.MACsServerClient, &m.CompressionClientServer, &m.CompressionServerClient,
		&m.LanguagesClientServer, &m.LanguagesServerClient} {
		*l = r.NameList()
	}
	m.FirstKexFollows = r.Bool()
	m.Reserved = r.Uint32()
	return r.Done()
}

// disconnectMsg is SSH_MSG_DISCONNECT, RFC 4253 §11.1.
type disconnectMsg struct {
	Reason   uint32
	Message  string
	Language string
}

func (m *disconnectMsg) marshal() []byte {
	b := []byte{wire.MsgDisconnect}
	b = wire.AppendUint32(b, m.Reason)
	b = wire.AppendStringS(b, m.Message)
	return wire.AppendStringS(b, m.Language)
}

func (m *disconnectMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgDisconnect {
		return false
	}
	m.Reason = r.Uint32()
	m.Message = r.String()
	m.Language = r.String()
	return r.Done()
}

// ignoreMsg is SSH_MSG_IGNORE, RFC 4253 §11.2.
type ignoreMsg struct{ Data []byte }

func (m *ignoreMsg) marshal() []byte {
	return wire.AppendString([]byte{wire.MsgIgnore}, m.Data)
}

func (m *ignoreMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgIgnore {
		return false
	}
	m.Data = r.Bytes()
	return r.Done()
}

// debugMsg is SSH_MSG_DEBUG, RFC 4253 §11.3.
type debugMsg struct {
	AlwaysDisplay bool
	Message       string
	Language      string
}

func (m *debugMsg) marshal() []byte {
	b := wire.AppendBool([]byte{wire.MsgDebug}, m.AlwaysDisplay)
	b = wire.AppendStringS(b, m.Message)
	return wire.AppendStringS(b, m.Language)
}

func (m *debugMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgDebug {
		return false
	}
	m.AlwaysDisplay = r.Bool()
	m.Message = r.String()
	m.Language = r.String()
	return r.Done()
}

// unimplementedMsg is SSH_MSG_UNIMPLEMENTED, RFC 4253 §11.4.
type unimplementedMsg struct{ SeqNum uint32 }

func (m *unimplementedMsg) marshal() []byte {
	return wire.AppendUint32([]byte{wire.MsgUnimplemented}, m.SeqNum)
}

func (m *unimplementedMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgUnimplemented {
		return false
	}
	m.SeqNum = r.Uint32()
	return r.Done()
}

// newKeysMsg is SSH_MSG_NEWKEYS, RFC 4253 §7.3.
type newKeysMsg struct{}

func (m *newKeysMsg) marshal() []byte { return []byte{wire.MsgNewKeys} }

func (m *newKeysMsg) unmarshal(p []byte) bool { return len(p) == 1 && p[0] == wire.MsgNewKeys }

// extInfoMsg is SSH_MSG_EXT_INFO, RFC 8308 §2.3.
type extInfoMsg struct {
	Names  []string
	Values [][]byte
}

// maxExtensions bounds EXT_INFO entries we parse; RFC 8308 defines a
// handful and OpenSSH sends at most five.
const maxExtensions = 64

func (m *extInfoMsg) marshal() []byte {
	b := []byte{wire.MsgExtInfo}
	b = wire.AppendUint32(b, uint32(len(m.Names)))
	for i, n := range m.Names {
		b = wire.AppendStringS(b, n)
		b = wire.AppendString(b, m.Values[i])
	}
	return b
}

func (m *extInfoMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgExtInfo {
		return false
	}
	n := r.Uint32()
	if !r.Ok() || n > maxExtensions {
		return false
	}
	m.Names, m.Values = nil, nil
	for i := uint32(0); i < n; i++ {
		m.Names = append(m.Names, r.String())
		m.Values = append(m.Values, r.Bytes())
	}
	return r.Done()
}

// pingMsg is SSH2_MSG_PING and pongMsg SSH2_MSG_PONG, OpenSSH PROTOCOL §1.9.
type pingMsg struct{ Data []byte }

func (m *pingMsg) marshal() []byte { return wire.AppendString([]byte{wire.MsgPing}, m.Data) }

func (m *pingMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgPing {
		return false
	}
	m.Data = r.Bytes()
	return r.Done()
}

type pongMsg struct{ Data []byte }

func (m *pongMsg) marshal() []byte { return wire.AppendString([]byte{wire.MsgPong}, m.Data) }

func (m *pongMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgPong {
		return false
	}
	m.Data = r.Bytes()
	return r.Done()
}
