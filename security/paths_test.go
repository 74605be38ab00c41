package security

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

const secret = "outside-the-home secret"

// snapshot records every name, mode and content under dir.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d", p, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", c)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// escapeFixture plants, in alice's home, symlinks that lead out of it: an
// absolute one, relative ones, a loop, and one to /etc.
func escapeFixture(t *testing.T) (s *ferryServer, outside string) {
	s = newServer(t, probeConfig, testUser{name: "alice", password: alicePassword, extraFlags: []string{"--symlinks"}})
	s.assertServing("alice", alicePassword) // creates the home
	home := s.home("alice")
	outside = filepath.Join(s.dataDir, "outside")
	must(t, os.MkdirAll(filepath.Join(outside, "dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o644))
	must(t, os.MkdirAll(filepath.Join(home, "sub"), 0o755))
	for link, target := range map[string]string{
		"abs":       outside,
		"rel":       "../../outside",
		"sub/up":    "../../../outside",
		"sub/root":  "../..",
		"etc":       "/etc",
		"loop1":     "loop2",
		"loop2":     "loop1",
		"secretlnk": filepath.Join(outside, "secret"),
		"dangling":  filepath.Join(outside, "new-file"),
	} {
		must(t, os.Symlink(target, filepath.Join(home, link)))
	}
	return s, outside
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPathEscapes tries every SFTP operation on paths that would leave the
// user's home through "..", absolute and relative symlinks planted on
// disk, symlink loops and trailing slashes. vfs confines with os.Root;
// this checks the whole stack does. Any read returning the secret, or any
// change outside the home, fails.
func TestPathEscapes(t *testing.T) {
	s, outside := escapeFixture(t)
	before := snapshot(t, outside)
	etcBefore, _ := os.ReadFile("/etc/passwd")
	sc, closeFn := s.sftpClient("alice", alicePassword)
	defer closeFn()

	paths := []string{
		"../outside/secret", "/../../outside/secret", "../../outside/secret", "/..", "..",
		"abs/secret", "abs/", "abs/.", "abs/dir/", "rel/secret", "rel/", "sub/up/secret", "sub/root/outside/secret",
		"etc/passwd", "etc/", "/etc/passwd", "loop1", "loop1/x", "loop2/", "secretlnk", "dangling",
		"abs/../abs/secret", "sub/../rel/secret", "./rel/./secret", "rel//secret",
	}
	leaks := func(op, p string, b []byte) {
		if bytes.Contains(b, []byte(secret)) || (len(etcBefore) > 0 && bytes.Contains(b, etcBefore[:min(len(etcBefore), 32)])) {
			t.Errorf("%s %q read outside the home: %q", op, p, b)
		}
	}
	for _, p := range paths {
		if f, err := sc.Open(p); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			leaks("open", p, b)
		}
		if entries, err := sc.ReadDir(p); err == nil {
			for _, e := range entries {
				if e.Name() == "secret" || e.Name() == "passwd" {
					t.Errorf("readdir %q lists %s outside the home", p, e.Name())
				}
			}
		}
		if fi, err := sc.Stat(p); err == nil && fi.Size() == int64(len(secret)) && !strings.Contains(p, "loop") {
			t.Logf("stat %q: size %d (a file of the secret's size; checking content)", p, fi.Size())
		}
		sc.Lstat(p)
		if rp, err := sc.RealPath(p); err == nil && strings.Contains(rp, outside) {
			t.Errorf("realpath %q = %q names the server's filesystem", p, rp)
		}
		// Writes: every one must land inside the home or fail.
		if f, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC); err == nil {
			f.Write([]byte("pwned"))
			f.Close()
		}
		for _, q := range []string{p + "/new", p + "-x"} {
			if f, err := sc.Create(q); err == nil {
				f.Write([]byte("pwned"))
				f.Close()
			}
		}
		sc.Mkdir(p + "/newdir")
		sc.Chmod(p, 0o777)
		sc.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0))
		sc.Truncate(p, 0)
		sc.Symlink("/etc/passwd", p+"/lnk")
		sc.Link("secretlnk", p+"/hard")
		if f, err := sc.Create("scratch"); err == nil {
			f.Close()
			sc.Rename("scratch", p+"/moved")
			sc.Remove("scratch")
		}
		sc.Remove(p + "/secret")
		sc.RemoveDirectory(p + "/dir")
	}
	// Destructive operations last, so the links survive the passes above.
	for _, p := range paths {
		sc.PosixRename(p, "stolen")
		sc.Remove(p)
		sc.RemoveDirectory(p)
		if f, err := sc.Open("stolen"); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			leaks("rename-then-open", p, b)
			sc.Remove("stolen")
		}
	}
	// Links the client creates pointing out must not be followed either.
	for _, target := range []string{"/etc/passwd", "../../outside/secret", filepath.Join(outside, "secret")} {
		sc.Remove("mylink")
		if err := sc.Symlink(target, "mylink"); err != nil {
			continue
		}
		if f, err := sc.Open("mylink"); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			leaks("open-own-symlink", target, b)
		}
		if f, err := sc.OpenFile("mylink", os.O_WRONLY|os.O_TRUNC); err == nil {
			f.Write([]byte("pwned"))
			f.Close()
		}
	}
	if after := snapshot(t, outside); after != before {
		t.Fatalf("the directory outside the home changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if etcAfter, _ := os.ReadFile("/etc/passwd"); !bytes.Equal(etcAfter, etcBefore) {
		t.Fatal("/etc/passwd changed")
	}
}

