package password

import (
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/ferry-sftp/ferry/internal/testenv"
)

// knownAnswers are published vectors: SHA-crypt from Drepper's
// specification (every vector there, including rounds= and the clamping
// cases), bcrypt from Openwall's crypt_blowfish test suite, argon2id from the
// reference implementation's src/test.c, and md5crypt and the $2b$/$2y$
// spellings checked with `openssl passwd -1` and Python's bcrypt module,
// Apache's $apr1$ with `openssl passwd -apr1`, and Dovecot's {SCHEME}
// prefixes before vectors of the schemes they name.
var knownAnswers = []struct {
	password, hash string
}{
	{"Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"Hello world!", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{"This is just a test", "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
	{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1"},
	{"we have a short salt string but not a short password", "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/"},
	{"a short string", "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD"},
	{"the minimum number is still observed", "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
	// rounds=10 as written by a non-clamping tool: clamped to 1000 (Drepper).
	{"the minimum number is still observed", "$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
	{"Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"This is just a test", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"we have a short salt string but not a short password", "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"a short string", "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"the minimum number is still observed", "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	{"Hello world!", "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1"},
	{"password", "$1$12345678$o2n/JiO/h5VviOInWJ4OQ/"},
	{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$1$x$ql4J0NpqIVxIlipGxPuI//"},
	{"abc", "$1$$j0yT3c/2mYPQF09fpvPLb0"},
	{"", "$1$abc$Or2rbeUYTvt12aiVzMuS/."},
	{"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
	{"U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"},
	{"U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"},
	{"", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"},
	{"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored", "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"},
	{"ferry", "$2b$06$abcdefghijklmnopqrstuu44QA5J8J5BC2tajUp4aTZM8n6tu8aUC"},
	{"ferry", "$2y$06$abcdefghijklmnopqrstuu44QA5J8J5BC2tajUp4aTZM8n6tu8aUC"},
	{"password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"", "$apr1$Ab./9z$XMNtfNwgBwSPutfs.FoLN1"},
	{"a", "$apr1$Ab./9z$giquFhv.j5FSaCqtx41wo."},
	{"secret123", "$apr1$Ab./9z$L.WAafoZIgREAwhgyRbDj1"},
	{"0123456789abcdef0123", "$apr1$Ab./9z$TL7iNopwgxi3Hktal1Rv0/"},
	{"abc", "$apr1$$VMQOQSfAGUIVPENqURNEZ1"},
	{"password", "$apr1$12345678$9pHAGSBYtlmFtid2xxNog0"},
	{"Hello world!", "{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"Hello world!", "{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"password", "{MD5-CRYPT}$1$12345678$o2n/JiO/h5VviOInWJ4OQ/"},
	{"password", "{crypt}$1$12345678$o2n/JiO/h5VviOInWJ4OQ/"},
	{"ferry", "{BLF-CRYPT}$2y$06$abcdefghijklmnopqrstuu44QA5J8J5BC2tajUp4aTZM8n6tu8aUC"},
	{"password", "{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
}

func TestKnownAnswers(t *testing.T) {
	for _, tc := range knownAnswers {
		ok, rehash, err := Verify(tc.hash, tc.password)
		if err != nil || !ok {
			t.Errorf("Verify(%q, %q) = %v, %v, %v; want match", tc.hash, tc.password, ok, rehash, err)
			continue
		}
		// None of these is argon2id with DefaultParams.
		if !rehash {
			t.Errorf("Verify(%q): needsRehash = false, want true", tc.hash)
		}
		ok, _, err = Verify(tc.hash, "x"+tc.password)
		if err != nil || ok {
			t.Errorf("Verify(%q, wrong password) = %v, %v; want mismatch without error", tc.hash, ok, err)
		}
	}
}

// TestCryptDigestsExact checks the encoders byte for byte, not only through
// Verify's comparison.
func TestCryptDigestsExact(t *testing.T) {
	for _, tc := range knownAnswers {
		var scheme cryptScheme
		switch tc.hash[:3] {
		case "$ap":
			scheme = apr1Crypt
		case "$1$":
			scheme = md5Crypt
		case "$5$":
			scheme = sha256Crypt
		case "$6$":
			scheme = sha512Crypt
		default:
			continue
		}
		s, err := parseCrypt(tc.hash, scheme)
		if err != nil {
			t.Fatalf("parseCrypt(%q): %v", tc.hash, err)
		}
		if got := string(scheme.digest([]byte(tc.password), s)); got != s.encoded {
			t.Errorf("%q: digest %q, want %q", tc.hash, got, s.encoded)
		}
	}
}

// TestAgainstOpenSSL cross-checks the crypt schemes against `openssl
// passwd` for passwords and salts of many lengths (the length-dependent
// branches of both algorithms).
func TestAgainstOpenSSL(t *testing.T) {
	openssl := testenv.NeedTool(t, "openssl")
	pw := strings.Repeat("pässwörd-0123456789", 8)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 150} {
		for _, alg := range []string{"-1", "-apr1", "-5", "-6"} {
			salt := "Ab./9z"[:n%7]
			setting := salt
			if (alg == "-5" || alg == "-6") && n%2 == 1 {
				setting = "rounds=1234$" + salt
			}
			if salt == "" && (alg == "-5" || alg == "-6") {
				continue // openssl refuses an empty SHA-crypt salt
			}
			out, err := exec.Command(openssl, "passwd", alg, "-salt", setting, pw[:n]).Output()
			if err != nil {
				t.Fatalf("openssl passwd %s -salt %q: %v", alg, setting, err)
			}
			hash := strings.TrimSpace(string(out))
			if ok, _, err := Verify(hash, pw[:n]); !ok || err != nil {
				t.Errorf("openssl's %q for a %d-byte password: ok=%v err=%v", hash, n, ok, err)
			}
		}
	}
}

func TestHashRoundTrip(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("Hash = %q, want argon2id with m=19456,t=2,p=1", h)
	}
	h2, _ := Hash("correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	if ok, rehash, err := Verify(h, "correct horse"); !ok || rehash || err != nil {
		t.Fatalf("Verify(own hash) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	if ok, _, err := Verify(h, "correct horsE"); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	if NeedsRehash(h) {
		t.Error("NeedsRehash(fresh hash) = true")
	}
}

func TestNeedsRehash(t *testing.T) {
	cheap, err := New(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	old, err := cheap.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	// A valid argon2id hash with other parameters verifies but must be
	// upgraded.
	if ok, rehash, err := Verify(old, "pw"); !ok || !rehash || err != nil {
		t.Fatalf("Verify(old params) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	// A mismatch never asks for a rehash (the daemon must not rehash a
	// password it did not verify).
	if ok, rehash, _ := Verify(old, "wrong"); ok || rehash {
		t.Fatalf("Verify(wrong) = %v, %v", ok, rehash)
	}
	for _, h := range []string{old, "$1$abc$Or2rbeUYTvt12aiVzMuS/.", "", "garbage"} {
		if !NeedsRehash(h) {
			t.Errorf("NeedsRehash(%q) = false", h)
		}
	}
}

func TestRejects(t *testing.T) {
	long := strings.Repeat("a", MaxPasswordLength+1)
	for _, tc := range []struct {
		hash, password string
		want           error
	}{
		{"", "x", ErrUnknownFormat},
		{"*", "x", ErrUnknownFormat},
		{"!$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!", ErrUnknownFormat},
		{"$6$rounds=1000001$s$" + strings.Repeat("a", 86), "x", ErrTooExpensive},
		{"$6$rounds=99999999999$s$" + strings.Repeat("a", 86), "x", ErrMalformed},
		{"$5$rounds=$s$" + strings.Repeat("a", 43), "x", ErrMalformed},
		{"$5$rounds=-5$s$" + strings.Repeat("a", 43), "x", ErrMalformed},
		{"$5$s$" + strings.Repeat("a", 42), "x", ErrMalformed},
		{"$5$s$" + strings.Repeat("a", 42) + "_", "x", ErrMalformed},
		{"$5$saltstringsaltstring$" + strings.Repeat("a", 43), "x", ErrMalformed},
		{"$1$123456789$" + strings.Repeat("a", 22), "x", ErrMalformed},
		{"$1$rounds=5000$abc$Or2rbeUYTvt12aiVzMuS/.", "", ErrMalformed},
		{"$2a$15$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", ErrTooExpensive},
		{"$2a$05$CCCC", "U*U", ErrMalformed},
		{"$argon2id$v=19$m=131072,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrTooExpensive},
		{"$argon2id$v=19$m=65536,t=11,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrTooExpensive},
		{"$argon2id$v=19$m=65536,t=2,p=256$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrTooExpensive},
		{"$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$v=19$m=65536,t=2,p=1$c29tZQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$", "password", ErrMalformed},
		{"$argon2id$v=19$m=7,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2id$v=19$m=65536,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrMalformed},
		{"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", ErrUnknownFormat},
		{"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", long, ErrPasswordTooLong},
	} {
		ok, rehash, err := Verify(tc.hash, tc.password)
		if ok || rehash || !errors.Is(err, tc.want) {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, %v", tc.hash, ok, rehash, err, tc.want)
		}
	}
	if _, err := Hash(long); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("Hash(too long) err = %v", err)
	}
	if _, err := New(Params{Memory: MaxArgon2Memory + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}); !errors.Is(err, ErrTooExpensive) {
		t.Errorf("New(too much memory) err = %v", err)
	}
}

type kdfCall struct {
	password, salt       string
	time, memory, keyLen uint32
	threads              uint8
}

// countingHasher records every argon2id computation the Hasher runs.
func countingHasher(calls *[]kdfCall) *Hasher {
	h := defaultHasher()
	h.idKey = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		*calls = append(*calls, kdfCall{string(password), string(salt), time, memory, keyLen, threads})
		return argon2.IDKey(password, salt, time, memory, threads, keyLen)
	}
	return h
}

// TestDummyVerifyCostsAVerify checks by structure, not by timing, that the
// unknown-user path runs exactly one argon2id computation with the same
// parameters, password and salt length as verifying a real current hash.
func TestDummyVerifyCostsAVerify(t *testing.T) {
	var calls []kdfCall
	h := countingHasher(&calls)
	hash, err := h.Hash("secret")
	if err != nil {
		t.Fatal(err)
	}
	calls = nil
	if ok, _, _ := h.Verify(hash, "guess"); ok {
		t.Fatal("wrong password verified")
	}
	h.DummyVerify("guess")
	if len(calls) != 2 {
		t.Fatalf("argon2id ran %d times for Verify+DummyVerify, want 2", len(calls))
	}
	real, dummy := calls[0], calls[1]
	if dummy.time != real.time || dummy.memory != real.memory || dummy.threads != real.threads ||
		dummy.keyLen != real.keyLen || len(dummy.salt) != len(real.salt) || dummy.password != real.password {
		t.Fatalf("DummyVerify ran %+v, Verify ran %+v", dummy, real)
	}
	if real.memory != DefaultMemory || real.time != DefaultTime || real.threads != DefaultThreads {
		t.Fatalf("Verify ran %+v, want the default parameters", real)
	}
}

func BenchmarkVerifyArgon2id(b *testing.B) {
	h, _ := Hash("benchmark password")
	b.ReportAllocs()
	for b.Loop() {
		Verify(h, "benchmark password")
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		DummyVerify("benchmark password")
	}
}

func BenchmarkVerifySHA512Crypt(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Verify("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!")
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range knownAnswers {
		if err := Check(tc.hash); err != nil {
			t.Errorf("Check(%q) = %v", tc.hash, err)
		}
	}
	for hash, want := range map[string]error{
		"":                                  ErrUnknownFormat,
		"$y$j9T$abc$def":                    ErrUnknownFormat, // yescrypt
		"abJnggxhB/yJU":                     ErrUnknownFormat, // traditional DES crypt
		"{CRYPT}abJnggxhB/yJU":              ErrUnknownFormat, // the same, as Dovecot stores it
		"{PLAIN}secret":                     ErrUnknownFormat,
		"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=": ErrUnknownFormat, // htpasswd -s: unsalted SHA-1
		// A prefix must agree with the string it tags.
		"{SHA512-CRYPT}$1$12345678$o2n/JiO/h5VviOInWJ4OQ/": ErrUnknownFormat,
		"{SHA512-CRYPT}$6$s$abc":                           ErrMalformed,
		"$2b$06$abc":                                       ErrMalformed,
		"$6$rounds=2000000$s$abc":                          ErrTooExpensive,
		"$argon2id$v=19$m=131072,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc": ErrTooExpensive,
	} {
		if err := Check(hash); !errors.Is(err, want) {
			t.Errorf("Check(%q) = %v, want %v", hash, err, want)
		}
	}
}

// TestSHACryptLongPasswordRefusedCheaply: a password longer than
// MaxSHACryptPasswordLength never matches an SHA-crypt hash and is refused
// without running the (length-proportional) hash.
func TestSHACryptLongPasswordRefusedCheaply(t *testing.T) {
	long := strings.Repeat("p", MaxSHACryptPasswordLength+1)
	for _, h := range []string{
		"$6$rounds=1000000$saltsalt$" + strings.Repeat("a", 86),
		"$5$rounds=1000000$saltsalt$" + strings.Repeat("a", 43),
	} {
		ok, rehash, err := Verify(h, long)
		if ok || rehash || err != nil {
			t.Errorf("Verify(%.12s…, long) = %v, %v, %v", h, ok, rehash, err)
		}
	}
	if _, _, err := Verify("$6$rounds=1000000$", long); err == nil {
		t.Error("malformed hash not reported for a long password")
	}
}

// TestConcurrentArgon2Bounded: one Hasher shared by a server's logins runs
// at most its slots of argon2id computations at once, whatever the number
// of callers, since each holds its memory parameter (19 MiB) while it
// runs; a flood of password guesses on 100 connections held 100 of them.
func TestConcurrentArgon2Bounded(t *testing.T) {
	const slots, callers = 2, 12
	h := newHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, slots)
	var (
		mu               sync.Mutex
		running, maxSeen int
		allIn            = make(chan struct{})
		closeOnce        sync.Once
	)
	h.idKey = func(password, salt []byte, _, _ uint32, _ uint8, keyLen uint32) []byte {
		mu.Lock()
		running++
		maxSeen = max(maxSeen, running)
		if running == callers {
			closeOnce.Do(func() { close(allIn) })
		}
		mu.Unlock()
		// Without a bound every caller is in here at once; wait a little
		// for that, so that the test sees it.
		select {
		case <-allIn:
		case <-time.After(20 * time.Millisecond):
		}
		mu.Lock()
		running--
		mu.Unlock()
		return argon2.IDKey(password, salt, 1, 64, 1, keyLen)
	}
	hash, err := h.Hash("secret")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				h.DummyVerify("guess")
			case 1:
				h.Verify(hash, "guess")
			default:
				h.Hash("new")
			}
		})
	}
	wg.Wait()
	if maxSeen > slots {
		t.Fatalf("%d argon2id computations ran at once, want at most %d", maxSeen, slots)
	}
}
