// Package connection implements the SSH connection protocol (RFC 4254) on top
// of an authenticated transport: channels multiplexed over one packet stream,
// per-channel flow control (§5.2), channel requests (§5.4, §6, §7), global
// requests (§4) and the OpenSSH extensions the server needs
// (PROTOCOL §2: eow@openssh.com, streamlocal forwarding, keepalive@openssh.com,
// hostkeys-00@openssh.com).
//
// A Mux owns one read loop (Run) that dispatches messages 80-100. Everything a
// peer can grow is bounded: channels per connection (Config.MaxChannels),
// channel opens waiting for the server layer (Config.MaxPendingOpens), queued
// requests per channel and global requests, and each channel's receive buffer,
// which never holds more than the window we advertised: a slow reader stops
// sending WINDOW_ADJUST, which is the back-pressure.
//
// We are stricter than OpenSSH about peer mistakes. OpenSSH logs and drops
// data beyond the window or after EOF (channels.c, channel_input_data); we
// end the connection with PROTOCOL_ERROR, because a peer that ignores the
// window is either broken or probing for unbounded buffering, and silently
// discarding data corrupts the stream.
//
// Transport contract: the read loop itself writes a few replies
// (CHANNEL_OPEN_FAILURE, request FAILURE, the answering CHANNEL_CLOSE), so a
// PacketConn whose WritePacket blocks during key re-exchange must be able to
// finish the re-exchange without another ReadPacket call from this read loop.
package connection
