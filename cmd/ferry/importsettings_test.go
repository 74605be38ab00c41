package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserImportCSVSettings: a CSV import could carry only name, hash,
// home and keys, so a hosting panel's export with each customer's quota
// and limits had to be followed by one `user set` per account (20,000
// runs). Columns named after `user add`'s flags now set them, meaning
// what the flags mean; a bad value fails its row, with every bad row
// listed and nothing imported.
func TestUserImportCSVSettings(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(t.TempDir(), "alice")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "old.bin"), make([]byte, 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	csvFile := filepath.Join(t.TempDir(), "accounts.csv")
	os.WriteFile(csvFile, []byte("name,password_hash,home,authorized_keys,Quota-Bytes,quota_files,readonly,allow_from,max_connections,expires\n"+
		"alice,,"+home+",,10M,100,,\"192.0.2.0/24, 2001:db8::/32\",4,\n"+
		"bob,,,,,,yes,,,2031-01-02\n"), 0o600)
	mustRun(t, dir, "", "user", "import", "--csv", csvFile)
	st := openStore(t, dir)
	a, err := st.LookupAccount(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.QuotaBytes != 10<<20 || a.QuotaFiles != 100 || a.Permissions.ReadOnly || a.MaxConnections != 4 ||
		len(a.AllowFrom) != 2 || a.AllowFrom[0].String() != "192.0.2.0/24" || a.AllowFrom[1].String() != "2001:db8::/32" {
		t.Fatalf("alice = %+v", a)
	}
	// With a quota, the home's files are counted, as by user add.
	if a.UsedBytes != 3000 || a.UsedFiles != 1 {
		t.Fatalf("alice's usage %d bytes, %d files; want 3000, 1", a.UsedBytes, a.UsedFiles)
	}
	b, err := st.LookupAccount(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Permissions.ReadOnly || b.QuotaBytes != 0 || b.ExpiresAt.Format("2006-01-02") != "2031-01-02" {
		t.Fatalf("bob = %+v", b)
	}

	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("name,password_hash,home,authorized_keys,quota_bytes,readonly,upload_only\n"+
		"carol,,,,10X,,\n"+
		"dave,,,,,maybe,\n"+
		"erin,,,,,x,x\n"+
		"fred,,,,1G,,\n"), 0o600)
	_, _, err = ferryRun(t, dir, "", "user", "import", "--csv", bad)
	if err == nil {
		t.Fatal("bad settings imported")
	}
	for _, want := range []string{`csv line 2: account "carol"`, `csv line 3: account "dave"`, `csv line 4: account "erin"`,
		`column quota_bytes "10X"`, `column readonly "maybe": want yes or no`, "column readonly and column upload_only exclude each other"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "fred") {
		t.Errorf("error %q names a good row", err)
	}
	if _, err := showJSONErr(t, dir, "fred"); err == nil {
		t.Fatal("fred imported from a file with bad rows")
	}
	unknown := filepath.Join(t.TempDir(), "unknown.csv")
	os.WriteFile(unknown, []byte("name,password_hash,home,authorized_keys,password_stdin\nzed,,,,true\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--csv", unknown); err == nil || !strings.Contains(err.Error(), `unknown column "password_stdin"`) {
		t.Fatalf("password_stdin column: %v", err)
	}
}

// TestUserAddWarnsRefusedHome: a home under a directory others can
// write is refused by the server at every session, but user add and set
// accepted it without a word; they warn now (the server, which may run
// as another user, decides).
func TestUserAddWarnsRefusedHome(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(t.TempDir(), "www")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	_, errOut, err := ferryRun(t, dir, "", "user", "add", "alice", "--home", filepath.Join(shared, "alice"))
	if err != nil || !strings.Contains(errOut, "warning: account alice: the server will refuse its sessions") || !strings.Contains(errOut, "writable by group or others") {
		t.Fatalf("user add: %q, %v", errOut, err)
	}
	_, errOut, err = ferryRun(t, dir, "", "user", "add", "bob", "--home", filepath.Join(t.TempDir(), "bob"))
	if err != nil || strings.Contains(errOut, "warning") {
		t.Fatalf("user add with a safe home: %q, %v", errOut, err)
	}
	_, errOut, err = ferryRun(t, dir, "", "user", "set", "bob", "--home", filepath.Join(shared, "bob"))
	if err != nil || !strings.Contains(errOut, "warning: account bob: the server will refuse its sessions") {
		t.Fatalf("user set: %q, %v", errOut, err)
	}
}

// TestPastedPrivateKeyNotEchoed: a private key pasted as an argument
// (key add NAME "$(cat id_ed25519)") starts with "-----BEGIN", which the
// flag parser took for a flag and printed whole in its error.
func TestPastedPrivateKeyNotEchoed(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	secret := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQSECRET\n-----END OPENSSH PRIVATE KEY-----"
	out, errOut, err := ferryRun(t, dir, "", "user", "key", "add", "alice", secret)
	if err == nil {
		t.Fatal("a private key was added")
	}
	all := out + errOut + err.Error()
	if strings.Contains(all, "SECRET") {
		t.Fatalf("the private key was echoed: %q", all)
	}
	if !strings.Contains(all, "private key") {
		t.Fatalf("no advice: %q", all)
	}
}
