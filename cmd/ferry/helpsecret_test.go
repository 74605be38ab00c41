package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpHidesDatabasePassword: FERRY_DATABASE became the --database
// flag's default, which every --help printed, password included; the
// commands still use it.
func TestHelpHidesDatabasePassword(t *testing.T) {
	t.Setenv("FERRY_DATABASE", "postgres://ferry:s3cret-pw@127.0.0.1:1/ferry")
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"user", "list", "--help"}} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !strings.Contains(out.String(), "--database") {
			t.Fatalf("%q printed no --database flag:\n%s", args, out.String())
		}
		if strings.Contains(out.String(), "s3cret-pw") {
			t.Errorf("%q printed the database password:\n%s", args, out.String())
		}
	}
	root := newRootCmd()
	if err := root.PersistentFlags().Parse(nil); err != nil {
		t.Fatal(err)
	}
	if v := root.PersistentFlags().Lookup("database").Value.String(); v != "postgres://ferry:s3cret-pw@127.0.0.1:1/ferry" {
		t.Errorf("--database without the flag is %q, want FERRY_DATABASE's value", v)
	}
}
