// Command channel serves a custom SSH channel type, "echo@example.com",
// which echoes whatever the client sends on it: password "demo" for any
// user, on 127.0.0.1:2022. Clients open it with their library's
// OpenChannel (x/crypto/ssh: client.OpenChannel("echo@example.com", nil)).
package main

import (
	"context"
	"io"
	"log"
	"net"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/examples/internal/demo"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

func newServer() *server.Server {
	return &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{demo.HostKey()}},
		Auth:      auth.Config{Authenticator: demo.Auth{}, Methods: []string{"password"}},
		ChannelHandlers: map[string]server.ChannelHandler{
			"echo@example.com": server.ChannelHandlerFunc(echo),
		},
	}
}

// echo accepts the channel and copies its input back until the client's
// EOF, then closes it. The handler's return does not close the channel:
// it owns it.
func echo(ctx context.Context, c *server.Conn, nc *connection.NewChannel) {
	ch, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	io.Copy(ch, ch)
	ch.CloseWrite()
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:2022")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(newServer().Serve(ln))
}
