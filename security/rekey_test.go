package security

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/transport"
)

// SFTP packet types (draft-ietf-secsh-filexfer-02 §3) used by the probe.
const (
	sshFxpInit    = 1
	sshFxpOpen    = 3
	sshFxpRead    = 5
	sshFxpVersion = 2
	sshFxpStatus  = 101
	sshFxpHandle  = 102
	sshFxpData    = 103
)

// sftpProbe is a hand-driven SFTP session on one channel of a
// transport.Conn, so a probe can keep requests in flight while it
// misbehaves at the transport layer.
type sftpProbe struct {
	t          testing.TB
	c          *transport.Conn
	nc         net.Conn
	serverChan uint32
	buf        []byte // SFTP bytes received, not yet parsed
}

func (p *sftpProbe) send(pkt []byte) error {
	framed := wire.AppendString(nil, pkt)
	msg := wire.AppendUint32([]byte{wire.MsgChannelData}, p.serverChan)
	return p.c.WritePacket(wire.AppendString(msg, framed))
}

// next returns the next SFTP packet from the channel.
func (p *sftpProbe) next() []byte {
	p.t.Helper()
	for {
		if len(p.buf) >= 4 {
			n := int(binary.BigEndian.Uint32(p.buf))
			if len(p.buf) >= 4+n {
				pkt := p.buf[4 : 4+n]
				p.buf = p.buf[4+n:]
				return pkt
			}
		}
		m := readSkipping(p.t, p.c)
		switch m[0] {
		case wire.MsgChannelData:
			r := wire.NewReader(m[1:])
			r.Uint32()
			p.buf = append(p.buf, r.Bytes()...)
		case wire.MsgChannelWindowAdjust, wire.MsgChannelSuccess:
		default:
			p.t.Fatalf("unexpected message %d on the SFTP channel", m[0])
		}
	}
}

func openSFTPProbe(t testing.TB, s *ferryServer, user, password string) *sftpProbe {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c, err := transport.Client(nc, &transport.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	login(t, c, user, password)
	open := wire.AppendStringS([]byte{wire.MsgChannelOpen}, "session")
	open = wire.AppendUint32(open, 0)
	open = wire.AppendUint32(open, 1<<30) // never window-limit the server
	open = wire.AppendUint32(open, 1<<16)
	c.WritePacket(open)
	m := readSkipping(t, c)
	if m[0] != wire.MsgChannelOpenConfirmation {
		t.Fatalf("got %d, want CHANNEL_OPEN_CONFIRMATION", m[0])
	}
	r := wire.NewReader(m[1:])
	r.Uint32()
	p := &sftpProbe{t: t, c: c, nc: nc, serverChan: r.Uint32()}
	c.WritePacket(channelRequest(p.serverChan, "subsystem", true, wire.AppendStringS(nil, "sftp")))
	if m := readSkipping(t, c); m[0] != wire.MsgChannelSuccess {
		t.Fatalf("subsystem sftp: got %d", m[0])
	}
	p.send(wire.AppendUint32([]byte{sshFxpInit}, 3))
	if v := p.next(); v[0] != sshFxpVersion {
		t.Fatalf("got SFTP %d, want VERSION", v[0])
	}
	return p
}

func (p *sftpProbe) openRead(name string) []byte {
	p.t.Helper()
	req := wire.AppendUint32([]byte{sshFxpOpen}, 1)
	req = wire.AppendStringS(req, name)
	req = wire.AppendUint32(req, 1) // SSH_FXF_READ
	req = wire.AppendUint32(req, 0) // no attributes
	p.send(req)
	h := p.next()
	if h[0] != sshFxpHandle {
		p.t.Fatalf("open %s: SFTP %d", name, h[0])
	}
	r := wire.NewReader(h[1:])
	r.Uint32()
	return r.Bytes()
}

func readRequest(id uint32, handle []byte, off uint64) []byte {
	req := wire.AppendUint32([]byte{sshFxpRead}, id)
	req = wire.AppendString(req, handle)
	req = wire.AppendUint64(req, off)
	return wire.AppendUint32(req, 32<<10)
}

// TestStalledRekey: CVE-2025-22869 (x/crypto/ssh) queued outgoing data
// without bound while a peer that had started a key exchange never
// finished it. Mid-download, the probe sends KEXINIT, then never
// continues the exchange, drains whatever the server sends and keeps
// sending SFTP READ requests. The server's RSS must stay within 32 MiB
// of what the download used, and other clients must be served.
func TestStalledRekey(t *testing.T) {
	s := newServer(t, probeConfig, testUser{name: "alice", password: alicePassword})
	s.assertServing("alice", alicePassword)
	must(t, os.WriteFile(filepath.Join(s.home("alice"), "big"), nil, 0o644))
	must(t, os.Truncate(filepath.Join(s.home("alice"), "big"), 1<<30))

	for _, keepRequesting := range []bool{false, true} {
		name := "silent"
		if keepRequesting {
			name = "keeps-requesting"
		}
		t.Run(name, func(t *testing.T) {
			p := openSFTPProbe(t, s, "alice", alicePassword)
			handle := p.openRead("big")
			var id uint32 = 10
			var off uint64
			const inflight = 64
			for range inflight {
				p.send(readRequest(id, handle, off))
				id++
				off += 32 << 10
			}
			start := time.Now()
			var received int
			for time.Since(start) < time.Second && received < 20000 {
				d := p.next()
				if d[0] != sshFxpData {
					t.Fatalf("READ answered with SFTP %d", d[0])
				}
				received++
				p.send(readRequest(id, handle, off))
				id++
				off += 32 << 10
			}
			t.Logf("download ran at %.1f MiB/s before the stall", float64(received)*32/1024/time.Since(start).Seconds())
			base := s.rssKiB()

			// Start a key exchange and never continue it.
			if err := p.c.WritePacket(kexInit(strictKexClient)); err != nil {
				t.Fatal(err)
			}
			var drained atomic.Int64
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := p.nc.Read(buf)
					drained.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
			var peak int
			deadline := time.Now().Add(5 * time.Second)
			var sendErr error
			for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
				if keepRequesting && sendErr == nil {
					sendErr = p.send(readRequest(id, handle, off))
					id++
					off = (off + 32<<10) % (1 << 30)
				} else {
					time.Sleep(10 * time.Millisecond)
				}
				if !keepRequesting || i%100 == 0 {
					peak = max(peak, s.rssKiB())
				}
			}
			peak = max(peak, s.rssKiB())
			t.Logf("during the stall: RSS %d KiB -> peak %d KiB (%+d), probe send error %v, %d bytes drained", base, peak, peak-base, sendErr, drained.Load())
			if peak-base > rssBudgetKiB {
				t.Fatalf("RSS grew %d KiB while the rekey stalled", peak-base)
			}
		})
	}
	s.assertServing("alice", alicePassword)
}
