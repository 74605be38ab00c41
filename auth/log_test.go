package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/keys"
)

// runLogged runs one scripted connection from testRemote with a logger
// writing to a buffer in the given format.
func runLogged(t *testing.T, cfg *Config, jsonFormat bool, in ...[]byte) string {
	t.Helper()
	var buf bytes.Buffer
	if jsonFormat {
		cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	}
	Run(context.Background(), &scriptConn{in: append([][]byte{serviceRequest("ssh-userauth")}, in...)}, Peer{RemoteAddr: testRemote()}, cfg)
	return buf.String()
}

// loginLogScripts are a connection that fails to log in as a user whose
// name carries a newline, an escape and a fake address, and one that logs
// in as alice with a key.
func loginLogScripts(t *testing.T) (failed func(jsonFormat bool) string, succeeded func(jsonFormat bool) string, fingerprint string) {
	const evil = "x\" remote=203.0.113.9:22 \x1b[2J\n time=0 msg=\"user authenticated\" remote=203.0.113.9:22"
	k := ed25519Signer(t)
	failed = func(jsonFormat bool) string {
		cfg := testConfig(newFake())
		cfg.MaxAuthTries = 2
		return runLogged(t, cfg, jsonFormat, passwordRequestMsg(evil, "wrong"), passwordRequestMsg(evil, "wrong"))
	}
	succeeded = func(jsonFormat bool) string {
		fa := newFake()
		fa.users["alice"].keys[string(k.PublicKey().Marshal())] = &Permissions{}
		return runLogged(t, testConfig(fa), jsonFormat, pkSigned(t, k, testSessionID, "alice", "alice", "ssh-ed25519"))
	}
	return failed, succeeded, keys.FingerprintSHA256(k.PublicKey())
}

// TestLoginLogJSON: in [log] format = "json" the client's address was a
// JSON object ({"IP":"127.0.0.1","Port":40000,"Zone":""}) on the login
// lines and a "host:port" string on the daemon's others, so a jq filter or
// log pipeline written for one missed the other; and a key login did not
// say which key until the connection closed.
func TestLoginLogJSON(t *testing.T) {
	failed, succeeded, fp := loginLogScripts(t)
	want := map[string]bool{"authentication failed": false, "too many authentication failures": false, "user authenticated": false}
	for _, out := range []string{failed(true), succeeded(true)} {
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("not one JSON record per line: %v\n%s", err, out)
			}
			msg, _ := rec["msg"].(string)
			if _, ok := want[msg]; !ok {
				continue
			}
			want[msg] = true
			if rec["remote"] != testRemote().String() {
				t.Errorf("%q: remote = %#v, want %q", msg, rec["remote"], testRemote().String())
			}
			if msg == "user authenticated" && rec["key"] != fp {
				t.Errorf("%q: key = %#v, want %q", msg, rec["key"], fp)
			}
		}
	}
	for msg, seen := range want {
		if !seen {
			t.Errorf("no %q record", msg)
		}
	}
}

// TestLoginLogTextFirstRemote: in the text format the first "remote="
// of a login line is the client's address, whatever user name the client
// sent: the name came first, so a filter taking the first remote= (as
// fail2ban's <HOST> in an unanchored failregex does) could be handed any
// address to ban. Each record also stays on one line.
func TestLoginLogTextFirstRemote(t *testing.T) {
	failed, succeeded, fp := loginLogScripts(t)
	firstRemote := regexp.MustCompile(`remote=(\S+)`)
	out := failed(false) + succeeded(false)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	seen := 0
	for _, line := range lines {
		if !strings.HasPrefix(line, "time=") || strings.ContainsRune(line, 0x1b) {
			t.Errorf("a record spans lines or holds a raw escape: %q", line)
		}
		if !strings.Contains(line, `msg="authentication failed"`) && !strings.Contains(line, `msg="too many authentication failures"`) &&
			!strings.Contains(line, `msg="user authenticated"`) {
			continue
		}
		seen++
		if m := firstRemote.FindStringSubmatch(line); m == nil || m[1] != testRemote().String() {
			t.Errorf("first remote= of %q is %q, want %s", line, m, testRemote())
		}
		if strings.Contains(line, `msg="user authenticated"`) && !strings.HasSuffix(line, " key="+fp) {
			t.Errorf("key login line without its key's fingerprint: %s", line)
		}
	}
	if seen != 4 { // two failures, too many, one success
		t.Errorf("%d login lines, want 4:\n%s", seen, out)
	}
}
