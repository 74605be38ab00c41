package kex

import (
	"crypto/rand"
	"testing"
)

// BenchmarkServerKex is one complete exchange, client and server, over the
// in-memory pipe: both sides' CPU plus the goroutine hand-offs.
func BenchmarkServerKex(b *testing.B) {
	hk := newTestHostKey()
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			m := mustMethod(b, name, nil)
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				run := runKex(b, m, m, hk, rand.Reader, rand.Reader)
				if run.clientErr != nil || run.serverErr != nil {
					b.Fatal(run.clientErr, run.serverErr)
				}
			}
		})
	}
}

// BenchmarkServerSide is the server's share of one login: the method's
// Server, host key signature included, answering canned client messages
// recorded from a real client. This is the number the per-login CPU
// budget (0.6 ms) is about.
func BenchmarkServerSide(b *testing.B) {
	hk := newTestHostKey()
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			m := mustMethod(b, name, nil)
			run := runKex(b, m, m, hk, rand.Reader, rand.Reader)
			if run.clientErr != nil || run.serverErr != nil {
				b.Fatal(run.clientErr, run.serverErr)
			}
			script := run.c2s
			magics := testMagics()
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				st := &scriptTransport{packets: script}
				if _, err := m.Server(st, magics, hk, rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNew measures method construction, which for the DH methods
// parses the group primes from hex on every call.
func BenchmarkNew(b *testing.B) {
	for _, name := range []string{"curve25519-sha256", "diffie-hellman-group14-sha256", "diffie-hellman-group-exchange-sha256"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustMethod(b, name, nil)
			}
		})
	}
}

// reportCPU adds a cpu-ns/op metric (process CPU time per iteration) to a
// benchmark; call it before the loop and defer the result.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
