package server_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

// BenchmarkChannelThroughput measures CHANNEL_DATA from a client
// (transport.Client + connection.Mux) into a real server.Server session
// over loopback TCP, in 32 KiB writes, through every layer: cipher, MAC,
// packet framing, mux flow control and the Session reader. Not net.Pipe:
// both transport sides send their version and KEXINIT before reading (a
// saved round trip), which deadlocks on an unbuffered pipe.
func BenchmarkChannelThroughput(b *testing.B) {
	for _, cipher := range []string{"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"} {
		b.Run(cipher, func(b *testing.B) { benchThroughput(b, cipher) })
	}
}

func benchThroughput(b *testing.B, cipher string) {
	received := make(chan int64, 1)
	srv := &server.Server{SubsystemHandlers: map[string]server.Handler{
		"sink": server.HandlerFunc(func(s *server.Session) {
			n, _ := io.Copy(io.Discard, s)
			received <- n
		}),
	}}
	ts := startServer(b, srv)
	c := dialRawConfig(b, ts.addr, &transport.ClientConfig{Ciphers: []string{cipher}, MACs: []string{"hmac-sha2-256-etm@openssh.com"}})
	c.nc.SetDeadline(time.Time{})
	c.login()
	tc := c.tc
	mux, err := connection.New(tc, &connection.Config{})
	if err != nil {
		b.Fatal(err)
	}
	go mux.Run()
	ch, err := mux.OpenChannel(context.Background(), connection.ChannelTypeSession, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for req := range ch.Requests() {
			req.Reply(false)
		}
	}()
	if ok, err := ch.SendRequest(connection.RequestSubsystem, true, wire.AppendStringS(nil, "sink")); !ok || err != nil {
		b.Fatalf("subsystem: %v %v", ok, err)
	}
	const size = 32 << 10
	buf := make([]byte, size)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := ch.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	ch.CloseWrite()
	if n := <-received; n != int64(size)*int64(b.N) {
		b.Fatalf("server read %d bytes, want %d", n, int64(size)*int64(b.N))
	}
	b.StopTimer()
}
