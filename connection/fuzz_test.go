package connection

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// fuzzConn feeds a Mux a scripted packet sequence and plays the server
// layer synchronously inside ReadPacket (which runs on the read loop), so
// every run is deterministic: before each packet it answers queued opens and
// requests, reads buffered data and pokes channels, then checks the bounds.
type fuzzConn struct {
	t       *testing.T
	packets [][]byte
	m       *Mux
	chans   []*Channel
	step    int
	written int
}

var errFuzzEnd = errors.New("end of fuzz input")

func (f *fuzzConn) WritePacket(p []byte) error { f.written += len(p); return nil }

func (f *fuzzConn) ReadPacket() ([]byte, error) {
	f.serverLayer()
	f.checkBounds()
	if len(f.packets) == 0 {
		return nil, errFuzzEnd
	}
	p := f.packets[0]
	f.packets = f.packets[1:]
	return p, nil
}

func (f *fuzzConn) serverLayer() {
	m := f.m
	f.step++
	for {
		select {
		case nc := <-m.incoming:
			if nc.ChannelType() == "reject" {
				nc.Reject(wire.OpenConnectFailed, "no")
				continue
			}
			c, err := nc.Accept()
			if err == nil {
				f.chans = append(f.chans, c)
			}
			continue
		case r := <-m.globalReqs:
			r.Reply(len(r.Payload)%2 == 0, r.Payload)
			continue
		default:
		}
		break
	}
	if f.step%5 == 2 {
		// An open whose caller has already given up: exercises the
		// abandoned-open path with whatever answer the input sends.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		m.OpenChannel(ctx, ChannelTypeForwardedTCPIP, nil)
		m.SendGlobalRequest(GlobalHostKeys, false, nil)
	}
	live := f.chans[:0]
	for i, c := range f.chans {
		select {
		case <-c.Done():
			continue
		default:
		}
		live = append(live, c)
	drain:
		for {
			select {
			case r, ok := <-c.Requests():
				if !ok {
					break drain
				}
				r.Reply(r.Type != "fail")
			default:
				break drain
			}
		}
		// Every third step a channel reads, so some windows fill up and
		// others are adjusted (and may grow).
		if (f.step+i)%3 == 0 {
			var buf [40]byte
			if _, buffered := c.Window(); buffered > 0 {
				c.mu.Lock()
				hasOut := c.stdout.Len() > 0
				c.mu.Unlock()
				if hasOut {
					c.Read(buf[:])
				} else {
					c.ReadStderr(buf[:])
				}
			}
		}
		c.mu.Lock()
		credit := c.remoteCredit
		c.mu.Unlock()
		switch (f.step + i) % 7 {
		case 1:
			if credit > 0 {
				c.Write(make([]byte, min(credit, 100)))
			}
		case 3:
			c.SendRequest("exit-status", false, []byte{0, 0, 0, 1})
		case 5:
			if f.step%11 == 0 {
				c.CloseWrite()
			}
		case 6:
			if f.step%13 == 0 {
				c.Close()
			}
		}
	}
	f.chans = live
}

func (f *fuzzConn) checkBounds() {
	m := f.m
	m.mu.Lock()
	n, pending := m.nChans, m.pendingOpens
	m.mu.Unlock()
	if n+pending > m.cfg.MaxChannels {
		f.t.Fatalf("%d channels + %d pending > MaxChannels %d", n, pending, m.cfg.MaxChannels)
	}
	for _, c := range f.chans {
		w, buffered := c.Window()
		if buffered > int(w) || w > m.cfg.MaxWindow {
			f.t.Fatalf("channel %d: %d buffered, window %d, max %d", c.localID, buffered, w, m.cfg.MaxWindow)
		}
		c.replies.mu.Lock()
		outstanding := len(c.replies.entries)
		c.replies.mu.Unlock()
		if outstanding > c.replies.limit {
			f.t.Fatalf("channel %d: %d unanswered requests", c.localID, outstanding)
		}
	}
}

