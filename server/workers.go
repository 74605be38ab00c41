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
	// stopped: the Server was shut down, so workers exit as soon as
	// their function returns instead of waiting for more work.
	stopped bool
}

// stop ends the idle workers now and every busy one when its function
// returns. run still works afterwards, on goroutines of their own: a
// handler outliving Close may still resume a session. Without it the
// pool's goroutines outlived Shutdown by up to handshakeWorkerIdle, which
// a caller checking for leaked goroutines (goleak) reported.
func (p *workerPool) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, ch := range p.idle {
		close(ch)
	}
	p.idle = nil
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
		if p.stopped || len(p.idle) >= maxIdle {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		t.Reset(wait)
		var ok bool
		select {
		case f, ok = <-ch:
			if !ok {
				return // stopped
			}
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
		// the way; or stop did, and closed ch.
		if f, ok = <-ch; !ok {
			return
		}
	}
}
