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
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	// Typed ahead: the terminal's line discipline hands one line to each
	// prompt.
	if _, err := ptmx.Write([]byte("n3w-password\nn3w-password\n")); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetIn(tty)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"--data-dir", dir, "--database", "", "user", "passwd", "alice"})
	if err := root.Execute(); err != nil {
		t.Fatalf("passwd: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "New password:") || !strings.Contains(errb.String(), "Retype new password:") {
		t.Errorf("prompts = %q", errb.String())
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
	root.SetArgs([]string{"--data-dir", dir, "--database", "", "user", "passwd", "alcie"})
	err = root.Execute()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("passwd of an unknown account: %v", err)
	}
	if strings.Contains(errb.String(), "password:") {
		t.Errorf("asked for the password of an unknown account: %q", errb.String())
	}
}
