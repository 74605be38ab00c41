package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// ferryRun runs `ferry --data-dir dir ARGS...` in-process.
func ferryRun(t *testing.T, dir, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--data-dir", dir, "--database", ""}, args...))
	err = root.Execute()
	return out.String(), errb.String(), err
}

// mustRun fails the test unless the command succeeds.
func mustRun(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := ferryRun(t, dir, stdin, args...)
	if err != nil {
		t.Fatalf("ferry %q: %v\nstderr: %s", args, err, errOut)
	}
	return out
}

// snapshot is the whole store as `user list --json` prints it.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	return mustRun(t, dir, "", "user", "list", "--json")
}

func keyLine(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blob := wire.AppendString(wire.AppendStringS(nil, "ssh-ed25519"), pub)
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " " + comment
}

type shownAccount struct {
	ID           int64           `json:"id"`
	Name         string          `json:"name"`
	Home         string          `json:"home"`
	Enabled      bool            `json:"enabled"`
	ExpiresAt    string          `json:"expires_at"`
	AuthMethods  string          `json:"auth_methods"`
	Perms        map[string]bool `json:"permissions"`
	QuotaBytes   int64           `json:"quota_bytes"`
	QuotaFiles   int64           `json:"quota_files"`
	MaxSessions  int             `json:"max_sessions"`
	MaxConns     int             `json:"max_connections"`
	AllowFrom    []string        `json:"allow_from"`
	UID          *uint32         `json:"uid"`
	GID          *uint32         `json:"gid"`
	ForceCommand string          `json:"force_command"`
	HasPassword  bool            `json:"has_password"`
	PasswordHash *string         `json:"password_hash"`
	Keys         []struct {
		ID          int64  `json:"id"`
		Line        string `json:"line"`
		Fingerprint string `json:"fingerprint"`
		Type        string `json:"type"`
		Comment     string `json:"comment"`
	} `json:"keys"`
}

func showJSON(t *testing.T, dir, name string) shownAccount {
	t.Helper()
	var a shownAccount
	out := mustRun(t, dir, "", "user", "show", name, "--json")
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("show --json output %q: %v", out, err)
	}
	return a
}

