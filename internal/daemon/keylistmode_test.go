package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyListOwnership: trusted_user_ca_keys and revoked_keys were read
// whoever could write them; a CA list writable by group or others (or
// owned by another user) let that user add a CA and log in to every
// account. Both are refused at start, reload and --check, as sshd's
// StrictModes refuses such an authorized_keys.
func TestKeyListOwnership(t *testing.T) {
	ca := newTestSigner(t)
	path := filepath.Join(t.TempDir(), "ca.pub")
	if err := os.WriteFile(path, []byte(authorizedLine(ca)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTrustedUserCAKeys(path); err != nil {
		t.Fatalf("0644 CA list: %v", err)
	}
	if _, err := loadRevokedKeys(path); err != nil {
		t.Fatalf("0644 revoked list: %v", err)
	}
	for _, mode := range []os.FileMode{0o664, 0o646, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := loadTrustedUserCAKeys(path); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("CA list mode %04o: %v", mode, err)
		}
		if _, err := loadRevokedKeys(path); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("revoked list mode %04o: %v", mode, err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := loadTrustedUserCAKeys(path); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("CA list of another user: %v", err)
		}
	}
}
