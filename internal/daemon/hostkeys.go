package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/ferry-sftp/ferry/keys"
)

// hostKeySpec is one default host key file in the data directory, named as
// sshd names its keys in /etc/ssh.
type hostKeySpec struct {
	file    string
	keyType string
	bits    int
}

// defaultHostKeys are generated on first start, in this order, which is
// also the order of the returned signers. An immutable table.
var defaultHostKeys = []hostKeySpec{
	{"ssh_host_ed25519_key", keys.KeyEd25519, 0},
	{"ssh_host_rsa_key", keys.KeyRSA, DefaultRSABits},
	{"ssh_host_ecdsa_key", keys.KeyECDSAP256, 0},
}

// dsaHostKey is generated only when ssh-dss is a host key algorithm:
// 1024-bit DSA is legacy (FIPS 186-4 no longer allows it for signing).
var dsaHostKey = hostKeySpec{"ssh_host_dsa_key", keys.KeyDSA, 1024}

// LoadOrCreateHostKeys returns the server's host keys and logs each one's
// fingerprint ("host key" type=ssh-ed25519 fingerprint=SHA256:...).
//
// With explicit paths (host_keys), each file must exist. Otherwise the
// default files in dataDir are used, and any that is missing is generated:
// Ed25519, RSA 3072, ECDSA P-256, and DSA 1024 only when hostKeyAlgorithms
// contains ssh-dss. New keys are written in OpenSSH's private key format,
// mode 0600, with the public key beside them (.pub, mode 0644).
//
// Like sshd, a private key file readable by group or others, or owned by a
// user other than the process's (or root), is refused.
func LoadOrCreateHostKeys(dataDir string, paths []string, hostKeyAlgorithms []string, log *slog.Logger) ([]keys.Signer, error) {
	signers, _, err := reloadHostKeys(dataDir, paths, hostKeyAlgorithms, log, nil, -1)
	return signers, err
}

// reloadHostKeys is LoadOrCreateHostKeys for a reload: a key file that
// can no longer be opened for lack of permission and was loaded before
// (previous, by path) keeps its loaded key, with a warning. That is every
// host_keys file outside the data directory once run_as has dropped root
// (sshd's own /etc/ssh keys, kept so that customers see no host key
// change): without it every SIGHUP failed with "permission denied" and no
// setting could change without a restart. It also returns the keys by
// path, for the next reload. runAsUID (-1 for none) may own key files
// besides ferry's own user and root (runAsOwner).
func reloadHostKeys(dataDir string, paths []string, hostKeyAlgorithms []string, log *slog.Logger,
	previous map[string]keys.Signer, runAsUID int) ([]keys.Signer, map[string]keys.Signer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var signers []keys.Signer
	byPath := make(map[string]keys.Signer)
	add := func(path string, s keys.Signer) {
		pub := s.PublicKey()
		log.Info("host key", "type", pub.Type(), "fingerprint", keys.FingerprintSHA256(pub), "path", path)
		signers = append(signers, s)
		byPath[path] = s
	}
	load := func(path string) (keys.Signer, error) {
		s, err := loadHostKey(path, runAsUID)
		if prev := previous[path]; err != nil && prev != nil && errors.Is(err, fs.ErrPermission) {
			log.Warn("host key unreadable (run_as dropped the privileges that read it at start); keeping the key loaded before, a restart reads the file again",
				"path", path, "error", err)
			return prev, nil
		}
		return s, err
	}
	if len(paths) > 0 {
		for _, p := range paths {
			s, err := load(p)
			if err != nil {
				return nil, nil, err
			}
			add(p, s)
		}
		return signers, byPath, nil
	}

	if dataDir == "" {
		return nil, nil, errors.New("host keys: no data directory")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("host keys: %w", err)
	}
	specs := slices.Clone(defaultHostKeys)
	if slices.Contains(hostKeyAlgorithms, keys.KeyDSA) {
		specs = append(specs, dsaHostKey)
	}
	for _, spec := range specs {
		path := filepath.Join(dataDir, spec.file)
		s, err := load(path)
		if errors.Is(err, fs.ErrNotExist) {
			s, err = createHostKey(path, spec, runAsUID)
			if err == nil {
				log.Info("generated host key", "type", spec.keyType, "path", path)
			}
		}
		if err != nil {
			return nil, nil, err
		}
		if err := ensurePublicKeyFile(path, s); err != nil {
			return nil, nil, err
		}
		add(path, s)
	}
	return signers, byPath, nil
}

// CheckHostKeys loads the host keys cfg names, as LoadOrCreateHostKeys
// would, without generating or writing anything (`ferry serve --check`):
// each configured host_keys file must load; of the default keys in the
// data directory, those present must load and the missing ones are
// returned (serve generates them). The error names every key that fails.
func CheckHostKeys(cfg *Config) (found []string, missing []string, err error) {
	var errs []error
	check := func(path string) {
		s, err := loadHostKey(path, runAsOwner(cfg))
		if err != nil {
			errs = append(errs, err)
			return
		}
		pub := s.PublicKey()
		found = append(found, path+": "+pub.Type()+" "+keys.FingerprintSHA256(pub))
	}
	if len(cfg.HostKeys) > 0 {
		for _, p := range cfg.HostKeys {
			check(p)
		}
		return found, nil, errors.Join(errs...)
	}
	specs := slices.Clone(defaultHostKeys)
	if slices.Contains(cfg.HostKeyAlgorithms, keys.KeyDSA) {
		specs = append(specs, dsaHostKey)
	}
	for _, spec := range specs {
		path := filepath.Join(cfg.DataDir, spec.file)
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, path)
			continue
		}
		check(path)
	}
	return found, missing, errors.Join(errs...)
}