// splitPackets reads the fuzz input as a sequence of 1-byte length +
// payload records.
func splitPackets(b []byte) [][]byte {
	var ps [][]byte
	for len(b) > 0 {
		n := int(b[0])
		b = b[1:]
		n = min(n, len(b))
		ps = append(ps, b[:n])
		b = b[n:]
	}
	return ps
}

func joinPackets(ps ...[]byte) []byte {
	var b []byte
	for _, p := range ps {
		if len(p) > 255 {
			panic("fuzz seed packet too long")
		}
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}

func fuzzMuxSeeds() [][]byte {
	open := func(id uint32, typ string) []byte {
		return (&channelOpenMsg{ChannelType: typ, SenderChannel: id, InitialWindowSize: 200, MaximumPacketSize: 50}).appendTo(nil)
	}
	req := func(ch uint32, typ string, want bool, data []byte) []byte {
		return (&channelRequestMsg{RecipientChannel: ch, RequestType: typ, WantReply: want, Data: data}).appendTo(nil)
	}
	data := func(ch uint32, n int) []byte { return dataMsg(ch, make([]byte, n)) }
	ext := func(ch uint32, n int) []byte {
		return (&extendedDataMsg{RecipientChannel: ch, DataTypeCode: 1, Data: make([]byte, n)}).appendTo(nil)
	}
	adj := func(ch, n uint32) []byte {
		return (&windowAdjustMsg{RecipientChannel: ch, BytesToAdd: n}).appendTo(nil)
	}
	eof := func(ch uint32) []byte { return (&channelEOFMsg{RecipientChannel: ch}).appendTo(nil) }
	cls := func(ch uint32) []byte { return (&channelCloseMsg{RecipientChannel: ch}).appendTo(nil) }
	glob := func(name string, want bool, d []byte) []byte {
		return (&globalRequestMsg{RequestName: name, WantReply: want, Data: d}).appendTo(nil)
	}
	pty := (&PtyRequest{Term: "xterm", Columns: 80, Rows: 24, Modes: []TerminalMode{{1, 3}}}).Marshal()
	return [][]byte{
		joinPackets(open(0, "session"), req(0, "pty-req", true, pty), req(0, "shell", true, nil), data(0, 32), data(0, 32), eof(0), cls(0)),
		joinPackets(open(0, "session"), open(1, "reject"), open(2, "session"), data(0, 50), data(0, 50), data(0, 50), data(0, 50), adj(0, 1000), ext(0, 10), cls(0)),
		joinPackets(glob("tcpip-forward", true, (&TCPIPForward{AddressToBind: "localhost"}).Marshal()), glob("keepalive@openssh.com", true, nil), glob("x", false, nil)),
		joinPackets(open(0, "session"), req(0, "fail", true, nil), req(0, "a", true, nil), req(0, "b", true, nil), req(0, "c", true, nil), req(0, "d", true, nil), req(0, "e", true, nil)),
		joinPackets(open(0, "session"), open(1, "session"), open(2, "session"), open(3, "session"), open(4, "session"), open(5, "session"), cls(1), open(6, "session")),
		joinPackets(open(0, "session"), data(0, 51)),
		joinPackets(open(0, "session"), adj(0, 0xffffffff)),
		joinPackets(data(3, 1)),
		joinPackets([]byte{wire.MsgRequestSuccess}),
		joinPackets(open(0, "session"), (&channelSuccessMsg{RecipientChannel: 0}).appendTo(nil)),
		// Steps 2 and 7 open channel 0 (abandoned) twice; answer both.
		joinPackets(glob("x", false, nil), glob("x", false, nil),
			(&channelOpenConfirmMsg{RecipientChannel: 0, SenderChannel: 9, InitialWindowSize: 100, MaximumPacketSize: 10}).appendTo(nil),
			data(0, 5), cls(0), glob("x", false, nil), glob("x", false, nil), glob("x", false, nil),
			(&channelOpenFailureMsg{RecipientChannel: 0, ReasonCode: 2}).appendTo(nil)),
	}
}

func fuzzMuxConfig() *Config {
	return &Config{
		InitialWindow:            64,
		MaxWindow:                256,
		MaxPacket:                50,
		MaxChannels:              4,
		MaxPendingOpens:          2,
		MaxPendingRequests:       2,
		MaxPendingGlobalRequests: 2,
		GlobalRequestTypes:       []string{GlobalTCPIPForward},
	}
}

// FuzzMux feeds arbitrary packet sequences to a server Mux: it must not
// panic, must end with either the input's end or a *wire.DisconnectError,
// and must keep every bound after every packet.
func FuzzMux(f *testing.F) {
	for _, s := range fuzzMuxSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fc := &fuzzConn{t: t, packets: splitPackets(in)}
		m, err := New(fc, fuzzMuxConfig())
		if err != nil {
			t.Fatal(err)
		}
		fc.m = m
		// A hang is a bug too: the whole run is synchronous, so it must
		// end long before this watchdog fires.
		ended := make(chan struct{})
		defer close(ended)
		go func() {
			select {
			case <-ended:
			case <-time.After(60 * time.Second):
				debug.SetTraceback("all")
				panic("FuzzMux: Run did not return")
			}
		}()
		err = m.Run()
		var de *wire.DisconnectError
		if err != errFuzzEnd && !errors.As(err, &de) {
			t.Fatalf("Run ended with %v", err)
		}
		for _, c := range fc.chans {
			select {
			case <-c.Done():
			default:
				t.Fatal("channel not ended after the read loop")
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Fatal("Write succeeded after the read loop ended")
			}
		}
	})
}

