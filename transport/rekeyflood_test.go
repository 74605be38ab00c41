package transport_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// logCounter is a slog handler counting the records whose message starts
// with prefix.
type logCounter struct {
	prefix string
	n      atomic.Int64
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

// newKexCounter counts the key exchanges a Conn completes.
func newKexCounter() *logCounter { return &logCounter{prefix: "key exchange complete"} }

// rekeyFlood has the client re-key after every packet it sends (a
// client RekeyBytes of 1) for d, sending an IGNORE every millisecond; it
// returns the error that ended the client's reads, if any.
func rekeyFlood(client *transport.Conn, d time.Duration) error {
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, err := client.ReadPacket(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	ignore := wire.AppendStringS([]byte{wire.MsgIgnore}, "x")
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if client.WritePacket(ignore) != nil {
			select {
			case err := <-readErr:
				return err
			case <-time.After(10 * time.Second):
				return errors.New("writes failed, reads did not")
			}
		}
		select {
		case err := <-readErr:
			return err
		default:
		}
	}
	return nil
}

// TestRekeyFloodBeforeAuth: a client that keeps re-keying before
// authentication is disconnected at the third exchange's end; each
// exchange costs the server up to tens of milliseconds of CPU
// (CVE-2002-20001), and this client had started ~500 a second.
func TestRekeyFloodBeforeAuth(t *testing.T) {
	counter := newKexCounter()
	scfg := &transport.Config{HostKeys: testHostKeys(), Logger: slog.New(counter)}
	client, server := pipePair(t, scfg, &transport.ClientConfig{RekeyBytes: 1})
	go func() {
		for {
			if _, err := server.ReadPacket(); err != nil {
				return
			}
		}
	}()
	err := rekeyFlood(client, 5*time.Second)
	var de *wire.DisconnectError
	if !errors.As(err, &de) || de.Reason != wire.DisconnectProtocolError || !strings.Contains(de.Message, "key exchanges before authentication") {
		t.Fatalf("client's reads ended with %v, want DISCONNECT PROTOCOL_ERROR for too many key exchanges", err)
	}
	if n := counter.n.Load(); n != 3 {
		t.Fatalf("server completed %d key exchanges, want 3", n)
	}
}

// TestRekeyFloodAfterAuth: after authentication a client's re-exchanges
// are paced, a burst of 16 and then one a second, not refused.
func TestRekeyFloodAfterAuth(t *testing.T) {
	counter := newKexCounter()
	scfg := &transport.Config{HostKeys: testHostKeys(), Logger: slog.New(counter)}
	client, server := pipePair(t, scfg, &transport.ClientConfig{RekeyBytes: 1})
	authenticated(t, client, server)
	go func() {
		for {
			if _, err := server.ReadPacket(); err != nil {
				return
			}
		}
	}()
	const d = 3 * time.Second
	if err := rekeyFlood(client, d); err != nil {
		t.Fatalf("client's reads ended: %v", err)
	}
	n := counter.n.Load()
	t.Logf("%d key exchanges in %v", n, d)
	// The first, the burst of 16, one a second, and one in progress.
	if n > 1+16+3+1 {
		t.Fatalf("server completed %d key exchanges in %v, want at most %d", n, d, 1+16+3+1)
	}
	if n < 1+16 {
		t.Fatalf("server completed only %d key exchanges in %v: the burst was refused", n, d)
	}
}
