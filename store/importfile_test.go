package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/store/password"
)

const sha512Hash = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"

func TestParseCSVImport(t *testing.T) {
	k1, k2 := newKeyLine(t, "one"), newKeyLine(t, "two")
	in := "\ufeffname,password_hash,home,authorized_keys\n" +
		"alice," + sha512Hash + ",/srv/alice,\"" + k1 + "\n# comment\n\n" + k2 + "\n\"\n" +
		"bob,,,\n"
	got, _, err := ParseCSVImport(strings.NewReader(in), CSVImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d accounts", len(got))
	}
	a, b := got[0], got[1]
	if a.Account.Name != "alice" || a.Account.PasswordHash != sha512Hash || a.Account.Home != "/srv/alice" ||
		!a.Account.Enabled || len(a.Keys) != 2 || a.Keys[0] != k1 || a.Keys[1] != k2 {
		t.Fatalf("alice = %+v keys %q", a.Account, a.Keys)
	}
	if b.Account.Name != "bob" || b.Account.HasPassword() || b.Account.Home != "" || len(b.Keys) != 0 {
		t.Fatalf("bob = %+v keys %q", b.Account, b.Keys)
	}
	// Columns in another order.
	got, _, err = ParseCSVImport(strings.NewReader("home,name,authorized_keys,password_hash\n/h,carol,,\n"), CSVImportOptions{})
	if err != nil || got[0].Account.Name != "carol" || got[0].Account.Home != "/h" {
		t.Fatalf("reordered: %+v, %v", got, err)
	}

	for _, tc := range []struct{ in, want string }{
		{"", "csv header"},
		{"name,password_hash,home\n", "csv"},
		{"name,password_hash,home,keys\n", `unknown column "keys"`},
		{"name,name,home,authorized_keys\n", `column "name" twice`},
		{"name,password_hash,home,authorized_keys\nbad name,,,\n", "csv line 2"},
		{"name,password_hash,home,authorized_keys\nx,,relative,\n", "home"},
		{"name,password_hash,home,authorized_keys\nx,$y$j9T$salt$hash,,\n", "password hash"},
		{"name,password_hash,home,authorized_keys\nx,,,\ny,,\n", "wrong number of fields"},
		{"name,password_hash,home,authorized_keys\n\"x,,,\n", "csv"},
	} {
		_, _, err := ParseCSVImport(strings.NewReader(tc.in), CSVImportOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCSVImport(%q) err = %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func TestParsePasswdImport(t *testing.T) {
	passwd := `root:x:0:0:root:/root:/bin/bash
# comment

alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
bob:x:1001:1001::/home/bob/:/usr/sbin/nologin
carol:x:1002:100::/home/carol:/bin/sh
dave:x:1003:100::/home/dave:/bin/sh
`
	shadow := "root:*:19000:0:99999:7:::\nalice:" + sha512Hash + ":19000:0:99999:7:::\nbob:!" + sha512Hash + ":19000::::::\ncarol::19000::::::\ndave:$y$j9T$abc$def:19000::::::\n"

	_, _, err := ParsePasswdImport(strings.NewReader(passwd), strings.NewReader(shadow), PasswdImportOptions{MinUID: 1000})
	if err == nil || !strings.Contains(err.Error(), `"dave"`) || !strings.Contains(err.Error(), `"$y$"`) || !errors.Is(err, password.ErrUnknownFormat) {
		t.Fatalf("yescrypt hash err = %v", err)
	}
	accts, warns, err := ParsePasswdImport(strings.NewReader(passwd), strings.NewReader(shadow),
		PasswdImportOptions{MinUID: 1000, SkipUnsupportedHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"dave"`) || strings.Contains(warns[0], "j9T") {
		t.Fatalf("warnings %q", warns)
	}
	if len(accts) != 4 {
		t.Fatalf("%d accounts, want 4 (root skipped by MinUID)", len(accts))
	}
	want := []struct {
		name, home, hash string
		uid, gid         uint32
	}{
		{"alice", "/home/alice", sha512Hash, 1000, 1000},
		{"bob", "/home/bob", "", 1001, 1001},    // locked
		{"carol", "/home/carol", "", 1002, 100}, // empty hash: never passwordless
		{"dave", "/home/dave", "", 1003, 100},   // unsupported, skipped
	}
	for i, w := range want {
		a := accts[i].Account
		if a.Name != w.name || a.Home != w.home || a.PasswordHash != w.hash || *a.UID != w.uid || *a.GID != w.gid || !a.Enabled {
			t.Errorf("entry %d = %+v, want %+v", i, a, w)
		}
	}
	// Without a shadow file a hash in the passwd field is used.
	accts, _, err = ParsePasswdImport(strings.NewReader("eve:"+sha512Hash+":1000:1000::/home/eve:/bin/sh\n"), nil, PasswdImportOptions{})
	if err != nil || accts[0].Account.PasswordHash != sha512Hash {
		t.Fatalf("hash in passwd: %+v, %v", accts, err)
	}
	for _, bad := range []string{
		"alice:x:1000:1000::/home/alice\n",
		"alice:x:abc:1000::/home/alice:/bin/sh\n",
		"alice:x:1000:1000::home/alice:/bin/sh\n",
		"al ice:x:1000:1000::/home/alice:/bin/sh\n",
		"alice:x:1000:1000::/a:/bin/sh\nalice:x:1001:1000::/b:/bin/sh\n",
		strings.Repeat("a", maxPasswdLine+1) + "\n",
	} {
		if _, _, err := ParsePasswdImport(strings.NewReader(bad), nil, PasswdImportOptions{}); err == nil || !strings.Contains(err.Error(), "passwd line") {
			t.Errorf("ParsePasswdImport(%.60q) err = %v", bad, err)
		}
	}
}

func TestReadAuthorizedKeysFile(t *testing.T) {
	k1, k2 := newKeyLine(t, "a"), newKeyLine(t, "b")
	p := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(p, []byte("# keys\n"+k1+"\r\n\n   "+k2), 0o600)
	got, err := ReadAuthorizedKeysFile(p)
	if err != nil || len(got) != 2 || got[0] != k1 || got[1] != k2 {
		t.Fatalf("ReadAuthorizedKeysFile = %q, %v", got, err)
	}
}

// FuzzParseCSVImport: arbitrary CSV never panics, and whatever parses is
// accepted by validation.
func FuzzParseCSVImport(f *testing.F) {
	f.Add("name,password_hash,home,authorized_keys\nalice," + sha512Hash + ",/srv/alice,\"ssh-ed25519 AAAA x\n# c\"\n")
	f.Add("home,name,authorized_keys,password_hash\n,bob,,\n")
	f.Add("name,password_hash,home,authorized_keys\n\"x\"\"y\",,,\n")
	f.Fuzz(func(t *testing.T, in string) {
		accts, _, err := ParseCSVImport(strings.NewReader(in), CSVImportOptions{})
		if err != nil {
			return
		}
		for _, a := range accts {
			if err := a.Account.Validate(); err != nil {
				t.Fatalf("parsed an invalid account: %v", err)
			}
		}
	})
}

// FuzzParsePasswdImport: arbitrary passwd/shadow text never panics.
func FuzzParsePasswdImport(f *testing.F) {
	f.Add("alice:x:1000:1000::/home/alice:/bin/sh\n", "alice:"+sha512Hash+":1::::::\n")
	f.Add("bob:*:1:1::/:/bin/sh\n", "bob:!:1::::::\n")
	f.Fuzz(func(t *testing.T, passwd, shadow string) {
		accts, _, err := ParsePasswdImport(strings.NewReader(passwd), strings.NewReader(shadow), PasswdImportOptions{SkipUnsupportedHashes: true})
		if err != nil {
			return
		}
		for _, a := range accts {
			if err := a.Account.Validate(); err != nil {
				t.Fatalf("parsed an invalid account: %v", err)
			}
			if a.Account.PasswordHash != "" && password.Check(a.Account.PasswordHash) != nil {
				t.Fatalf("unchecked hash %q", a.Account.PasswordHash)
			}
		}
	})
}

// TestImportReportsEveryBadEntry: an export with several bad entries is
// refused with all of them named, by line, in one run; a long list is cut
// at MaxImportErrorsListed but counted in full.
func TestImportReportsEveryBadEntry(t *testing.T) {
	csvIn := "name,password_hash,home,authorized_keys\n" +
		"ok1,,,\n" +
		"des,abJnggxhB/yJU,,\n" +
		"ok2,,,\n" +
		"bad name,,,\n" +
		"ok1,,,\n" +
		"yes,$y$j9T$abc$def,,\n"
	_, _, err := ParseCSVImport(strings.NewReader(csvIn), CSVImportOptions{})
	var ie *ImportErrors
	if !errors.As(err, &ie) || ie.Count != 4 || len(ie.Errs) != 4 {
		t.Fatalf("err = %v, want 4 failures listed", err)
	}
	for _, want := range []string{"4 entries failed", "csv line 3: account \"des\"", "csv line 5:", `csv line 6: account "ok1": already exists (on line 2 too)`, `csv line 7: account "yes": password hash "$y$"`, "ferry verifies argon2id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
	if !errors.Is(err, password.ErrUnknownFormat) || !errors.Is(err, ErrExists) || !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is does not see the listed causes: %v", err)
	}

	var many strings.Builder
	many.WriteString("name,password_hash,home,authorized_keys\n")
	for i := range MaxImportErrorsListed + 10 {
		fmt.Fprintf(&many, "u%d,{PLAIN}secret,,\n", i)
	}
	_, _, err = ParseCSVImport(strings.NewReader(many.String()), CSVImportOptions{})
	if !errors.As(err, &ie) || ie.Count != MaxImportErrorsListed+10 || len(ie.Errs) != MaxImportErrorsListed ||
		!strings.Contains(err.Error(), "... and 10 more") {
		t.Fatalf("%d bad rows: err = %v", MaxImportErrorsListed+10, err)
	}

	passwd := "a:x:1000:1000::/home/a:/bin/sh\n" +
		"b:x:abc:1000::/home/b:/bin/sh\n" +
		"c:x:1002:1000::/home/c:/bin/sh\n" +
		"d:x:1003:1000::home/d:/bin/sh\n" +
		"e:x:1004\n"
	_, _, err = ParsePasswdImport(strings.NewReader(passwd), nil, PasswdImportOptions{})
	if !errors.As(err, &ie) || ie.Count != 3 {
		t.Fatalf("passwd err = %v, want 3 failures", err)
	}
	for _, want := range []string{"passwd line 2:", "passwd line 4:", "passwd line 5: too few fields"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("passwd err = %v\nwant it to contain %q", err, want)
		}
	}
}

// TestParsePasswdImportPureFTPd reads pure-ftpd's virtual users file
// (pureftpd.passwd, 18 fields a line), which a passwd-only reader refused
// line by line.
func TestParsePasswdImportPureFTPd(t *testing.T) {
	line := func(fields ...string) string {
		f := make([]string, 18)
		copy(f, fields)
		return strings.Join(f, ":") + "\n"
	}
	md5 := "$1$12345678$o2n/JiO/h5VviOInWJ4OQ/"
	in := line("joe", md5, "500", "101", "", "/home/ftpusers/joe/./") +
		line("ann", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "500", "101", "Ann", "/home/ftpusers/ann/./",
			"", "", "0", "0", "3", "1000", "10485760", "", "", "192.0.2.0/24,203.0.113.9", "", "") +
		line("bob", md5, "500", "101", "", "/home/ftpusers/bob/./", "100", "", "1", "10", "", "", "", "", "", "", "198.51.100.7", "0900-1800")
	accts, warns, err := ParsePasswdImport(strings.NewReader(in), nil, PasswdImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 3 {
		t.Fatalf("%d accounts", len(accts))
	}
	joe, ann, bob := accts[0].Account, accts[1].Account, accts[2].Account
	if joe.Name != "joe" || joe.PasswordHash != md5 || joe.Home != "/home/ftpusers/joe" || *joe.UID != 500 ||
		joe.QuotaBytes != 0 || joe.MaxConnections != 0 || len(joe.AllowFrom) != 0 {
		t.Errorf("joe = %+v", joe)
	}
	if ann.Home != "/home/ftpusers/ann" || ann.MaxConnections != 3 || ann.QuotaFiles != 1000 || ann.QuotaBytes != 10<<20 ||
		fmt.Sprint(ann.AllowFrom) != "[192.0.2.0/24 203.0.113.9/32]" {
		t.Errorf("ann = %+v", ann)
	}
	if bob.MaxConnections != 0 || len(bob.AllowFrom) != 0 {
		t.Errorf("bob = %+v", bob)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"bob"`) ||
		!strings.Contains(warns[0], "upload bandwidth, upload ratio, download ratio, refused client IPs, time restrictions") {
		t.Errorf("warnings %q", warns)
	}
	// A host name among the allowed addresses is refused, not dropped:
	// dropping it would open the account to every address.
	_, _, err = ParsePasswdImport(strings.NewReader(line("eve", md5, "500", "101", "", "/h/eve/./",
		"", "", "", "", "", "", "", "", "", "ftp.example.com")), nil, PasswdImportOptions{})
	if err == nil || !strings.Contains(err.Error(), `"ftp.example.com"`) {
		t.Errorf("host name in allowed client IPs: err = %v", err)
	}
}
