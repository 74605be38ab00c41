package packet

import (
	"bytes"
	"testing"
)

// TestWritePacketParts checks a packet written as header and body reads
// back as their concatenation, with and without compression, and that the
// empty-payload rule still holds.
func TestWritePacketParts(t *testing.T) {
	for _, comp := range []string{"none", "zlib@openssh.com"} {
		t.Run(comp, func(t *testing.T) {
			var wire bytes.Buffer
			w, r := NewWriter(&wire), NewReader(&wire)
			if err := w.SetCompression(comp); err != nil {
				t.Fatal(err)
			}
			if err := r.SetCompression(comp); err != nil {
				t.Fatal(err)
			}
			hdr := []byte{94, 0, 0, 0, 7, 0, 0, 0, 5}
			body := bytes.Repeat([]byte("ferry"), 1)
			cases := [][2][]byte{{hdr, body}, {hdr, nil}, {hdr[:1], bytes.Repeat([]byte{1, 2, 3}, 20000)}}
			for _, c := range cases {
				if err := w.WritePacketParts(c[0], c[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			for i, c := range cases {
				p, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if want := append(append([]byte(nil), c[0]...), c[1]...); !bytes.Equal(p, want) {
					t.Fatalf("packet %d: read %d bytes, want %d (% x…)", i, len(p), len(want), want[:min(len(want), 16)])
				}
			}
			if err := w.WritePacketParts(nil, nil); err != errEmptyPayload {
				t.Fatalf("empty parts: %v, want errEmptyPayload", err)
			}
		})
	}
}
