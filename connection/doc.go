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
// We are stricter than OpenSSH about peer mistakes. OpenSSH's
// channel_input_data (channels.c) logs and drops a packet beyond the window
// or the maximum packet size, and only disconnects ("peer ignored channel
// window") once the excess passes a tenth of the window. We end the
// connection with PROTOCOL_ERROR at the first byte over the window, over the
// maximum packet size, after the peer's EOF, on a freed channel, or on a
// WINDOW_ADJUST that takes the window past 2^32-1 (RFC 4254 §5.2): a peer
// doing any of these is broken or probing for unbounded buffering, and
// silently dropping data corrupts the stream. Data crossing our own CLOSE is
// legal (RFC 4254 §5.3) and is dropped quietly.
//
// Transport contract: the read loop itself writes a few replies
// (CHANNEL_OPEN_FAILURE, request FAILURE, the answering CHANNEL_CLOSE), so a
// PacketConn whose WritePacket blocks during key re-exchange must be able to
// finish the re-exchange without another ReadPacket call from this read loop.
package connection
