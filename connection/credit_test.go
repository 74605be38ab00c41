package connection

import (
	"testing"
	"time"
)

// waitCredit polls m.ReceiveCredit until it is want: the read loop
// handles the raw peer's packets asynchronously.
func waitCredit(t *testing.T, m *Mux, want uint64) {
	t.Helper()
	var got uint64
	for end := time.Now().Add(testTimeout); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if got = m.ReceiveCredit(); got == want {
			return
		}
	}
	t.Fatalf("ReceiveCredit = %d, want %d", got, want)
}

// TestReceiveCredit: the mux reports the channel data the peer may still
// send (the transport bounds what it holds during a key re-exchange by
// it): each open channel's window, less what arrived, plus what readers
// consumed and was granted back.
func TestReceiveCredit(t *testing.T) {
	const window = 1000
	r := newRawPeer(t, &Config{InitialWindow: window, MaxWindow: window})
	if got := r.mux.ReceiveCredit(); got != 0 {
		t.Fatalf("ReceiveCredit with no channel = %d, want 0", got)
	}
	c, conf := r.openAccepted(1<<20, 32768)
	waitCredit(t, r.mux, window)
	r.send(dataMsg(conf.SenderChannel, make([]byte, 300)))
	waitCredit(t, r.mux, window-300)
	// 300 bytes consumed is past window/adjustFraction: granted back.
	if b := readAllBounded(t, c, 299); len(b) != 300 {
		t.Fatalf("read %d bytes, want 300", len(b))
	}
	waitCredit(t, r.mux, window)
}
