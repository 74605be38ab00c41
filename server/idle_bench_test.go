package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

// idleConns is how many authenticated SFTP connections
// BenchmarkIdleSFTPSessions holds open.
const idleConns = 100

// BenchmarkIdleSFTPSessions reports what one idle authenticated SFTP
// session costs (issue 8): heap+stack in use and goroutines per
// connection, after INIT/VERSION and after the sftp package's workers have
// lingered out. Client and server run in this process, so the figures
// include the client's transport and mux; the server's share is what
// remains after subtracting a client (see the report in issue 8).
func BenchmarkIdleSFTPSessions(b *testing.B) {
	if os.Getenv("FERRY_IDLE_HEAPPROFILE") != "" {
		// Every allocation sampled, so small per-connection objects show.
		runtime.MemProfileRate = 1
	}
	fsys, err := vfs.Local(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer fsys.Close()
	sftpSrv := sftp.NewServer(fsys, nil)
	srv := &server.Server{SubsystemHandlers: map[string]server.Handler{
		"sftp": server.HandlerFunc(func(s *server.Session) {
			sftpSrv.Serve(s.Context(), s, s)
		}),
	}}
	ts := startServer(b, srv)
	b.ReportAllocs()
	var perConn, goroutines float64
	for range b.N {
		b.StopTimer()
		before, g0 := memInUse()
		b.StartTimer()
		clients := make([]*rawClient, idleConns)
		for i := range clients {
			c := dialRaw(b, ts.addr)
			c.nc.SetDeadline(time.Time{})
			c.login()
			mux, err := connection.New(c.tc, &connection.Config{})
			if err != nil {
				b.Fatal(err)
			}
			go mux.Run()
			ch, err := mux.OpenChannel(context.Background(), connection.ChannelTypeSession, nil)
			if err != nil {
				b.Fatal(err)
			}
			if ok, err := ch.SendRequest(connection.RequestSubsystem, true, wire.AppendStringS(nil, "sftp")); !ok || err != nil {
				b.Fatalf("subsystem: %v %v", ok, err)
			}
			// SSH_FXP_INIT version 3, then the VERSION reply.
			if _, err := ch.Write([]byte{0, 0, 0, 5, 1, 0, 0, 0, 3}); err != nil {
				b.Fatal(err)
			}
			var hdr [4]byte
			if _, err := io.ReadFull(ch, hdr[:]); err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyN(io.Discard, ch, int64(binary.BigEndian.Uint32(hdr[:]))); err != nil {
				b.Fatal(err)
			}
			clients[i] = c
		}
		// Past sftp's worker linger. Timed on purpose: an op then takes
		// over a second, so the default -benchtime runs one.
		time.Sleep(1200 * time.Millisecond)
		b.StopTimer()
		if testing.Verbose() {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Printf("before GC: heap in use %d KiB, stacks %d KiB, %d GC cycles\n", m.HeapInuse>>10, m.StackInuse>>10, m.NumGC)
		}
		after, g1 := memInUse()
		writeIdleProfile(b)
		perConn = float64(after-before) / idleConns
		goroutines = float64(g1-g0) / idleConns
		for _, c := range clients {
			c.tc.Close()
		}
		b.StartTimer()
	}
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(goroutines, "goroutines/conn")
}

// writeIdleProfile writes a heap profile of the idle connections to the
// file named by $FERRY_IDLE_HEAPPROFILE, if set: which layer holds what
// (go tool pprof -sample_index=inuse_space -top).
func writeIdleProfile(b *testing.B) {
	name := os.Getenv("FERRY_IDLE_HEAPPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
	g, err := os.Create(name + ".goroutines")
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	if err := pprof.Lookup("goroutine").WriteTo(g, 1); err != nil {
		b.Fatal(err)
	}
}

func memInUse() (uint64, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if testing.Verbose() {
		fmt.Printf("heap in use %d KiB, stacks %d KiB, goroutines %d\n", m.HeapInuse>>10, m.StackInuse>>10, runtime.NumGoroutine())
	}
	return m.HeapInuse + m.StackInuse, runtime.NumGoroutine()
}
