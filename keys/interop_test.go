package keys

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
)

// keygenTypes are the ssh-keygen invocations for every key type OpenSSH
// 9.x can generate in software.
var keygenTypes = []struct {
	typ  string
	args []string
}{
	{KeyEd25519, []string{"-t", "ed25519"}},
	{KeyECDSAP256, []string{"-t", "ecdsa", "-b", "256"}},
	{KeyECDSAP384, []string{"-t", "ecdsa", "-b", "384"}},
	{KeyECDSAP521, []string{"-t", "ecdsa", "-b", "521"}},
	{KeyRSA, []string{"-t", "rsa", "-b", "3072"}},
	{KeyDSA, []string{"-t", "dsa"}},
}

func runKeygen(t *testing.T, keygen string, args ...string) string {
	t.Helper()
	cmd := exec.Command(keygen, args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keygenFingerprint returns the fingerprint field of ssh-keygen -l.
func keygenFingerprint(t *testing.T, keygen, hash, file string) string {
	t.Helper()
	f := strings.Fields(runKeygen(t, keygen, "-l", "-E", hash, "-f", file))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l: %q", f)
	}
	return f[1]
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInteropKeygenKeys(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	for _, kt := range keygenTypes {
		t.Run(kt.typ, func(t *testing.T) {
			t.Parallel() // RSA and DSA generation dominate; run the types side by side
			dir := t.TempDir()
			file := filepath.Join(dir, "key")
			args := append([]string{"-q", "-N", "", "-C", "me@host", "-f", file}, kt.args...)
			runKeygen(t, keygen, args...)
			s, err := ParsePrivateKey(readFile(t, file))
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			a, err := ParseAuthorizedKey(readFile(t, file+".pub"))
			if err != nil {
				t.Fatalf("ParseAuthorizedKey(.pub): %v", err)
			}
			if !Equal(s.PublicKey(), a.Key) || a.Comment != "me@host" {
				t.Fatalf("private and .pub keys differ (comment %q)", a.Comment)
			}
			if got, want := FingerprintSHA256(a.Key), keygenFingerprint(t, keygen, "sha256", file+".pub"); got != want {
				t.Errorf("FingerprintSHA256 %s, ssh-keygen %s", got, want)
			}
			if got, want := FingerprintMD5(a.Key), keygenFingerprint(t, keygen, "md5", file+".pub"); got != want {
				t.Errorf("FingerprintMD5 %s, ssh-keygen %s", got, want)
			}
			if got := string(MarshalAuthorizedKey(a.Key)); !strings.HasPrefix(string(readFile(t, file+".pub")), strings.TrimSuffix(got, "\n")+" ") {
				t.Errorf("MarshalAuthorizedKey %q differs from .pub", got)
			}
			// The same key in the PEM formats ssh-keygen can convert to.
			for _, format := range []string{"PEM", "PKCS8"} {
				if kt.typ == KeyEd25519 || (kt.typ == KeyDSA && format == "PKCS8") {
					continue // ssh-keygen keeps ed25519 in its own format; Go has no PKCS#8 DSA
				}
				conv := filepath.Join(dir, "conv-"+format)
				if err := os.WriteFile(conv, readFile(t, file), 0o600); err != nil {
					t.Fatal(err)
				}
				runKeygen(t, keygen, "-p", "-q", "-P", "", "-N", "", "-m", format, "-f", conv)
				data := readFile(t, conv)
				if bytes.Contains(data, []byte("OPENSSH PRIVATE KEY")) {
					t.Fatalf("ssh-keygen -m %s left the OpenSSH format", format)
				}
				cs, err := ParsePrivateKey(data)
				if err != nil {
					t.Fatalf("ParsePrivateKey(%s): %v", format, err)
				}
				if !Equal(cs.PublicKey(), a.Key) {
					t.Fatalf("%s key differs", format)
				}
			}
			// An encrypted copy is refused with ErrEncryptedKey.
			enc := filepath.Join(dir, "enc")
			runKeygen(t, keygen, append([]string{"-q", "-N", "secret pass", "-f", enc}, kt.args...)...)
			if _, err := ParsePrivateKey(readFile(t, enc)); !errors.Is(err, ErrEncryptedKey) {
				t.Fatalf("encrypted key: %v", err)
			}
			if kt.typ != KeyEd25519 {
				runKeygen(t, keygen, "-p", "-q", "-P", "secret pass", "-N", "other pass", "-m", "PEM", "-f", enc)
				if _, err := ParsePrivateKey(readFile(t, enc)); !errors.Is(err, ErrEncryptedKey) {
					t.Fatalf("encrypted PEM key: %v", err)
				}
			}
		})
	}
}

func TestInteropMarshalPrivateKey(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	for _, kt := range keygenTypes {
		t.Run(kt.typ, func(t *testing.T) {
			bits := 0
			if kt.typ == KeyRSA {
				bits = 2048
			}
			s, err := GenerateKey(kt.typ, bits)
			if err != nil {
				t.Fatal(err)
			}
			data, err := MarshalPrivateKey(s, "ferry test key")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			out := runKeygen(t, keygen, "-y", "-f", file)
			want := strings.TrimSuffix(string(MarshalAuthorizedKey(s.PublicKey())), "\n")
			if f := strings.Fields(out); len(f) < 2 || f[0]+" "+f[1] != want {
				t.Fatalf("ssh-keygen -y: %q, want %q", out, want)
			}
			if !strings.Contains(out, "ferry test key") {
				t.Errorf("ssh-keygen -y lost the comment: %q", out)
			}
			if got, want := keygenFingerprint(t, keygen, "sha256", file), FingerprintSHA256(s.PublicKey()); got != want {
				t.Errorf("ssh-keygen -l %s, ours %s", got, want)
			}
		})
	}
}

// sshsigSignedData builds the data an SSHSIG signature covers
// (OpenSSH PROTOCOL.sshsig), so ssh-keygen -Y can check our signatures
// and we can check its.
func sshsigSignedData(namespace string, msg []byte) []byte {
	h := sha512.Sum512(msg)
	b := []byte("SSHSIG")
	b = wire.AppendStringS(b, namespace)
	b = wire.AppendString(b, nil)
	b = wire.AppendStringS(b, "sha512")
	return wire.AppendString(b, h[:])
}

func sshsigArmor(pub PublicKey, namespace string, sig *Signature) []byte {
	b := []byte("SSHSIG")
	b = wire.AppendUint32(b, 1)
	b = wire.AppendString(b, pub.Marshal())
	b = wire.AppendStringS(b, namespace)
	b = wire.AppendString(b, nil)
	b = wire.AppendStringS(b, "sha512")
	b = wire.AppendString(b, sig.Marshal())
	return pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: b})
}

