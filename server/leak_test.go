package server_test

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
)

// busyGoroutines counts goroutines, leaving out the server's idle pooled
// workers (workerPool), which wait for work up to handshakeWorkerIdle.
func busyGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		lines := strings.Split(g, "\n")
		if len(lines) > 1 && strings.Contains(lines[0], "[select") && strings.Contains(lines[1], "server.(*workerPool).work(") {
			continue
		}
		n++
	}
	return n, stacks
}

// waitGoroutines waits, bounded, until at most n goroutines are busy.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	var got int
	var stacks string
	for range 500 { // 5 s
		if got, stacks = busyGoroutines(); got <= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d goroutines, want at most %d:\n%s", got, n, stacks)
}

// A client's early CLOSE (ssh's ^C) ends a handler blocked in Read, in
// Write on an exhausted window, or waiting on its Context; nothing is
// left running.
func TestEarlyCloseEndsHandler(t *testing.T) {
	for _, mode := range []string{"read", "write", "context"} {
		t.Run(mode, func(t *testing.T) {
			ended := make(chan error, 1)
			ts := startServer(t, &server.Server{Handler: server.HandlerFunc(func(s *server.Session) {
				var err error
				switch mode {
				case "read":
					_, err = s.Read(make([]byte, 10))
				case "write":
					for err == nil {
						_, err = s.Write(make([]byte, 4096))
					}
				case "context":
					<-s.Context().Done()
					err = s.Context().Err()
				}
				ended <- err
			})})
			before, _ := busyGoroutines()
			c := dialRaw(t, ts.addr)
			c.login()
			c.write(channelOpenSession(0, 8192, 32768))
			p := c.expect(wire.MsgChannelOpenConfirmation)
			remote := wire.NewReader(p[5:]).Uint32()
			c.write(channelRequest(remote, "exec", true, wire.AppendStringS(nil, "x")))
			c.readUntil(wire.MsgChannelSuccess)
			time.Sleep(50 * time.Millisecond) // let the handler block
			c.write(wire.AppendUint32([]byte{wire.MsgChannelClose}, remote))
			select {
			case err := <-ended:
				if err == nil || (mode == "read" && !errors.Is(err, io.EOF)) {
					t.Errorf("handler's %s ended with %v", mode, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler still runs after the client closed the channel")
			}
			c.readUntil(wire.MsgChannelClose)
			c.tc.Close()
			waitGoroutines(t, before)
		})
	}
}
