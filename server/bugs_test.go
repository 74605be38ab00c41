package server_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/ferry-sftp/ferry/server"
)

// Tests for bugs found below the server layer: skipped while the owning
// package has the bug, kept as regression tests once fixed.

// Regression (run with -race): transport.(*Conn).WritePacket read
// packet.Reader.Stats (rekeyDueLocked) while the read loop's ReadPacket
// updated them; fixed in transport d24412b.
func TestConcurrentEchoRaceFree(t *testing.T) {
	ts := startServer(t, &server.Server{SubsystemHandlers: map[string]server.Handler{
		"echo": server.HandlerFunc(func(s *server.Session) { io.Copy(s, s) }),
	}})
	client := ts.dial(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	if err := sess.RequestSubsystem("echo"); err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 1<<20)
	go func() { in.Write(msg); in.Close() }()
	if got, _ := io.ReadAll(out); !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes", len(got))
	}
}
