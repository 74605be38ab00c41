package security

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
	"github.com/ferry-sftp/ferry/vfs"
)

// Resource exhaustion by one client: each probe measures what the server
// holds (descriptors in /proc/PID/fd, resident memory) and checks that
// another account is still served.

// serverFDs counts the server's open descriptors.
func (s *ferryServer) serverFDs() int {
	s.t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid()))
	if err != nil {
		s.t.Fatal(err)
	}
	return len(es)
}

// openSFTPSessions opens n SFTP sessions on one new connection (the
// connection's first n channels).
func openSFTPSessions(t testing.TB, s *ferryServer, user, password string, n int) []*sftpProbe {
	t.Helper()
	first := openSFTPProbe(t, s, user, password)
	ps := []*sftpProbe{first}
	for i := 1; i < n; i++ {
		open := wire.AppendStringS([]byte{wire.MsgChannelOpen}, "session")
		open = wire.AppendUint32(open, uint32(i))
		open = wire.AppendUint32(open, 1<<30)
		open = wire.AppendUint32(open, 1<<16)
		first.c.WritePacket(open)
		m := readSkipping(t, first.c)
		if m[0] != wire.MsgChannelOpenConfirmation {
			t.Fatalf("session %d: got %d, want CHANNEL_OPEN_CONFIRMATION", i, m[0])
		}
		r := wire.NewReader(m[1:])
		r.Uint32()
		p := &sftpProbe{t: t, c: first.c, nc: first.nc, serverChan: r.Uint32()}
		p.c.WritePacket(channelRequest(p.serverChan, "subsystem", true, wire.AppendStringS(nil, "sftp")))
		if m := readSkipping(t, p.c); m[0] != wire.MsgChannelSuccess {
			t.Fatalf("subsystem sftp: got %d", m[0])
		}
		p.send(wire.AppendUint32([]byte{sshFxpInit}, 3))
		if v := p.next(); v[0] != sshFxpVersion {
			t.Fatalf("got SFTP %d, want VERSION", v[0])
		}
		ps = append(ps, p)
	}
	return ps
}

// TestOpenFilesPerAccount: an SFTP session may hold 256 handles and a
// connection 10 sessions, and an account may open connections without
// limit: eight connections held 20,000 descriptors, all the server had,
// and then it accepted no connection from anyone. The account's open
// files are bounded (vfs.MaxOpenFiles) across all its sessions; what is
// refused gets SSH_FX_FAILURE "too many open files", and another account
// logs in and transfers meanwhile.
func TestOpenFilesPerAccount(t *testing.T) {
	s := newServer(t, probeConfig,
		testUser{name: "alice", password: alicePassword},
		testUser{name: "bob", password: alicePassword})
	s.assertServing("bob", alicePassword)
	s.assertServing("alice", alicePassword) // makes the home
	must(t, os.WriteFile(s.home("alice")+"/f", []byte("x"), 0o644))
	base := s.serverFDs()
	const conns, sessions, opens = 3, 10, 256 // 7,680 OPENs, each within max_handles
	var granted, refused int
	for range conns {
		for _, p := range openSFTPSessions(t, s, "alice", alicePassword, sessions) {
			for i := range opens {
				req := wire.AppendUint32([]byte{sshFxpOpen}, uint32(i))
				req = wire.AppendStringS(req, "f")
				req = wire.AppendUint32(req, 1) // SSH_FXF_READ
				req = wire.AppendUint32(req, 0)
				p.send(req)
			}
			for range opens {
				switch r := p.next(); r[0] {
				case sshFxpHandle:
					granted++
				case sshFxpStatus:
					st := wire.NewReader(r[1:])
					st.Uint32()
					if code, msg := st.Uint32(), st.String(); code != 4 || msg != "too many open files" {
						t.Fatalf("refused OPEN: status %d %q, want 4 (FAILURE) \"too many open files\"", code, msg)
					}
					refused++
				default:
					t.Fatalf("OPEN answered with SFTP %d", r[0])
				}
			}
		}
	}
	fds := s.serverFDs()
	t.Logf("%d OPENs: %d handles, %d refused; server descriptors %d -> %d", conns*sessions*opens, granted, refused, base, fds)
	if granted != vfs.MaxOpenFiles {
		t.Fatalf("%d handles granted, want vfs.MaxOpenFiles = %d", granted, vfs.MaxOpenFiles)
	}
	// The connections' own sockets, and little else, beyond the files.
	if fds-base > vfs.MaxOpenFiles+2*conns+10 {
		t.Fatalf("server holds %d descriptors more than before", fds-base)
	}
	s.assertServing("bob", alicePassword)
}

