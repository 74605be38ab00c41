package sftp

import (
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/vfs"
)

// idleSessions is how many sessions BenchmarkIdleSessions holds open: enough
// that per-session costs dwarf the benchmark's own.
const idleSessions = 200

// BenchmarkIdleSessions reports the heap and stack one idle session holds
// after INIT (issue 8: a hosting server keeps thousands of such sessions,
// target 32 KiB each including the SSH layers below sftp). It counts
// HeapInuse+StackInuse before and after opening the sessions, and the
// goroutines each one keeps.
func BenchmarkIdleSessions(b *testing.B) {
	fsys, err := vfs.Local(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer fsys.Close()
	srv := NewServer(fsys, nil)
	b.ReportAllocs()
	var perSession, goroutines float64
	for range b.N {
		b.StopTimer()
		before, g0 := inUse()
		b.StartTimer()
		type end struct {
			cw   *io.PipeWriter
			cr   *io.PipeReader
			done chan struct{}
		}
		ends := make([]end, idleSessions)
		buf := make([]byte, 1024)
		for i := range ends {
			sr, cw := io.Pipe()
			cr, sw := io.Pipe()
			done := make(chan struct{})
			go func() {
				srv.Serve(context.Background(), sr, sw)
				sw.Close()
				close(done)
			}()
			send(b, cw, &initMsg{Version: 3})
			recvInto(b, cr, buf)
			ends[i] = end{cw, cr, done}
		}
		// Idle means past the linger of the goroutines the INIT started.
		// The sleep is timed on purpose: an op then takes over a second,
		// so the default -benchtime runs one, not ever more of them.
		time.Sleep(workerLinger + 200*time.Millisecond)
		b.StopTimer()
		after, g1 := inUse()
		perSession = float64(after-before) / idleSessions
		goroutines = float64(g1-g0) / idleSessions
		for _, e := range ends {
			e.cw.Close()
			e.cr.Close()
			<-e.done
		}
		b.StartTimer()
	}
	b.ReportMetric(perSession, "B/session")
	b.ReportMetric(goroutines, "goroutines/session")
}

// inUse returns the heap and stack in use after a full collection, and the
// number of goroutines.
func inUse() (uint64, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, runtime.NumGoroutine()
}

// sessionGoroutines counts the goroutines running the named session
// method, from a dump of all goroutines.
func sessionGoroutines(method string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "sftp.(*session)."+method+"(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitGoroutines waits (at most 20 linger periods) until no goroutine runs
// method and reports whether that happened.
func waitGoroutines(method string) bool {
	for range 200 {
		if sessionGoroutines(method) == 0 {
			return true
		}
		time.Sleep(workerLinger / 10)
	}
	return false
}

// TestWorkersOnDemand checks that workers start with a burst of data
// requests, never more than Options.Workers, leave with the reply writer
// once the session is idle, and start again for the next request.
func TestWorkersOnDemand(t *testing.T) {
	const workers = 3
	ts := startServer(t, &Options{Workers: workers})
	ts.write(t, "f", strings.Repeat("x", 64<<10))
	rc := ts.raw(t)
	for _, m := range []string{"worker", "writer"} {
		if !waitGoroutines(m) {
			t.Fatalf("idle session still runs %d %s goroutines", sessionGoroutines(m), m)
		}
	}
	rc.send(&openReq{ID: rc.nextID(), Path: "/f", PFlags: fxfRead})
	h := rc.handle()
	const burst = 40
	maxSeen := 0
	for round := 0; round < 2; round++ {
		// One write, as a pipelining client's requests arrive: the
		// dispatcher finds the next request buffered and hands the reads
		// to workers (a lone request it runs itself).
		var burstBytes []byte
		for i := 0; i < burst; i++ {
			m := &readReq{ID: uint32(100 + i), Handle: h, Offset: uint64(i) * 1024, Length: 1024}
			start := len(burstBytes)
			burstBytes = m.appendTo(append(burstBytes, 0, 0, 0, 0))
			binary.BigEndian.PutUint32(burstBytes[start:], uint32(len(burstBytes)-start-4))
		}
		go rc.sendRaw(burstBytes)
		for i := 0; i < burst; i++ {
			maxSeen = max(maxSeen, sessionGoroutines("worker"))
			var d dataMsg
			if p := rc.recv(); !d.unmarshal(p) || d.ID != uint32(100+i) || len(d.Data) != 1024 {
				t.Fatalf("round %d: reply %d: %x", round, i, p[:min(len(p), 16)])
			}
		}
		if maxSeen > workers {
			t.Fatalf("%d workers ran, Options.Workers is %d", maxSeen, workers)
		}
		// After the linger the session holds no worker and no writer; the
		// next round must start them again.
		for _, m := range []string{"worker", "writer"} {
			if !waitGoroutines(m) {
				t.Fatalf("round %d: idle session still runs %d %s goroutines", round, sessionGoroutines(m), m)
			}
		}
	}
	if maxSeen == 0 {
		t.Fatal("no worker seen during the bursts")
	}
}
