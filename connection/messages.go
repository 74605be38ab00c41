package connection

import (
	"encoding/binary"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// One struct per RFC 4254 message. Field names follow the RFC: "recipient
// channel" is the receiver's channel number, "sender channel" the sender's.
// unmarshal is strict: a wrong message number, a short field or trailing
// bytes make it return false. Messages whose last field is "rest of the
// packet" (type-specific data) cannot have trailing bytes by construction.

// globalRequestMsg is SSH_MSG_GLOBAL_REQUEST, RFC 4254 §4.
type globalRequestMsg struct {
	RequestName string
	WantReply   bool
	Data        []byte
}

func (m *globalRequestMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgGlobalRequest)
	b = wire.AppendStringS(b, m.RequestName)
	b = wire.AppendBool(b, m.WantReply)
	return append(b, m.Data...)
}

func (m *globalRequestMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgGlobalRequest {
		return false
	}
	m.RequestName = r.String()
	m.WantReply = r.Bool()
	m.Data = r.Rest()
	return r.Ok()
}

// requestSuccessMsg is SSH_MSG_REQUEST_SUCCESS, RFC 4254 §4; Data is the
// request-specific response (e.g. the bound port of tcpip-forward, §7.1).
type requestSuccessMsg struct {
	Data []byte
}

func (m *requestSuccessMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgRequestSuccess)
	return append(b, m.Data...)
}

func (m *requestSuccessMsg) unmarshal(p []byte) bool {
	if len(p) < 1 || p[0] != wire.MsgRequestSuccess {
		return false
	}
	m.Data = p[1:]
	return true
}

// requestFailureMsg is SSH_MSG_REQUEST_FAILURE, RFC 4254 §4.
type requestFailureMsg struct{}

func (m *requestFailureMsg) appendTo(b []byte) []byte {
	return append(b, wire.MsgRequestFailure)
}

func (m *requestFailureMsg) unmarshal(p []byte) bool {
	return len(p) == 1 && p[0] == wire.MsgRequestFailure
}

// channelOpenMsg is SSH_MSG_CHANNEL_OPEN, RFC 4254 §5.1.
type channelOpenMsg struct {
	ChannelType       string
	SenderChannel     uint32
	InitialWindowSize uint32
	MaximumPacketSize uint32
	TypeSpecificData  []byte
}

func (m *channelOpenMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelOpen)
	b = wire.AppendStringS(b, m.ChannelType)
	b = wire.AppendUint32(b, m.SenderChannel)
	b = wire.AppendUint32(b, m.InitialWindowSize)
	b = wire.AppendUint32(b, m.MaximumPacketSize)
	return append(b, m.TypeSpecificData...)
}

func (m *channelOpenMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgChannelOpen {
		return false
	}
	m.ChannelType = r.String()
	m.SenderChannel = r.Uint32()
	m.InitialWindowSize = r.Uint32()
	m.MaximumPacketSize = r.Uint32()
	m.TypeSpecificData = r.Rest()
	return r.Ok()
}

// channelOpenConfirmMsg is SSH_MSG_CHANNEL_OPEN_CONFIRMATION, RFC 4254 §5.1.
type channelOpenConfirmMsg struct {
	RecipientChannel  uint32
	SenderChannel     uint32
	InitialWindowSize uint32
	MaximumPacketSize uint32
	TypeSpecificData  []byte
}

func (m *channelOpenConfirmMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelOpenConfirmation)
	b = wire.AppendUint32(b, m.RecipientChannel)
	b = wire.AppendUint32(b, m.SenderChannel)
	b = wire.AppendUint32(b, m.InitialWindowSize)
	b = wire.AppendUint32(b, m.MaximumPacketSize)
	return append(b, m.TypeSpecificData...)
}

func (m *channelOpenConfirmMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgChannelOpenConfirmation {
		return false
	}
	m.RecipientChannel = r.Uint32()
	m.SenderChannel = r.Uint32()
	m.InitialWindowSize = r.Uint32()
	m.MaximumPacketSize = r.Uint32()
	m.TypeSpecificData = r.Rest()
	return r.Ok()
}

// channelOpenFailureMsg is SSH_MSG_CHANNEL_OPEN_FAILURE, RFC 4254 §5.1.
type channelOpenFailureMsg struct {
	RecipientChannel uint32
	ReasonCode       uint32
	Description      string
	LanguageTag      string
}

func (m *channelOpenFailureMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelOpenFailure)
	b = wire.AppendUint32(b, m.RecipientChannel)
	b = wire.AppendUint32(b, m.ReasonCode)
	b = wire.AppendStringS(b, m.Description)
	return wire.AppendStringS(b, m.LanguageTag)
}

func (m *channelOpenFailureMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgChannelOpenFailure {
		return false
	}
	m.RecipientChannel = r.Uint32()
	m.ReasonCode = r.Uint32()
	m.Description = r.String()
	m.LanguageTag = r.String()
	return r.Done()
}

// windowAdjustMsg is SSH_MSG_CHANNEL_WINDOW_ADJUST, RFC 4254 §5.2.
type windowAdjustMsg struct {
	RecipientChannel uint32
	BytesToAdd       uint32
}

func (m *windowAdjustMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelWindowAdjust)
	b = wire.AppendUint32(b, m.RecipientChannel)
	return wire.AppendUint32(b, m.BytesToAdd)
}

func (m *windowAdjustMsg) unmarshal(p []byte) bool {
	if len(p) != 9 || p[0] != wire.MsgChannelWindowAdjust {
		return false
	}
	m.RecipientChannel = binary.BigEndian.Uint32(p[1:])
	m.BytesToAdd = binary.BigEndian.Uint32(p[5:])
	return true
}

