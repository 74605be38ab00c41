package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport"
)

// testHostKeys holds one host key of every type, generated once.
var testHostKeys = sync.OnceValue(func() []keys.Signer {
	var out []keys.Signer
	for _, k := range []struct {
		typ  string
		bits int
	}{{"ssh-ed25519", 0}, {"ssh-rsa", 2048}, {"ecdsa-sha2-nistp256", 0}, {"ecdsa-sha2-nistp384", 0}, {"ecdsa-sha2-nistp521", 0}, {"ssh-dss", 1024}} {
		s, err := keys.GenerateKey(k.typ, k.bits)
		if err != nil {
			panic(fmt.Sprintf("generate %s: %v", k.typ, err))
		}
		out = append(out, s)
	}
	return out
})

// allAlgorithms enables every implemented algorithm, all tiers.
func allAlgorithmsConfig() *transport.Config {
	all := func(k transport.AlgorithmKind) []string { n, _ := transport.SupportedAlgorithms(k); return n }
	return &transport.Config{
		HostKeys:          testHostKeys(),
		KeyExchanges:      all(transport.KindKex),
		HostKeyAlgorithms: all(transport.KindHostKey),
		Ciphers:           all(transport.KindCipher),
		MACs:              all(transport.KindMAC),
		Compressions:      all(transport.KindCompression),
		SoftwareVersion:   "ferry_test",
		// 2048-bit groups keep the legacy gex-sha1 test quick; the
		// default (3072) is exercised by the default-config tests.
		GEXMinBits: 2048,
	}
}

// serverResult is what the transport-only server observed on a connection.
type serverResult struct {
	algs        transport.Algorithms
	strict      bool
	sawAuthReq  bool
	err         error
	clientVer   string
	authService bool
}

// startServer runs a transport-only server: it completes key exchange,
// accepts the ssh-userauth service and answers every USERAUTH_REQUEST with
// FAILURE("publickey"), which is enough for any client to reach and report
// the authentication phase.
func startServer(t *testing.T, cfg *transport.Config) (addr string, results <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan serverResult, 256)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() {
					if r := recover(); r != nil {
						ch <- serverResult{err: fmt.Errorf("panic: %v", r)}
					}
				}()
				ch <- serveTransportOnly(nc, cfg)
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func serveTransportOnly(nc net.Conn, cfg *transport.Config) serverResult {
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := transport.Server(nc, cfg)
	if err != nil {
		nc.Close()
		return serverResult{err: err}
	}
	defer c.Close()
	res := serverResult{algs: c.Algorithms(), strict: c.StrictKex(), clientVer: c.ClientVersion()}
	for {
		p, err := c.ReadPacket()
		if err != nil {
			res.err = err
			return res
		}
		switch p[0] {
		case wire.MsgServiceRequest:
			r := wire.NewReader(p[1:])
			if name := r.String(); r.Done() && name == "ssh-userauth" {
				res.authService = true
				c.WritePacket(wire.AppendStringS([]byte{wire.MsgServiceAccept}, name))
			} else {
				c.Disconnect(wire.DisconnectServiceNotAvailable, "no such service")
				return res
			}
		case wire.MsgUserAuthRequest:
			res.sawAuthReq = true
			b := wire.AppendNameList([]byte{wire.MsgUserAuthFailure}, []string{"publickey"})
			c.WritePacket(wire.AppendBool(b, false))
		default:
			c.Disconnect(wire.DisconnectProtocolError, "unexpected message")
			res.err = fmt.Errorf("unexpected message %d", p[0])
			return res
		}
	}
}

func waitResult(t *testing.T, ch <-chan serverResult) serverResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("server did not finish")
	}
	return serverResult{}
}

// xcryptoCase is one x/crypto/ssh client configuration.
type xcryptoCase struct {
	kind string
	name string
	cfg  func(*ssh.ClientConfig)
}

