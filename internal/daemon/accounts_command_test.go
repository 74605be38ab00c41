package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// TestAccountForceCommandBeatsKeyCommand: a key's command= must not replace
// the account's forced command (sshd's ForceCommand wins over
// authorized_keys command=), and applies only to accounts without one.
func TestAccountForceCommandBeatsKeyCommand(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := password.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	line := `command="/bin/sh" ` + strings.TrimSpace(string(keys.MarshalAuthorizedKey(key.PublicKey())))
	for name, force := range map[string]string{"forced": "internal-sftp", "free": ""} {
		a := &store.Account{Name: name, PasswordHash: h, Enabled: true, ForceCommand: force}
		if err := st.CreateAccount(context.Background(), a, []string{line}); err != nil {
			t.Fatal(err)
		}
	}
	a := &accountAuthenticator{st: st, memo: &accountMemo{}, pv: store.DefaultPasswordVerifier(), now: time.Now}
	for user, want := range map[string]string{"forced": "internal-sftp", "free": "/bin/sh"} {
		p, err := a.PublicKey(context.Background(), testMeta{user}, key.PublicKey())
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if p.ForceCommand != want {
			t.Errorf("%s: ForceCommand %q, want %q", user, p.ForceCommand, want)
		}
	}
}
