package connection

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

func TestOpenAcceptReject(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	extra := (&DirectTCPIP{HostToConnect: "example.org", PortToConnect: 80, OriginatorAddr: "127.0.0.1", OriginatorPort: 5555}).Marshal()

	type got struct {
		typ   string
		extra []byte
	}
	seen := make(chan got, 2)
	go func() {
		for i := 0; i < 2; i++ {
			nc, err := p.server.Accept(ctxT(t))
			if err != nil {
				return
			}
			seen <- got{nc.ChannelType(), nc.ExtraData()}
			if nc.ChannelType() == ChannelTypeDirectTCPIP {
				nc.Reject(wire.OpenAdministrativelyProhibited, "no forwarding")
				if _, err := nc.Accept(); !errors.Is(err, ErrAlreadyAnswered) {
					t.Errorf("Accept after Reject: %v, want ErrAlreadyAnswered", err)
				}
			} else if _, err := nc.Accept(); err != nil {
				t.Errorf("Accept: %v", err)
			}
		}
	}()

	_, err := p.client.OpenChannel(ctxT(t), ChannelTypeDirectTCPIP, extra)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Reason != wire.OpenAdministrativelyProhibited || oe.Message != "no forwarding" {
		t.Fatalf("OpenChannel = %v, want OpenError{1, no forwarding}", err)
	}
	g := <-seen
	if g.typ != ChannelTypeDirectTCPIP || !bytes.Equal(g.extra, extra) {
		t.Fatalf("server saw %q % x", g.typ, g.extra)
	}
	c, err := p.client.OpenChannel(ctxT(t), ChannelTypeSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := <-seen; g.typ != "session" || len(g.extra) != 0 {
		t.Fatalf("server saw %q % x", g.typ, g.extra)
	}
	// The refused channel's number was freed; the session got number 0 again.
	if c.LocalID() != 0 {
		t.Errorf("local id %d, want 0 (refused channel's number reused)", c.LocalID())
	}
	if c.RemoteMaxPacket() != DefaultMaxPacket {
		t.Errorf("RemoteMaxPacket %d, want %d", c.RemoteMaxPacket(), DefaultMaxPacket)
	}
}

func TestDataBothWays(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	for _, n := range []int{1, 100, 32*1024 - 1, 32 * 1024, 32*1024 + 1, MaxPacketLimit + 7, 1 << 20, 10 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c, s := p.openPair(t, "session", nil)
			want := make([]byte, n)
			rand.Read(want)
			// Server echoes everything, then EOF.
			go func() {
				io.Copy(s, s)
				s.CloseWrite()
				s.Close()
			}()
			go func() {
				c.Write(want)
				c.CloseWrite()
			}()
			got := readAllBounded(t, c, n)
			if !bytes.Equal(got, want) {
				t.Fatalf("echo of %d bytes: got %d bytes, mismatch", n, len(got))
			}
			c.Close()
			waitDone(t, c)
			waitDone(t, s)
		})
	}
}

func TestEOFCloseOrdering(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	var mu sync.Mutex
	var sent []byte // message numbers the server sent
	p.serverConn.setOnWrite(func(b []byte) {
		mu.Lock()
		sent = append(sent, b[0])
		mu.Unlock()
	})
	c, s := p.openPair(t, "session", nil)
	payload := bytes.Repeat([]byte("x"), 100000)
	go func() {
		s.Write(payload)
		s.CloseWrite()
		s.SendRequest(RequestExitStatus, false, (&ExitStatus{Status: 3}).Marshal())
		s.Close()
	}()
	got := readAllBounded(t, c, len(payload))
	if !bytes.Equal(got, payload) {
		t.Fatal("data mismatch")
	}
	r, ok := <-c.Requests()
	if !ok || r.Type != RequestExitStatus || r.WantReply {
		t.Fatalf("request %+v, want exit-status", r)
	}
	if es, err := ParseExitStatus(r.Payload); err != nil || es.Status != 3 {
		t.Fatalf("exit status %v %v", es, err)
	}
	waitDone(t, c) // the peer's CLOSE frees the channel after we answer it
	if _, err := c.Write([]byte("late")); !errors.Is(err, ErrPeerClosed) {
		t.Errorf("Write after peer CLOSE: %v, want ErrPeerClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read after CLOSE: %v, want io.EOF", err)
	}
	waitDone(t, s)
	p.serverConn.setOnWrite(nil)
	// After the confirmation: data..., EOF, exit-status request, CLOSE.
	tail := sent[1:]
	i := 0
	for i < len(tail) && (tail[i] == wire.MsgChannelData || tail[i] == wire.MsgChannelWindowAdjust) {
		i++
	}
	want := []byte{wire.MsgChannelEOF, wire.MsgChannelRequest, wire.MsgChannelClose}
	if !bytes.Equal(tail[i:], want) {
		t.Fatalf("server sent %v after data, want %v", tail[i:], want)
	}
	// Local ids are freed: a new channel reuses number 0 on both sides.
	c2, s2 := p.openPair(t, "session", nil)
	if c2.LocalID() != 0 || s2.LocalID() != 0 {
		t.Errorf("ids %d/%d, want 0/0 after both CLOSEs", c2.LocalID(), s2.LocalID())
	}
}

