package security

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// The slowloris attack: the 1,000 connections, and the grace time
// set in its configuration (sshd's default 120 s would not fit a test).
const (
	slowlorisAttackers = 1000
	slowlorisGrace     = 10 * time.Second
)

// TestSlowloris: 1,000 pre-auth connections trickle one byte per second
// while an authenticated SFTP download runs. max_startups (10:30:100)
// drops most of them at once and login_grace_time (10 s here) cuts the
// rest; the download keeps its throughput and the server stays small.
//
// Throughput on a shared 2-core machine is noisy, so each phase is the
// best of several downloads, and the reference is the lower of the best
// before and the best after the attack; the test fails only if the best
// download under attack is more than 10% slower than that, in two
// attack rounds running (noise rarely loses twice; a real slowdown does).
func TestSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 15-30 s")
	}
	const fileSize = 64 << 20
	var lim syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur < 4*slowlorisAttackers {
		lim.Cur = min(lim.Max, 4*slowlorisAttackers)
		must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	}
	if lim.Cur < 2*slowlorisAttackers+100 {
		t.Skipf("RLIMIT_NOFILE %d is too low for %d attackers", lim.Cur, slowlorisAttackers)
	}
	s := newServer(t, noPenaltiesConfig+`login_grace_time = "10s"
`, testUser{name: "alice", password: alicePassword})
	s.assertServing("alice", alicePassword)
	must(t, os.WriteFile(filepath.Join(s.home("alice"), "big"), nil, 0o644))
	must(t, os.Truncate(filepath.Join(s.home("alice"), "big"), fileSize))

	sc, closeFn := s.sftpClient("alice", alicePassword)
	defer closeFn()
	download := func() float64 {
		t.Helper()
		f, err := sc.Open("big")
		must(t, err)
		defer f.Close()
		start := time.Now()
		n, err := f.WriteTo(io.Discard)
		if err != nil || n != fileSize {
			t.Fatalf("download: %d bytes, %v", n, err)
		}
		return float64(n) / (1 << 20) / time.Since(start).Seconds()
	}
	const downloads = 8
	var baseline float64
	for range downloads {
		baseline = max(baseline, download())
	}
	base := s.rssKiB()
	// A throughput comparison on a shared machine can lose to noise once;
	// a real slowdown loses twice, so the attack runs up to two times.
	for round := 1; ; round++ {
		if slowlorisRound(t, s, download, downloads, baseline, base, round == 2) || round == 2 {
			break
		}
		t.Logf("round %d: throughput below the bound; once more", round)
	}

	s.assertServing("alice", alicePassword)
}

// slowlorisRound runs the attack once while downloading; it reports
// whether the throughput stayed within 10% (failing the test outright on
// every other check, and on throughput when final).
func slowlorisRound(t *testing.T, s *ferryServer, download func() float64, downloads int, baseline float64, base int, final bool) bool {
	t.Helper()
	var cut, open atomic.Int64
	var latest atomic.Int64 // longest any attacker survived, in ms
	var wg, dialed sync.WaitGroup
	attackStart := time.Now()
	for range slowlorisAttackers {
		wg.Add(1)
		dialed.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
			dialed.Done()
			if err != nil {
				cut.Add(1)
				return
			}
			defer nc.Close()
			open.Add(1)
			start := time.Now()
			nc.SetDeadline(start.Add(slowlorisGrace + 10*time.Second))
			line := []byte("SSH-2.0-slowloris-attacker-with-a-long-version-string-to-trickle\r\n")
			done := make(chan struct{})
			go func() {
				// The server's version line and then EOF.
				io.Copy(io.Discard, nc)
				close(done)
			}()
			for i := 0; ; i++ {
				if _, err := nc.Write(line[i%len(line) : i%len(line)+1]); err != nil {
					break
				}
				select {
				case <-done:
				case <-time.After(time.Second):
					continue
				}
				break
			}
			<-done
			lived := time.Since(start).Milliseconds()
			for {
				old := latest.Load()
				if lived <= old || latest.CompareAndSwap(old, lived) {
					break
				}
			}
			cut.Add(1)
		}()
	}
	// Measure once the connection storm is over and the survivors
	// trickle: that is the slowloris state (the storm itself is a
	// different attack, limited by max_startups).
	dialed.Wait()
	time.Sleep(time.Until(attackStart.Add(2 * time.Second)))
	trickling := open.Load() - cut.Load()
	var underAttack float64
	var peak int
	for range downloads {
		underAttack = max(underAttack, download())
		peak = max(peak, s.rssKiB())
	}
	attackTook := time.Since(attackStart)
	for time.Since(attackStart) < slowlorisGrace/2 {
		peak = max(peak, s.rssKiB())
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	var after float64
	for range downloads {
		after = max(after, download())
	}
	t.Logf("download: best %.1f MiB/s before, %.1f MiB/s under attack (measured by %v, %d attackers trickling), %.1f MiB/s after; %d attackers connected, all %d cut, the last after %d ms; RSS %d -> peak %d KiB",
		baseline, underAttack, attackTook.Round(time.Millisecond), trickling, after, open.Load(), cut.Load(), latest.Load(), base, peak)
	// The lower of the two references: background load that slows a
	// whole phase (other test packages, fuzzers) is not the attack's doing.
	baseline = min(baseline, after)
	if cut.Load() != slowlorisAttackers {
		t.Fatalf("%d of %d attackers were cut", cut.Load(), slowlorisAttackers)
	}
	if latest.Load() > (slowlorisGrace + 5*time.Second).Milliseconds() {
		t.Fatalf("an attacker survived %d ms, beyond login_grace_time %v", latest.Load(), slowlorisGrace)
	}
	if peak-base > rssBudgetKiB {
		t.Fatalf("RSS grew %d KiB under attack", peak-base)
	}
	if underAttack >= 0.9*baseline {
		return true
	}
	if testenv.RaceEnabled {
		// 1000 attackers and the downloader run instrumented in this
		// process: the bound is checked by the plain run of make test.
		t.Logf("race detector on: throughput %.1f -> %.1f MiB/s not asserted", baseline, underAttack)
		return true
	}
	if final {
		t.Fatalf("throughput dropped from %.1f to %.1f MiB/s under attack", baseline, underAttack)
	}
	return false
}
