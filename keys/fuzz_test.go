package keys

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
)

var (
	seedPubFiles  = []string{"id_dsa.pub", "id_ecdsa256.pub", "id_ecdsa384.pub", "id_ecdsa521.pub", "id_ed25519.pub", "id_rsa.pub", "ca_ed25519.pub"}
	seedCertFiles = []string{"id_ed25519-cert.pub", "id_rsa-cert.pub", "id_ecdsa256-cert.pub", "id_dsa-cert.pub"}
	seedPrivFiles = []string{"id_dsa", "id_ecdsa256", "id_ecdsa384", "id_ecdsa521", "id_ed25519", "id_rsa"}
)

// skSeedBlobs returns sk-* public key blobs built on checked-in key material.
func skSeedBlobs(t testing.TB) [][]byte {
	ed := readPub(t, "id_ed25519.pub").(*Ed25519PublicKey)
	ec := readPub(t, "id_ecdsa256.pub").(*ECDSAPublicKey)
	a := wire.AppendStringS(nil, KeySKEd25519)
	a = wire.AppendString(a, ed.key)
	a = wire.AppendStringS(a, "ssh:")
	b := wire.AppendStringS(nil, KeySKECDSAP256)
	b = wire.AppendStringS(b, "nistp256")
	b = wire.AppendString(b, ec.point)
	b = wire.AppendStringS(b, "ssh:")
	return [][]byte{a, b}
}

func pubSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, f := range seedPubFiles {
		out = append(out, readPub(t, f).Marshal())
	}
	return append(out, skSeedBlobs(t)...)
}

func certSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, f := range seedCertFiles {
		out = append(out, readPub(t, f).Marshal())
	}
	return out
}

func FuzzParsePublicKey(f *testing.F) {
	for _, b := range pubSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		// Strict parsing means one encoding per key.
		if !bytes.Equal(k.Marshal(), b) {
			t.Fatalf("%s: Marshal differs from the parsed blob", k.Type())
		}
		FingerprintSHA256(k)
		MarshalAuthorizedKey(k)
		k.Verify([]byte("x"), &Signature{Format: k.Type(), Blob: b})
	})
}

func FuzzParseCertificate(f *testing.F) {
	for _, b := range certSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Marshal(), b) {
			t.Fatal("Marshal differs from the parsed blob")
		}
		c, ok := k.(*Certificate)
		if !ok {
			return
		}
		c.CheckUserCertificate("alice", time.Unix(1700000000, 0), net.ParseIP("127.0.0.1"), func(PublicKey) bool { return true })
		c.CheckHostCertificate("host", time.Unix(1700000000, 0), func(PublicKey) bool { return true })
		FingerprintSHA256(c)
	})
}

func FuzzParseSignature(f *testing.F) {
	signers := testSigners(f)
	for _, typ := range []string{KeyEd25519, KeyRSA, KeyECDSAP256, KeyDSA, KeySKEd25519, KeySKECDSAP256} {
		for _, alg := range SignatureAlgorithmsFor(typ) {
			sig, err := signers[typ].Sign(rand.Reader, []byte("seed"), alg)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(sig.Marshal())
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Marshal(), b) {
			t.Fatal("Marshal differs from the parsed blob")
		}
		s.SKFlags()
	})
}

func FuzzParseAuthorizedKey(f *testing.F) {
	for _, name := range append(append([]string{}, seedPubFiles...), seedCertFiles...) {
		f.Add([]byte(`restrict,pty,command="echo \"hi\"",from="10.0.0.0/8,!10.1.*",permitopen="h:22" ` +
			string(MarshalAuthorizedKey(readPub(f, name)))))
	}
	f.Add([]byte(`cert-authority,principals="a,b",expiry-time="20300101Z" ssh-ed25519 ` + pubB64(f, "ca_ed25519.pub") + " ca\r\n"))
	f.Add([]byte(`environment="A=b",no-touch-required,verify-required,tunnel="1",permitlisten="8080" ssh-ed25519 ` + pubB64(f, "id_ed25519.pub")))
	f.Fuzz(func(t *testing.T, line []byte) {
		a, err := ParseAuthorizedKey(line)
		if err != nil {
			return
		}
		s := a.String()
		b, err := ParseAuthorizedKey([]byte(s))
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", s, err)
		}
		if !Equal(a.Key, b.Key) || a.Comment != b.Comment || !reflect.DeepEqual(a.Options, b.Options) {
			t.Fatalf("String() %q changed the line\n%+v\n%+v", s, a.Options, b.Options)
		}
		if a.Options.From != nil {
			MatchFrom(a.Options.From, net.ParseIP("10.1.2.3"), "host.example.com")
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	for _, name := range seedPrivFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePrivateKey(data)
		if err != nil {
			return
		}
		sig, err := s.Sign(rand.Reader, []byte("x"), "")
		if err != nil {
			t.Fatalf("parsed key cannot sign: %v", err)
		}
		if err := s.PublicKey().Verify([]byte("x"), sig); err != nil {
			t.Fatalf("parsed key makes bad signatures: %v", err)
		}
	})
}

