package keys

import (
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAuthorizedKey(t *testing.T) {
	ed := pubB64(t, "id_ed25519.pub")
	rsa := pubB64(t, "id_rsa.pub")
	ec := pubB64(t, "id_ecdsa256.pub")
	tests := []struct {
		name    string
		line    string
		typ     string
		comment string
		opts    KeyOptions
	}{
		{"bare", "ssh-ed25519 " + ed, KeyEd25519, "", KeyOptions{}},
		{"comment with spaces", "ssh-ed25519 " + ed + " alice@laptop  work key", KeyEd25519, "alice@laptop  work key", KeyOptions{}},
		{"leading whitespace and CRLF", " \t ssh-rsa " + rsa + " c\r\n", KeyRSA, "c", KeyOptions{}},
		{"tabs", "ecdsa-sha2-nistp256\t" + ec + "\tx", KeyECDSAP256, "x", KeyOptions{}},
		{"no-pty", "no-pty ssh-ed25519 " + ed, KeyEd25519, "", KeyOptions{NoPTY: true}},
		{"case-insensitive names", "NO-PTY,No-Port-Forwarding ssh-ed25519 " + ed, KeyEd25519, "", KeyOptions{NoPTY: true, NoPortForwarding: true}},
		{"command with escaped quote and comma", `command="echo \"a,b\" c",no-x11-forwarding ssh-ed25519 ` + ed + " k", KeyEd25519, "k",
			KeyOptions{Command: `echo "a,b" c`, NoX11Forwarding: true}},
		{"command with space", `command="/usr/bin/rsync --server -e.Lsfx . /srv" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{Command: "/usr/bin/rsync --server -e.Lsfx . /srv"}},
		{"backslash kept unless before quote", `command="a\\b\nc" ssh-ed25519 ` + ed, KeyEd25519, "", KeyOptions{Command: `a\\b\nc`}},
		{"restrict then pty", "restrict,pty ssh-ed25519 " + ed, KeyEd25519, "",
			KeyOptions{Restrict: true, NoPortForwarding: true, NoAgentForwarding: true, NoX11Forwarding: true, NoUserRC: true}},
		{"restrict then port-forwarding", "restrict,port-forwarding,permitopen=\"localhost:8080\",permitopen=\"[::1]:22\" ssh-ed25519 " + ed, KeyEd25519, "",
			KeyOptions{Restrict: true, NoPTY: true, NoAgentForwarding: true, NoX11Forwarding: true, NoUserRC: true,
				PermitOpen: []string{"localhost:8080", "[::1]:22"}}},
		{"permitlisten", `permitlisten="8080",permitlisten="localhost:*" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{PermitListen: []string{"8080", "localhost:*"}}},
		{"from", `from="*.example.com,!bad.example.com,10.0.0.0/8" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{From: []string{"*.example.com", "!bad.example.com", "10.0.0.0/8"}}},
		{"environment", `environment="LANG=C",environment="A_1=x=y" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{Environment: []string{"LANG=C", "A_1=x=y"}}},
		{"environment first wins", `environment="A=1",environment="AB=2",environment="A=3" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{Environment: []string{"A=1", "AB=2"}}},
		{"expiry-time utc", `expiry-time="20300102030405Z" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{ExpiryTime: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"expiry-time local", `expiry-time="203001020304" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{ExpiryTime: time.Date(2030, 1, 2, 3, 4, 0, 0, time.Local)}},
		{"expiry-time earliest wins", `expiry-time="20310101Z",expiry-time="20300101Z" ssh-ed25519 ` + ed, KeyEd25519, "",
			KeyOptions{ExpiryTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"cert-authority principals", `cert-authority,principals="alice,bob" ssh-ed25519 ` + ed + " CA", KeyEd25519, "CA",
			KeyOptions{CertAuthority: true, Principals: []string{"alice", "bob"}}},
		{"sk flags", "no-touch-required,verify-required ssh-ed25519 " + ed, KeyEd25519, "",
			KeyOptions{NoTouchRequired: true, VerifyRequired: true}},
		{"tunnel", `tunnel="0" ssh-ed25519 ` + ed, KeyEd25519, "", KeyOptions{Tunnel: "0"}},
		// sshd 9.2 accepts these lines: an empty option is passed over,
		// options end at the blank after a trailing comma, and a2tun
		// ignores the case of "any".
		{"trailing comma", "no-pty, ssh-ed25519 " + ed, KeyEd25519, "", KeyOptions{NoPTY: true}},
		{"empty options", ",no-pty,,no-x11-forwarding ssh-ed25519 " + ed, KeyEd25519, "", KeyOptions{NoPTY: true, NoX11Forwarding: true}},
		{"tunnel ANY", `tunnel="ANY" ssh-ed25519 ` + ed, KeyEd25519, "", KeyOptions{Tunnel: "any"}},
		{"every no- flag without restrict", "no-pty,no-port-forwarding,no-agent-forwarding,no-x11-forwarding,no-user-rc ssh-ed25519 " + ed, KeyEd25519, "",
			KeyOptions{NoPTY: true, NoPortForwarding: true, NoAgentForwarding: true, NoX11Forwarding: true, NoUserRC: true}},
		{"touch-required after no-touch-required", "no-touch-required,touch-required ssh-ed25519 " + ed, KeyEd25519, "", KeyOptions{}},
		{"certificate", "ssh-ed25519-cert-v01@openssh.com " + pubB64(t, "id_ed25519-cert.pub") + " cert", CertEd25519, "cert", KeyOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAuthorizedKey([]byte(tt.line))
			if err != nil {
				t.Fatalf("ParseAuthorizedKey: %v", err)
			}
			if a.Key.Type() != tt.typ {
				t.Errorf("type %q, want %q", a.Key.Type(), tt.typ)
			}
			if a.Comment != tt.comment {
				t.Errorf("comment %q, want %q", a.Comment, tt.comment)
			}
			if !reflect.DeepEqual(a.Options, tt.opts) {
				t.Errorf("options\n got %+v\nwant %+v", a.Options, tt.opts)
			}
			// String must round-trip to the same meaning.
			b, err := ParseAuthorizedKey([]byte(a.String()))
			if err != nil {
				t.Fatalf("reparse %q: %v", a.String(), err)
			}
			if !reflect.DeepEqual(a.Options, b.Options) || !Equal(a.Key, b.Key) || a.Comment != b.Comment {
				t.Errorf("String round trip changed the line: %q", a.String())
			}
		})
	}
}

func TestParseAuthorizedKeyErrors(t *testing.T) {
	ed := pubB64(t, "id_ed25519.pub")
	rsa := pubB64(t, "id_rsa.pub")
	tests := []struct {
		name, line, err string
	}{
		{"empty", "   ", "keys: empty authorized_keys line"},
		{"comment", "# x", "keys: empty authorized_keys line"},
		{"unknown option", "no-such-thing ssh-ed25519 " + ed, `keys: unsupported option "no-such-thing"`},
		{"unterminated quote", `command="echo ssh-ed25519 ` + ed, `keys: option "command": missing end quote`},
		{"unquoted value", `command=echo ssh-ed25519 ` + ed, `keys: option "command": missing start quote`},
		{"flag with value", `no-pty="1" ssh-ed25519 ` + ed, `keys: option "no-pty" takes no value`},
		{"value missing", `command ssh-ed25519 ` + ed, `keys: option "command" needs a value`},
		{"garbage after quote", `command="a"x ssh-ed25519 ` + ed, `keys: option "command": unexpected 'x' after option`},
		{"double command", `command="a",command="b" ssh-ed25519 ` + ed, `keys: multiple "command" clauses`},
		// sshd 9.2 accepts the line and runs the empty command for every
		// session; as Command "" it would have forced nothing.
		{"empty command", `command="" ssh-ed25519 ` + ed, `keys: empty "command" (sshd would run nothing with this key; remove the key or name a command)`},
		{"empty then other command", `command="",command="b" ssh-ed25519 ` + ed, `keys: empty "command" (sshd would run nothing with this key; remove the key or name a command)`},
		{"bad base64", "ssh-ed25519 AAAA!!!!", "keys: bad base64 key data: illegal base64 data at input byte 4"},
		{"type mismatch", "ssh-rsa " + ed, "keys: key type ssh-rsa does not match key data of type ssh-ed25519"},
		{"unknown type", "ssh-foo " + ed, `keys: unsupported option "ssh-foo"`},
		{"missing key", "no-pty", "keys: missing key after options"},
		{"missing key after comma", "no-pty,", "keys: missing key after options"},
		{"empty option name", `="x" ssh-ed25519 ` + ed, "keys: empty option"},
		{"missing data", "ssh-ed25519", "keys: missing ssh-ed25519 key data"},
		{"truncated blob", "ssh-rsa " + rsa[:len(rsa)-8], "keys: malformed ssh-rsa public key"},
		{"bad env", `environment="1-A=b" ssh-ed25519 ` + ed, `keys: invalid environment string "1-A=b"`},
		{"bad permitopen", `permitopen="localhost" ssh-ed25519 ` + ed, `keys: invalid permitopen "localhost": want host:port`},
		{"bad permitopen port", `permitopen="h:99999" ssh-ed25519 ` + ed, `keys: invalid permitopen "h:99999": bad port`},
		// sshd refuses the line; stored, it matched nothing.
		{"unbracketed IPv6 permitopen", `permitopen="::1:22" ssh-ed25519 ` + ed, `keys: invalid permitopen "::1:22": an IPv6 address goes in brackets ([::1]:22)`},
		{"unbracketed IPv6 permitlisten", `permitlisten="::1:8080" ssh-ed25519 ` + ed, `keys: invalid permitlisten "::1:8080": an IPv6 address goes in brackets ([::1]:22)`},
		{"bad expiry", `expiry-time="2030" ssh-ed25519 ` + ed, `keys: invalid expiry-time: bad time "2030": want YYYYMMDD[HHMM[SS]][Z|UTC]`},
		{"principals without ca", `principals="a" ssh-ed25519 ` + ed, `keys: "principals" option requires "cert-authority"`},
		{"certificate type mismatch", "ssh-rsa-cert-v01@openssh.com " + pubB64(t, "id_ed25519-cert.pub"), "keys: key type ssh-rsa-cert-v01@openssh.com does not match key data of type ssh-ed25519-cert-v01@openssh.com"},
		{"too long", "ssh-ed25519 " + strings.Repeat("A", MaxAuthorizedKeyLine), "keys: authorized_keys line longer than 32768 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAuthorizedKey([]byte(tt.line))
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestParseAuthorizedKeys(t *testing.T) {
	ed := pubB64(t, "id_ed25519.pub")
	file := "# keys\n\nssh-ed25519 " + ed + " one\r\n   \n  # indented comment\nno-pty ssh-ed25519 " + ed + " two"
	got, err := ParseAuthorizedKeys([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Comment != "one" || got[1].Comment != "two" || !got[1].Options.NoPTY {
		t.Fatalf("got %+v", got)
	}
	_, err = ParseAuthorizedKeys([]byte(file + "\n\nbogus x\n"))
	if err == nil || err.Error() != `line 8: keys: unsupported option "bogus"` {
		t.Fatalf("error %v", err)
	}
}

func TestMatchFrom(t *testing.T) {
	v4 := net.ParseIP("192.168.1.20")
	v6 := net.ParseIP("2001:db8::5")
	tests := []struct {
		name     string
		patterns string
		ip       net.IP
		host     string
		want     bool
	}{
		{"exact ip", "192.168.1.20", v4, "", true},
		{"other ip", "192.168.1.21", v4, "", false},
		{"ip wildcard", "192.168.1.*", v4, "", true},
		{"ip question", "192.168.1.2?", v4, "", true},
		{"cidr v4", "192.168.0.0/16", v4, "", true},
		{"cidr v4 miss", "10.0.0.0/8", v4, "", false},
		{"cidr host bits set denies", "192.168.1.1/16,192.168.1.20", v4, "", false},
		{"cidr v6", "2001:db8::/32", v6, "", true},
		{"cidr v6 miss", "2001:db9::/32", v6, "", false},
		{"v4 cidr does not match v6", "0.0.0.0/0", v6, "", false},
		{"host wildcard", "*.example.com", v4, "box.Example.COM", true},
		{"host miss", "*.example.org", v4, "box.example.com", false},
		{"negation wins", "*.example.com,!box.example.com", v4, "box.example.com", false},
		{"negation first", "!10.0.0.0/8,*", v4, "", true},
		{"negated ip", "!192.168.1.20,*", v4, "", false},
		{"negation alone is no match", "!10.0.0.1", v4, "", false},
		{"star", "*", v6, "", true},
		{"nil ip", "*", nil, "", false},
		// sshd 9.2 logs "invalid from criteria" and denies for these.
		{"trailing comma denies", "*,", v4, "", false},
		{"empty entry denies", "192.168.1.20,,*", v4, "", false},
		{"bare negation denies", "192.168.1.20,!", v4, "", false},
		{"v4 mask over 32 denies", "!10.0.0.0/33,*", v4, "", false},
		{"leading zero mask", "192.168.0.0/016", v4, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchFrom(strings.Split(tt.patterns, ","), tt.ip, tt.host); got != tt.want {
				t.Fatalf("MatchFrom(%q, %v, %q) = %v", tt.patterns, tt.ip, tt.host, got)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"20300102", time.Date(2030, 1, 2, 0, 0, 0, 0, time.Local), false},
		{"203001020304", time.Date(2030, 1, 2, 3, 4, 0, 0, time.Local), false},
		{"20300102030405Z", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), false},
		// sshd 9.2 (misc.c parse_absolute_time) takes "UTC" in any case
		// as well as "Z", and carries an overflowing day into the next
		// month as mktime does.
		{"20300102UTC", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{"203001020304utc", time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC), false},
		{"20300231", time.Date(2030, 3, 3, 0, 0, 0, 0, time.Local), false},
		{"20300101235960Z", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{"20300132", time.Time{}, true},
		{"20300100", time.Time{}, true},
		{"203001012400", time.Time{}, true},
		{"19691231Z", time.Time{}, true},
		{"UTC", time.Time{}, true},
		{"Z", time.Time{}, true},
		{"20300101ZZ", time.Time{}, true},
		{"20301302", time.Time{}, true},
		{"2030010", time.Time{}, true},
		{"2030-1-02", time.Time{}, true},
		{"+1030102", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestKeyOptionsExpired(t *testing.T) {
	o := KeyOptions{ExpiryTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if o.Expired(time.Date(2029, 12, 31, 23, 59, 59, 0, time.UTC)) || !o.Expired(o.ExpiryTime) {
		t.Fatal("expiry boundary wrong")
	}
	if (&KeyOptions{}).Expired(time.Now()) {
		t.Fatal("no expiry-time expired")
	}
}
