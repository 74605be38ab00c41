package connection

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// testTimeout bounds every wait in these tests, so a bug hangs a test for
// seconds instead of until the go test deadline. It is a bound, not a timing
// assertion.
const testTimeout = 30 * time.Second

type muxPair struct {
	client, server         *Mux
	clientConn, serverConn *pipeConn
	clientErr, serverErr   chan error
}

func newMuxPair(t testing.TB, ccfg, scfg *Config) *muxPair {
	t.Helper()
	cc, sc := newPipe()
	client, err := New(cc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := New(sc, scfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &muxPair{client: client, server: server, clientConn: cc, serverConn: sc,
		clientErr: make(chan error, 1), serverErr: make(chan error, 1)}
	go func() { p.clientErr <- client.Run() }()
	go func() { p.serverErr <- server.Run() }()
	t.Cleanup(func() {
		cc.Close()
		waitErr(t, p.clientErr)
		waitErr(t, p.serverErr)
	})
	return p
}

func waitErr(t testing.TB, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		ch <- err
		return err
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for the read loop to end")
		return nil
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// openPair opens a channel from client to server and returns both ends.
func (p *muxPair) openPair(t testing.TB, chanType string, extra []byte) (client, server *Channel) {
	t.Helper()
	type res struct {
		c   *Channel
		err error
	}
	acc := make(chan res, 1)
	go func() {
		nc, err := p.server.Accept(ctxT(t))
		if err != nil {
			acc <- res{nil, err}
			return
		}
		c, err := nc.Accept()
		acc <- res{c, err}
	}()
	c, err := p.client.OpenChannel(ctxT(t), chanType, extra)
	if err != nil {
		t.Fatalf("OpenChannel: %v", err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	return c, r.c
}

func waitDone(t testing.TB, c *Channel) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("channel not done")
	}
}

// rawPeer drives a Mux with hand-written packets.
type rawPeer struct {
	t    testing.TB
	conn *pipeConn
	mux  *Mux
	err  chan error
}

func newRawPeer(t testing.TB, cfg *Config) *rawPeer {
	t.Helper()
	raw, sc := newPipe()
	m, err := New(sc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{t: t, conn: raw, mux: m, err: make(chan error, 1)}
	go func() { r.err <- m.Run() }()
	t.Cleanup(func() {
		raw.Close()
		waitErr(t, r.err)
	})
	return r
}

func (r *rawPeer) send(p []byte) {
	r.t.Helper()
	if err := r.conn.WritePacket(p); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

// recv returns a copy of the next packet the Mux sent.
func (r *rawPeer) recv() []byte {
	r.t.Helper()
	type res struct {
		p   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := r.conn.ReadPacket()
		ch <- res{append([]byte(nil), p...), err}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			r.t.Fatalf("raw read: %v", x.err)
		}
		return x.p
	case <-time.After(testTimeout):
		r.t.Fatal("timed out waiting for a packet")
		return nil
	}
}

// expectDisconnect waits for the Mux's read loop to fail with reason.
func (r *rawPeer) expectDisconnect(reason uint32) *wire.DisconnectError {
	r.t.Helper()
	select {
	case err := <-r.err:
		r.err <- err
		var de *wire.DisconnectError
		if !errors.As(err, &de) {
			r.t.Fatalf("Run returned %v, want *wire.DisconnectError", err)
		}
		if de.Reason != reason {
			r.t.Fatalf("disconnect reason %d (%s), want %d", de.Reason, de.Message, reason)
		}
		return de
	case <-time.After(testTimeout):
		r.t.Fatal("Run did not fail")
		return nil
	}
}

// openAccepted opens a channel from the raw side (sender channel 0) with
// the given window and max packet, accepts it on the Mux, and returns the
// Mux's Channel and its CHANNEL_OPEN_CONFIRMATION.
func (r *rawPeer) openAccepted(window, maxPacket uint32) (*Channel, channelOpenConfirmMsg) {
	r.t.Helper()
	open := channelOpenMsg{ChannelType: "session", SenderChannel: 0, InitialWindowSize: window, MaximumPacketSize: maxPacket}
	r.send(open.appendTo(nil))
	nc, err := r.mux.Accept(ctxT(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := nc.Accept()
	if err != nil {
		r.t.Fatal(err)
	}
	var conf channelOpenConfirmMsg
	if p := r.recv(); !conf.unmarshal(p) {
		r.t.Fatalf("want CHANNEL_OPEN_CONFIRMATION, got % x", p)
	}
	return c, conf
}

func dataMsg(ch uint32, data []byte) []byte {
	return (&channelDataMsg{RecipientChannel: ch, Data: data}).appendTo(nil)
}

func readAllBounded(t testing.TB, r io.Reader, limit int) []byte {
	t.Helper()
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func contextWithCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctxT(t))
}