// openStore opens the test's store directly, to check what the CLI wrote.
func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), store.DefaultURL(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestUserAddShowList(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := keyLine(t, "laptop"), keyLine(t, "ci")
	keyFile := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keyFile, []byte("# team keys\n"+k2+"\n"), 0o600)
	out := mustRun(t, dir, "s3cret pass\n", "user", "add", "alice", "--password-stdin",
		"--authorized-key", k1, "--authorized-keys-file", keyFile, "--home", "/srv/sftp/alice",
		"--readonly", "--no-delete", "--no-overwrite", "--symlinks", "--shell", "--forwarding",
		"--quota-bytes", "10G", "--quota-files", "1000", "--max-sessions", "3",
		"--max-connections", "5", "--allow-from", "192.0.2.0/24", "--allow-from", "2001:db8::1", "--expires", "2031-02-03",
		"--auth-methods", "publickey,password", "--uid", "1001", "--gid", "1002", "--force-command", "internal-sftp")
	if out != "created account alice (id 1, 2 keys, password set)\n" {
		t.Fatalf("add printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ferry.db")); err != nil {
		t.Fatalf("default database not at <data-dir>/ferry.db: %v", err)
	}
	a := showJSON(t, dir, "alice")
	want := map[string]bool{"read_only": true, "upload_only": false, "no_delete": true, "no_overwrite": true,
		"allow_symlinks": true, "allow_shell": true, "allow_forwarding": true}
	for k, v := range want {
		if a.Perms[k] != v {
			t.Errorf("permission %s = %v, want %v", k, a.Perms[k], v)
		}
	}
	if a.ID != 1 || a.Name != "alice" || a.Home != "/srv/sftp/alice" || !a.Enabled || a.ExpiresAt != "2031-02-03T00:00:00Z" ||
		a.AuthMethods != "publickey,password" || a.QuotaBytes != 10<<30 || a.QuotaFiles != 1000 || a.MaxSessions != 3 || a.MaxConns != 5 ||
		strings.Join(a.AllowFrom, " ") != "192.0.2.0/24 2001:db8::1/128" || *a.UID != 1001 || *a.GID != 1002 ||
		a.ForceCommand != "internal-sftp" || !a.HasPassword || a.PasswordHash != nil {
		t.Fatalf("show --json = %+v", a)
	}
	if len(a.Keys) != 2 || a.Keys[0].Line != k1 || a.Keys[1].Line != k2 || a.Keys[0].Comment != "laptop" ||
		!strings.HasPrefix(a.Keys[0].Fingerprint, "SHA256:") || a.Keys[0].Type != "ssh-ed25519" {
		t.Fatalf("keys = %+v", a.Keys)
	}
	// The password was hashed with argon2id and verifies.
	acct, err := openStore(t, dir).LookupAccount(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := password.Verify(acct.PasswordHash, "s3cret pass"); !ok || rehash || err != nil {
		t.Fatalf("stored hash %q: %v %v %v", acct.PasswordHash, ok, rehash, err)
	}

	mustRun(t, dir, "", "user", "add", "bob", "--disabled", "--upload-only")
	var list []shownAccount
	if err := json.Unmarshal([]byte(snapshot(t, dir)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" || list[1].Enabled || !list[1].Perms["upload_only"] ||
		list[1].AllowFrom == nil || len(list[1].Keys) != 0 {
		t.Fatalf("list --json = %+v", list)
	}
	// Human output.
	table := mustRun(t, dir, "", "user", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "alice") ||
		!strings.Contains(lines[1], "10G") || !strings.Contains(lines[2], "no") {
		t.Fatalf("list table:\n%s", table)
	}
	show := mustRun(t, dir, "", "user", "show", "alice")
	for _, want := range []string{"name:", "alice", "password:", "set (argon2id)", "home:", "/srv/sftp/alice",
		"read-only, no-delete, no-overwrite, symlinks, shell, forwarding", "10G", "192.0.2.0/24, 2001:db8::1/128", "1001/1002", "laptop"} {
		if !strings.Contains(show, want) {
			t.Errorf("show output lacks %q:\n%s", want, show)
		}
	}
	if show := mustRun(t, dir, "", "user", "show", "bob"); !strings.Contains(show, filepath.Join(dir, "home", "bob")+" (default)") {
		t.Errorf("show bob does not give the default home:\n%s", show)
	}
}

func TestUserSetPasswdEnable(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "pw1\n", "user", "add", "alice", "--password-stdin", "--allow-from", "10.0.0.0/8", "--shell", "--quota-bytes", "1M")
	mustRun(t, dir, "", "user", "set", "alice", "--quota-bytes", "2G", "--no-delete", "--expires", "2030-01-01T12:00:00+02:00")
	a := showJSON(t, dir, "alice")
	// Only the given flags change.
	if a.QuotaBytes != 2<<30 || !a.Perms["no_delete"] || !a.Perms["allow_shell"] || len(a.AllowFrom) != 1 ||
		a.ExpiresAt != "2030-01-01T10:00:00Z" || !a.HasPassword {
		t.Fatalf("after set: %+v", a)
	}
	mustRun(t, dir, "", "user", "set", "alice", "--shell=false", "--clear-allow-from", "--clear-password", "--expires", "never", "--uid", "7")
	a = showJSON(t, dir, "alice")
	if a.Perms["allow_shell"] || len(a.AllowFrom) != 0 || a.HasPassword || a.ExpiresAt != "" || a.UID == nil || *a.UID != 7 {
		t.Fatalf("after second set: %+v", a)
	}
	if out := mustRun(t, dir, "new password\n", "user", "passwd", "alice", "--password-stdin"); out != "set password of account alice\n" {
		t.Fatalf("passwd printed %q", out)
	}
	acct, _ := openStore(t, dir).LookupAccount(t.Context(), "alice")
	if ok, _, _ := password.Verify(acct.PasswordHash, "new password"); !ok {
		t.Fatal("new password does not verify")
	}
	if out := mustRun(t, dir, "", "user", "disable", "alice"); out != "disabled account alice\n" {
		t.Fatalf("disable printed %q", out)
	}
	if showJSON(t, dir, "alice").Enabled {
		t.Fatal("still enabled")
	}
	out := mustRun(t, dir, "", "user", "enable", "alice", "--json")
	var res map[string]string
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["result"] != "enabled" || res["account"] != "alice" {
		t.Fatalf("enable --json = %q", out)
	}
	if !showJSON(t, dir, "alice").Enabled {
		t.Fatal("not enabled")
	}
	if out := mustRun(t, dir, "", "user", "delete", "alice"); out != "deleted account alice\n" {
		t.Fatalf("delete printed %q", out)
	}
	if snapshot(t, dir) != "[]\n" {
		t.Fatal("account not deleted")
	}
}

func TestUserKeys(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	k1, k2, k3 := keyLine(t, "one"), keyLine(t, "two"), keyLine(t, "three")
	out := mustRun(t, dir, "", "user", "key", "add", "alice", k1)
	if !strings.HasPrefix(out, "added key 1 ssh-ed25519 SHA256:") {
		t.Fatalf("key add printed %q", out)
	}
	f := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(f, []byte(k2+"\n\n"+`no-pty,command="ls -l" `+k3+"\n"), 0o600)
	var added []struct {
		ID          int64
		Fingerprint string
		Line        string
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "", "user", "key", "add", "alice", "--file", f, "--json")), &added); err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || added[1].Line != `no-pty,command="ls -l" `+k3 {
		t.Fatalf("key add --file --json = %+v", added)
	}
	var listed []struct {
		ID          int64  `json:"id"`
		Fingerprint string `json:"fingerprint"`
		Comment     string `json:"comment"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "", "user", "key", "list", "alice", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 3 || listed[0].Comment != "one" || listed[2].Comment != "three" {
		t.Fatalf("key list --json = %+v", listed)
	}
	if table := mustRun(t, dir, "", "user", "key", "list", "alice"); !strings.HasPrefix(table, "ID") || strings.Count(table, "\n") != 4 {
		t.Fatalf("key list:\n%s", table)
	}
	mustRun(t, dir, "", "user", "key", "delete", "alice", listed[0].Fingerprint)
	mustRun(t, dir, "", "user", "key", "delete", "alice", "3")
	if err := json.Unmarshal([]byte(mustRun(t, dir, "", "user", "key", "list", "alice", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Comment != "two" {
		t.Fatalf("after deletes: %+v", listed)
	}
}

// TestUserErrors: bad input gives one clear error naming the problem, and
// leaves the database exactly as it was.
func TestUserErrors(t *testing.T) {
	dir := t.TempDir()
	k := keyLine(t, "k")
	mustRun(t, dir, "", "user", "add", "alice", "--authorized-key", k)
	badFile := filepath.Join(t.TempDir(), "bad_keys")
	os.WriteFile(badFile, []byte(keyLine(t, "fine")+"\nssh-ed25519 broken\n"), 0o600)
	before := snapshot(t, dir)
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"user", "add", "alice"}, `account "alice": already exists`},
		{"", []string{"user", "add", "bob", "--authorized-key", "ssh-ed25519 AAAAnotakey"}, "authorized key"},
		{"", []string{"user", "add", "bob", "--authorized-key", keyLine(t, "ok"), "--authorized-key", "garbage"}, "authorized key"},
		{"", []string{"user", "add", "bob", "--allow-from", "10.0.0.0/33"}, `--allow-from "10.0.0.0/33"`},
		{"", []string{"user", "add", "bob", "--allow-from", "example.com"}, "not a CIDR"},
		{"", []string{"user", "add", "bob", "--quota-bytes", "ten"}, `--quota-bytes "ten"`},
		{"", []string{"user", "add", "bob", "--quota-bytes", "-5"}, "--quota-bytes"},
		{"", []string{"user", "add", "bob", "--quota-files", "9999999P"}, "too large"},
		{"", []string{"user", "add", "bob", "--expires", "next week"}, "--expires"},
		{"", []string{"user", "add", "bob", "--home", "relative"}, "absolute"},
		{"", []string{"user", "add", "bob", "--readonly", "--upload-only"}, "exclude each other"},
		{"", []string{"user", "add", "bob", "--auth-methods", "hostbased"}, `auth method "hostbased"`},
		{"", []string{"user", "add", "bob", "--uid", "-1"}, "--uid"},
		{"", []string{"user", "add", "bad/name"}, "account name"},
		{"", []string{"user", "add", "bob", "--password-stdin"}, "empty password"},
		{"", []string{"user", "add", "bob", "--authorized-keys-file", "/nonexistent"}, "--authorized-keys-file"},
		{"", []string{"user", "show", "bob"}, `account "bob": not found`},
		{"", []string{"user", "delete", "bob"}, `account "bob": not found`},
		{"", []string{"user", "disable", "bob"}, `account "bob": not found`},
		{"", []string{"user", "enable", "bob"}, `account "bob": not found`},
		{"x\n", []string{"user", "passwd", "bob", "--password-stdin"}, `account "bob": not found`},
		{"x\n", []string{"user", "passwd", "alice"}, "--password-stdin"},
		{"", []string{"user", "set", "bob", "--shell"}, `account "bob": not found`},
		{"", []string{"user", "set", "alice"}, "nothing to change"},
		{"", []string{"user", "set", "alice", "--max-sessions", "-2"}, "--max-sessions"},
		{"", []string{"user", "set", "alice", "--max-connections", "-1"}, "--max-connections"},
		{"", []string{"user", "set", "alice", "--allow-from", "300.1.1.1"}, "--allow-from"},
		{"", []string{"user", "key", "add", "bob", keyLine(t, "x")}, `account "bob": not found`},
		{"", []string{"user", "key", "add", "alice", k}, "already exists"},
		{"", []string{"user", "key", "add", "alice", "not a key"}, "authorized key"},
		{"", []string{"user", "key", "add", "alice", "--file", badFile}, "key 2"},
		{"", []string{"user", "key", "add", "alice"}, "give a key line or --file"},
		{"", []string{"user", "key", "list", "bob"}, `account "bob": not found`},
		{"", []string{"user", "key", "delete", "alice", "SHA256:nope"}, "not found"},
		{"", []string{"user", "key", "delete", "alice", "abc"}, "fingerprint or a numeric id"},
		{"", []string{"user", "import"}, "exactly one of --passwd FILE or --csv FILE"},
		{"", []string{"user", "import", "--csv", "/nonexistent"}, "/nonexistent"},
	} {
		_, stderr, err := ferryRun(t, dir, tc.stdin, tc.args...)
		if err == nil {
			t.Errorf("ferry %q succeeded", tc.args)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("ferry %q: error %q, want one line containing %q", tc.args, msg, tc.want)
		}
		if stderr != "" {
			t.Errorf("ferry %q wrote to stderr %q (main prints the one error line)", tc.args, stderr)
		}
		if after := snapshot(t, dir); after != before {
			t.Fatalf("ferry %q changed the database:\nbefore %s\nafter  %s", tc.args, before, after)
		}
	}
}

func TestUserImportCSV(t *testing.T) {
	dir := t.TempDir()
	k1, k2, k3 := keyLine(t, "a1"), keyLine(t, "a2"), keyLine(t, "b1")
	csvFile := filepath.Join(t.TempDir(), "accounts.csv")
	os.WriteFile(csvFile, []byte("name,password_hash,home,authorized_keys\n"+
		"alice,$1$12345678$o2n/JiO/h5VviOInWJ4OQ/,/srv/alice,\""+k1+"\n"+k2+"\"\n"+
		"bob,,,"+k3+"\n"), 0o600)
	out := mustRun(t, dir, "", "user", "import", "--csv", csvFile)
	if out != "imported 2 accounts (1 with a password, 3 keys, 0 warnings)\n" {
		t.Fatalf("import printed %q", out)
	}
	a := showJSON(t, dir, "alice")
	if a.Home != "/srv/alice" || !a.HasPassword || len(a.Keys) != 2 || a.Keys[1].Line != k2 || !a.Enabled {
		t.Fatalf("alice = %+v", a)
	}
	if b := showJSON(t, dir, "bob"); b.Home != "" || b.HasPassword || len(b.Keys) != 1 {
		t.Fatalf("bob = %+v", b)
	}
	// The imported md5crypt hash verifies and asks to be upgraded.
	acct, _ := openStore(t, dir).LookupAccount(t.Context(), "alice")
	if ok, rehash, _ := password.Verify(acct.PasswordHash, "password"); !ok || !rehash {
		t.Fatalf("imported hash: ok=%v rehash=%v", ok, rehash)
	}

	before := snapshot(t, dir)
	// Importing again fails on the first duplicate and imports nothing.
	again := filepath.Join(t.TempDir(), "again.csv")
	os.WriteFile(again, []byte("name,password_hash,home,authorized_keys\ncarol,,,\nbob,,,\n"), 0o600)
	_, _, err := ferryRun(t, dir, "", "user", "import", "--csv", again)
	if err == nil || !strings.Contains(err.Error(), `account "bob": already exists`) || !strings.Contains(err.Error(), "nothing imported") {
		t.Fatalf("duplicate import err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("name,password_hash,home,authorized_keys\ncarol,,,\ndave,,,not-a-key\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--csv", bad); err == nil || !strings.Contains(err.Error(), `"dave"`) {
		t.Fatalf("bad key import err = %v", err)
	}
	bad2 := filepath.Join(t.TempDir(), "bad2.csv")
	os.WriteFile(bad2, []byte("name,password_hash,home,authorized_keys\ncarol,$y$j9T$x$y,,\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--csv", bad2); err == nil || !strings.Contains(err.Error(), "csv line 2") {
		t.Fatalf("bad hash import err = %v", err)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatal("failed imports changed the database")
	}
}

// TestUserImportCSVSkips: --skip-unsupported-hashes was accepted with
// --csv but ignored (an export with DES hashes could not be imported at
// all), and an import run again for the accounts an old server gained
// since the first run failed on every account already there.
func TestUserImportCSVSkips(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(t.TempDir(), "first.csv")
	os.WriteFile(first, []byte("name,password_hash,home,authorized_keys\n"+
		"amy,$1$12345678$o2n/JiO/h5VviOInWJ4OQ/,,\n"+
		"ben,abJnggxhB/yJU,,\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--csv", first); err == nil || !strings.Contains(err.Error(), "unknown hash format") {
		t.Fatalf("DES hash without --skip-unsupported-hashes: %v", err)
	}
	out, errOut, err := ferryRun(t, dir, "", "user", "import", "--csv", first, "--skip-unsupported-hashes")
	if err != nil || out != "imported 2 accounts (1 with a password, 0 keys, 1 warnings)\n" ||
		!strings.Contains(errOut, `csv line 3: account "ben": password hash (no $id$ prefix) not supported, imported without a password`) {
		t.Fatalf("--skip-unsupported-hashes: %q, %q, %v", out, errOut, err)
	}
	if b := showJSON(t, dir, "ben"); b.HasPassword {
		t.Fatalf("ben has a password: %+v", b)
	}

	mustRun(t, dir, "new secret\n", "user", "passwd", "amy", "--password-stdin")
	before := showJSON(t, dir, "amy")
	second := filepath.Join(t.TempDir(), "second.csv")
	os.WriteFile(second, []byte("name,password_hash,home,authorized_keys\n"+
		"amy,,/elsewhere,\n"+
		"ben,,,\n"+
		"cat,,,\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--csv", second); err == nil || !strings.Contains(err.Error(), `"amy"`) || !strings.Contains(err.Error(), `"ben"`) {
		t.Fatalf("second import without --skip-existing: %v", err)
	}
	out = mustRun(t, dir, "", "user", "import", "--csv", second, "--skip-existing")
	if out != "imported 1 accounts (0 with a password, 0 keys, 0 warnings)\nskipped 2 accounts that already existed (unchanged)\n" {
		t.Fatalf("--skip-existing printed %q", out)
	}
	if after := showJSON(t, dir, "amy"); after.Home != before.Home || !after.HasPassword {
		t.Fatalf("--skip-existing changed amy: %+v", after)
	}
	showJSON(t, dir, "cat")
}

func TestUserImportPasswd(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	home := filepath.Join(src, "home", "carol")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	kc, ka := keyLine(t, "carol"), keyLine(t, "alice")
	os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), []byte(kc+"\n"), 0o600)
	passwd := filepath.Join(src, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/bash\n"+
		"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"+
		"carol:x:1001:1001::"+home+":/bin/sh\n"), 0o600)
	shadow := filepath.Join(src, "shadow")
	const sha256Hash = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
	os.WriteFile(shadow, []byte("root:*:1::::::\nalice:"+sha256Hash+":19000:0:99999:7:::\ncarol:$y$j9T$abc$def:1::::::\n"), 0o600)

	before := snapshot(t, dir)
	_, _, err := ferryRun(t, dir, "", "user", "import", "--passwd", passwd, "--shadow", shadow, "--min-uid", "1000")
	if err == nil || !strings.Contains(err.Error(), `account "carol"`) || !strings.Contains(err.Error(), "--skip-unsupported-hashes") {
		t.Fatalf("yescrypt import err = %v", err)
	}
	if snapshot(t, dir) != before {
		t.Fatal("failed import changed the database")
	}

	// Keys: alice's from --authorized-keys-dir would hide carol's home file,
	// so first import from homes, with the unsupported hash skipped.
	out, stderr, err := ferryRun(t, dir, "", "user", "import", "--passwd", passwd, "--shadow", shadow, "--min-uid", "1000", "--skip-unsupported-hashes")
	if err != nil {
		t.Fatal(err)
	}
	if out != "imported 2 accounts (1 with a password, 1 keys, 1 warnings)\n" || !strings.Contains(stderr, `warning: account "carol"`) {
		t.Fatalf("import printed %q, stderr %q", out, stderr)
	}
	a := showJSON(t, dir, "alice")
	if a.Home != "/home/alice" || *a.UID != 1000 || *a.GID != 1000 || !a.HasPassword || len(a.Keys) != 0 {
		t.Fatalf("alice = %+v", a)
	}
	c := showJSON(t, dir, "carol")
	if c.Home != home || c.HasPassword || len(c.Keys) != 1 || c.Keys[0].Line != kc {
		t.Fatalf("carol = %+v", c)
	}
	if _, err := showJSONErr(t, dir, "root"); err == nil {
		t.Fatal("root imported despite --min-uid 1000")
	}

	// --authorized-keys-dir, into a fresh store.
	dir2 := t.TempDir()
	keysDir := filepath.Join(src, "keys")
	os.MkdirAll(keysDir, 0o700)
	os.WriteFile(filepath.Join(keysDir, "alice"), []byte(ka+"\n"), 0o600)
	out = mustRun(t, dir2, "", "user", "import", "--passwd", passwd, "--authorized-keys-dir", keysDir, "--min-uid", "1000", "--json")
	var res struct {
		Imported []string `json:"imported"`
		Keys     int      `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || strings.Join(res.Imported, ",") != "alice,carol" || res.Keys != 1 {
		t.Fatalf("import --json = %q (%v)", out, err)
	}
	if a := showJSON(t, dir2, "alice"); len(a.Keys) != 1 || a.Keys[0].Line != ka || a.HasPassword {
		t.Fatalf("alice from keys dir = %+v", a)
	}
}

func showJSONErr(t *testing.T, dir, name string) (string, error) {
	out, _, err := ferryRun(t, dir, "", "user", "show", name, "--json")
	return out, err
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "123": 123, "1K": 1024, "500M": 500 << 20, "10G": 10 << 30, "2T": 2 << 40,
		"1P": 1 << 50, "10GB": 10 << 30, "10GiB": 10 << 30, "10g": 10 << 30, " 7 ": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "1.5G", "-1", "1X", "4097P", "9223372036854775807"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
	for n, want := range map[int64]string{0: "0", 1023: "1023", 1024: "1K", 10 << 30: "10G", 1536: "1536"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	for in, want := range map[string]time.Time{
		"never":                time.Time{},
		"":                     time.Time{},
		"2030-06-01":           time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC),
		"2030-06-01T10:00:00Z": time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC),
	} {
		if got, err := parseExpiry(in); err != nil || !got.Equal(want) {
			t.Errorf("parseExpiry(%q) = %v, %v", in, got, err)
		}
	}
}

