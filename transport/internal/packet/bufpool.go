package packet

import "sync"

// readBufSizes are the size classes of pooled read buffers: powers of two
// from readBufferInitial, then readBufferMax for maximal packets.
var readBufSizes = [...]int{
	readBufferInitial, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, readBufferMax,
}

// readPools hold read buffers by size class, shared by every Reader in the
// process: a drained Reader gives its buffer back, so memory follows the
// connections that are moving data, not the ones that are open. This is a
// cache, not state: which buffer a Reader gets never changes what it reads.
var readPools [len(readBufSizes)]sync.Pool

// getReadBuf returns a buffer of the smallest class holding at least n
// bytes, or of the largest class if none does. Buffers travel as *[]byte
// so that giving one back allocates nothing.
func getReadBuf(n int) *[]byte {
	i := 0
	for i < len(readBufSizes)-1 && readBufSizes[i] < n {
		i++
	}
	if p, ok := readPools[i].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, readBufSizes[i])
	return &b
}

// putReadBuf returns a buffer from getReadBuf to its class's pool.
func putReadBuf(p *[]byte) {
	for i, size := range readBufSizes {
		if len(*p) == size {
			readPools[i].Put(p)
			return
		}
	}
}

// writePools hold output buffers: [0] of writeBufSmall bytes, [1] of
// writeBufLarge.
var writePools [2]sync.Pool

// getWriteBuf returns an empty buffer with room for n bytes: small if n
// fits, else large (or, past even that, a one-off of n bytes).
func getWriteBuf(n int) *[]byte {
	i, size := 0, writeBufSmall
	if n > writeBufSmall {
		i, size = 1, writeBufLarge
	}
	if n > size {
		b := make([]byte, 0, n)
		return &b
	}
	if p, ok := writePools[i].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, size)
	return &b
}

// putWriteBuf returns a buffer from getWriteBuf to its pool.
func putWriteBuf(p *[]byte) {
	*p = (*p)[:0]
	switch cap(*p) {
	case writeBufSmall:
		writePools[0].Put(p)
	case writeBufLarge:
		writePools[1].Put(p)
	}
}
