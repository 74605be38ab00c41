package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// pipeConn is an in-memory Conn: the test plays the client on the other
// end of the two channels.
type pipeConn struct {
	in      chan []byte // client → server
	out     chan []byte // server → client
	sid     []byte
	hostKey keys.PublicKey
}

// pipeDepth is large enough that neither side blocks in any test here.
const pipeDepth = 256

func (c *pipeConn) ReadPacket() ([]byte, error) {
	p, ok := <-c.in
	if !ok {
		return nil, io.EOF
	}
	return p, nil
}

func (c *pipeConn) WritePacket(p []byte) error {
	c.out <- bytes.Clone(p)
	return nil
}

func (c *pipeConn) SessionID() []byte       { return c.sid }
func (c *pipeConn) HostKey() keys.PublicKey { return c.hostKey }

// testSigner is a keys.Signer made from a standard library private key.
type testSigner struct {
	priv crypto.Signer
	pub  keys.PublicKey
}

func newSigner(t testing.TB, priv crypto.Signer) *testSigner {
	t.Helper()
	var (
		pub keys.PublicKey
		err error
	)
	switch k := priv.Public().(type) {
	case ed25519.PublicKey:
		pub, err = keys.NewEd25519PublicKey(k)
	case *ecdsa.PublicKey:
		pub, err = keys.NewECDSAPublicKey(k)
	case *rsa.PublicKey:
		pub, err = keys.NewRSAPublicKey(k)
	default:
		t.Fatalf("unsupported key %T", k)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{priv: priv, pub: pub}
}

func ed25519Signer(t testing.TB) *testSigner {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, priv)
}

func ecdsaSigner(t testing.TB, c elliptic.Curve) *testSigner {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, priv)
}

// rsaKeys caches generated RSA keys per size: generation is slow.
var rsaKeys sync.Map

func rsaSigner(t testing.TB, bits int) *testSigner {
	t.Helper()
	if k, ok := rsaKeys.Load(bits); ok {
		return newSigner(t, k.(*rsa.PrivateKey))
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys.Store(bits, priv)
	return newSigner(t, priv)
}

func (s *testSigner) PublicKey() keys.PublicKey { return s.pub }

func (s *testSigner) Sign(r io.Reader, data []byte, alg string) (*keys.Signature, error) {
	switch k := s.priv.(type) {
	case ed25519.PrivateKey:
		return &keys.Signature{Format: "ssh-ed25519", Blob: ed25519.Sign(k, data)}, nil
	case *ecdsa.PrivateKey:
		var digest []byte
		switch k.Curve.Params().BitSize {
		case 256:
			h := sha256.Sum256(data)
			digest = h[:]
		case 384:
			h := sha512.Sum384(data)
			digest = h[:]
		default:
			h := sha512.Sum512(data)
			digest = h[:]
		}
		rr, ss, err := ecdsa.Sign(r, k, digest)
		if err != nil {
			return nil, err
		}
		blob := wire.AppendMPInt(nil, rr)
		blob = wire.AppendMPInt(blob, ss)
		return &keys.Signature{Format: s.pub.Type(), Blob: blob}, nil
	case *rsa.PrivateKey:
		if alg == "" {
			alg = "rsa-sha2-512"
		}
		var (
			h      crypto.Hash
			digest []byte
		)
		switch alg {
		case "rsa-sha2-256":
			d := sha256.Sum256(data)
			h, digest = crypto.SHA256, d[:]
		case "rsa-sha2-512":
			d := sha512.Sum512(data)
			h, digest = crypto.SHA512, d[:]
		case "ssh-rsa":
			d := sha1Sum(data)
			h, digest = crypto.SHA1, d
		default:
			return nil, fmt.Errorf("bad rsa alg %q", alg)
		}
		sig, err := rsa.SignPKCS1v15(r, k, h, digest)
		if err != nil {
			return nil, err
		}
		return &keys.Signature{Format: alg, Blob: sig}, nil
	}
	return nil, errors.New("unsupported")
}

// fakeUser is an account of fakeAuth.
type fakeUser struct {
	password string
	keys     map[string]*Permissions // key blob → permissions
	perms    *Permissions            // for password and keyboard-interactive
}

// fakeAuth is an Authenticator over a fixed user table that records every
// call, so tests can check that known and unknown users take the same path
// and which key an authorization was asked for.
type fakeAuth struct {
	mu    sync.Mutex
	users map[string]*fakeUser
	calls []string // "method user [fingerprint]"
	ki    func(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error)
}

func (a *fakeAuth) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}

