package transport_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/transport"
)

// countingConn counts Write calls: each is one write(2) on the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// openSSHMaxPacket is the maximum packet OpenSSH advertises for session
// channels (CHAN_SES_PACKET_DEFAULT, 32 KiB). The receiving Mux uses it so
// a large write splits as it does toward an OpenSSH client.
const openSSHMaxPacket = 32 << 10

// muxPair runs connection.Muxes over our client and server transports on
// loopback TCP and opens one channel; the client's socket counts writes.
// The server Mux advertises openSSHMaxPacket.
func muxPair(t testing.TB, scfg *transport.Config, ccfg *transport.ClientConfig) (cw *countingConn, client, server *connection.Channel) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *transport.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		c, err := transport.Server(nc, scfg)
		ch <- res{c, err}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cw = &countingConn{Conn: nc}
	ct, cerr := transport.Client(cw, ccfg)
	r := <-ch
	if cerr != nil || r.err != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, r.err)
	}
	st := r.c
	t.Cleanup(func() { ct.Close(); st.Close() })
	authenticated(t, ct, st)
	cm, err := connection.New(ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := connection.New(st, &connection.Config{MaxPacket: openSSHMaxPacket})
	if err != nil {
		t.Fatal(err)
	}
	go cm.Run()
	go sm.Run()
	acc := make(chan *connection.Channel, 1)
	go func() {
		defer close(acc)
		nch, err := sm.Accept(context.Background())
		if err != nil {
			return
		}
		if c, err := nch.Accept(); err == nil {
			acc <- c
		}
	}()
	client, err = cm.OpenChannel(context.Background(), connection.ChannelTypeSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	return cw, client, server
}

// TestChannelWriteBatchesPackets: a channel write of eight 32 KiB packets
// reaches the socket in far fewer write(2) calls than packets, because all
// but the last chunk go out with WritePacketMore.
func TestChannelWriteBatchesPackets(t *testing.T) {
	cw, c, s := muxPair(t, allAlgorithmsConfig(), &transport.ClientConfig{Ciphers: []string{"aes128-gcm@openssh.com"}})
	const size = 8 * 32 << 10
	want := make([]byte, size)
	rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, size)
		io.ReadFull(s, b)
		got <- b
	}()
	before := cw.writes.Load()
	if n, err := c.Write(want); n != size || err != nil {
		t.Fatal(n, err)
	}
	writes := cw.writes.Load() - before
	if !bytes.Equal(<-got, want) {
		t.Fatal("data differs")
	}
	// 8 packets of 32 KiB fit the packet writer's 256 KiB flush threshold
	// but for the last, which flushes: one write (two if a control message
	// of another goroutine happened to flush in between).
	if writes > 2 {
		t.Fatalf("%d write(2) calls for 8 packets, want batching", writes)
	}
	t.Logf("256 KiB channel write: %d write(2) calls", writes)
}

// TestChannelWriteBatchesAcrossRekey: batched channel writes interleave
// with frequent key re-exchanges without losing or reordering data.
func TestChannelWriteBatchesAcrossRekey(t *testing.T) {
	scfg := allAlgorithmsConfig()
	scfg.RekeyBytes = 256 << 10
	ccfg := &transport.ClientConfig{Ciphers: []string{"aes128-gcm@openssh.com"}, RekeyBytes: 300 << 10}
	_, c, s := muxPair(t, scfg, ccfg)
	const total = 8 << 20
	want := make([]byte, total)
	rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(s)
		got <- b
	}()
	for p := want; len(p) > 0; p = p[min(len(p), 255<<10):] {
		if _, err := c.Write(p[:min(len(p), 255<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseWrite()
	if !bytes.Equal(<-got, want) {
		t.Fatal("data differs after rekeys")
	}
}

// BenchmarkMuxOverTCP streams channel writes over real loopback TCP
// through both transports; writes/op is write(2) calls on the sender and
// cpu-ns/op the CPU time of both ends.
func BenchmarkMuxOverTCP(b *testing.B) {
	for _, cipher := range []string{"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"} {
		// 32 KiB + 13: an SFTP READ reply at OpenSSH's default -B (two
		// packets); 255 KiB: one at -B 261120.
		for _, size := range []int{32<<10 + 13, 255 << 10} {
			b.Run(cipher+"/"+byteSizeName(size), func(b *testing.B) {
				cw, c, s := muxPair(b, allAlgorithmsConfig(), &transport.ClientConfig{Ciphers: []string{cipher}})
				done := make(chan int64)
				go func() {
					n, _ := io.Copy(io.Discard, s)
					done <- n
				}()
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				before, cpu := cw.writes.Load(), processCPU()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				c.CloseWrite()
				if n := <-done; n != int64(size)*int64(b.N) {
					b.Fatalf("read %d", n)
				}
				b.StopTimer()
				b.ReportMetric(float64(cw.writes.Load()-before)/float64(b.N), "writes/op")
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func byteSizeName(n int) string {
	if n%1024 == 0 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n>>10) + "KiB+" + itoa(n%1024)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