func TestCloseWriteKeepsReading(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	c, s := p.openPair(t, "session", nil)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after CloseWrite: %v, want ErrClosed", err)
	}
	if b := readAllBounded(t, s, 10); len(b) != 0 {
		t.Fatalf("server read %q before EOF", b)
	}
	s.Write([]byte("still open"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "still open" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

func TestStderr(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	c, s := p.openPair(t, "session", nil)
	go func() {
		s.Write([]byte("out"))
		s.Stderr().Write([]byte("err output"))
		s.CloseWrite()
		s.Close()
	}()
	if got := readAllBounded(t, c, 100); string(got) != "out" {
		t.Errorf("stdout %q", got)
	}
	if got := readAllBounded(t, readerFunc(c.ReadStderr), 100); string(got) != "err output" {
		t.Errorf("stderr %q", got)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestDiscardExtendedData(t *testing.T) {
	r := newRawPeer(t, &Config{DiscardExtendedData: true, InitialWindow: 1000})
	c, conf := r.openAccepted(1<<20, 32768)
	ext := (&extendedDataMsg{RecipientChannel: conf.SenderChannel, DataTypeCode: 1, Data: make([]byte, 600)}).appendTo(nil)
	r.send(ext)
	// 600 ≥ window/2 was discarded, so the window is credited back at once.
	var adj windowAdjustMsg
	if p := r.recv(); !adj.unmarshal(p) || adj.BytesToAdd != 600 || adj.RecipientChannel != 0 {
		t.Fatalf("want WINDOW_ADJUST 600, got % x", p)
	}
	r.send(dataMsg(conf.SenderChannel, []byte("hi")))
	buf := make([]byte, 10)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("Read %q %v", buf[:n], err)
	}
	if _, buffered := c.Window(); buffered != 0 {
		t.Fatalf("%d bytes buffered, want 0", buffered)
	}
}

func TestChannelRequests(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	c, s := p.openPair(t, "session", nil)
	go func() {
		for r := range s.Requests() {
			switch r.Type {
			case RequestEnv:
				e, err := ParseEnvRequest(r.Payload)
				r.Reply(err == nil && e.Name == "LANG")
			case RequestExec:
				r.Reply(true)
			default:
				r.Reply(false)
			}
		}
	}()
	cases := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{RequestEnv, (&EnvRequest{Name: "LANG", Value: "C"}).Marshal(), true},
		{RequestEnv, (&EnvRequest{Name: "LD_PRELOAD", Value: "x"}).Marshal(), false},
		{RequestExec, (&ExecRequest{Command: "ls"}).Marshal(), true},
		{"unknown@example.org", nil, false},
		{RequestKeepaliveChan, nil, false},
	}
	for _, tc := range cases {
		ok, err := c.SendRequest(tc.name, true, tc.payload)
		if err != nil || ok != tc.want {
			t.Errorf("SendRequest(%s) = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
	}
	// Without reply: returns at once, delivered in order.
	if ok, err := c.SendRequest(RequestWindowChange, false, (&WindowChange{Columns: 80, Rows: 24}).Marshal()); ok || err != nil {
		t.Errorf("no-reply request = %v, %v", ok, err)
	}
	// Concurrent requests from many goroutines each get their own answer.
	var wg sync.WaitGroup
	for i := range DefaultMaxPendingRequests / 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := RequestExec
			if i%2 == 1 {
				name = "nope"
			}
			ok, err := c.SendRequest(name, true, (&ExecRequest{Command: "x"}).Marshal())
			if err != nil || ok != (i%2 == 0) {
				t.Errorf("concurrent request %d = %v, %v", i, ok, err)
			}
		}()
	}
	wg.Wait()
}

// TestRequestRepliesInOrder answers three requests in reverse order; the
// replies must still leave in request order (RFC 4254 §5.4).
func TestRequestRepliesInOrder(t *testing.T) {
	r := newRawPeer(t, nil)
	c, conf := r.openAccepted(1<<20, 32768)
	for i := range 3 {
		r.send((&channelRequestMsg{RecipientChannel: conf.SenderChannel, RequestType: fmt.Sprint("req", i), WantReply: true}).appendTo(nil))
	}
	var reqs []*Request
	for range 3 {
		reqs = append(reqs, <-c.Requests())
	}
	// req0 → false, req1 → true, req2 → true, answered 2, 1, 0.
	reqs[2].Reply(true)
	reqs[1].Reply(true)
	if err := reqs[1].Reply(false); !errors.Is(err, ErrAlreadyAnswered) {
		t.Errorf("second Reply: %v", err)
	}
	reqs[0].Reply(false)
	want := []byte{wire.MsgChannelFailure, wire.MsgChannelSuccess, wire.MsgChannelSuccess}
	for i, w := range want {
		if p := r.recv(); len(p) != 5 || p[0] != w || u32(p[1:]) != 0 {
			t.Fatalf("reply %d = % x, want type %d for channel 0", i, p, w)
		}
	}
}

func TestGlobalRequests(t *testing.T) {
	p := newMuxPair(t, nil, &Config{GlobalRequestTypes: []string{GlobalTCPIPForward, GlobalKeepalive}})
	go func() {
		for r := range p.server.GlobalRequests() {
			if r.Type != GlobalTCPIPForward {
				t.Errorf("server got global request %q", r.Type)
				r.Reply(true, nil)
				continue
			}
			f, err := ParseTCPIPForward(r.Payload)
			if err != nil || f.AddressToBind != "localhost" {
				r.Reply(false, nil)
				continue
			}
			r.Reply(true, (&TCPIPForwardReply{PortBound: 40000}).Marshal())
		}
	}()
	ok, data, err := p.client.SendGlobalRequest(GlobalTCPIPForward, true, (&TCPIPForward{AddressToBind: "localhost"}).Marshal())
	if err != nil || !ok {
		t.Fatalf("tcpip-forward = %v, %v", ok, err)
	}
	if rep, err := ParseTCPIPForwardReply(data); err != nil || rep.PortBound != 40000 {
		t.Fatalf("reply % x: %v %v", data, rep, err)
	}
	if ok, _, err := p.client.SendGlobalRequest(GlobalTCPIPForward, true, (&TCPIPForward{AddressToBind: "evil"}).Marshal()); ok || err != nil {
		t.Fatalf("refused tcpip-forward = %v, %v", ok, err)
	}
	// keepalive@openssh.com is always refused without reaching the server layer.
	if ok, data, err := p.client.SendGlobalRequest(GlobalKeepalive, true, nil); ok || err != nil || len(data) != 0 {
		t.Fatalf("keepalive = %v, % x, %v", ok, data, err)
	}
	if ok, _, err := p.client.SendGlobalRequest("unknown@example.org", true, nil); ok || err != nil {
		t.Fatalf("unknown = %v, %v", ok, err)
	}
	// The server can send global requests to the client (hostkeys-00).
	if ok, _, err := p.server.SendGlobalRequest(GlobalHostKeys, false, nil); ok || err != nil {
		t.Fatalf("hostkeys = %v, %v", ok, err)
	}
}

func TestGlobalRepliesInOrder(t *testing.T) {
	r := newRawPeer(t, &Config{GlobalRequestTypes: []string{"a", "b"}})
	r.send((&globalRequestMsg{RequestName: "a", WantReply: true}).appendTo(nil))
	r.send((&globalRequestMsg{RequestName: "unknown", WantReply: true}).appendTo(nil))
	r.send((&globalRequestMsg{RequestName: "b", WantReply: true}).appendTo(nil))
	a := <-r.mux.GlobalRequests()
	b := <-r.mux.GlobalRequests()
	b.Reply(true, []byte{1, 2})
	a.Reply(true, []byte{9})
	want := [][]byte{{wire.MsgRequestSuccess, 9}, {wire.MsgRequestFailure}, {wire.MsgRequestSuccess, 1, 2}}
	for i, w := range want {
		if p := r.recv(); !bytes.Equal(p, w) {
			t.Fatalf("reply %d = % x, want % x", i, p, w)
		}
	}
}

func TestConcurrentChannels(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	const n, size = 20, 1 << 20
	var wg sync.WaitGroup
	for i := range n {
		c, s := p.openPair(t, "session", nil)
		want := make([]byte, size)
		rand.Read(want)
		wg.Add(3)
		go func() { defer wg.Done(); io.Copy(s, s); s.CloseWrite(); s.Close() }()
		go func() { defer wg.Done(); c.Write(want); c.CloseWrite() }()
		go func() {
			defer wg.Done()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("channel %d: %d bytes, err %v, equal %v", i, len(got), err, bytes.Equal(got, want))
			}
			c.Close()
		}()
	}
	wg.Wait()
}

// TestSlowReaderBoundedMemory: a reader that never keeps up holds at most
// the window, and the window does not grow.
func TestSlowReaderBoundedMemory(t *testing.T) {
	const window = 256 << 10
	p := newMuxPair(t, nil, &Config{InitialWindow: window, MaxWindow: 4 * window})
	c, s := p.openPair(t, "session", nil)
	const total = 4 << 20
	want := make([]byte, total)
	rand.Read(want)
	writeDone := make(chan struct{})
	go func() { c.Write(want); c.CloseWrite(); close(writeDone) }()

	// full waits until the sender has used the whole window (it is then
	// blocked on us) or has finished.
	full := func() {
		deadline := time.Now().Add(testTimeout)
		for time.Now().Before(deadline) {
			w, buffered := s.Window()
			if buffered > int(w) {
				t.Fatalf("buffered %d > window %d", buffered, w)
			}
			s.mu.Lock()
			credit := s.credit
			s.mu.Unlock()
			if credit == 0 {
				return
			}
			select {
			case <-writeDone:
				return
			case <-time.After(time.Millisecond):
			}
		}
		t.Fatal("sender never filled the window")
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		full()
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		w, buffered := s.Window()
		if buffered > int(w) {
			t.Fatalf("buffered %d > window %d", buffered, w)
		}
		if w != window {
			t.Fatalf("window grew to %d for a slow reader", w)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, mismatch", len(got))
	}
}

// TestWindowGrowth: a reader that keeps up with a sender limited by the
// window ends with a larger window, never above MaxWindow.
func TestWindowGrowth(t *testing.T) {
	const initial, maxW = 64 << 10, 1 << 20
	p := newMuxPair(t, nil, &Config{InitialWindow: initial, MaxWindow: maxW})
	c, s := p.openPair(t, "session", nil)
	go func() {
		buf := make([]byte, 32<<10)
		for range 1024 { // 32 MiB
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		c.CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := s.Read(buf)
		total += n
		if w, _ := s.Window(); w > maxW {
			t.Fatalf("window %d > MaxWindow %d", w, maxW)
		}
		if err != nil {
			break
		}
	}
	if total != 32<<20 {
		t.Fatalf("read %d bytes", total)
	}
	w, _ := s.Window()
	if w <= initial {
		t.Fatalf("window %d did not grow from %d", w, initial)
	}
	t.Logf("window grew from %d to %d", initial, w)
}

func TestOpenChannelContext(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	ctx, cancel := contextWithCancel(t)
	cancel()
	if _, err := p.client.OpenChannel(ctx, "session", nil); err == nil {
		t.Fatal("OpenChannel with a cancelled context succeeded")
	}
	// The server accepts the abandoned open late; the client closes it at
	// once, and the server sees the close.
	nc, err := p.server.Accept(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := nc.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if b := readAllBounded(t, s, 10); len(b) != 0 {
		t.Fatalf("read %q", b)
	}
	s.Close()
	waitDone(t, s)
}

func TestMuxEndWakesEveryone(t *testing.T) {
	p := newMuxPair(t, nil, &Config{GlobalRequestTypes: []string{"x"}})
	c, s := p.openPair(t, "session", nil)
	errs := make(chan error, 3)
	go func() { _, err := c.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := c.SendRequest("x", true, nil); errs <- err }()
	go func() { _, _, err := p.client.SendGlobalRequest("x", true, nil); errs <- err }()
	// Wait for the server to see the requests, so all three are blocked.
	<-s.Requests()
	<-p.server.GlobalRequests()
	p.clientConn.Close()
	for range 3 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrMuxClosed) {
				t.Errorf("blocked call returned %v, want ErrMuxClosed", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("blocked call not woken")
		}
	}
	waitDone(t, c)
	if _, err := p.client.Accept(ctxT(t)); !errors.Is(err, ErrMuxClosed) {
		t.Errorf("Accept after end: %v", err)
	}
}

// TestServerInitiatedOpen: the server opens forwarded-tcpip to the client
// (RFC 4254 §7.2), as for a remote port forward.
func TestServerInitiatedOpen(t *testing.T) {
	p := newMuxPair(t, nil, nil)
	extra := (&ForwardedTCPIP{ConnectedAddr: "127.0.0.1", ConnectedPort: 8080, OriginatorAddr: "127.0.0.1", OriginatorPort: 41000}).Marshal()
	go func() {
		nc, err := p.client.Accept(ctxT(t))
		if err != nil {
			return
		}
		f, err := ParseForwardedTCPIP(nc.ExtraData())
		if err != nil || nc.ChannelType() != ChannelTypeForwardedTCPIP || f.ConnectedPort != 8080 {
			nc.Reject(wire.OpenConnectFailed, "bad forward")
			return
		}
		c, err := nc.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	s, err := p.server.OpenChannel(ctxT(t), ChannelTypeForwardedTCPIP, extra)
	if err != nil {
		t.Fatal(err)
	}
	go func() { s.Write([]byte("GET / HTTP/1.0\r\n\r\n")); s.CloseWrite() }()
	if got := readAllBounded(t, s, 100); string(got) != "GET / HTTP/1.0\r\n\r\n" {
		t.Fatalf("echo %q", got)
	}
	waitDone(t, s)
}