// requestParsers maps a selector byte to a payload parser and marshaller.
var requestParsers = []func([]byte) (any, error){
	wrap(ParsePtyRequest), wrap(ParseX11Request), wrap(ParseEnvRequest), wrap(ParseExecRequest),
	wrap(ParseSubsystemRequest), wrap(ParseWindowChange), wrap(ParseSignal), wrap(ParseExitStatus),
	wrap(ParseExitSignal), wrap(ParseBreak), wrap(ParseDirectTCPIP), wrap(ParseForwardedTCPIP),
	wrap(ParseTCPIPForward), wrap(ParseTCPIPForwardReply), wrap(ParseStreamlocalForward),
	wrap(ParseDirectStreamlocal), wrap(ParseForwardedStreamlocal),
	func(b []byte) (any, error) {
		modes, err := ParseTerminalModes(b)
		if err != nil {
			return nil, err
		}
		return &PtyRequest{Modes: modes}, nil
	},
}

// FuzzParseRequests runs every request payload parser: no panics, errors
// are ErrMalformedRequest, and whatever parses re-marshals to a payload that
// parses to the same value.
func FuzzParseRequests(f *testing.F) {
	for i, tc := range payloadCases() {
		f.Add(uint8(i), tc.value.(marshaler).Marshal())
	}
	f.Add(uint8(17), []byte{1, 0, 0, 0, 3, 160, 0})
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		parse := requestParsers[int(which)%len(requestParsers)]
		v, err := parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedRequest) {
				t.Fatalf("error %v is not ErrMalformedRequest", err)
			}
			return
		}
		if int(which)%len(requestParsers) == len(requestParsers)-1 {
			return // modes only: no standalone marshaller
		}
		b2 := v.(marshaler).Marshal()
		v2, err := parse(b2)
		if err != nil {
			t.Fatalf("re-parse of % x: %v", b2, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip %+v != %+v", v, v2)
		}
	})
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpora from the
// seeds above when FERRY_WRITE_CORPUS=1; otherwise it checks they exist.
func TestWriteFuzzCorpus(t *testing.T) {
	files := map[string]string{}
	for i, s := range fuzzMuxSeeds() {
		files[fmt.Sprintf("testdata/fuzz/FuzzMux/seed-%02d", i)] = fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
	}
	for i, tc := range payloadCases() {
		files[fmt.Sprintf("testdata/fuzz/FuzzParseRequests/seed-%02d", i)] = fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n", i, strconv.Quote(string(tc.value.(marshaler).Marshal())))
	}
	for name, body := range files {
		if os.Getenv("FERRY_WRITE_CORPUS") == "1" {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(name); err != nil {
			t.Errorf("seed corpus file missing (run with FERRY_WRITE_CORPUS=1): %v", err)
		}
	}
}
