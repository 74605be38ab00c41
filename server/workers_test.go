package server

import (
	"sync"
	"testing"
	"time"
)

// TestWorkerPool: functions run, idle workers are reused up to max and
// leave after wait, and a worker popped as its timer fires still runs its
// function.
func TestWorkerPool(t *testing.T) {
	p := &workerPool{max: 2, wait: 20 * time.Millisecond}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := 0
	for range 50 {
		wg.Add(1)
		p.run(func() {
			mu.Lock()
			ran++
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	if ran != 50 {
		t.Fatalf("ran %d of 50", ran)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.idle)
		p.mu.Unlock()
		if n <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, max 2", n)
		}
		time.Sleep(time.Millisecond)
	}
	// Around the idle timeout, every function still runs exactly once.
	for i := range 200 {
		done := make(chan struct{})
		p.run(func() { close(done) })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("function %d never ran", i)
		}
		time.Sleep(time.Duration(i%25) * time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		p.mu.Lock()
		n := len(p.idle)
		p.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still idle long after wait", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWorkerPoolStop: stop ends the idle workers, a busy one leaves when
// its function returns, and run still runs functions afterwards.
func TestWorkerPoolStop(t *testing.T) {
	p := &workerPool{max: 4, wait: time.Hour}
	release := make(chan struct{})
	busyDone := make(chan struct{})
	p.run(func() { <-release; close(busyDone) })
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		p.run(wg.Done)
	}
	wg.Wait()
	p.stop()
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle workers after stop", idle)
	}
	close(release)
	<-busyDone
	done := make(chan struct{})
	p.run(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run after stop never ran its function")
	}
	p.mu.Lock()
	idle = len(p.idle)
	p.mu.Unlock()
	if idle != 0 {
		t.Fatalf("a worker went idle after stop (%d)", idle)
	}
}