// channelDataHeaderLen is the CHANNEL_DATA header: message number, recipient
// channel, data length (RFC 4254 §5.2).
const channelDataHeaderLen = 1 + 4 + 4

// extendedDataHeaderLen adds the data_type_code of EXTENDED_DATA.
const extendedDataHeaderLen = channelDataHeaderLen + 4

// channelDataMsg is SSH_MSG_CHANNEL_DATA, RFC 4254 §5.2. It is on the data
// path, so it is parsed by hand and Data aliases the packet.
type channelDataMsg struct {
	RecipientChannel uint32
	Data             []byte
}

func (m *channelDataMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelData)
	b = wire.AppendUint32(b, m.RecipientChannel)
	return wire.AppendString(b, m.Data)
}

func (m *channelDataMsg) unmarshal(p []byte) bool {
	if len(p) < channelDataHeaderLen || p[0] != wire.MsgChannelData {
		return false
	}
	n := binary.BigEndian.Uint32(p[5:])
	if uint64(n) != uint64(len(p)-channelDataHeaderLen) {
		return false
	}
	m.RecipientChannel = binary.BigEndian.Uint32(p[1:])
	m.Data = p[channelDataHeaderLen:]
	return true
}

// extendedDataMsg is SSH_MSG_CHANNEL_EXTENDED_DATA, RFC 4254 §5.2.
type extendedDataMsg struct {
	RecipientChannel uint32
	DataTypeCode     uint32
	Data             []byte
}

func (m *extendedDataMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelExtendedData)
	b = wire.AppendUint32(b, m.RecipientChannel)
	b = wire.AppendUint32(b, m.DataTypeCode)
	return wire.AppendString(b, m.Data)
}

func (m *extendedDataMsg) unmarshal(p []byte) bool {
	if len(p) < extendedDataHeaderLen || p[0] != wire.MsgChannelExtendedData {
		return false
	}
	n := binary.BigEndian.Uint32(p[9:])
	if uint64(n) != uint64(len(p)-extendedDataHeaderLen) {
		return false
	}
	m.RecipientChannel = binary.BigEndian.Uint32(p[1:])
	m.DataTypeCode = binary.BigEndian.Uint32(p[5:])
	m.Data = p[extendedDataHeaderLen:]
	return true
}

// channelEOFMsg is SSH_MSG_CHANNEL_EOF, RFC 4254 §5.3.
type channelEOFMsg struct {
	RecipientChannel uint32
}

func (m *channelEOFMsg) appendTo(b []byte) []byte {
	return wire.AppendUint32(append(b, wire.MsgChannelEOF), m.RecipientChannel)
}

func (m *channelEOFMsg) unmarshal(p []byte) bool {
	return unmarshalChannelOnly(p, wire.MsgChannelEOF, &m.RecipientChannel)
}

// channelCloseMsg is SSH_MSG_CHANNEL_CLOSE, RFC 4254 §5.3.
type channelCloseMsg struct {
	RecipientChannel uint32
}

func (m *channelCloseMsg) appendTo(b []byte) []byte {
	return wire.AppendUint32(append(b, wire.MsgChannelClose), m.RecipientChannel)
}

func (m *channelCloseMsg) unmarshal(p []byte) bool {
	return unmarshalChannelOnly(p, wire.MsgChannelClose, &m.RecipientChannel)
}

// channelRequestMsg is SSH_MSG_CHANNEL_REQUEST, RFC 4254 §5.4.
type channelRequestMsg struct {
	RecipientChannel uint32
	RequestType      string
	WantReply        bool
	Data             []byte
}

func (m *channelRequestMsg) appendTo(b []byte) []byte {
	b = append(b, wire.MsgChannelRequest)
	b = wire.AppendUint32(b, m.RecipientChannel)
	b = wire.AppendStringS(b, m.RequestType)
	b = wire.AppendBool(b, m.WantReply)
	return append(b, m.Data...)
}

func (m *channelRequestMsg) unmarshal(p []byte) bool {
	r := wire.NewReader(p)
	if r.Byte() != wire.MsgChannelRequest {
		return false
	}
	m.RecipientChannel = r.Uint32()
	m.RequestType = r.String()
	m.WantReply = r.Bool()
	m.Data = r.Rest()
	return r.Ok()
}

// channelSuccessMsg is SSH_MSG_CHANNEL_SUCCESS, RFC 4254 §5.4.
type channelSuccessMsg struct {
	RecipientChannel uint32
}

func (m *channelSuccessMsg) appendTo(b []byte) []byte {
	return wire.AppendUint32(append(b, wire.MsgChannelSuccess), m.RecipientChannel)
}

func (m *channelSuccessMsg) unmarshal(p []byte) bool {
	return unmarshalChannelOnly(p, wire.MsgChannelSuccess, &m.RecipientChannel)
}

// channelFailureMsg is SSH_MSG_CHANNEL_FAILURE, RFC 4254 §5.4.
type channelFailureMsg struct {
	RecipientChannel uint32
}

func (m *channelFailureMsg) appendTo(b []byte) []byte {
	return wire.AppendUint32(append(b, wire.MsgChannelFailure), m.RecipientChannel)
}

func (m *channelFailureMsg) unmarshal(p []byte) bool {
	return unmarshalChannelOnly(p, wire.MsgChannelFailure, &m.RecipientChannel)
}

func unmarshalChannelOnly(p []byte, msgType byte, ch *uint32) bool {
	if len(p) != 5 || p[0] != msgType {
		return false
	}
	*ch = binary.BigEndian.Uint32(p[1:])
	return true
}
