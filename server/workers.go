package server

import (
	"sync"
	"time"
)

// handshakeWorkers bounds the idle goroutines kept for key exchanges:
// enough for the handshakes a busy 2-8 core server runs at once. Each
// keeps the stack the kex and signature code grew (about 32 KiB).
const handshakeWorkers = 32

// handshakeWorkerIdle is how long an idle worker waits for the next
// handshake before it exits.
const handshakeWorkerIdle = 10 * time.Second

// workerPool runs functions on goroutines that outlive them. A fresh
// goroutine's stack starts small and is copied four times on its way to
// the ~32 KiB a key exchange needs (runtime.newstack and copystack were
// 3.5% of a login's server CPU); a pooled one has grown already. The
// long-lived goroutine that then serves the connection is not pooled, so
// idle connections do not keep the big stacks.
type workerPool struct {
	mu   sync.Mutex
	idle []chan func() // idle workers, most recently used last
	max  int           // idle workers kept; 0 means handshakeWorkers
	wait time.Duration // idle time before a worker exits; 0 means handshakeWorkerIdle
}

// run runs f on an idle worker, or on a new one.
func (p *workerPool) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		ch := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		ch <- f
		return
	}
	p.mu.Unlock()
	go p.work(f)
}

func (p *workerPool) work(f func()) {
	maxIdle, wait := p.max, p.wait
	if maxIdle == 0 {
		maxIdle = handshakeWorkers
	}
	if wait == 0 {
		wait = handshakeWorkerIdle
	}
	ch := make(chan func(), 1)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		f()
		p.mu.Lock()
		if len(p.idle) >= maxIdle {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		t.Reset(wait)
		select {
		case f = <-ch:
			continue
		case <-t.C:
		}
		p.mu.Lock()
		i := -1
		for j, c := range p.idle {
			if c == ch {
				i = j
				break
			}
		}
		if i >= 0 {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// run popped this worker as the timer fired: its function is on
		// the way.
		f = <-ch
	}
}
