package daemon

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/internal/testenv"
	"github.com/ferry-sftp/ferry/keys"
)

func fingerprints(signers []keys.Signer) []string {
	var out []string
	for _, s := range signers {
		out = append(out, keys.FingerprintSHA256(s.PublicKey()))
	}
	return out
}

func TestLoadOrCreateHostKeysGeneratesDefaults(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	dir := filepath.Join(t.TempDir(), "data")
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))

	signers, err := LoadOrCreateHostKeys(dir, nil, []string{"ssh-ed25519", "rsa-sha2-512"}, log)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{keys.KeyEd25519, keys.KeyRSA, keys.KeyECDSAP256}
	if len(signers) != len(wantTypes) {
		t.Fatalf("got %d keys, want %d", len(signers), len(wantTypes))
	}
	for i, s := range signers {
		if got := s.PublicKey().Type(); got != wantTypes[i] {
			t.Errorf("key %d: type %s, want %s", i, got, wantTypes[i])
		}
	}
	if rsa, ok := signers[1].PublicKey().(*keys.RSAPublicKey); !ok || rsa.Bits() != 3072 {
		t.Errorf("RSA host key is not 3072 bits")
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v %v, want 0700", st.Mode().Perm(), err)
	}
	for _, spec := range defaultHostKeys {
		p := filepath.Join(dir, spec.file)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", spec.file, st.Mode().Perm())
		}
		st, err = os.Stat(p + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s.pub: mode %#o, want 0644", spec.file, st.Mode().Perm())
		}
		data, _ := os.ReadFile(p)
		if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
			t.Errorf("%s is not in OpenSSH format: %.40q", spec.file, data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, dsaHostKey.file)); err == nil {
		t.Errorf("DSA key generated although ssh-dss is not enabled")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
	for _, fp := range fingerprints(signers) {
		if !strings.Contains(logBuf.String(), "fingerprint="+fp) {
			t.Errorf("log does not show fingerprint %s:\n%s", fp, logBuf.String())
		}
	}
	if got := strings.Count(logBuf.String(), "msg=\"generated host key\""); got != 3 {
		t.Errorf("logged %d generations, want 3", got)
	}

	// A restart loads the same keys and generates nothing.
	logBuf.Reset()
	again, err := LoadOrCreateHostKeys(dir, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := strings.Join(fingerprints(signers), " "), strings.Join(fingerprints(again), " "); a != b {
		t.Errorf("reload changed fingerprints:\n%s\n%s", a, b)
	}
	if strings.Contains(logBuf.String(), "generated") {
		t.Errorf("reload generated a key:\n%s", logBuf.String())
	}

	// ssh-keygen agrees on every fingerprint, for the private and the
	// public file.
	sshKeygen := testenv.NeedTool(t, "ssh-keygen")
	for i, spec := range defaultHostKeys {
		for _, f := range []string{spec.file, spec.file + ".pub"} {
			out, err := exec.Command(sshKeygen, "-l", "-E", "sha256", "-f", filepath.Join(dir, f)).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh-keygen -l -f %s: %v\n%s", f, err, out)
			}
			fields := strings.Fields(string(out))
			if len(fields) < 2 || fields[1] != keys.FingerprintSHA256(signers[i].PublicKey()) {
				t.Errorf("ssh-keygen -l -f %s: %q, want fingerprint %s", f, out, keys.FingerprintSHA256(signers[i].PublicKey()))
			}
		}
	}
}

