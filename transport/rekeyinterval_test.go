package transport_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// TestRekeyIntervalStartsOneExchange: when the rekey interval runs out,
// one exchange starts. The interval was measured from the end of the
// last exchange as the reader saw it (the peer's NEWKEYS), so a write in
// between, once our own NEWKEYS had released the writers, found the old
// time and started a second exchange right behind the first: every
// interval cost two exchanges (17 to 18 starts in 3 s at a 300 ms interval, 9 now).
func TestRekeyIntervalStartsOneExchange(t *testing.T) {
	starts := &logCounter{prefix: "starting key re-exchange"} // the re-exchanges a Conn starts itself
	scfg := allAlgorithmsConfig()
	const interval, run = 300 * time.Millisecond, 3 * time.Second
	scfg.RekeyInterval = interval
	scfg.Logger = slog.New(starts)
	client, server := pipePair(t, scfg, &transport.ClientConfig{})
	authenticated(t, client, server)
	for _, c := range []*transport.Conn{client, server} {
		go func() {
			for {
				if _, err := c.ReadPacket(); err != nil {
					return
				}
			}
		}()
	}
	msg := append([]byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, 4}, "data"...)
	start := time.Now()
	for i := 0; i < 100000 && time.Since(start) < run; i++ {
		if err := server.WritePacket(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	// At most one start per interval, counted from the first exchange
	// (pipePair) up to now.
	limit := int64(elapsed/interval) + 1
	t.Logf("%d exchanges started in %v", starts.n.Load(), elapsed)
	if n := starts.n.Load(); n > limit || n == 0 {
		t.Fatalf("the server started %d key exchanges in %v at a %v interval; want 1 to %d", n, elapsed, interval, limit)
	}
}
