package keys

import (
	"encoding/base64"
	"strings"
	"testing"
)

// rfc4716Block writes k as RFC 4716 does: base64 in lines of at most 72
// bytes (§3.4), between the given header lines.
func rfc4716Block(k PublicKey, headers ...string) string {
	b64 := base64.StdEncoding.EncodeToString(k.Marshal())
	var lines []string
	lines = append(lines, RFC4716Begin)
	lines = append(lines, headers...)
	for len(b64) > 70 {
		lines = append(lines, b64[:70])
		b64 = b64[70:]
	}
	lines = append(lines, b64, rfc4716End, "")
	return strings.Join(lines, "\n")
}

func TestParseRFC4716(t *testing.T) {
	rsa, ed := readPub(t, "id_rsa.pub"), readPub(t, "id_ed25519.pub")
	two := "\n\r\n" + rfc4716Block(rsa, `Comment: "1024-bit rsa, user@example.com, \`, `Wed Nov 24 2026"`, `x-command: /home/me/bin/lock-in-guest.sh`) +
		strings.ReplaceAll(rfc4716Block(ed, "Subject: me"), "\n", "\r\n")
	k, comment, rest, err := ParseRFC4716([]byte(two))
	if err != nil || !Equal(k, rsa) || comment != "1024-bit rsa, user@example.com, Wed Nov 24 2026" {
		t.Fatalf("first block: %v %q %v", k, comment, err)
	}
	k, comment, rest, err = ParseRFC4716(rest)
	if err != nil || !Equal(k, ed) || comment != "" || len(rest) != 0 {
		t.Fatalf("second block: %v %q rest %q %v", k, comment, rest, err)
	}

	good := rfc4716Block(ed, "Comment: x")
	for _, tc := range []struct{ name, in, want string }{
		{"no begin line", "ssh-ed25519 AAAA\n", "not an RFC 4716 public key"},
		{"no end line", strings.TrimSuffix(good, rfc4716End+"\n"), "without its"},
		{"header after data", strings.Replace(good, rfc4716End, "Comment: late\n"+rfc4716End, 1), "header after the key data"},
		{"empty tag", strings.Replace(good, "Comment: x", ": x", 1), "header without a tag"},
		{"long tag", strings.Replace(good, "Comment: x", strings.Repeat("t", 65)+": x", 1), "header without a tag"},
		{"long header", strings.Replace(good, "Comment: x", "Comment: "+strings.Repeat("x\\\n", 1100), 1), "header longer than"},
		{"bad base64", strings.Replace(good, rfc4716End, "!!!!\n"+rfc4716End, 1), "bad base64"},
		{"not a key", RFC4716Begin + "\nAAAABHRlc3Q=\n" + rfc4716End + "\n", "unknown key type"},
		{"huge", RFC4716Begin + "\n" + strings.Repeat("AAAA\n", MaxAuthorizedKeyLine/2), "longer than"},
	} {
		if _, _, _, err := ParseRFC4716([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseRFC4716: any input either fails or gives a key whose blob
// parses back to the same key, and rest is a suffix of the input.
func FuzzParseRFC4716(f *testing.F) {
	for _, name := range seedPubFiles {
		f.Add([]byte(rfc4716Block(readPub(f, name), `Comment: "a \`, `b"`)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		k, _, rest, err := ParseRFC4716(in)
		if err != nil {
			return
		}
		if !strings.HasSuffix(string(in), string(rest)) {
			t.Fatalf("rest %q is not a suffix of the input", rest)
		}
		back, err := ParsePublicKey(k.Marshal())
		if err != nil || !Equal(back, k) {
			t.Fatalf("key does not round-trip: %v", err)
		}
	})
}