// TestSymlinkSwapRace replaces a directory with a symlink to the outside,
// over and over, while the client opens, creates and lists under it: a
// check-then-use path resolver (CVE-2021-20090-style TOCTOU) would let
// some of these through. os.Root resolves each component once, without
// following links out.
func TestSymlinkSwapRace(t *testing.T) {
	s, outside := escapeFixture(t)
	home := s.home("alice")
	must(t, os.WriteFile(filepath.Join(outside, "dir", "f"), []byte(secret), 0o644))
	real := filepath.Join(home, "race")
	must(t, os.MkdirAll(real, 0o755))
	must(t, os.WriteFile(filepath.Join(real, "f"), []byte("inside"), 0o644))
	before := snapshot(t, outside)

	// Two ready-made entries swapped in with rename(2), which is atomic.
	dirSpare := filepath.Join(home, "..", "alice-race-dir")
	must(t, os.MkdirAll(dirSpare, 0o755))
	must(t, os.WriteFile(filepath.Join(dirSpare, "f"), []byte("inside"), 0o644))
	linkSpare := filepath.Join(home, "..", "alice-race-link")
	must(t, os.Symlink(filepath.Join(outside, "dir"), linkSpare))

	var stop atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := filepath.Join(home, "..", "alice-race-tmp")
		for i := 0; i < 200000 && !stop.Load(); i++ {
			// race (dir) -> tmp; link -> race; race(link) -> linkSpare; tmp -> race
			if os.Rename(real, tmp) != nil {
				continue
			}
			if os.Rename(linkSpare, real) == nil {
				swaps.Add(1)
				os.Rename(real, linkSpare)
			}
			os.Rename(tmp, real)
		}
	}()

	sc, closeFn := s.sftpClient("alice", alicePassword)
	defer closeFn()
	var opens, leaks int
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		if f, err := sc.Open("race/f"); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			opens++
			if bytes.Contains(b, []byte(secret)) {
				leaks++
			}
		}
		if f, err := sc.Create(fmt.Sprintf("race/new%d", i%10)); err == nil {
			f.Write([]byte("pwned"))
			f.Close()
		}
		if entries, err := sc.ReadDir("race"); err == nil {
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "f") && e.Size() == int64(len(secret)) {
					leaks++
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d swaps, %d successful opens", swaps.Load(), opens)
	if swaps.Load() == 0 {
		t.Fatal("the race never swapped the directory")
	}
	if leaks > 0 {
		t.Fatalf("%d reads saw the outside directory", leaks)
	}
	if after := snapshot(t, outside); after != before {
		t.Fatalf("the directory outside the home changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestSCPEscapes: if `scp -f`/`scp -t` is served over exec, it must be
// confined like SFTP; for an account without shell access the exec must
// fail outright.
func TestSCPEscapes(t *testing.T) {
	s, outside := escapeFixture(t)
	before := snapshot(t, outside)
	passwd, _ := os.ReadFile("/etc/passwd")
	c, err := s.sshClient("alice", ssh.Password(alicePassword))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(cmd string, stdin []byte) ([]byte, error) {
		sess, err := c.NewSession()
		if err != nil {
			return nil, err
		}
		defer sess.Close()
		sess.Stdin = bytes.NewReader(stdin)
		var out bytes.Buffer
		sess.Stdout = &out
		done := make(chan error, 1)
		go func() { done <- sess.Run(cmd) }()
		select {
		case err = <-done:
		case <-time.After(probeTimeout):
			err = errors.New("timeout")
		}
		return out.Bytes(), err
	}
	// Control: is scp served (reading files inside the home)? If not,
	// the probes below still check that nothing leaks.
	must(t, os.WriteFile(filepath.Join(s.home("alice"), "inside.txt"), []byte("hello-inside"), 0o644))
	if out, err := run("scp -f inside.txt", []byte{0, 0, 0, 0}); err != nil || !bytes.Contains(out, []byte("C0644 12 inside.txt\nhello-inside")) {
		t.Logf("scp exec is not served: %v, %q", err, out)
	} else {
		t.Log("scp exec is served; probing its confinement")
	}
	for _, src := range []string{"/etc/passwd", "../../outside/secret", "abs/secret", "rel/secret", "etc/passwd", "secretlnk"} {
		out, err := run("scp -f "+src, []byte{0, 0, 0, 0})
		t.Logf("scp -f %s: %v, %q", src, err, out[:min(len(out), 80)])
		if bytes.Contains(out, []byte(secret)) || (len(passwd) > 16 && bytes.Contains(out, passwd[:16])) {
			t.Errorf("scp -f %s sent a file from outside the home", src)
		}
		if src == "/etc/passwd" && err == nil && bytes.HasPrefix(out, []byte("C")) {
			t.Errorf("scp -f /etc/passwd succeeded")
		}
	}
	for _, dst := range []string{"../../outside", "abs", "rel", "dangling", "/../outside"} {
		out, err := run("scp -t "+dst, []byte("C0644 6 pwned\npwned!\x00"))
		t.Logf("scp -t %s: %v, %q", dst, err, out)
	}
	if after := snapshot(t, outside); after != before {
		t.Fatalf("scp changed the directory outside the home:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Where the accepted uploads went (inside the home, if anywhere).
	home := s.home("alice")
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); string(b) == "pwned!" {
				t.Logf("scp -t wrote %s", strings.TrimPrefix(p, home))
			}
		}
		return nil
	})
}
