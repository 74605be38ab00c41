package security

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// mannWhitneyP is the two-sided p-value of the Mann-Whitney U test with
// the normal approximation and tie correction (valid for samples of tens
// or more, which is what the enumeration probe collects).
func mannWhitneyP(a, b []float64) float64 {
	type obs struct {
		v     float64
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	n1, n2 := float64(len(a)), float64(len(b))
	n := n1 + n2
	var rankA, tieSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // average of ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		t := float64(j - i)
		tieSum += t*t*t - t
		i = j
	}
	u := rankA - n1*(n1+1)/2
	mean := n1 * n2 / 2
	sd := math.Sqrt(n1 * n2 / 12 * ((n + 1) - tieSum/(n*(n-1))))
	if sd == 0 {
		return 1
	}
	z := math.Abs(u-mean) / sd
	return math.Erfc(z / math.Sqrt2)
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func TestMannWhitney(t *testing.T) {
	same := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := mannWhitneyP(same, same); p < 0.99 {
		t.Fatalf("identical samples: p = %v", p)
	}
	var lo, hi []float64
	for i := range 30 {
		lo = append(lo, float64(i))
		hi = append(hi, float64(i+100))
	}
	if p := mannWhitneyP(lo, hi); p > 1e-6 {
		t.Fatalf("disjoint samples: p = %v", p)
	}
}

// TestUserEnumeration: CVE-2018-15473 (OpenSSH answered differently for
// unknown users) and timing variants of it. A wrong password and a
// signature from an unauthorized key are tried, interleaved, for a known
// and an unknown user over 8 parallel connections; the FAILURE messages
// must be byte-identical and the response times indistinguishable.
//
// Flakiness: a pure p < 0.01 threshold fails 1% of correct runs. The test
// fails only when the difference is both significant (Mann-Whitney
// p < 0.01) and practically relevant (medians more than 5 ms, a tenth of
// the 50 ms failure delay, and more than 10% apart: eight parallel bcrypt
// verifications on a 2-core machine put the password medians near
// 800 ms). A real leak, such as skipping the password hash for unknown
// users, differs by the whole hash cost and fails both conditions.
func TestUserEnumeration(t *testing.T) {
	unauthorized := newEd25519(t)
	authorized := newEd25519(t)
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword, authorizedKeys: []string{authorizedLine(authorized)}})

	const (
		trials  = 200 // per method, half known, half unknown
		workers = 8
	)
	for _, method := range []string{"password", "publickey"} {
		t.Run(method, func(t *testing.T) {
			var mu sync.Mutex
			times := map[bool][]float64{}
			replies := map[bool][][]byte{}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var c *transport.Conn
					attempts, conns := 0, 0
					known := false
					for range trials / workers {
						// 5 attempts per connection stay below max_auth_tries;
						// the user name cannot change within a connection
						// (RFC 4252 §5), so connections alternate users.
						if c == nil || attempts == 5 {
							if c != nil {
								c.Close()
							}
							var err error
							if c, err = s.tryDial(nil); err != nil {
								errs <- err
								return
							}
							c.WritePacket(serviceRequest("ssh-userauth"))
							if p, err := c.ReadPacket(); err != nil || p[0] != wire.MsgServiceAccept {
								errs <- err
								return
							}
							attempts = 0
							known = (conns+w)%2 == 0
							conns++
						}
						user := "alice"
						if !known {
							user = "mallory"
						}
						var req []byte
						if method == "password" {
							req = passwordRequest(user, "wrong password")
						} else {
							req = publickeyRequest(t, c.SessionID(), user, unauthorized, true)
						}
						start := time.Now()
						c.WritePacket(req)
						p, err := c.ReadPacket()
						elapsed := time.Since(start)
						if err != nil {
							errs <- err
							return
						}
						attempts++
						mu.Lock()
						times[known] = append(times[known], float64(elapsed.Microseconds())/1000)
						replies[known] = append(replies[known], slices.Clone(p))
						mu.Unlock()
					}
					c.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("probe connection: %v", err)
			}
			want := replies[true][0]
			if want[0] != wire.MsgUserAuthFailure {
				t.Fatalf("reply %d, want USERAUTH_FAILURE", want[0])
			}
			for known, rs := range replies {
				for _, r := range rs {
					if !bytes.Equal(r, want) {
						t.Fatalf("known=%v: FAILURE %x differs from %x", known, r, want)
					}
				}
			}
			p := mannWhitneyP(times[true], times[false])
			mk, mu2 := median(times[true]), median(times[false])
			t.Logf("%s: known n=%d median %.2f ms, unknown n=%d median %.2f ms, Mann-Whitney p=%.3g",
				method, len(times[true]), mk, len(times[false]), mu2, p)
			if mk < 50 || mu2 < 50 {
				t.Errorf("failures answered in under the 50 ms failure delay")
			}
			if p < 0.01 && math.Abs(mk-mu2) > max(5, 0.1*max(mk, mu2)) {
				t.Fatalf("response time tells known from unknown users")
			}
		})
	}
}

