package connection

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// TestDirectReadKeepsOrder drives handleData's hand-off into a waiting
// reader's slice: packets that arrive while the reader waits go straight
// into its slice until it is full, the rest into the buffer, and reads
// return everything in order whichever way each byte went.
func TestDirectReadKeepsOrder(t *testing.T) {
	r := newRawPeer(t, &Config{})
	c, _ := r.openAccepted(1<<20, 32*1024)
	var want []byte
	got := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 5000) // smaller than one packet, bigger than most
		for len(all) < 40000 {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- all
	}()
	for i := range 10 {
		// Give the reader time to block on the empty buffer for some
		// packets (direct path) but not others (buffered path).
		if i%3 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		p := bytes.Repeat([]byte{byte('a' + i)}, 4000)
		want = append(want, p...)
		r.send(dataMsg(c.localID, p))
	}
	select {
	case all := <-got:
		if !bytes.Equal(all, want) {
			t.Fatalf("read %d bytes out of order or corrupted (want %d)", len(all), len(want))
		}
	case <-time.After(testTimeout):
		t.Fatal("reader did not get all data")
	}
}

// TestDirectReadThenEOF checks data handed straight to a waiting reader is
// returned before an EOF that arrives right behind it.
func TestDirectReadThenEOF(t *testing.T) {
	r := newRawPeer(t, &Config{})
	c, _ := r.openAccepted(1<<20, 32*1024)
	res := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		res <- b
	}()
	time.Sleep(20 * time.Millisecond) // the reader waits on the empty buffer
	r.send(dataMsg(c.localID, []byte("hello")))
	r.send((&channelEOFMsg{RecipientChannel: c.localID}).appendTo(nil))
	select {
	case b := <-res:
		if string(b) != "hello" {
			t.Fatalf("read %q, want %q", b, "hello")
		}
	case <-time.After(testTimeout):
		t.Fatal("reader did not return")
	}
}
