package signing

import (
	"crypto/sha256"
	"hash"
)

// Sizes of the pieces a hasher hands to its goroutine, and how many may be
// in flight: enough to keep both sides busy, small enough for the cache.
const (
	hashChunk   = 64 << 10
	hashBuffers = 4
)

// A hasher computes the SHA-256 of what is written to it. Given a large
// input it hashes on its own goroutine, so that producing the bytes (say,
// decoding base64) and hashing them take two cores. Sum must be called, to
// stop the goroutine.
type hasher struct {
	d    hash.Hash
	n    int64
	buf  []byte      // being filled; nil when hashing inline
	full chan []byte // to the goroutine
	free chan []byte // back from it
	sum  chan []byte
}

// newHasher returns a hasher for about size bytes.
func newHasher(size int) *hasher {
	h := &hasher{d: sha256.New()}
	if size < hashBuffers*hashChunk {
		return h // a goroutine would cost more than it saves
	}
	h.full = make(chan []byte, hashBuffers)
	h.free = make(chan []byte, hashBuffers)
	h.sum = make(chan []byte, 1)
	for range hashBuffers - 1 {
		h.free <- make([]byte, 0, hashChunk)
	}
	h.buf = make([]byte, 0, hashChunk)
	go func() {
		for b := range h.full {
			h.d.Write(b)
			h.free <- b[:0]
		}
		h.sum <- h.d.Sum(nil)
	}()
	return h
}

// Write copies p, because the goroutine hashes it later.
func (h *hasher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	if h.full == nil {
		return h.d.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		k := copy(h.buf[len(h.buf):cap(h.buf)], p)
		h.buf, p = h.buf[:len(h.buf)+k], p[k:]
		if len(h.buf) == cap(h.buf) {
			h.full <- h.buf
			h.buf = <-h.free
		}
	}
	return n, nil
}

// take hands b to the goroutine without a copy, after anything written
// before it.
func (h *hasher) take(b []byte) []byte {
	if h.full == nil {
		h.Write(b)
		return b[:0]
	}
	h.n += int64(len(b))
	if len(h.buf) > 0 {
		h.full <- h.buf
		h.buf = <-h.free
	}
	h.full <- b
	return <-h.free
}

// Sum returns the digest and the number of bytes written.
func (h *hasher) Sum() ([]byte, int64) {
	if h.full == nil {
		return h.d.Sum(nil), h.n
	}
	h.full <- h.buf
	close(h.full)
	return <-h.sum, h.n
}
