package bench

import (
	"io"
	"net"
	"sync"
	"time"
)

// relayChunk is the read size of the relay; a chunk is delayed as a unit.
const relayChunk = 64 << 10

// relayQueue bounds the chunks in flight per direction. 4096 x 64 KiB = 256 MiB buffered covers
// the bandwidth-delay product of loopback speeds (several GB/s x 25 ms) so the relay itself never
// limits bandwidth; only the delay does.
const relayQueue = 4096

// Relay is a loopback TCP proxy that holds every chunk for Delay in each direction, adding
// 2*Delay of round-trip time without limiting bandwidth, in order. It stands in for netem, which
// this kernel lacks.
type Relay struct {
	Delay  time.Duration
	Target string

	l  net.Listener
	wg sync.WaitGroup
}

// StartRelay listens on a loopback port and forwards each connection to target.
func StartRelay(target string, delay time.Duration) (*Relay, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{Delay: delay, Target: target, l: l}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Port is the relay's listening port.
func (r *Relay) Port() int { return r.l.Addr().(*net.TCPAddr).Port }

// Close stops accepting and waits for open connections to end.
func (r *Relay) Close() error {
	err := r.l.Close()
	r.wg.Wait()
	return err
}

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		t, err := net.Dial("tcp", r.Target)
		if err != nil {
			c.Close()
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			var both sync.WaitGroup
			both.Add(2)
			go r.pipe(&both, t.(*net.TCPConn), c.(*net.TCPConn))
			go r.pipe(&both, c.(*net.TCPConn), t.(*net.TCPConn))
			both.Wait()
			c.Close()
			t.Close()
		}()
	}
}

type chunk struct {
	at   time.Time
	data []byte
}

// pipe copies src to dst, each chunk no earlier than Delay after it was read. A FIN travels
// with the same delay, as a chunk with no data.
func (r *Relay) pipe(done *sync.WaitGroup, dst, src *net.TCPConn) {
	defer done.Done()
	q := make(chan chunk, relayQueue)
	go func() {
		defer close(q)
		for {
			b := make([]byte, relayChunk)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{time.Now().Add(r.Delay), b[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	failed := false
	for c := range q {
		if failed {
			continue // drain so the reader is not stuck
		}
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			failed = true
			src.CloseRead()
		}
	}
	if d := r.Delay; d > 0 {
		time.Sleep(d)
	}
	dst.CloseWrite()
	if failed {
		io.Copy(io.Discard, src)
	}
}
