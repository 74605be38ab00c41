package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// TestPasswdPromptsOnTerminal: without --password-stdin, `user passwd`
// asks twice on the terminal and stores the new password.
func TestPasswdPromptsOnTerminal(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "old-password\n", "user", "add", "alice", "--password-stdin")
	errb, err := passwdOnTerminal(t, dir, "alice")
	if err != nil {
		t.Fatalf("passwd: %v\n%s", err, errb)
	}
	if !strings.Contains(errb, "New password:") || !strings.Contains(errb, "Retype new password:") {
		t.Errorf("prompts = %q", errb)
	}
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.LookupAccount(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := password.Verify(a.PasswordHash, "n3w-password"); !ok || err != nil {
		t.Fatalf("new password does not verify: %v", err)
	}
}

// TestPasswdUnknownAccountDoesNotPrompt: a mistyped account name is
// reported before the administrator types the new password twice.
func TestPasswdUnknownAccountDoesNotPrompt(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "user", "add", "alice")
	errb, err := passwdOnTerminal(t, dir, "alcie")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("passwd of an unknown account: %v", err)
	}
	if strings.Contains(errb, "password:") {
		t.Errorf("asked for the password of an unknown account: %q", errb)
	}
}

// passwdOnTerminal runs `user passwd name` on a pseudo-terminal with the
// new password typed twice ahead (the line discipline hands one line to
// each prompt) and returns what it wrote to stderr and its error.
func passwdOnTerminal(t *testing.T, dir, name string) (string, error) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if _, err := ptmx.Write([]byte("n3w-password\nn3w-password\n")); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetIn(tty)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"--data-dir", dir, "--database", "", "user", "passwd", name})
	err = root.Execute()
	return errb.String(), err
}