// TestUserPostgres runs the CLI against PostgreSQL (--database), in a fresh
// schema, when FERRY_TEST_POSTGRES is set (always under CI).
func TestUserPostgres(t *testing.T) {
	base := os.Getenv("FERRY_TEST_POSTGRES")
	if base == "" {
		testenv.Missing(t, "FERRY_TEST_POSTGRES is not set (source .ci/setup-postgres.sh)")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := fmt.Sprintf("ferry_cli_test_%x", rnd)
	if _, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	dir := t.TempDir()
	pg := func(args ...string) []string { return append([]string{"--database", u.String()}, args...) }
	mustRun(t, dir, "pw\n", pg("user", "add", "alice", "--password-stdin", "--quota-bytes", "1G")...)
	out := mustRun(t, dir, "", pg("user", "show", "alice", "--json")...)
	var a shownAccount
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.QuotaBytes != 1<<30 || !a.HasPassword {
		t.Fatalf("show on postgres = %q (%v)", out, err)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+schema+".accounts WHERE name = 'alice'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("row in PostgreSQL: %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ferry.db")); !os.IsNotExist(err) {
		t.Fatalf("--database postgres:// still created a SQLite file: %v", err)
	}
}

// TestUserQuotaCountsExistingFiles: an account given a quota after it
// has files, an account re-created over an old home, and `user recount`
// after a change outside ferry all leave the usage counters at what the
// home holds. They stayed at 0, so the account got its full quota on top.
func TestUserQuotaCountsExistingFiles(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home", "erin")
	put := func(name string, size int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(home, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	used := func(wantBytes, wantFiles int64) {
		t.Helper()
		a, err := openStore(t, dir).LookupAccount(t.Context(), "erin")
		if err != nil {
			t.Fatal(err)
		}
		if a.UsedBytes != wantBytes || a.UsedFiles != wantFiles {
			t.Errorf("used %d bytes, %d files; want %d, %d", a.UsedBytes, a.UsedFiles, wantBytes, wantFiles)
		}
	}
	mustRun(t, dir, "", "user", "add", "erin")
	put("a", 1000)
	put("d/b", 24)
	mustRun(t, dir, "", "user", "set", "erin", "--quota-bytes", "1M", "--quota-files", "3")
	used(1024, 2)
	if out := mustRun(t, dir, "", "user", "show", "erin"); !strings.Contains(out, "1K used of 1M, 2 files of 3") {
		t.Errorf("show after set --quota: %s", out)
	}

	put("c", 2048)
	out := mustRun(t, dir, "", "user", "recount", "erin")
	if want := "recounted account erin: 3K in 3 files\n"; out != want {
		t.Errorf("recount printed %q, want %q", out, want)
	}
	used(3072, 3)

	mustRun(t, dir, "", "user", "delete", "erin")
	mustRun(t, dir, "", "user", "add", "erin", "--quota-bytes", "1M")
	used(3072, 3)

	mustRun(t, dir, "", "user", "add", "frank")
	if out := mustRun(t, dir, "", "user", "recount", "--all", "--json"); !strings.Contains(out, `"used_bytes": 3072`) || !strings.Contains(out, `"account": "frank"`) {
		t.Errorf("recount --all --json: %s", out)
	}
	if _, _, err := ferryRun(t, dir, "", "user", "recount"); err == nil {
		t.Error("recount with neither NAME nor --all succeeded")
	}
}

// TestUserRecountAllGoesOnPastBadHome: `recount --all` stopped at the
// first home it could not count (here a file where the directory should
// be; on a real host an imported home ferry's user may not read), so
// every account after it in name order kept stale counters, and the
// ones before it were stored without being printed.
func TestUserRecountAllGoesOnPastBadHome(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, "", "user", "add", "anna")
	mustRun(t, dir, "", "user", "add", "bert", "--home", notDir)
	mustRun(t, dir, "", "user", "add", "cleo")
	home := filepath.Join(dir, "home", "cleo")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "f"), make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := ferryRun(t, dir, "", "user", "recount", "--all")
	if err == nil || !strings.Contains(err.Error(), "1 of 3 accounts not recounted") {
		t.Errorf("recount --all err = %v, want it to report the one failure", err)
	}
	if !strings.Contains(errOut, "error: account bert:") {
		t.Errorf("stderr %q does not name bert", errOut)
	}
	if want := "recounted account anna: 0 in 0 files\nrecounted account cleo: 2K in 1 files\n"; out != want {
		t.Errorf("recount --all printed %q, want %q", out, want)
	}
	a, err := openStore(t, dir).LookupAccount(t.Context(), "cleo")
	if err != nil || a.UsedBytes != 2048 || a.UsedFiles != 1 {
		t.Fatalf("cleo after recount --all: %+v, %v", a, err)
	}
}

// disablingReader is a password on standard input that, when read, has
// someone else disable the account first, as `ferry user disable` run by
// another script at the same moment.
type disablingReader struct {
	t    *testing.T
	url  string
	name string
	r    *strings.Reader
	done bool
}

func (d *disablingReader) Read(p []byte) (int, error) {
	if !d.done {
		d.done = true
		s, err := store.Open(d.t.Context(), d.url, store.Options{})
		if err != nil {
			d.t.Fatal(err)
		}
		defer s.Close()
		if err := s.SetEnabled(d.t.Context(), d.name, false); err != nil {
			d.t.Fatal(err)
		}
	}
	return d.r.Read(p)
}

// TestUserSetKeepsConcurrentChanges: `user set` writes back only what its
// flags change; a `user disable` that lands while it runs (here while it
// reads the password) stays in force instead of being overwritten with
// the enabled flag read before it.
func TestUserSetKeepsConcurrentChanges(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	root := newRootCmd()
	root.SetOut(new(bytes.Buffer))
	root.SetErr(new(bytes.Buffer))
	root.SetIn(&disablingReader{t: t, url: store.DefaultURL(dir), name: "alice", r: strings.NewReader("s3cret\n")})
	root.SetArgs([]string{"--data-dir", dir, "--database", "", "user", "set", "alice", "--password-stdin", "--quota-bytes", "1M"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var a shownAccount
	if err := json.Unmarshal([]byte(mustRun(t, dir, "", "user", "show", "alice", "--json")), &a); err != nil {
		t.Fatal(err)
	}
	if a.Enabled || !a.HasPassword || a.QuotaBytes != 1<<20 {
		t.Fatalf("after user set next to user disable: enabled=%v password=%v quota=%d; want false, true, 1M", a.Enabled, a.HasPassword, a.QuotaBytes)
	}
}

// TestUserHomeHoldingDataDir: a home that is or holds the data directory,
// its home root or the database (given by mistake: "/", the parent of the
// data directory, a link to it) would serve the account the host private
// keys, every password hash and every other account's home; add, set and
// import refuse it and change nothing.
func TestUserHomeHoldingDataDir(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	before := snapshot(t, dir)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, home := range []string{"/", dir, filepath.Dir(dir), filepath.Join(dir, "home"), link, filepath.Join(dir, "home", "..")} {
		if _, errOut, err := ferryRun(t, dir, "", "user", "add", "bob", "--home", home); err == nil {
			t.Errorf("user add --home %s succeeded", home)
		} else if !strings.Contains(err.Error()+errOut, "holds") {
			t.Errorf("user add --home %s: %v", home, err)
		}
		if _, _, err := ferryRun(t, dir, "", "user", "set", "alice", "--home", home); err == nil {
			t.Errorf("user set --home %s succeeded", home)
		}
	}
	csvFile := filepath.Join(t.TempDir(), "import.csv")
	os.WriteFile(csvFile, []byte("name,password_hash,home,authorized_keys\ncarol,,,\ndave,,/,\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--csv", csvFile); err == nil {
		t.Error("import with a home of / succeeded")
	}
	passwdFile := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(passwdFile, []byte("systemd-network:x:998:998::/:/usr/sbin/nologin\ncarol:x:1000:1000::/home/carol:/bin/sh\n"), 0o600)
	if _, _, err := ferryRun(t, dir, "", "user", "import", "--passwd", passwdFile); err == nil || !strings.Contains(err.Error(), "--min-uid") {
		t.Errorf("passwd import with a home of /: %v", err)
	}
	// A database elsewhere is protected too.
	db := filepath.Join(t.TempDir(), "db", "ferry.db")
	if _, _, err := ferryRun(t, dir, "", "--database", "sqlite://"+db, "user", "add", "erin", "--home", filepath.Dir(filepath.Dir(db))); err == nil || !strings.Contains(err.Error(), "holds "+db) {
		t.Errorf("user add with a home holding the database: %v", err)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("refused homes changed the store:\n%s\nwant\n%s", after, before)
	}
	// Homes beside or below them are fine.
	mustRun(t, dir, "", "user", "set", "alice", "--home", filepath.Join(dir, "home", "shared"))
	mustRun(t, dir, "", "user", "add", "bob", "--home", filepath.Join(filepath.Dir(dir), "bob"))
}

// TestUserMaxConnectionsZeroIsServerDefault: an account's max connections
// of 0 falls back to the configuration's max_connections_per_account
// (internal/daemon admitConn), but `user show` printed "unlimited" and the
// flag's help said "0 = unlimited", so an admin who had set the server's
// bound read that it did not apply.
func TestUserMaxConnectionsZeroIsServerDefault(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "carol")
	if show := mustRun(t, dir, "", "user", "show", "carol"); !regexp.MustCompile(`(?m)^max connections:\s+server default$`).MatchString(show) {
		t.Errorf("show, max connections 0:\n%s", show)
	}
	mustRun(t, dir, "", "user", "set", "carol", "--max-connections", "3")
	if show := mustRun(t, dir, "", "user", "show", "carol"); !regexp.MustCompile(`(?m)^max connections:\s+3$`).MatchString(show) {
		t.Errorf("show, max connections 3:\n%s", show)
	}
	help := mustRun(t, dir, "", "user", "add", "--help")
	if !strings.Contains(help, "max_connections_per_account") || strings.Contains(help, "connections (0 = unlimited)") {
		t.Errorf("user add --help on --max-connections:\n%s", help)
	}
}
