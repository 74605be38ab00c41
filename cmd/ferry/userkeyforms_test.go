package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/keys"
)

// TestUserKeyAddPastedForms: the public key files customers hand in are
// added as the key they hold, and a private key is refused with a reason.
// Before, a PuTTYgen/ssh-keygen -e (RFC 4716) file failed with `unknown key
// type "BEGIN"`, a file saved with a byte order mark with `unknown key type
// "AAAAC3..."`, and a private key with `unknown key type "OPENSSH"`.
func TestUserKeyAddPastedForms(t *testing.T) {
	keygen := testenv.NeedTool(t, "ssh-keygen")
	dir, keyDir := t.TempDir(), t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	gen := func(name string, typ ...string) (priv, pub string) {
		t.Helper()
		p := filepath.Join(keyDir, name)
		args := append([]string{"-q", "-N", "", "-C", "comment of " + name, "-f", p, "-t"}, typ...)
		if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %q: %v\n%s", args, err, out)
		}
		return p, p + ".pub"
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(keygen, args...).Output()
		if err != nil {
			t.Fatalf("ssh-keygen %q: %v", args, err)
		}
		return string(out)
	}
	fingerprint := func(pub string) string {
		t.Helper()
		return strings.Fields(run("-l", "-E", "sha256", "-f", pub))[1]
	}
	write := func(name, text string) string {
		p := filepath.Join(keyDir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type added struct {
		Fingerprint string `json:"fingerprint"`
		Comment     string `json:"comment"`
		Line        string `json:"line"`
	}
	addFile := func(file string) []added {
		t.Helper()
		var got []added
		if err := json.Unmarshal([]byte(mustRun(t, dir, "", "user", "key", "add", "alice", "--file", file, "--json")), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	_, edPub := gen("ed", "ed25519")
	bom := write("bom.pub", "\ufeff"+strings.TrimSpace(readFile(t, edPub))+"\r\n\r\n")
	if got := addFile(bom); len(got) != 1 || got[0].Fingerprint != fingerprint(edPub) || got[0].Comment != "comment of ed" {
		t.Errorf("file with a byte order mark and CRLF: added %+v", got)
	}

	// ssh-keygen -e writes what PuTTYgen's "Save public key" does.
	_, rsaPub := gen("rsa", "rsa", "-b", "3072")
	rfc := write("rsa.rfc4716", run("-e", "-f", rsaPub))
	if got := addFile(rfc); len(got) != 1 || got[0].Fingerprint != fingerprint(rsaPub) ||
		!strings.HasPrefix(got[0].Line, "ssh-rsa ") || !strings.Contains(got[0].Comment, "3072-bit RSA") {
		t.Errorf("ssh-keygen -e file: added %+v", got)
	}

	// Pasted as one argument, with RFC 4716 §3.3 continued headers and a
	// quoted comment, between authorized_keys lines.
	_, ecPub := gen("ec", "ecdsa", "-b", "384")
	body := strings.Split(strings.TrimSpace(run("-e", "-f", ecPub)), "\n")
	var b64 []string
	for _, l := range body[1 : len(body)-1] {
		if !strings.Contains(l, ":") {
			b64 = append(b64, l)
		}
	}
	_, ed2Pub := gen("ed2", "ed25519")
	pasted := "# keys\r\n" + strings.TrimSpace(readFile(t, ed2Pub)) + "\r\n" +
		"---- BEGIN SSH2 PUBLIC KEY ----\r\n" +
		"Subject: alice\r\n" +
		"x-private: a header line\r\n" +
		"Comment: \"laptop key, \\\r\n" +
		"2026\"\r\n" +
		strings.Join(b64, "\r\n") + "\r\n" +
		"---- END SSH2 PUBLIC KEY ----\r\n"
	var got []added
	if err := json.Unmarshal([]byte(mustRun(t, dir, "", "user", "key", "add", "alice", "--json", "--", pasted)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Fingerprint != fingerprint(ed2Pub) || got[1].Fingerprint != fingerprint(ecPub) || got[1].Comment != "laptop key, 2026" {
		t.Errorf("pasted authorized_keys line and RFC 4716 block: added %+v", got)
	}

	before := snapshot(t, dir)
	ppk := "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIN3WF7bzmO51jy39GsFNWgkC62KKAf3HnLKQcgz8\n8DfY\nPrivate-Lines: 1\nAAAAIDa4R0SECRETSECRETSECRETSECRETSECRETSECRETSE\n"
	edPriv, _ := gen("victim", "ed25519")
	for _, tc := range []struct{ name, file, want string }{
		{"OpenSSH private key", edPriv, "line 1: this is a private key"},
		{"PuTTY private key", write("k.ppk", ppk), "line 1: this is a private key"},
		{"PKCS #8 public key", write("pkcs8.pub", run("-e", "-m", "PKCS8", "-f", rsaPub)), "line 1: a PEM public key"},
		{"unterminated RFC 4716", write("cut.pub", strings.Join(body[:len(body)-1], "\n")), "line 1: keys: RFC 4716 public key without its ---- END SSH2 PUBLIC KEY ---- line"},
	} {
		_, errOut, err := ferryRun(t, dir, "", "user", "key", "add", "alice", "--file", tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if strings.Contains(errOut+errString(err), "SECRET") || strings.Contains(errOut+errString(err), strings.Split(readFile(t, edPriv), "\n")[1]) {
			t.Errorf("%s: the error quotes the private key: %v", tc.name, err)
		}
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("refused files changed the store:\n%s\n%s", before, after)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestUserKeyListEscapesComment: a key's comment is the customer's text;
// listing the keys printed it raw, so "\x1b]0;...\a" retitled and
// "\x1b[2J" cleared the administrator's terminal, and a tab shifted the
// table. Control and format characters are now shown escaped.
func TestUserKeyListEscapesComment(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	comment := "evil\x1b[2J\x1b]0;pwned\a\ttab\u202egnp.exe\x9b31m"
	mustRun(t, dir, "", "user", "key", "add", "alice", keyLine(t, comment))
	for _, args := range [][]string{{"user", "key", "list", "alice"}, {"user", "show", "alice"}} {
		out := mustRun(t, dir, "", args...)
		for _, r := range out {
			if r != '\n' && (r < ' ' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u202e') {
				t.Fatalf("ferry %q printed %q unescaped:\n%q", args, r, out)
			}
		}
		if want := `evil\x1b[2J\x1b]0;pwned\x07\x09tab\u202egnp.exe\x9b31m`; !strings.Contains(out, want) {
			t.Errorf("ferry %q: comment not shown as %s:\n%s", args, want, out)
		}
	}
}

// TestUserKeyListShowsOptions: the listing showed no options, so a
// cert-authority line (every certificate its CA signs logs in) looked like
// any other key, and from= or command= limits were invisible.
func TestUserKeyListShowsOptions(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	mustRun(t, dir, "", "user", "key", "add", "alice", `cert-authority,principals="ops,deploy" `+keyLine(t, "our CA"))
	mustRun(t, dir, "", "user", "key", "add", "alice", `from="10.0.0.0/8",restrict,pty,command="ls -l" `+keyLine(t, "restricted-key"))
	mustRun(t, dir, "", "user", "key", "add", "alice", keyLine(t, "plain"))
	for _, args := range [][]string{{"user", "key", "list", "alice"}, {"user", "show", "alice"}} {
		lines := strings.Split(mustRun(t, dir, "", args...), "\n")
		row := func(comment string) string {
			for _, l := range lines {
				if strings.Contains(l, comment) {
					return l
				}
			}
			t.Fatalf("ferry %q: no row for %q in\n%s", args, comment, strings.Join(lines, "\n"))
			return ""
		}
		if r := row("our CA"); !strings.HasSuffix(r, `cert-authority,principals="ops,deploy"`) {
			t.Errorf("ferry %q: CA row %q", args, r)
		}
		if r := row("restricted-key"); !strings.HasSuffix(r, `restrict,pty,command="ls -l",from="10.0.0.0/8"`) {
			t.Errorf("ferry %q: limited row %q", args, r)
		}
		if r := row("plain"); !regexp.MustCompile(`  \d{4}-\d\d-\d\d$`).MatchString(strings.TrimSpace(r)) {
			t.Errorf("ferry %q: plain row %q", args, r)
		}
		if !strings.Contains(row("ID"), "OPTIONS") {
			t.Errorf("ferry %q: header %q", args, row("ID"))
		}
	}
}

// TestUserKeyAddWarnsUnusable: a key the default configuration refuses at
// every login is added (the configuration may allow it) with a warning
// saying why; before, key add printed success and the customer's login
// failed with no hint.
func TestUserKeyAddWarnsUnusable(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	small, err := keys.NewRSAPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dsaLine := strings.TrimSpace(readFile(t, "../../keys/testdata/id_dsa.pub"))
	for _, tc := range []struct{ name, line, want string }{
		{"RSA 1024", strings.TrimSpace(string(keys.MarshalAuthorizedKey(small))) + " old", "1024-bit RSA keys are refused unless required_rsa_size allows them"},
		{"DSA", dsaLine, "DSA keys are refused unless pubkey_accepted_algorithms lists ssh-dss"},
		{"expired", `expiry-time="20200101" ` + keyLine(t, "expired"), "its expiry-time has passed"},
		{"good", keyLine(t, "good"), ""},
	} {
		out, errOut, err := ferryRun(t, dir, "", "user", "key", "add", "alice", tc.line)
		if err != nil || !strings.HasPrefix(out, "added key ") {
			t.Fatalf("%s: key add: %v %q %q", tc.name, err, out, errOut)
		}
		if tc.want == "" && errOut != "" || !strings.Contains(errOut, tc.want) || tc.want != "" && !strings.HasPrefix(errOut, "warning: key ") {
			t.Errorf("%s: stderr %q, want a warning containing %q", tc.name, errOut, tc.want)
		}
	}
	_, errOut, err := ferryRun(t, dir, "", "user", "add", "bob", "--authorized-key", dsaLine)
	if err != nil || !strings.Contains(errOut, "DSA keys are refused") {
		t.Errorf("user add --authorized-key DSA: %v, stderr %q", err, errOut)
	}
}
