// Command ferrybench runs ferry and OpenSSH's sshd side by side and compares server CPU per byte,
// logins per second, memory per idle session and throughput over a delayed link (issue 8).
// bench/run.sh builds ferry and calls it; it needs root for its tmpfs, user and cgroups.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-sftp/ferry/bench"
)

func main() {
	o := &bench.Options{Ciphers: bench.DefaultCiphers()}
	flag.StringVar(&o.Ferry, "ferry", "bin/ferry", "ferry binary")
	flag.StringVar(&o.SSHD, "sshd", "/usr/sbin/sshd", "OpenSSH server binary")
	flag.StringVar(&o.SFTP, "sftp", "sftp", "OpenSSH sftp client")
	flag.IntVar(&o.Runs, "n", 3, "repetitions of each measurement (the table shows the median)")
	size := flag.String("size", "1G", "bytes per SFTP get/put (K, M, G suffixes)")
	flag.IntVar(&o.Logins, "logins", 2000, "logins per run")
	flag.IntVar(&o.LoginClients, "clients", 8, "concurrent login clients")
	flag.IntVar(&o.IdleSessions, "idle", 1000, "idle SFTP sessions")
	relaySize := flag.String("relay-size", "1G", "bytes uploaded through the delaying relay (1 GiB, like the transfers, so the steady state and not the start-up round trips dominates)")
	flag.DurationVar(&o.RelayDelay, "relay-delay", 25*time.Millisecond, "one-way delay of the relay")
	flag.BoolVar(&o.FerryOnly, "ferry-only", false, "run the workloads against ferry alone (e.g. -workloads idle -idle 10000, a count OpenSSH's per-session processes cannot reach here)")
	workloads := flag.String("workloads", "transfer,logins,idle,relay", "comma-separated workloads")
	ciphers := flag.String("ciphers", "", "comma-separated cipher[+mac] list (default: aes128-gcm, chacha20-poly1305, aes128-ctr+hmac-sha2-256-etm)")
	flag.StringVar(&o.FerryMetrics, "ferry-metrics", "", "loopback host:port for ferry's Prometheus endpoint; the idle workload logs Go runtime gauges (diagnosis only)")
	flag.StringVar(&o.PerfDir, "perf", "", "directory for `perf record -g` of ferry during the first aes128-gcm get and put")
	out := flag.String("out", "bench/results", "directory for the JSON results")
	quick := flag.Bool("quick", os.Getenv("FERRY_BENCH_QUICK") == "1", "short smoke run (also FERRY_BENCH_QUICK=1)")
	flag.Parse()
	if *quick {
		o.Runs, *size, o.Logins, o.IdleSessions, *relaySize = 1, "16M", 40, 20, "8M"
	}
	var err error
	if o.FileSize, err = parseSize(*size); err != nil {
		log.Fatal(err)
	}
	if o.RelaySize, err = parseSize(*relaySize); err != nil {
		log.Fatal(err)
	}
	o.Workloads = strings.Split(*workloads, ",")
	if *ciphers != "" {
		o.Ciphers = nil
		for _, c := range strings.Split(*ciphers, ",") {
			name, mac, _ := strings.Cut(c, "+")
			o.Ciphers = append(o.Ciphers, bench.Cipher{Name: name, MAC: mac})
		}
	}
	o.Logf = log.Printf

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	r, err := bench.Run(ctx, o)
	if r != nil {
		r.WriteTable(os.Stdout)
		if werr := writeJSON(*out, r); werr != nil {
			log.Print(werr)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

func writeJSON(dir string, r *bench.Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, time.Now().UTC().Format("2006-01-02T15-04-05Z")+".json")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return err
	}
	log.Printf("results written to %s", p)
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