// TestClientAliveNeverReading: client_alive_interval must end a client
// that keeps its connection open but reads nothing, even while the
// server has data for it. Its writer was blocked in write(2) holding the
// transport's write lock, and the keepalive's DISCONNECT waited behind it
// forever: the connection, its goroutines and buffers stayed as long as
// the client wished.
func TestClientAliveNeverReading(t *testing.T) {
	s := newServer(t, probeConfig+`client_alive_interval = "1s"
client_alive_count_max = 2
`, testUser{name: "alice", password: alicePassword})
	s.assertServing("alice", alicePassword)
	must(t, os.WriteFile(s.home("alice")+"/big", nil, 0o644))
	must(t, os.Truncate(s.home("alice")+"/big", 1<<30))
	base := s.serverFDs()

	p := openSFTPProbe(t, s, "alice", alicePassword)
	h := p.openRead("big")
	// The channel's window (1 GiB) lets the server send until the TCP
	// buffers are full; then its writer blocks.
	for i := range maxInFlightReads {
		req := wire.AppendUint32([]byte{sshFxpRead}, uint32(100+i))
		req = wire.AppendString(req, h)
		req = wire.AppendUint64(req, uint64(i)<<18)
		p.send(wire.AppendUint32(req, 256<<10))
	}
	local := p.nc.LocalAddr().String()
	start := time.Now()
	// Two missed keepalives (2 s), then at most the 5 s DISCONNECT write
	// timeout; 15 s is plenty on a loaded machine.
	var line string
	for line == "" && time.Since(start) < 15*time.Second {
		time.Sleep(100 * time.Millisecond)
		for _, l := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(l, "connection closed") && strings.Contains(l, "remote="+local) {
				line = l
			}
		}
	}
	if line == "" {
		t.Fatalf("connection of a client that reads nothing still open %v after the stall (client_alive_interval 1 s, count 2)", time.Since(start).Round(time.Second))
	}
	t.Logf("ended after %v: %s", time.Since(start).Round(100*time.Millisecond), line[strings.Index(line, "duration="):])
	if fds := s.serverFDs(); fds > base+1 {
		t.Fatalf("server holds %d descriptors, %d before the probe", fds, base)
	}
	s.assertServing("alice", alicePassword)
}

// maxInFlightReads is OpenSSH's sftp default of requests in flight.
const maxInFlightReads = 64

// TestRekeyFlood: CVE-2002-20001 (D(HE)ater) without reconnecting. A
// client that re-keys after every packet, with the costliest exchange
// the defaults allow (diffie-hellman-group18-sha512 with an RSA host key,
// ~22 ms of server CPU each), made the server run 75 exchanges in 3 s,
// before authentication as after it: one connection, one busy core.
// Before authentication the fourth exchange ends the connection with
// PROTOCOL_ERROR; after it, the client's exchanges are paced (16, then
// one a second).
func TestRekeyFlood(t *testing.T) {
	s := newServer(t, probeConfig+"[log]\nlevel = \"debug\"\n", testUser{name: "alice", password: alicePassword})
	s.assertServing("alice", alicePassword)
	kexes := func() int { return strings.Count(s.log.String(), "key exchange complete") }
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "before-auth", true: "after-auth"}[auth], func(t *testing.T) {
			// Counted from before the first exchange, whose log line may
			// come after the client's handshake returned.
			before := kexes()
			c := s.dial(&transport.ClientConfig{
				KeyExchanges:      []string{"diffie-hellman-group18-sha512"},
				HostKeyAlgorithms: []string{"rsa-sha2-512"},
				RekeyBytes:        1, // re-key after every packet
			})
			if auth {
				login(t, c, "alice", alicePassword)
			}
			readErr := make(chan error, 1)
			go func() {
				for {
					if _, err := c.ReadPacket(); err != nil {
						readErr <- err
						return
					}
				}
			}()
			cpu := s.cpuTicks()
			const d = 3 * time.Second
			var err error
			for end := time.Now().Add(d); time.Now().Before(end) && err == nil; time.Sleep(time.Millisecond) {
				select {
				case err = <-readErr:
				default:
					c.WritePacket(wire.AppendStringS([]byte{wire.MsgIgnore}, "x"))
				}
			}
			n, ticks := kexes()-before, s.cpuTicks()-cpu
			t.Logf("%d key exchanges (the first included), then %v of re-keying: server CPU %d ticks, client read error %v", n, d, ticks, err)
			if !auth {
				var de *wire.DisconnectError
				if !errors.As(err, &de) || de.Reason != wire.DisconnectProtocolError {
					t.Fatalf("re-keying before authentication ended with %v, want DISCONNECT PROTOCOL_ERROR", err)
				}
				if n > 3 {
					t.Fatalf("%d key exchanges before authentication, want at most 3", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("paced client disconnected: %v", err)
			}
			// The first, the burst of 16, one a second, one in progress.
			if n > 1+16+3+1 {
				t.Fatalf("%d key exchanges, %v of re-keying after authentication, want at most 21", n, d)
			}
		})
	}
	s.assertServing("alice", alicePassword)
}