// fuzzVerifyKeys is the fixed set of keys FuzzVerify checks against, one
// per type.
func fuzzVerifyKeys(t testing.TB) []PublicKey {
	var out []PublicKey
	for _, b := range pubSeeds(t) {
		k, err := ParsePublicKey(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return append(out, readPub(t, "id_ed25519-cert.pub"))
}

func FuzzVerify(f *testing.F) {
	keys := fuzzVerifyKeys(f)
	signers := testSigners(f)
	for i, k := range keys {
		if s, ok := signers[k.Type()]; ok && Equal(s.PublicKey(), k) {
			sig, _ := s.Sign(rand.Reader, []byte("data"), "")
			f.Add(byte(i), sig.Marshal(), []byte("data"))
		} else {
			f.Add(byte(i), wire.AppendString(wire.AppendStringS(nil, k.Type()), make([]byte, 64)), []byte("data"))
		}
	}
	f.Fuzz(func(t *testing.T, which byte, sigBlob, data []byte) {
		k := keys[int(which)%len(keys)]
		sig, err := ParseSignature(sigBlob)
		if err != nil {
			// Also feed unparsed blobs straight to Verify, as a caller
			// holding a Signature built by hand would.
			sig = &Signature{Format: UnderlyingAlgorithm(k.Type()), Blob: sigBlob}
			if len(sigBlob) > 5 {
				sig.Rest = sigBlob[len(sigBlob)-5:]
			}
		}
		k.Verify(data, sig)
		VerifyWithPolicy(k, data, sig, SKPolicy{NoTouchRequired: true})
	})
}

// fuzzTimeSeeds are expiry-time values in every form sshd reads.
var fuzzTimeSeeds = []string{"20300102", "203001020304", "20300102030405", "20300102Z", "20300102030405utc", "20300231", "19700101Z", "20301301"}

func FuzzParseTime(f *testing.F) {
	for _, s := range fuzzTimeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err != nil {
			return
		}
		if tm.Unix() < 0 {
			t.Fatalf("ParseTime(%q) = %v, before 1970", s, tm)
		}
		// What String() writes for an expiry-time must read back as the
		// same wall clock (the same instant, but for a local time in a
		// daylight saving fold).
		canon := tm.Format("20060102150405")
		if tm.Location() == time.UTC {
			canon += "Z"
		}
		again, err := ParseTime(canon)
		if err != nil || again.Format("20060102150405") != tm.Format("20060102150405") || again.Location() != tm.Location() {
			t.Fatalf("ParseTime(%q) = %v; its canonical form %q gives %v, %v", s, tm, canon, again, err)
		}
	})
}

// fuzzFromSeeds are from= and source-address lists.
var fuzzFromSeeds = []string{
	"10.0.0.0/8,!10.1.*,*.example.com", "192.168.1.20", "2001:db8::/32,!2001:db8::5", "*,", "!", "10.0.0.0/33",
	"127.0.0.0/008", "::ffff:10.0.0.0/104", "fe80::1%eth0", "a*b?c",
}