func TestLoadOrCreateHostKeysDSAOnlyWhenEnabled(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	dir := t.TempDir()
	signers, err := LoadOrCreateHostKeys(dir, nil, []string{"ssh-ed25519", "ssh-dss"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(signers) != 4 || signers[3].PublicKey().Type() != keys.KeyDSA {
		t.Fatalf("want ed25519, rsa, ecdsa, dsa; got %v", HostKeyFingerprints(signers))
	}
	st, err := os.Stat(filepath.Join(dir, dsaHostKey.file))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("DSA key file: %v %v", st, err)
	}
	// Disabled again: the file stays but is not loaded.
	signers, err = LoadOrCreateHostKeys(dir, nil, []string{"ssh-ed25519"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(signers) != 3 {
		t.Fatalf("DSA key loaded although ssh-dss is off: %v", HostKeyFingerprints(signers))
	}
}

func TestLoadOrCreateHostKeysRefusesUnprotectedKey(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	dir := t.TempDir()
	if _, err := LoadOrCreateHostKeys(dir, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ssh_host_rsa_key")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateHostKeys(dir, nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "UNPROTECTED PRIVATE KEY FILE") || !strings.Contains(err.Error(), p) {
			t.Errorf("mode %#o: err = %v, want UNPROTECTED PRIVATE KEY FILE naming %s", mode, err, p)
		}
		// The explicit host_keys path goes through the same check.
		_, err = LoadOrCreateHostKeys("", []string{p}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "UNPROTECTED PRIVATE KEY FILE") {
			t.Errorf("explicit, mode %#o: err = %v", mode, err)
		}
	}
	if err := os.Chmod(p, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKeys(dir, nil, nil, nil); err != nil {
		t.Errorf("mode 0400 refused: %v", err)
	}
}

// A .pub named in host_keys (the slip of writing the file ssh-keyscan
// shows) was refused as an UNPROTECTED PRIVATE KEY FILE to chmod 600, and
// then as "no PEM private key found"; it is now called a public key.
func TestLoadOrCreateHostKeysRefusesPublicKey(t *testing.T) {
	dir := t.TempDir()
	ed := filepath.Join(dir, "ssh_host_ed25519_key")
	if _, err := createHostKey(ed, hostKeySpec{keyType: keys.KeyEd25519}, -1); err != nil {
		t.Fatal(err)
	}
	signer, err := loadHostKey(ed, -1)
	if err != nil {
		t.Fatal(err)
	}
	pub := string(keys.MarshalAuthorizedKey(signer.PublicKey()))
	for name, text := range map[string]string{"ssh_host_ed25519_key.pub": pub, "commented.pub": "\n" + strings.TrimSpace(pub) + " root@host\r\n"} {
		for _, mode := range []os.FileMode{0o644, 0o600} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(text), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateHostKeys("", []string{p}, nil, nil)
			if !errors.Is(err, keys.ErrPublicKeyFile) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s mode %#o: err = %v, want %v naming the file", name, mode, err, keys.ErrPublicKeyFile)
			}
		}
	}
}

func TestLoadOrCreateHostKeysRefusesForeignOwner(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	dir := t.TempDir()
	if _, err := LoadOrCreateHostKeys(dir, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateHostKeys(dir, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("err = %v, want refusal of a key owned by uid 65534", err)
	}
}

func TestLoadOrCreateHostKeysExplicitPaths(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	dir := t.TempDir()
	gen, err := LoadOrCreateHostKeys(dir, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ed := filepath.Join(dir, "ssh_host_ed25519_key")
	got, err := LoadOrCreateHostKeys("/nonexistent", []string{ed}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || keys.FingerprintSHA256(got[0].PublicKey()) != keys.FingerprintSHA256(gen[0].PublicKey()) {
		t.Fatalf("explicit path loaded %v", HostKeyFingerprints(got))
	}
	missing := filepath.Join(dir, "no_such_key")
	_, err = LoadOrCreateHostKeys(dir, []string{ed, missing}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want an error naming %s", err, missing)
	}
	if _, serr := os.Stat(missing); serr == nil {
		t.Fatalf("explicit missing key was generated")
	}

	garbage := filepath.Join(dir, "garbage_key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateHostKeys(dir, []string{garbage}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), garbage) {
		t.Fatalf("err = %v, want a parse error naming %s", err, garbage)
	}
}

func TestLoadOrCreateHostKeysReadsSSHKeygenKeys(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	sshKeygen := testenv.NeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	p := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command(sshKeygen, "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	signers, err := LoadOrCreateHostKeys(dir, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(keys.MarshalAuthorizedKey(signers[0].PublicKey())); !strings.HasPrefix(string(pub), strings.TrimSpace(got)) {
		t.Fatalf("ssh-keygen's key not used:\n%s\n%s", pub, got)
	}
	// The existing .pub is left alone.
	after, _ := os.ReadFile(p + ".pub")
	if !bytes.Equal(pub, after) {
		t.Fatalf(".pub rewritten")
	}
}

func TestLoadOrCreateHostKeysRewritesMissingPub(t *testing.T) {
	t.Parallel() // RSA 3072 generation dominates; run the cases side by side
	dir := t.TempDir()
	signers, err := LoadOrCreateHostKeys(dir, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "ssh_host_ecdsa_key.pub")
	if err := os.Remove(pubPath); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKeys(dir, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(keys.MarshalAuthorizedKey(signers[2].PublicKey())))
	if !strings.HasPrefix(string(data), want+" ferry@") {
		t.Fatalf(".pub = %q, want %q + comment", data, want)
	}
}

func TestWriteFileAtomicKeepsExisting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	created, err := writeFileAtomic(p, []byte("first"), 0o600, false)
	if err != nil || !created {
		t.Fatalf("first write: %v %v", created, err)
	}
	created, err = writeFileAtomic(p, []byte("second"), 0o600, false)
	if err != nil || created {
		t.Fatalf("second write: created=%v err=%v, want existing file kept", created, err)
	}
	if data, _ := os.ReadFile(p); string(data) != "first" {
		t.Fatalf("content %q, want first", data)
	}
	if _, err := writeFileAtomic(p, []byte("third"), 0o644, true); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "third" {
		t.Fatalf("content %q, want third", data)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %#o, want 0644", st.Mode().Perm())
	}
}

// TestReloadKeepsUnreadableHostKey: a reload keeps the key loaded before
// from a file it may no longer open (run_as dropped root), and only then;
// a file never loaded still fails. As root every file opens: e2e's
// TestRunAsReload drops privileges for real.
func TestReloadKeepsUnreadableHostKey(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root opens any file; e2e TestRunAsReload covers run_as")
	}
	dir := t.TempDir()
	signers, byPath, err := reloadHostKeys(dir, nil, nil, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	ed := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.Chmod(ed, 0); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	again, _, err := reloadHostKeys(dir, nil, nil, slog.New(slog.NewTextHandler(&logBuf, nil)), byPath, -1)
	if err != nil {
		t.Fatalf("reload with the ed25519 key unreadable: %v", err)
	}
	if got, want := fingerprints(again), fingerprints(signers); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("keys after reload %v, want the ones loaded before %v", got, want)
	}
	if !strings.Contains(logBuf.String(), "level=WARN") || !strings.Contains(logBuf.String(), ed) {
		t.Errorf("no warning naming %s in:\n%s", ed, logBuf.String())
	}
	if _, _, err := reloadHostKeys(dir, []string{ed}, nil, nil, nil, -1); err == nil {
		t.Error("an unreadable key never loaded before was accepted")
	}
}

// ownedFileInfo is a 0600 regular file's metadata owned by uid.
type ownedFileInfo struct{ uid uint32 }

func (ownedFileInfo) Name() string       { return "ssh_host_ed25519_key" }
func (ownedFileInfo) Size() int64        { return 400 }
func (ownedFileInfo) Mode() fs.FileMode  { return 0o600 }
func (ownedFileInfo) ModTime() time.Time { return time.Time{} }
func (ownedFileInfo) IsDir() bool        { return false }
func (f ownedFileInfo) Sys() any         { return &syscall.Stat_t{Uid: f.uid} }

// TestHostKeyOwnedByRunAs: a host key owned by the run_as user is
// accepted (Run gave it the data directory's keys at the previous start);
// one owned by anyone else still is not.
func TestHostKeyOwnedByRunAs(t *testing.T) {
	const runAs = 4242
	if os.Geteuid() == runAs {
		t.Skip("the test's foreign uid is ours")
	}
	if err := checkPrivateKeyFile("k", ownedFileInfo{runAs}, runAs); err != nil {
		t.Errorf("key owned by the run_as uid: %v", err)
	}
	if err := checkPrivateKeyFile("k", ownedFileInfo{runAs}, -1); err == nil {
		t.Error("key owned by a foreign uid accepted without run_as")
	}
	if err := checkPrivateKeyFile("k", ownedFileInfo{runAs + 1}, runAs); err == nil {
		t.Error("key owned by a foreign uid accepted beside run_as")
	}
}