// runAsOwner is the uid of cfg's run_as user when ferry runs as root and
// will drop to it, or -1. Run gives that user the data directory's keys
// (chownDataDir), so at the next start, still root, they belong to it:
// refusing them as foreign made every start after the first fail ("owned
// by uid 65534, not by uid 0 (ferry) or root").
func runAsOwner(cfg *Config) int {
	if cfg.RunAs == "" || os.Geteuid() != 0 {
		return -1
	}
	u, err := user.Lookup(cfg.RunAs)
	if err != nil {
		return -1 // dropPrivileges reports it
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return -1
	}
	return uid
}

// HostKeyFingerprints returns "type SHA256:..." for each signer, for a
// startup banner or a `ferry serve --check` listing.
func HostKeyFingerprints(signers []keys.Signer) []string {
	out := make([]string, 0, len(signers))
	for _, s := range signers {
		pub := s.PublicKey()
		out = append(out, pub.Type()+" "+keys.FingerprintSHA256(pub))
	}
	return out
}

// loadHostKey reads and parses a private key file after sshd's checks
// (sshkey_perm_ok). The checks use the opened file's metadata, so the file
// cannot be swapped between check and read.
func loadHostKey(path string, runAsUID int) (keys.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("host key %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, keys.MaxPrivateKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	// A .pub named by mistake is world-readable by design: say what it
	// is rather than ask for chmod 600 on a public key.
	if keys.IsPublicKeyText(data) {
		return nil, fmt.Errorf("host key %s: %w", path, keys.ErrPublicKeyFile)
	}
	if err := checkPrivateKeyFile(path, fi, runAsUID); err != nil {
		return nil, err
	}
	s, err := keys.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return s, nil
}

func checkPrivateKeyFile(path string, fi fs.FileInfo, runAsUID int) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid := uint32(os.Geteuid())
		if st.Uid != uid && st.Uid != 0 && (runAsUID < 0 || st.Uid != uint32(runAsUID)) {
			return fmt.Errorf("host key %s: owned by uid %d, not by uid %d (ferry) or root", path, st.Uid, uid)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		// sshd's wording, so that admins (and their search engines)
		// recognise it.
		return fmt.Errorf("host key %s: UNPROTECTED PRIVATE KEY FILE: permissions %#o are too open; "+
			"it must not be accessible by others (chmod 600 %s)", path, perm, path)
	}
	return nil
}

func createHostKey(path string, spec hostKeySpec, runAsUID int) (keys.Signer, error) {
	s, err := keys.GenerateKey(spec.keyType, spec.bits)
	if err != nil {
		return nil, fmt.Errorf("host key %s: generating %s: %w", path, spec.keyType, err)
	}
	pem, err := keys.MarshalPrivateKey(s, hostKeyComment())
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	created, err := writeFileAtomic(path, pem, 0o600, false)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if !created {
		// Another process created it first; use theirs so both serve the
		// same key.
		return loadHostKey(path, runAsUID)
	}
	return s, nil
}

// ensurePublicKeyFile writes <path>.pub when it is missing (first start, or
// a crash between writing the private and the public key).
func ensurePublicKeyFile(path string, s keys.Signer) error {
	pubPath := path + ".pub"
	if _, err := os.Lstat(pubPath); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	line := keys.MarshalAuthorizedKey(s.PublicKey())
	if n := len(line); n == 0 || line[n-1] != '\n' {
		line = append(line, '\n')
	}
	// The comment makes ssh-keygen -l print which machine the key is for.
	line = append(line[:len(line)-1], " "+hostKeyComment()+"\n"...)
	if _, err := writeFileAtomic(pubPath, line, 0o644, true); err != nil {
		return fmt.Errorf("host key %s: %w", pubPath, err)
	}
	return nil
}

func hostKeyComment() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return "ferry@" + h
}

// writeFileAtomic writes data to a temporary file in the same directory and
// moves it into place, so a crash never leaves a truncated key behind. With
// replace false, an existing file wins (created reports false): the
// temporary file is hard-linked into place, which fails rather than
// overwrites, falling back to rename where hard links are unsupported.
func writeFileAtomic(path string, data []byte, mode fs.FileMode, replace bool) (created bool, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return false, err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	// CreateTemp makes the file 0600; Chmod is not subject to umask.
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if replace {
		err = os.Rename(tmpName, path)
	} else if err = os.Link(tmpName, path); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, serr := os.Lstat(path); errors.Is(serr, fs.ErrNotExist) {
			err = os.Rename(tmpName, path)
		} else if serr == nil {
			err = fs.ErrExist
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable; not all filesystems support it
		d.Close()
	}
	return true, nil
}
