package daemon

import (
	"context"
	"os"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestQuotaOrderedAcrossConnections: a truncate through one connection
// and an in-place write through a handle another connection opened
// before it share the account's quota lock, so the write is charged for
// the bytes it puts back. With a lock per session the handle kept the
// size it saw at OPEN and the rewrite was free: the account could hold
// any amount of data against its quota.
func TestQuotaOrderedAcrossConnections(t *testing.T) {
	dir := t.TempDir()
	st := openSQLiteStore(t, dir)
	const quota = 1 << 20
	addAccount(t, st, "dave", "pw-dave", quota)
	addr := startDaemon(t, dir, "")
	a := sftpClient(t, addr, "dave", ssh.Password("pw-dave"))
	b := sftpClient(t, addr, "dave", ssh.Password("pw-dave"))

	const size = 600 << 10
	chunk := make([]byte, size)
	if err := upload(a, "f", chunk); err != nil {
		t.Fatal(err)
	}
	f, err := a.OpenFile("f", os.O_RDWR) // no TRUNC: the handle sees 600 KiB
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Twice would be 1.2 MiB if the rewrites were free: each round
	// truncates through b and writes the bytes back through a's handle.
	for round := range 2 {
		if err := b.Truncate("f", 0); err != nil {
			t.Fatalf("round %d truncate: %v", round, err)
		}
		if _, err := f.WriteAt(chunk, 0); err != nil {
			t.Fatalf("round %d rewrite: %v", round, err)
		}
	}
	if err := upload(b, "g", chunk); err == nil {
		t.Fatal("a second 600 KiB file fit in a 1 MiB quota: the rewrites were not charged")
	}
	acct, err := st.LookupAccount(context.Background(), "dave")
	if err != nil {
		t.Fatal(err)
	}
	if acct.UsedBytes < size || acct.UsedBytes > quota {
		t.Errorf("used bytes %d, want the 600 KiB file counted (%d) within the quota", acct.UsedBytes, size)
	}
}