func TestInteropXCryptoSSH(t *testing.T) {
	addr, results := startServer(t, allAlgorithmsConfig())
	ours := func(k transport.AlgorithmKind) []string { n, _ := transport.SupportedAlgorithms(k); return n }
	sup, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	both := func(a, b []string) []string { return append(slices.Clone(a), b...) }

	var cases []xcryptoCase
	for _, k := range both(sup.KeyExchanges, insecure.KeyExchanges) {
		if slices.Contains(ours(transport.KindKex), k) {
			cases = append(cases, xcryptoCase{"kex", k, func(c *ssh.ClientConfig) { c.KeyExchanges = []string{k} }})
		}
	}
	for _, k := range both(sup.Ciphers, insecure.Ciphers) {
		if slices.Contains(ours(transport.KindCipher), k) {
			cases = append(cases, xcryptoCase{"cipher", k, func(c *ssh.ClientConfig) { c.Ciphers = []string{k} }})
		}
	}
	for _, k := range both(sup.MACs, insecure.MACs) {
		if slices.Contains(ours(transport.KindMAC), k) {
			cases = append(cases, xcryptoCase{"mac", k, func(c *ssh.ClientConfig) {
				c.Ciphers = []string{"aes128-ctr"}
				c.MACs = []string{k}
			}})
		}
	}
	for _, k := range both(sup.HostKeys, insecure.HostKeys) {
		if slices.Contains(ours(transport.KindHostKey), k) {
			cases = append(cases, xcryptoCase{"hostkey", k, func(c *ssh.ClientConfig) { c.HostKeyAlgorithms = []string{k} }})
		}
	}
	var exercised []string
	for _, tc := range cases {
		t.Run(tc.kind+"="+tc.name, func(t *testing.T) {
			var gotKey ssh.PublicKey
			cfg := &ssh.ClientConfig{
				User: "alice",
				Auth: []ssh.AuthMethod{ssh.Password("x")},
				HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
					gotKey = k
					return nil
				},
				Timeout: 20 * time.Second,
			}
			tc.cfg(cfg)
			_, err := ssh.Dial("tcp", addr, cfg)
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("dial: %v (want an authentication failure after key exchange)", err)
			}
			r := waitResult(t, results)
			if !r.sawAuthReq || !r.authService {
				t.Fatalf("server did not reach authentication: %+v", r)
			}
			var got string
			switch tc.kind {
			case "kex":
				got = r.algs.Kex
			case "cipher":
				got = r.algs.CipherIn
			case "mac":
				got = r.algs.MACIn
			case "hostkey":
				got = r.algs.HostKey
				if gotKey == nil || keys.KeyTypeOfAlgorithm(tc.name) != gotKey.Type() {
					t.Errorf("client saw host key %v", gotKey)
				}
			}
			if got != tc.name {
				t.Fatalf("server negotiated %s %q, want %q", tc.kind, got, tc.name)
			}
			exercised = append(exercised, tc.kind+"="+tc.name)
		})
	}
	t.Logf("x/crypto/ssh: exercised %d algorithms: %s", len(exercised), strings.Join(exercised, " "))
}

// opensshSupports lists what `ssh -Q` reports for a query.
func opensshSupports(t *testing.T, sshPath, query string) []string {
	out, err := exec.Command(sshPath, "-Q", query).Output()
	if err != nil {
		t.Fatalf("ssh -Q %s: %v", query, err)
	}
	return strings.Fields(string(out))
}

func TestInteropOpenSSH(t *testing.T) {
	sshPath := testenv.NeedTool(t, "ssh")
	addr, results := startServer(t, allAlgorithmsConfig())
	host, port, _ := net.SplitHostPort(addr)
	ours := func(k transport.AlgorithmKind) []string { n, _ := transport.SupportedAlgorithms(k); return n }

	type tc struct{ kind, option, name string }
	var cases []tc
	add := func(kind transport.AlgorithmKind, query, option string) {
		for _, n := range opensshSupports(t, sshPath, query) {
			if slices.Contains(ours(kind), n) {
				cases = append(cases, tc{string(kind), option, n})
			}
		}
	}
	add(transport.KindKex, "kex", "KexAlgorithms")
	add(transport.KindCipher, "cipher", "Ciphers")
	add(transport.KindMAC, "mac", "MACs")
	add(transport.KindHostKey, "HostKeyAlgorithms", "HostKeyAlgorithms")
	cases = append(cases, tc{"compression", "Compression", "zlib@openssh.com"})

	var exercised []string
	for _, c := range cases {
		t.Run(c.kind+"="+c.name, func(t *testing.T) {
			args := []string{"-vv", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
				"-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-o", "PubkeyAuthentication=no",
				"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-p", port}
			switch c.kind {
			case "mac":
				args = append(args, "-o", "Ciphers=aes128-ctr", "-o", "MACs="+c.name)
			case "compression":
				args = append(args, "-o", "Compression=yes")
			default:
				args = append(args, "-o", c.option+"="+c.name)
			}
			args = append(args, "alice@"+host, "true")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, sshPath, args...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 255 {
				t.Fatalf("ssh exit: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "Authentications that can continue: publickey") {
				t.Fatalf("ssh did not reach authentication:\n%s", stderr.String())
			}
			r := waitResult(t, results)
			var got string
			switch c.kind {
			case "kex":
				got = r.algs.Kex
			case "cipher":
				got = r.algs.CipherIn
			case "mac":
				got = r.algs.MACIn
			case "hostkey":
				got = r.algs.HostKey
			case "compression":
				got = r.algs.CompressionIn
			}
			if got != c.name {
				t.Fatalf("server negotiated %s %q, want %q", c.kind, got, c.name)
			}
			if !r.strict {
				t.Errorf("strict kex not negotiated with OpenSSH")
			}
			exercised = append(exercised, c.kind+"="+c.name)
		})
	}
	t.Logf("OpenSSH: exercised %d algorithms: %s", len(exercised), strings.Join(exercised, " "))
}
