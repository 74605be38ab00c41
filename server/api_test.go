package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/server"
)

// A ChannelHandler that returns without answering its channel gets it
// rejected; the client's open does not wait forever, and the pending
// opens it held (connection.DefaultMaxPendingOpens) are given back.
func TestChannelHandlerUnansweredIsRejected(t *testing.T) {
	ts := startServer(t, &server.Server{ChannelHandlers: map[string]server.ChannelHandler{
		"forgetful@example.com": server.ChannelHandlerFunc(func(context.Context, *server.Conn, *connection.NewChannel) {}),
	}})
	client := ts.dial(t)
	for i := range connection.DefaultMaxPendingOpens + 4 {
		errc := make(chan error, 1)
		go func() {
			_, _, err := client.OpenChannel("forgetful@example.com", nil)
			errc <- err
		}()
		select {
		case err := <-errc:
			var oe *ssh.OpenChannelError
			if !errors.As(err, &oe) || oe.Reason != ssh.Prohibited {
				t.Fatalf("open %d: %v, want OPEN_ADMINISTRATIVELY_PROHIBITED", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("open %d: no answer", i)
		}
	}
}