func sshsigParse(t *testing.T, armored []byte) *Signature {
	t.Helper()
	blk, _ := pem.Decode(armored)
	if blk == nil || !bytes.HasPrefix(blk.Bytes, []byte("SSHSIG")) {
		t.Fatalf("bad SSHSIG file %q", armored)
	}
	r := wire.NewReader(blk.Bytes[6:])
	r.Uint32()
	r.Bytes()
	r.Bytes()
	r.Bytes()
	r.Bytes()
	sigBlob := r.Bytes()
	if !r.Done() {
		t.Fatal("bad SSHSIG blob")
	}
	sig, err := ParseSignature(sigBlob)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestInteropSignatures checks our signatures with ssh-keygen -Y verify and
// ssh-keygen's signatures with Verify, for every key type and algorithm
// ssh-keygen signs with.
func TestInteropSignatures(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	const ns = "file"
	msg := []byte("signed by ferry\n")
	for typ, s := range testSigners(t) {
		if strings.HasPrefix(typ, "sk-") {
			continue
		}
		algs := SignatureAlgorithmsFor(typ)
		if typ == KeyRSA {
			algs = algs[:2] // SSHSIG forbids ssh-rsa (SHA-1)
		}
		for _, alg := range algs {
			t.Run(alg+"/"+typ, func(t *testing.T) {
				dir := t.TempDir()
				sig, err := s.Sign(rand.Reader, sshsigSignedData(ns, msg), alg)
				if err != nil {
					t.Fatal(err)
				}
				sigFile := filepath.Join(dir, "msg.sig")
				allowed := filepath.Join(dir, "allowed")
				os.WriteFile(sigFile, sshsigArmor(s.PublicKey(), ns, sig), 0o600)
				os.WriteFile(allowed, append([]byte("me "), MarshalAuthorizedKey(s.PublicKey())...), 0o600)
				cmd := exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "me", "-n", ns, "-s", sigFile)
				cmd.Stdin = bytes.NewReader(msg)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("ssh-keygen -Y verify rejected our %s signature: %v\n%s", alg, err, out)
				}
			})
		}
	}
	// ssh-keygen signs, we verify.
	for _, f := range []string{"id_ed25519", "id_rsa", "id_ecdsa256", "id_ecdsa384", "id_ecdsa521"} {
		t.Run("keygen-"+f, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, "k")
			os.WriteFile(key, readFile(t, filepath.Join("testdata", f)), 0o600)
			msgFile := filepath.Join(dir, "msg")
			os.WriteFile(msgFile, msg, 0o600)
			runKeygen(t, keygen, "-Y", "sign", "-f", key, "-n", ns, msgFile)
			sig := sshsigParse(t, readFile(t, msgFile+".sig"))
			pub := readPub(t, f+".pub")
			if err := pub.Verify(sshsigSignedData(ns, msg), sig); err != nil {
				t.Fatalf("Verify(ssh-keygen %s signature): %v", sig.Format, err)
			}
			if err := pub.Verify(sshsigSignedData(ns, []byte("other")), sig); !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("wrong message: %v", err)
			}
		})
	}
}

