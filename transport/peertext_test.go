package transport_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// TestPeerTextInErrorsIsBounded: what an unauthenticated peer writes ends
// up in the error the server logs for the connection (package server's
// "connection closed" line). A 200 KB DISCONNECT description, or a 60 KB
// kex name-list that matches nothing, made a 200 KB log line for every
// such connection; OpenSSH logs at most 400 bytes of a DISCONNECT
// description (packet.c, "%.400s") and 1 KiB per line.
func TestPeerTextInErrorsIsBounded(t *testing.T) {
	const maxErrorLen = 2048
	long := strings.Repeat("A", 200000)
	var manyNames []string
	for i := range 200 {
		manyNames = append(manyNames, strings.Repeat("k", 250)+"-"+string(rune('a'+i%26)))
	}
	disconnect := wire.AppendUint32([]byte{wire.MsgDisconnect}, wire.DisconnectByApplication)
	disconnect = wire.AppendStringS(wire.AppendStringS(disconnect, long), "")
	noMatch := append([]byte{wire.MsgKexInit}, make([]byte, 16)...)
	for _, l := range [][]string{manyNames, {"ssh-ed25519"}, {"aes128-ctr"}, {"aes128-ctr"},
		{"hmac-sha2-256"}, {"hmac-sha2-256"}, {"none"}, {"none"}, nil, nil} {
		noMatch = wire.AppendNameList(noMatch, l)
	}
	noMatch = wire.AppendUint32(wire.AppendBool(noMatch, false), 0)

	cases := []struct {
		name, want string
		packet     []byte
	}{
		{"DISCONNECT description", "peer disconnect (reason 11): AAAA", disconnect},
		{"unmatched kex list", "no matching key exchange algorithm (client offered kkkk", noMatch},
	}
	addr, results := startServer(t, allAlgorithmsConfig())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write(append([]byte("SSH-2.0-probe\r\n"), plainPacket(tc.packet)...))
			io.Copy(io.Discard, nc)
			r := waitResult(t, results)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("server error %.200q, want one containing %q", r.err, tc.want)
			}
			if n := len(r.err.Error()); n > maxErrorLen {
				t.Fatalf("server error is %d bytes of the peer's text, want at most %d", n, maxErrorLen)
			}
		})
	}
}