func FuzzMatchFrom(f *testing.F) {
	for i, s := range fuzzFromSeeds {
		ip := net.ParseIP("10.1.2.3")
		if i%2 == 1 {
			ip = net.ParseIP("2001:db8::5")
		}
		f.Add(s, []byte(ip), "host.example.com")
	}
	f.Fuzz(func(t *testing.T, list string, ipBytes []byte, host string) {
		var ip net.IP
		if len(ipBytes) == net.IPv4len || len(ipBytes) == net.IPv6len {
			ip = net.IP(ipBytes)
		}
		patterns := strings.Split(list, ",")
		if MatchFrom(patterns, ip, host) {
			// A trailing "!*" matches every client and so denies.
			if MatchFrom(append(patterns, "!*"), ip, host) {
				t.Fatalf("%q,!* matched %v %q", list, ip, host)
			}
		}
		ok, err := matchCIDRList(ip, list)
		if ok && (err != nil || ip == nil) {
			t.Fatalf("matchCIDRList(%v, %q) = %v, %v", ip, list, ok, err)
		}
	})
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	ed := pubB64(f, "id_ed25519.pub")
	f.Add([]byte("# keys\n\nssh-ed25519 " + ed + " one\r\n   \n  # c\nrestrict,pty ssh-ed25519 " + ed + " two\n"))
	f.Add([]byte("cert-authority,principals=\"a\" ssh-ed25519 " + ed + "\nbogus x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		aks, err := ParseAuthorizedKeys(data)
		if err != nil {
			return
		}
		if len(aks) > MaxAuthorizedKeys {
			t.Fatalf("%d keys", len(aks))
		}
		for _, a := range aks {
			if _, err := ParseAuthorizedKey([]byte(a.String())); err != nil {
				t.Fatalf("String() %q does not parse: %v", a.String(), err)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpora under
// testdata/fuzz when FERRY_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("FERRY_WRITE_CORPUS") != "1" {
		t.Skip("set FERRY_WRITE_CORPUS=1 to regenerate testdata/fuzz seeds")
	}
	write := func(target, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
			case byte:
				fmt.Fprintf(&b, "byte(%s)\n", strconv.QuoteRune(rune(v)))
			case string:
				fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range pubSeeds(t) {
		write("FuzzParsePublicKey", fmt.Sprintf("key-%d", i), b)
	}
	for i, b := range certSeeds(t) {
		write("FuzzParseCertificate", fmt.Sprintf("cert-%d", i), b)
	}
	signers := testSigners(t)
	for _, typ := range []string{KeyEd25519, KeyRSA, KeyECDSAP384, KeyDSA, KeySKEd25519, KeySKECDSAP256} {
		sig, _ := signers[typ].Sign(rand.Reader, []byte("seed"), "")
		write("FuzzParseSignature", "sig-"+typ, sig.Marshal())
	}
	write("FuzzParseAuthorizedKey", "options", []byte(`restrict,pty,command="echo \"a,b\"",from="10.0.0.0/8,!10.1.*",permitopen="[::1]:22" `+
		string(MarshalAuthorizedKey(readPub(t, "id_ed25519.pub")))))
	write("FuzzParseAuthorizedKey", "cert-authority", []byte(`cert-authority,principals="a,b",expiry-time="20300101Z" `+
		string(MarshalAuthorizedKey(readPub(t, "ca_ed25519.pub")))))
	write("FuzzParseAuthorizedKey", "certificate", MarshalAuthorizedKey(readPub(t, "id_rsa-cert.pub")))
	for _, name := range []string{"id_ed25519", "id_ecdsa256", "id_rsa"} {
		data, _ := os.ReadFile(filepath.Join("testdata", name))
		write("FuzzParsePrivateKey", name, data)
	}
	for i, s := range fuzzTimeSeeds {
		write("FuzzParseTime", fmt.Sprintf("time-%d", i), s)
	}
	for i, s := range fuzzFromSeeds {
		ip := net.ParseIP("10.1.2.3")
		if i%2 == 1 {
			ip = net.ParseIP("2001:db8::5")
		}
		write("FuzzMatchFrom", fmt.Sprintf("list-%d", i), s, []byte(ip), "host.example.com")
	}
	ed := pubB64(t, "id_ed25519.pub")
	write("FuzzParseAuthorizedKeys", "file", []byte("# keys\n\nssh-ed25519 "+ed+" one\r\n   \n  # c\nrestrict,pty ssh-ed25519 "+ed+" two\n"))
	write("FuzzParseAuthorizedKeys", "bad-line", []byte("cert-authority,principals=\"a\" ssh-ed25519 "+ed+"\nbogus x\n"))
	keys := fuzzVerifyKeys(t)
	for i, k := range keys {
		if s, ok := signers[k.Type()]; ok && Equal(s.PublicKey(), k) {
			sig, _ := s.Sign(rand.Reader, []byte("data"), "")
			write("FuzzVerify", "valid-"+k.Type(), byte(i), sig.Marshal(), []byte("data"))
		}
	}
}
