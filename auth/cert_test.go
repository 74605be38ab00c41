package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// certSigner signs as the certified key and presents the certificate.
type certSigner struct {
	cert   *keys.Certificate
	signer keys.Signer
}

func (c *certSigner) PublicKey() keys.PublicKey { return c.cert }
func (c *certSigner) Sign(r io.Reader, data []byte, alg string) (*keys.Signature, error) {
	return c.signer.Sign(r, data, alg)
}

var certNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// makeCert certifies user's key with ca. edit may change fields before
// signing.
func makeCert(t *testing.T, user keys.Signer, ca keys.Signer, caAlg string, edit func(c *keys.Certificate)) *certSigner {
	t.Helper()
	c := &keys.Certificate{
		Key:             user.PublicKey(),
		Serial:          7,
		CertType:        keys.UserCert,
		KeyID:           "alice@example",
		ValidPrincipals: []string{"alice"},
		ValidAfter:      uint64(certNow.Add(-time.Hour).Unix()),
		ValidBefore:     uint64(certNow.Add(time.Hour).Unix()),
		CriticalOptions: map[string]string{},
		Extensions: map[string]string{
			keys.ExtPermitPTY: "", keys.ExtPermitPortForwarding: "", keys.ExtPermitAgentForwarding: "",
			keys.ExtPermitX11Forwarding: "", keys.ExtPermitUserRC: "",
		},
	}
	if edit != nil {
		edit(c)
	}
	if err := c.SignCert(rand.Reader, ca, caAlg); err != nil {
		t.Fatal(err)
	}
	// Round-trip through the wire form, as the server sees it.
	k, err := keys.ParsePublicKey(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return &certSigner{cert: k.(*keys.Certificate), signer: user}
}

// caAuth trusts CAs per user through UserCAChecker.
type caAuth struct {
	*fakeAuth
	ca keys.PublicKey
}

func (c caAuth) IsUserCA(ctx context.Context, meta ConnMetadata, ca keys.PublicKey) bool {
	return meta.User() == "alice" && keys.Equal(ca, c.ca)
}

func TestCertificates(t *testing.T) {
	ca := ed25519Signer(t)
	otherCA := ed25519Signer(t)
	rsaCA := rsaSigner(t, 2048)
	user := ed25519Signer(t)
	const certAlg = "ssh-ed25519-cert-v01@openssh.com"

	type tc struct {
		name     string
		cert     func(t *testing.T) *certSigner
		cfg      func(cfg *Config)
		perms    *Permissions // the Authenticator's answer for certificates
		remote   net.Addr
		ok       bool
		check    func(t *testing.T, res *Result)
		authCall bool // whether the Authenticator must have been asked
	}
	tests := []tc{
		{name: "valid", ok: true, authCall: true,
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, ca, "", nil) },
			check: func(t *testing.T, res *Result) {
				p := res.Permissions
				if p.NoPTY || p.NoPortForwarding || p.NoAgentForwarding || p.NoX11Forwarding || p.NoUserRC {
					t.Fatalf("permissions restricted: %+v", p)
				}
				if !p.ExpiresAt.Equal(certNow.Add(time.Hour)) {
					t.Fatalf("ExpiresAt %v", p.ExpiresAt)
				}
				if res.PublicKey.Type() != certAlg {
					t.Fatalf("Result.PublicKey %s", res.PublicKey.Type())
				}
			}},
		{name: "force-command and no extensions", ok: true, authCall: true,
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) {
					c.CriticalOptions[keys.OptForceCommand] = "internal-sftp"
					c.Extensions = map[string]string{keys.ExtPermitAgentForwarding: ""}
				})
			},
			check: func(t *testing.T, res *Result) {
				p := res.Permissions
				if p.ForceCommand != "internal-sftp" || !p.NoPTY || !p.NoPortForwarding || p.NoAgentForwarding ||
					!p.NoX11Forwarding || !p.NoUserRC {
					t.Fatalf("permissions %+v", p)
				}
			}},
		{name: "no extensions", ok: true, authCall: true,
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.Extensions = map[string]string{} })
			},
			check: func(t *testing.T, res *Result) {
				p := res.Permissions
				if !p.NoPTY || !p.NoPortForwarding || !p.NoAgentForwarding || !p.NoX11Forwarding || !p.NoUserRC {
					t.Fatalf("permissions %+v", p)
				}
			}},
		{name: "same force-command as account", ok: true, authCall: true, perms: &Permissions{ForceCommand: "sftp"},
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.CriticalOptions[keys.OptForceCommand] = "sftp" })
			}},
		{name: "conflicting force-command", authCall: true, perms: &Permissions{ForceCommand: "other"},
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.CriticalOptions[keys.OptForceCommand] = "sftp" })
			}},
		{name: "wrong principal",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.ValidPrincipals = []string{"bob"} })
			}},
		{name: "no principals",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.ValidPrincipals = nil })
			}},
		{name: "expired",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) {
					c.ValidBefore = uint64(certNow.Add(-time.Minute).Unix())
				})
			}},
		{name: "not yet valid",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) {
					c.ValidAfter = uint64(certNow.Add(time.Minute).Unix())
				})
			}},
		{name: "untrusted CA",
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, otherCA, "", nil) }},
		{name: "host certificate",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.CertType = keys.HostCert })
			}},
		{name: "source-address mismatch",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.CriticalOptions[keys.OptSourceAddress] = "10.0.0.0/8" })
			}},
		{name: "source-address match", ok: true, authCall: true,
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) {
					c.CriticalOptions[keys.OptSourceAddress] = "10.0.0.0/8,127.0.0.1/32"
				})
			}},
		{name: "source-address on non-IP connection", remote: &net.UnixAddr{Name: "@x", Net: "unix"},
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.CriticalOptions[keys.OptSourceAddress] = "0.0.0.0/0" })
			}},
		{name: "unknown critical option",
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.CriticalOptions["frobnicate"] = "" })
			}},
		{name: "CA signed with SHA-1",
			cfg:  func(cfg *Config) { cfg.TrustedUserCAKeys = []keys.PublicKey{rsaCA.PublicKey()} },
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, rsaCA, "ssh-rsa", nil) }},
		// Letting old clients sign with ssh-rsa does not let a CA sign
		// with SHA-1 (sshd's CASignatureAlgorithms is its own list).
		{name: "CA signed with SHA-1, ssh-rsa user signatures enabled",
			cfg: func(cfg *Config) {
				cfg.TrustedUserCAKeys = []keys.PublicKey{rsaCA.PublicKey()}
				cfg.PubkeyAlgorithms = append(DefaultPubkeyAlgorithms(), "ssh-rsa", "ssh-rsa-cert-v01@openssh.com")
			},
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, rsaCA, "ssh-rsa", nil) }},
		{name: "CA signed with rsa-sha2-512", ok: true, authCall: true,
			cfg:  func(cfg *Config) { cfg.TrustedUserCAKeys = []keys.PublicKey{rsaCA.PublicKey()} },
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, rsaCA, "rsa-sha2-512", nil) }},
		{name: "CA algorithm not in CASignatureAlgorithms",
			cfg: func(cfg *Config) {
				cfg.TrustedUserCAKeys = []keys.PublicKey{rsaCA.PublicKey()}
				cfg.CASignatureAlgorithms = []string{"ssh-ed25519", "rsa-sha2-256"}
			},
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, rsaCA, "rsa-sha2-512", nil) }},
		{name: "small RSA CA",
			cfg:  func(cfg *Config) { cfg.TrustedUserCAKeys = []keys.PublicKey{rsaSigner(t, 1024).PublicKey()} },
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, rsaSigner(t, 1024), "rsa-sha2-512", nil) }},
		{name: "CA trusted by Authenticator hook", ok: true, authCall: true,
			cfg: func(cfg *Config) {
				cfg.TrustedUserCAKeys = nil
				cfg.Authenticator = caAuth{cfg.Authenticator.(*fakeAuth), otherCA.PublicKey()}
			},
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, otherCA, "", nil) }},
		// authorized_keys cert-authority,principals="deploy" (sshd
		// match_principals_option): the line's principals replace the
		// login name.
		{name: "cert-authority principals= admits a listed principal", ok: true, authCall: true,
			perms: &Permissions{CertPrincipals: []string{"deploy"}},
			cfg: func(cfg *Config) {
				cfg.TrustedUserCAKeys = nil
				cfg.Authenticator = caAuth{cfg.Authenticator.(*fakeAuth), otherCA.PublicKey()}
			},
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, otherCA, "", func(c *keys.Certificate) { c.ValidPrincipals = []string{"deploy"} })
			}},
		{name: "cert-authority principals= refuses the login name", authCall: true,
			perms: &Permissions{CertPrincipals: []string{"deploy"}},
			cfg: func(cfg *Config) {
				cfg.TrustedUserCAKeys = nil
				cfg.Authenticator = caAuth{cfg.Authenticator.(*fakeAuth), otherCA.PublicKey()}
			},
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, otherCA, "", nil) }},
		{name: "per-user CA without principals= needs the login name", authCall: true,
			cfg: func(cfg *Config) {
				cfg.TrustedUserCAKeys = nil
				cfg.Authenticator = caAuth{cfg.Authenticator.(*fakeAuth), otherCA.PublicKey()}
			},
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, otherCA, "", func(c *keys.Certificate) { c.ValidPrincipals = []string{"deploy"} })
			}},
		// TrustedUserCAKeys ignores principals= (sshd user_cert_trusted_ca
		// wants the login name): CertPrincipals from a CA that is trusted
		// only there does not admit another name...
		{name: "TrustedUserCAKeys ignores CertPrincipals",
			perms: &Permissions{CertPrincipals: []string{"deploy"}},
			cert: func(t *testing.T) *certSigner {
				return makeCert(t, user, ca, "", func(c *keys.Certificate) { c.ValidPrincipals = []string{"deploy"} })
			}},
		// ...and still admits the login name, tried first as sshd does.
		{name: "TrustedUserCAKeys admits the login name despite CertPrincipals", ok: true, authCall: true,
			perms: &Permissions{CertPrincipals: []string{"deploy"}},
			cert:  func(t *testing.T) *certSigner { return makeCert(t, user, ca, "", nil) }},
		{name: "Authenticator refuses certificate", authCall: true,
			cfg:  func(cfg *Config) { delete(cfg.Authenticator.(*fakeAuth).users["alice"].keys, "cert") },
			cert: func(t *testing.T) *certSigner { return makeCert(t, user, ca, "", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFake()
			perms := tt.perms
			if perms == nil {
				perms = &Permissions{}
			}
			fa.users["alice"].keys["cert"] = perms
			cfg := testConfig(fa)
			cfg.TrustedUserCAKeys = []keys.PublicKey{ca.PublicKey()}
			cfg.Now = func() time.Time { return certNow }
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			cs := tt.cert(t)
			c := start(t, cfg)
			if tt.remote != nil {
				// start already fixed the peer; run another server.
				c = startPeer(t, cfg, Peer{RemoteAddr: tt.remote})
			}
			c.service()
			blobC := cs.cert.Marshal()
			c.send(pkQuery("alice", certAlg, blobC))
			if tt.ok {
				c.expect(pkOK(certAlg, blobC))
			} else {
				c.expect(failure(false, allMethods...))
			}
			c.send(pkSigned(t, cs, testSessionID, "alice", "alice", certAlg))
			if !tt.ok {
				c.expect(failure(false, allMethods...))
				if called := len(fa.Calls()) > 0; called != tt.authCall {
					t.Fatalf("authenticator called = %v, want %v (%v)", called, tt.authCall, fa.Calls())
				}
				return
			}
			res := c.expectSuccess()
			if !keys.Equal(res.PublicKey, cs.cert) {
				t.Fatal("Result.PublicKey is not the certificate")
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

// startPeer is start with a chosen Peer.
func startPeer(t *testing.T, cfg *Config, peer Peer) *testClient {
	t.Helper()
	conn := &pipeConn{in: make(chan []byte, pipeDepth), out: make(chan []byte, pipeDepth), sid: testSessionID}
	conn.hostKey = ed25519Signer(t).PublicKey()
	tc := &testClient{t: t, conn: conn, done: make(chan runResult, 1)}
	go func() {
		res, err := Run(context.Background(), conn, peer, cfg)
		tc.done <- runResult{res, err}
		close(conn.out)
	}()
	t.Cleanup(func() { close(conn.in) })
	return tc
}

// TestCertificateSSHKeygen checks a certificate made by OpenSSH's
// ssh-keygen, not by package keys, end to end.
func TestCertificateSSHKeygen(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(keygen, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	run("-q", "-t", "ed25519", "-N", "", "-C", "", "-f", filepath.Join(dir, "ca"))
	// The user key is ours so the test can sign with it.
	user := ed25519Signer(t)
	pub := keys.MarshalAuthorizedKey(user.PublicKey())
	if err := os.WriteFile(filepath.Join(dir, "user.pub"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	run("-q", "-s", filepath.Join(dir, "ca"), "-I", "alice-id", "-n", "alice,admin",
		"-O", "force-command=internal-sftp", "-O", "source-address=127.0.0.0/8",
		"-V", "-5m:+1h", filepath.Join(dir, "user.pub"))
	certLine, err := os.ReadFile(filepath.Join(dir, "user-cert.pub"))
	if err != nil {
		t.Fatal(err)
	}
	caLine, err := os.ReadFile(filepath.Join(dir, "ca.pub"))
	if err != nil {
		t.Fatal(err)
	}
	certKey := parseOpenSSHPub(t, certLine)
	caKey := parseOpenSSHPub(t, caLine)

	fa := newFake()
	fa.users["alice"].keys["cert"] = &Permissions{}
	cfg := testConfig(fa)
	cfg.TrustedUserCAKeys = []keys.PublicKey{caKey}
	c := start(t, cfg)
	c.service()
	cs := &certSigner{cert: certKey.(*keys.Certificate), signer: user}
	c.send(pkSigned(t, cs, testSessionID, "alice", "alice", "ssh-ed25519-cert-v01@openssh.com"))
	res := c.expectSuccess()
	if res.Permissions.ForceCommand != "internal-sftp" || res.Permissions.NoPTY {
		t.Fatalf("permissions %+v", res.Permissions)
	}
}

// parseOpenSSHPub reads "type base64 [comment]" without depending on the
// authorized_keys parser.
func parseOpenSSHPub(t *testing.T, line []byte) keys.PublicKey {
	t.Helper()
	f := strings.Fields(string(line))
	if len(f) < 2 {
		t.Fatalf("bad public key line %q", line)
	}
	b, err := decodeBase64(f[1])
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// skSigner is a software FIDO key: an sk-ssh-ed25519@openssh.com key whose
// signatures carry chosen flags (PROTOCOL.u2f).
type skSigner struct {
	priv  ed25519.PrivateKey
	app   string
	flags byte
}

func (s *skSigner) PublicKey() keys.PublicKey {
	b := wire.AppendStringS(nil, "sk-ssh-ed25519@openssh.com")
	b = wire.AppendString(b, s.priv.Public().(ed25519.PublicKey))
	b = wire.AppendStringS(b, s.app)
	k, err := keys.ParsePublicKey(b)
	if err != nil {
		panic(err)
	}
	return k
}

func (s *skSigner) Sign(r io.Reader, data []byte, alg string) (*keys.Signature, error) {
	rest := []byte{s.flags, 0, 0, 0, 9}
	app := sha256.Sum256([]byte(s.app))
	msg := sha256.Sum256(data)
	signed := append(append(app[:], rest...), msg[:]...)
	return &keys.Signature{Format: "sk-ssh-ed25519@openssh.com", Blob: ed25519.Sign(s.priv, signed), Rest: rest}, nil
}

func TestSecurityKeys(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	const alg = "sk-ssh-ed25519@openssh.com"
	tests := []struct {
		name  string
		flags byte
		perms Permissions
		ok    bool
	}{
		{"touched", keys.SKFlagUserPresent, Permissions{}, true},
		{"not touched", 0, Permissions{}, false},
		{"not touched, no-touch-required", 0, Permissions{NoTouchRequired: true}, true},
		{"touched, verify-required, not verified", keys.SKFlagUserPresent, Permissions{VerifyRequired: true}, false},
		{"touched and verified, verify-required", keys.SKFlagUserPresent | keys.SKFlagUserVerified, Permissions{VerifyRequired: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &skSigner{priv: priv, app: "ssh:", flags: tt.flags}
			fa := newFake()
			perms := tt.perms
			fa.users["alice"].keys[string(s.PublicKey().Marshal())] = &perms
			c := start(t, testConfig(fa))
			c.service()
			c.send(pkSigned(t, s, testSessionID, "alice", "alice", alg))
			if tt.ok {
				c.expectSuccess()
			} else {
				c.expect(failure(false, allMethods...))
			}
		})
	}
	t.Run("certificate no-touch-required extension", func(t *testing.T) {
		ca := ed25519Signer(t)
		for _, ext := range []bool{false, true} {
			s := &skSigner{priv: priv, app: "ssh:", flags: 0}
			cs := makeCert(t, s, ca, "", func(c *keys.Certificate) {
				if ext {
					c.Extensions[keys.ExtNoTouchRequired] = ""
				}
			})
			fa := newFake()
			fa.users["alice"].keys["cert"] = &Permissions{}
			cfg := testConfig(fa)
			cfg.TrustedUserCAKeys = []keys.PublicKey{ca.PublicKey()}
			cfg.Now = func() time.Time { return certNow }
			c := start(t, cfg)
			c.service()
			c.send(pkSigned(t, cs, testSessionID, "alice", "alice", "sk-ssh-ed25519-cert-v01@openssh.com"))
			if ext {
				c.expectSuccess()
			} else {
				c.expect(failure(false, allMethods...))
			}
		}
	})
	// Through a cert-authority line (UserCAChecker), sshd skips the touch
	// only when the line says no-touch-required as well as the
	// certificate (auth-options.c sshauthopt_merge ANDs them).
	t.Run("certificate through cert-authority line", func(t *testing.T) {
		ca := ed25519Signer(t)
		for _, tc := range []struct {
			ext, line, ok bool
		}{
			{false, false, false},
			{true, false, false},
			{false, true, false},
			{true, true, true},
		} {
			s := &skSigner{priv: priv, app: "ssh:", flags: 0}
			cs := makeCert(t, s, ca, "", func(c *keys.Certificate) {
				if tc.ext {
					c.Extensions[keys.ExtNoTouchRequired] = ""
				}
			})
			fa := newFake()
			fa.users["alice"].keys["cert"] = &Permissions{NoTouchRequired: tc.line}
			cfg := testConfig(caAuth{fakeAuth: fa, ca: ca.PublicKey()})
			cfg.Now = func() time.Time { return certNow }
			c := start(t, cfg)
			c.service()
			c.send(pkSigned(t, cs, testSessionID, "alice", "alice", "sk-ssh-ed25519-cert-v01@openssh.com"))
			if tc.ok {
				c.expectSuccess()
			} else {
				c.expect(failure(false, allMethods...))
			}
		}
	})
}

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
