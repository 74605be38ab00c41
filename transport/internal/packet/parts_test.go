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
			// Several body slices, with and without compression: what
			// arrives is their concatenation, and nothing is allocated
			// for joining them.
			vec := [][]byte{[]byte("a"), nil, bytes.Repeat([]byte("bc"), 3000), []byte("d")}
			want := append([]byte{94}, bytes.Join(vec, nil)...)
			if err := w.WritePacketVec([]byte{94}, vec); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if p, err := r.ReadPacket(); err != nil || !bytes.Equal(p, want) {
				t.Fatalf("WritePacketVec: read %d bytes (%v), want %d", len(p), err, len(want))
			}
			hdr94 := []byte{94}
			// Up to three tries: a collection during a run empties the
			// buffer pools, and the next Get allocates (once seen in CI,
			// with the machine loaded). An allocation of the path itself
			// shows in every try.
			var allocs float64
			for try := 0; try < 3; try++ {
				allocs = testing.AllocsPerRun(20, func() {
					w.WritePacketVec(hdr94, vec)
					w.Flush()
					r.ReadPacket()
				})
				if allocs == 0 {
					break
				}
			}
			if allocs != 0 {
				t.Errorf("WritePacketVec with %s: %.1f allocations per packet", comp, allocs)
			}
			if err := w.WritePacketParts(nil, nil); err != errEmptyPayload {
				t.Fatalf("empty parts: %v, want errEmptyPayload", err)
			}
		})
	}
}
