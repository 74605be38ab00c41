package sftp

import (
	"context"
	"io"
	"runtime"
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
		b.StopTimer()
		// Idle means past the linger of the goroutines the INIT started.
		time.Sleep(workerLinger + 200*time.Millisecond)
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
