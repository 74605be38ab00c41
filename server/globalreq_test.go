package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/server"
)

// TestGlobalRequestsServedOnDemand checks that global requests are served
// whether they come one at a time (the serving goroutine leaves after each
// and must start again) or many at once, each answered with its own
// payload, in order.
func TestGlobalRequestsServedOnDemand(t *testing.T) {
	ts := startServer(t, &server.Server{
		RequestHandlers: map[string]server.RequestHandler{
			"echo@example.com": func(_ context.Context, _ *server.Conn, req *connection.GlobalRequest) {
				req.Reply(true, req.Payload)
			},
		},
	})
	c := ts.dial(t)
	for i := range 5 {
		want := fmt.Sprintf("one %d", i)
		ok, got, err := c.SendRequest("echo@example.com", true, []byte(want))
		if err != nil || !ok || string(got) != want {
			t.Fatalf("request %d: ok=%v payload=%q err=%v", i, ok, got, err)
		}
	}
	const burst = 32
	var wg sync.WaitGroup
	errs := make(chan error, burst)
	for i := range burst {
		wg.Go(func() {
			want := fmt.Sprintf("burst %d", i)
			ok, got, err := c.SendRequest("echo@example.com", true, []byte(want))
			if err != nil || !ok || string(got) != want {
				errs <- fmt.Errorf("request %d: ok=%v payload=%q err=%v", i, ok, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A type nobody serves is refused by the mux without waking anything.
	if ok, _, err := c.SendRequest("unknown@example.com", true, nil); ok || err != nil {
		t.Fatalf("unknown request: ok=%v err=%v", ok, err)
	}
	if ok, got, err := c.SendRequest("echo@example.com", true, []byte("last")); !ok || err != nil || string(got) != "last" {
		t.Fatalf("after unknown: ok=%v payload=%q err=%v", ok, got, err)
	}
}