func (a *fakeAuth) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func (a *fakeAuth) Password(ctx context.Context, meta ConnMetadata, password []byte) (*Permissions, error) {
	a.record("password " + meta.User())
	u, ok := a.users[meta.User()]
	if !ok || u.password == "" || string(password) != u.password {
		return nil, ErrDenied
	}
	return u.perms, nil
}

func (a *fakeAuth) PublicKey(ctx context.Context, meta ConnMetadata, key keys.PublicKey) (*Permissions, error) {
	a.record("publickey " + meta.User() + " " + keys.FingerprintSHA256(key))
	u, ok := a.users[meta.User()]
	if !ok {
		return nil, ErrDenied
	}
	if p, ok := u.keys[string(key.Marshal())]; ok {
		return p, nil
	}
	if _, ok := key.(*keys.Certificate); ok && u.keys["cert"] != nil {
		return u.keys["cert"], nil
	}
	return nil, ErrDenied
}

func (a *fakeAuth) KeyboardInteractive(ctx context.Context, meta ConnMetadata, ch Challenger) (*Permissions, error) {
	a.record("keyboard-interactive " + meta.User())
	if a.ki != nil {
		return a.ki(ctx, meta, ch)
	}
	return nil, ErrDenied
}

// testClient drives Run from the client side, message by message.
type testClient struct {
	t    *testing.T
	conn *pipeConn
	done chan runResult
	auth *fakeAuth
}

type runResult struct {
	res *Result
	err error
}

var testSessionID = []byte("0123456789abcdef0123456789abcdef")

func testRemote() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }

// testConfig returns a config with no failure delay so tests run fast.
func testConfig(a Authenticator) *Config {
	return &Config{Authenticator: a, FailureDelay: -1}
}

func start(t *testing.T, cfg *Config) *testClient {
	t.Helper()
	conn := &pipeConn{
		in:  make(chan []byte, pipeDepth),
		out: make(chan []byte, pipeDepth),
		sid: testSessionID,
	}
	host := ed25519Signer(t)
	conn.hostKey = host.PublicKey()
	tc := &testClient{t: t, conn: conn, done: make(chan runResult, 1)}
	if fa, ok := cfg.Authenticator.(*fakeAuth); ok {
		tc.auth = fa
	}
	peer := Peer{RemoteAddr: testRemote(), LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, ClientVersion: "SSH-2.0-test"}
	go func() {
		res, err := Run(context.Background(), conn, peer, cfg)
		tc.done <- runResult{res, err}
		close(conn.out)
	}()
	t.Cleanup(func() { close(conn.in) })
	return tc
}

// hangLimit only stops a broken test from hanging the run; no test asserts
// on time with it.
const hangLimit = 20 * time.Second

func (tc *testClient) send(p []byte) { tc.conn.in <- p }

// recv returns the next message from the server, or nil when Run returned.
func (tc *testClient) recv() []byte {
	tc.t.Helper()
	select {
	case p, ok := <-tc.conn.out:
		if !ok {
			return nil
		}
		return p
	case <-time.After(hangLimit):
		tc.t.Fatal("server did not answer")
		return nil
	}
}

func (tc *testClient) expect(want []byte) {
	tc.t.Helper()
	got := tc.recv()
	if !bytes.Equal(got, want) {
		tc.t.Fatalf("got message %x, want %x", got, want)
	}
}

// wait returns Run's result.
func (tc *testClient) wait() (*Result, error) {
	tc.t.Helper()
	select {
	case r := <-tc.done:
		return r.res, r.err
	case <-time.After(hangLimit):
		tc.t.Fatal("Run did not return")
		return nil, nil
	}
}

// expectDisconnect checks that Run ended with a DisconnectError of the
// given reason, having sent nothing more.
func (tc *testClient) expectDisconnect(reason uint32, msgContains string) {
	tc.t.Helper()
	if p := tc.recv(); p != nil {
		tc.t.Fatalf("unexpected message %x before disconnect", p)
	}
	_, err := tc.wait()
	var de *wire.DisconnectError
	if !errors.As(err, &de) {
		tc.t.Fatalf("Run error = %v, want DisconnectError reason %d", err, reason)
	}
	if de.Reason != reason {
		tc.t.Fatalf("disconnect reason %d (%q), want %d", de.Reason, de.Message, reason)
	}
	if msgContains != "" && !bytes.Contains([]byte(de.Message), []byte(msgContains)) {
		tc.t.Fatalf("disconnect message %q, want it to contain %q", de.Message, msgContains)
	}
}

