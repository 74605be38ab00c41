package connection

import (
	"io"
	"testing"
)

// TestDataPathAllocs proves steady-state CHANNEL_DATA costs no allocation
// in either direction: building the packet (pooled send buffer), the read
// loop copying it into pooled chunks, the reader draining them and the
// batched WINDOW_ADJUST. testing.AllocsPerRun counts every goroutine, so
// both Muxes' read loops are included.
func TestDataPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	p := newMuxPair(t, nil, nil)
	c, s := p.openPair(t, "session", nil)
	wbuf := make([]byte, 32<<10)
	rbuf := make([]byte, 32<<10)
	roundTrip := func(w, r *Channel) {
		if _, err := w.Write(wbuf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, rbuf); err != nil {
			t.Fatal(err)
		}
	}
	for range 256 { // warm the pools and the pipe's buffers
		roundTrip(c, s)
		roundTrip(s, c)
	}
	if a := testing.AllocsPerRun(500, func() { roundTrip(c, s) }); a != 0 {
		t.Errorf("client→server: %v allocs per 32 KiB write+read", a)
	}
	if a := testing.AllocsPerRun(500, func() { roundTrip(s, c) }); a != 0 {
		t.Errorf("server→client: %v allocs per 32 KiB write+read", a)
	}
	stderr := s.Stderr()
	stderrReader := readerFunc(c.ReadStderr)
	if a := testing.AllocsPerRun(500, func() {
		stderr.Write(wbuf)
		io.ReadFull(stderrReader, rbuf)
	}); a != 0 {
		t.Errorf("stderr: %v allocs per 32 KiB write+read", a)
	}
}

// BenchmarkChannelThroughput streams 32 KiB writes through one channel over
// the in-memory PacketConn pair, with a reader draining the other end.
func BenchmarkChannelThroughput(b *testing.B) {
	for _, size := range []int{32 << 10, 256<<10 - 1024} {
		b.Run(byteSize(size), func(b *testing.B) {
			p := newMuxPair(b, nil, nil)
			c, s := p.openPair(b, "session", nil)
			buf := make([]byte, size)
			done := make(chan int64)
			go func() {
				rbuf := make([]byte, 32<<10)
				var n int64
				for {
					k, err := s.Read(rbuf)
					n += int64(k)
					if err != nil {
						done <- n
						return
					}
				}
			}()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.CloseWrite()
			if n := <-done; n != int64(size)*int64(b.N) {
				b.Fatalf("read %d bytes", n)
			}
			b.StopTimer()
			w, _ := s.Window()
			b.ReportMetric(float64(w), "window-bytes")
		})
	}
}

func byteSize(n int) string {
	if n%1024 == 0 {
		return itoa(n/1024) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
