package keys

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

// readPub returns the key of a checked-in .pub file.
func readPub(t testing.TB, name string) PublicKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		t.Fatalf("%s: bad .pub", name)
	}
	blob, err := base64.StdEncoding.DecodeString(string(f[1]))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePublicKey(blob)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// pubB64 returns the base64 field of a checked-in .pub file.
func pubB64(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.Fields(data)[1])
}