// TestPublickeyQueryThenOtherKey: a client may query with one key (PK_OK)
// and then sign with another; the identity must be the key that signed
// (confusion here let CVE-2024-48916-class bugs, e.g. Ceph and
// x/crypto/ssh's CVE-2024-45337 misuse, authorize the queried key).
func TestPublickeyQueryThenOtherKey(t *testing.T) {
	keyA, keyB := newEd25519(t), newEd25519(t)
	s := newServer(t, probeConfig,
		testUser{name: "alice", password: alicePassword, authorizedKeys: []string{authorizedLine(keyA), authorizedLine(keyB)}},
		testUser{name: "carol", password: alicePassword, authorizedKeys: []string{authorizedLine(keyA)}},
		testUser{name: "bob", password: bobPassword, authorizedKeys: []string{authorizedLine(keyB)}},
	)

	t.Run("both-authorized", func(t *testing.T) {
		c := s.dial(nil)
		startAuth(t, c)
		c.WritePacket(publickeyRequest(t, nil, "alice", keyA, false))
		if p := readSkipping(t, c); p[0] != wire.MsgUserAuthPKOK {
			t.Fatalf("query: got %d, want PK_OK", p[0])
		}
		c.WritePacket(publickeyRequest(t, c.SessionID(), "alice", keyB, true))
		if p := readSkipping(t, c); p[0] != wire.MsgUserAuthSuccess {
			t.Fatalf("signed: got %d, want SUCCESS", p[0])
		}
		c.Close()
		fpA, fpB := keys.FingerprintSHA256(keyA.PublicKey()), keys.FingerprintSHA256(keyB.PublicKey())
		line := waitLogLine(t, s, "user=alice authenticated=true")
		if !strings.Contains(line, "key="+fpB) || strings.Contains(line, fpA) {
			t.Fatalf("connection log names the wrong key (want %s, not %s):\n%s", fpB, fpA, line)
		}
	})

	t.Run("queried-key-authorized-signed-key-not", func(t *testing.T) {
		// carol has only A; B belongs to bob.
		c := s.dial(nil)
		startAuth(t, c)
		c.WritePacket(publickeyRequest(t, nil, "carol", keyA, false))
		if p := readSkipping(t, c); p[0] != wire.MsgUserAuthPKOK {
			t.Fatalf("query: got %d, want PK_OK", p[0])
		}
		c.WritePacket(publickeyRequest(t, c.SessionID(), "carol", keyB, true))
		if p := readSkipping(t, c); p[0] != wire.MsgUserAuthFailure {
			t.Fatalf("signed with bob's key as carol: got %d, want FAILURE", p[0])
		}
		// A signature by B over a request naming A's blob.
		body := []byte{wire.MsgUserAuthRequest}
		body = wire.AppendStringS(body, "carol")
		body = wire.AppendStringS(body, "ssh-connection")
		body = wire.AppendStringS(body, "publickey")
		body = wire.AppendBool(body, true)
		body = wire.AppendStringS(body, "ssh-ed25519")
		body = wire.AppendString(body, keyA.PublicKey().Marshal())
		signed := append(wire.AppendString(nil, c.SessionID()), body...)
		sig, err := keyB.Sign(nil, signed, "ssh-ed25519")
		if err != nil {
			t.Fatal(err)
		}
		c.WritePacket(wire.AppendString(body, sig.Marshal()))
		if p := readSkipping(t, c); p[0] != wire.MsgUserAuthFailure {
			t.Fatalf("A's blob with B's signature: got %d, want FAILURE", p[0])
		}
	})

	t.Run("session-can-access-only-its-home", func(t *testing.T) {
		// Files of each user; a session authenticated as alice with key B
		// must see alice's file, not bob's.
		scA, closeA := s.sftpClient("alice", alicePassword)
		f, _ := scA.Create("/whoami")
		f.Write([]byte("alice"))
		f.Close()
		closeA()
		scB, closeB := s.sftpClient("bob", bobPassword)
		f, _ = scB.Create("/whoami")
		f.Write([]byte("bob"))
		f.Close()
		closeB()
		got := readAsKey(t, s, "alice", keyB, "/whoami")
		if got != "alice" {
			t.Fatalf("alice's session (key B) reads %q", got)
		}
	})
}

// readAsKey logs in with x/crypto/ssh using k and reads one file.
func readAsKey(t testing.TB, s *ferryServer, user string, k *testKey, name string) string {
	t.Helper()
	c, err := s.sshClient(user, ssh.PublicKeys(k.ssh))
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	f, err := sc.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitLogLine(t testing.TB, s *ferryServer, substr string) string {
	t.Helper()
	for range 200 {
		for _, line := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(line, "connection closed") && strings.Contains(line, substr) {
				return line
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no connection log line with %q:\n%s", substr, s.log)
	return ""
}