func (tc *testClient) expectSuccess() *Result {
	tc.t.Helper()
	tc.expect([]byte{wire.MsgUserAuthSuccess})
	res, err := tc.wait()
	if err != nil {
		tc.t.Fatalf("Run: %v", err)
	}
	return res
}

// Hand-built client messages. They are built with the wire append helpers
// field by field, not with the package's message structs, so marshal bugs
// cannot cancel out.

func serviceRequest(name string) []byte {
	return wire.AppendStringS([]byte{wire.MsgServiceRequest}, name)
}

func serviceAccept(name string) []byte {
	return wire.AppendStringS([]byte{wire.MsgServiceAccept}, name)
}

// start the service: SERVICE_REQUEST and the exact SERVICE_ACCEPT.
func (tc *testClient) service() {
	tc.t.Helper()
	tc.send(serviceRequest("ssh-userauth"))
	tc.expect(serviceAccept("ssh-userauth"))
}

func userAuthRequest(user, service, method string, fields ...[]byte) []byte {
	b := []byte{wire.MsgUserAuthRequest}
	b = wire.AppendStringS(b, user)
	b = wire.AppendStringS(b, service)
	b = wire.AppendStringS(b, method)
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func str(s string) []byte   { return wire.AppendStringS(nil, s) }
func blob(b []byte) []byte  { return wire.AppendString(nil, b) }
func boolean(v bool) []byte { return wire.AppendBool(nil, v) }
func noneRequest(user string) []byte {
	return userAuthRequest(user, "ssh-connection", "none")
}

func passwordRequestMsg(user, password string) []byte {
	return userAuthRequest(user, "ssh-connection", "password", boolean(false), str(password))
}

// failure builds the exact USERAUTH_FAILURE the server must send.
func failure(partial bool, methods ...string) []byte {
	b := []byte{wire.MsgUserAuthFailure}
	b = wire.AppendStringS(b, joinComma(methods))
	return wire.AppendBool(b, partial)
}

func joinComma(m []string) string {
	var b bytes.Buffer
	for i, s := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

var allMethods = []string{"publickey", "password", "keyboard-interactive"}

func pkOK(alg string, keyBlob []byte) []byte {
	b := []byte{wire.MsgUserAuthPKOK}
	b = wire.AppendStringS(b, alg)
	return wire.AppendString(b, keyBlob)
}

func pkQuery(user, alg string, keyBlob []byte) []byte {
	return userAuthRequest(user, "ssh-connection", "publickey", boolean(false), str(alg), blob(keyBlob))
}

// signedData builds RFC 4252 §7's signed blob independently of the
// server's code.
func signedData(sid []byte, user, service, method, alg string, keyBlob, hostKey []byte) []byte {
	b := wire.AppendString(nil, sid)
	b = append(b, wire.MsgUserAuthRequest)
	b = wire.AppendStringS(b, user)
	b = wire.AppendStringS(b, service)
	b = wire.AppendStringS(b, method)
	b = append(b, 1)
	b = wire.AppendStringS(b, alg)
	b = wire.AppendString(b, keyBlob)
	if hostKey != nil {
		b = wire.AppendString(b, hostKey)
	}
	return b
}

// pkSigned builds a signed publickey request, signing with s over data for
// the given user and session id (which tests vary to forge).
func pkSigned(t testing.TB, s keys.Signer, sid []byte, signUser, user, alg string) []byte {
	t.Helper()
	keyBlob := s.PublicKey().Marshal()
	sig, err := s.Sign(rand.Reader, signedData(sid, signUser, "ssh-connection", "publickey", alg, keyBlob, nil), keys.UnderlyingAlgorithm(alg))
	if err != nil {
		t.Fatal(err)
	}
	return userAuthRequest(user, "ssh-connection", "publickey", boolean(true), str(alg), blob(keyBlob), blob(sig.Marshal()))
}

func sha1Sum(b []byte) []byte {
	h := sha1.Sum(b)
	return h[:]
}
