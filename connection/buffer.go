package connection

import "sync"

// chunkSize is the unit of a channel's receive buffer. 16 KiB is half of
// OpenSSH's session max packet (CHAN_SES_PACKET_DEFAULT, 32 KiB), so small
// interactive channels pin one small chunk while bulk transfers use many;
// a drained buffer returns every chunk to the pool.
const chunkSize = 16 * 1024

type chunk [chunkSize]byte

// Buffer pools shared by every Mux in the process. A pool per Mux gave a
// short connection (a login, one small transfer) a fresh 16 KiB chunk
// each time. They are caches, not state: which buffer a channel gets
// never changes what it carries.
var (
	chunkPool     = sync.Pool{New: func() any { return new(chunk) }}                                                  // receive buffers
	smallSendPool = sync.Pool{New: func() any { b := make([]byte, 0, smallSendBuf); return &b }}                      // *[]byte
	largeSendPool = sync.Pool{New: func() any { b := make([]byte, 0, maxSendData+extendedDataHeaderLen); return &b }} // *[]byte
)

// chunkBuffer is a FIFO of bytes stored in pooled fixed-size chunks. It
// holds no chunk while empty. Callers bound its size (by the channel
// window); chunkBuffer itself does not.
type chunkBuffer struct {
	pool   *sync.Pool // of *chunk
	chunks []*chunk   // chunks[head:] hold data
	head   int
	rOff   int // read offset in chunks[head]
	wOff   int // write offset in the last chunk
	size   int
}

func (b *chunkBuffer) Len() int { return b.size }

func (b *chunkBuffer) write(p []byte) {
	for len(p) > 0 {
		if len(b.chunks) == b.head || b.wOff == chunkSize {
			if b.head > 0 && b.head >= len(b.chunks)/2 {
				// Compact so a channel that never drains fully still reuses
				// the slice instead of growing it.
				n := copy(b.chunks, b.chunks[b.head:])
				clear(b.chunks[n:])
				b.chunks = b.chunks[:n]
				b.head = 0
			}
			b.chunks = append(b.chunks, b.pool.Get().(*chunk))
			b.wOff = 0
		}
		last := b.chunks[len(b.chunks)-1]
		n := copy(last[b.wOff:], p)
		b.wOff += n
		b.size += n
		p = p[n:]
	}
}

func (b *chunkBuffer) read(p []byte) int {
	total := 0
	for len(p) > 0 && b.size > 0 {
		c := b.chunks[b.head]
		end := chunkSize
		if b.head == len(b.chunks)-1 {
			end = b.wOff
		}
		n := copy(p, c[b.rOff:end])
		b.rOff += n
		b.size -= n
		total += n
		p = p[n:]
		if b.rOff == end {
			b.pool.Put(c)
			b.chunks[b.head] = nil
			b.head++
			b.rOff = 0
			if b.head == len(b.chunks) {
				b.chunks = b.chunks[:0]
				b.head = 0
				b.wOff = 0
			}
		}
	}
	return total
}

// release returns every chunk to the pool, dropping buffered data.
func (b *chunkBuffer) release() {
	for i := b.head; i < len(b.chunks); i++ {
		b.pool.Put(b.chunks[i])
	}
	b.chunks = nil
	b.head, b.rOff, b.wOff, b.size = 0, 0, 0, 0
}