func TestInteropCertificates(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	otherCA := filepath.Join(dir, "other-ca")
	user := filepath.Join(dir, "user")
	runKeygen(t, keygen, "-q", "-t", "ed25519", "-N", "", "-f", ca)
	runKeygen(t, keygen, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", otherCA)
	runKeygen(t, keygen, "-q", "-t", "ecdsa", "-N", "", "-f", user)
	caPub := mustAuthorizedKey(t, readFile(t, ca+".pub")).Key
	otherPub := mustAuthorizedKey(t, readFile(t, otherCA+".pub")).Key
	trust := func(k PublicKey) func(PublicKey) bool {
		return func(c PublicKey) bool { return Equal(c, k) }
	}
	sign := func(caFile string, extra ...string) *Certificate {
		t.Helper()
		os.Remove(user + "-cert.pub")
		runKeygen(t, keygen, append(append([]string{"-q", "-s", caFile, "-I", "id"}, extra...), user+".pub")...)
		k := mustAuthorizedKey(t, readFile(t, user+"-cert.pub")).Key
		c, ok := k.(*Certificate)
		if !ok {
			t.Fatalf("parsed %T", k)
		}
		return c
	}
	now := time.Now()
	local := net.ParseIP("127.0.0.1")

	c := sign(ca, "-n", "alice,bob", "-V", "+1h", "-O", "source-address=127.0.0.1/32", "-O", "force-command=/bin/true")
	if c.Type() != CertECDSAP256 || c.KeyID != "id" || len(c.ValidPrincipals) != 2 {
		t.Fatalf("cert %s %q %v", c.Type(), c.KeyID, c.ValidPrincipals)
	}
	if got, want := FingerprintSHA256(c.Key), keygenFingerprint(t, keygen, "sha256", user+".pub"); got != want {
		t.Errorf("certified key fingerprint %s, want %s", got, want)
	}
	for _, p := range []string{"alice", "bob"} {
		fc, err := c.CheckUserCertificate(p, now, local, trust(caPub))
		if err != nil || fc != "/bin/true" {
			t.Fatalf("principal %s: %q, %v", p, fc, err)
		}
	}
	for _, tt := range []struct {
		name      string
		principal string
		now       time.Time
		remote    net.IP
		ca        PublicKey
		want      string
	}{
		{"denied principal", "carol", now, local, caPub, `principal "carol" not listed`},
		{"expired", "alice", now.Add(2 * time.Hour), local, caPub, "expired"},
		{"not yet valid", "alice", now.Add(-time.Hour), local, caPub, "not yet valid"},
		{"wrong CA", "alice", now, local, otherPub, "not signed by a trusted authority"},
		{"source-address mismatch", "alice", now, net.ParseIP("127.0.0.2"), caPub, "source address 127.0.0.2 not permitted"},
	} {
		_, err := c.CheckUserCertificate(tt.principal, tt.now, tt.remote, trust(tt.ca))
		if !errors.Is(err, ErrCertificate) || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// The user's own signature verifies through the certificate.
	us, err := ParsePrivateKey(readFile(t, user))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewCertSigner(c, us)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := cs.Sign(rand.Reader, []byte("x"), CertECDSAP256)
	if err := cs.PublicKey().Verify([]byte("x"), sig); err != nil || sig.Format != KeyECDSAP256 {
		t.Fatalf("cert signer: %s %v", sig.Format, err)
	}

	// A window entirely in the past.
	c = sign(ca, "-n", "alice", "-V", "20100101:20110101")
	if _, err := c.CheckUserCertificate("alice", now, local, trust(caPub)); err == nil || !strings.HasSuffix(err.Error(), "expired") {
		t.Errorf("past window: %v", err)
	}
	// No principals: refused, as sshd does.
	c = sign(ca)
	if _, err := c.CheckUserCertificate("alice", now, local, trust(caPub)); err == nil || !strings.HasSuffix(err.Error(), "no principals") {
		t.Errorf("empty principals: %v", err)
	}
	// A host certificate is not a user certificate.
	c = sign(ca, "-h", "-n", "alice")
	if _, err := c.CheckUserCertificate("alice", now, local, trust(caPub)); err == nil || !strings.Contains(err.Error(), "certificate type 2") {
		t.Errorf("host cert as user cert: %v", err)
	}
	if err := c.CheckHostCertificate("alice", now, trust(caPub)); err != nil {
		t.Errorf("host cert: %v", err)
	}
	// RSA CA: SHA-2 signatures pass, SHA-1 is refused by default.
	for _, alg := range []string{SigRSASHA512, SigRSASHA256, SigRSASHA1} {
		c = sign(otherCA, "-t", alg, "-n", "alice")
		if c.Signature.Format != alg {
			t.Fatalf("ssh-keygen -t %s made a %s signature", alg, c.Signature.Format)
		}
		_, err := c.CheckUserCertificate("alice", now, local, trust(otherPub))
		if (err != nil) != (alg == SigRSASHA1) {
			t.Errorf("RSA CA with %s: %v", alg, err)
		}
	}
	// An unknown critical option refuses the certificate.
	c = sign(ca, "-n", "alice", "-O", "critical:frobnicate=yes")
	if _, err := c.CheckUserCertificate("alice", now, local, trust(caPub)); err == nil || !strings.Contains(err.Error(), `unsupported critical option "frobnicate"`) {
		t.Errorf("unknown critical option: %v", err)
	}
	// A tampered certificate (principal changed after signing) fails the
	// CA signature.
	c = sign(ca, "-n", "alice")
	blob := c.Marshal()
	i := bytes.Index(blob, []byte("alice"))
	blob[i] = 'A'
	k, err := ParsePublicKey(blob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.(*Certificate).CheckUserCertificate("Alice", now, local, trust(caPub)); err == nil || !strings.Contains(err.Error(), "bad CA signature") {
		t.Errorf("tampered certificate: %v", err)
	}
}

// TestInteropSignCert checks that ssh-keygen reads certificates we sign.
func TestInteropSignCert(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	signers := testSigners(t)
	ca := signers[KeyEd25519]
	for _, typ := range []string{KeyEd25519, KeyRSA, KeyECDSAP384, KeyDSA, KeySKEd25519} {
		c := &Certificate{
			Key: signers[typ].PublicKey(), Serial: 99, CertType: UserCert, KeyID: "ferry",
			ValidPrincipals: []string{"alice"}, ValidAfter: 0, ValidBefore: CertTimeInfinity,
			CriticalOptions: map[string]string{OptForceCommand: "internal-sftp"},
			Extensions:      map[string]string{ExtPermitPTY: "", ExtPermitPortForwarding: ""},
		}
		if err := c.SignCert(rand.Reader, ca, ""); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "k-cert.pub")
		os.WriteFile(file, MarshalAuthorizedKey(c), 0o600)
		out := runKeygen(t, keygen, "-L", "-f", file)
		for _, want := range []string{c.Type() + " user certificate", "Serial: 99", `Key ID: "ferry"`, "alice", "force-command internal-sftp", "permit-pty", "Valid: forever", FingerprintSHA256(ca.PublicKey())} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: ssh-keygen -L lacks %q:\n%s", typ, want, out)
			}
		}
		if _, err := c.CheckUserCertificate("alice", time.Now(), nil, func(k PublicKey) bool { return Equal(k, ca.PublicKey()) }); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func mustAuthorizedKey(t *testing.T, line []byte) *AuthorizedKey {
	t.Helper()
	a, err := ParseAuthorizedKey(line)
	if err != nil {
		t.Fatalf("ParseAuthorizedKey: %v", err)
	}
	return a
}
