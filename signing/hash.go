package signing

import (
	"crypto/sha256"
	"hash"
	"slices"
)

// Sizes of the pieces a hasher hands to its goroutine, and how many may be
// in flight: enough to keep both sides busy, small enough for the cache.
const (
	hashChunk   = 64 << 10
	hashBuffers = 4
)

// sharePiece is the least a writer shares with a hasher at a time: bytes
// shared are not copied, and each hand-over wakes the goroutine, which
// costs more than hashing a few kilobytes.
const sharePiece = 512 << 10

// A hasher computes the SHA-256 of what is written to it. Given a large
// input it hashes on its own goroutine, so that producing the bytes (say,
// decoding base64) and hashing them take two cores. It keeps the state
// reached at the end of every piece, so that the digest of any prefix can
// be finished from there (prefix). Sum or state must be called, to stop
// the goroutine.
type hasher struct {
	d     hash.Hash
	n     int64
	buf   []byte     // being filled; nil when hashing inline
	full  chan piece // to the goroutine
	free  chan []byte
	done  chan struct{}
	marks []mark // written by the goroutine, read once it is done
}

// A piece is bytes to hash: a buffer of the hasher's own, which goes back
// to the free list, or bytes shared by the writer, which stay as they are.
type piece struct {
	b   []byte
	own bool
}

// A mark is the digest's state after the first n bytes.
type mark struct {
	n int
	h hash.Hash
}

// newHasher returns a hasher for about size bytes.
func newHasher(size int) *hasher {
	h := &hasher{d: sha256.New()}
	if size < hashBuffers*hashChunk {
		return h // a goroutine would cost more than it saves
	}
	h.full = make(chan piece, hashBuffers)
	h.free = make(chan []byte, hashBuffers)
	h.done = make(chan struct{})
	for range hashBuffers - 1 {
		h.free <- make([]byte, 0, hashChunk)
	}
	h.buf = make([]byte, 0, hashChunk)
	go func() {
		defer close(h.done)
		n := 0
		for p := range h.full {
			h.d.Write(p.b)
			n += len(p.b)
			// SHA-256 states can always be cloned; the error is for other hashes.
			if c, err := h.d.(hash.Cloner).Clone(); err == nil {
				h.marks = append(h.marks, mark{n, c})
			}
			if p.own {
				h.free <- p.b[:0]
			}
		}
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
			h.full <- piece{h.buf, true}
			h.buf = <-h.free
		}
	}
	return n, nil
}

// take hands b, a buffer the hasher returned, to the goroutine without a
// copy, after anything written before it, and returns an empty buffer to
// fill next; take(nil) returns the first one.
func (h *hasher) take(b []byte) []byte {
	if h.full == nil {
		if b == nil {
			return make([]byte, 0, hashChunk)
		}
		h.Write(b)
		return b[:0]
	}
	h.flush()
	if len(b) > 0 {
		h.n += int64(len(b))
		h.full <- piece{b, true}
	} else if b != nil {
		return b
	}
	return <-h.free
}

// share hands b to the goroutine without a copy, after anything written
// before it. The caller must not change b afterwards.
func (h *hasher) share(b []byte) {
	if h.full == nil || len(b) == 0 {
		h.Write(b)
		return
	}
	h.flush()
	h.n += int64(len(b))
	h.full <- piece{b, false}
}

// flush sends what Write buffered.
func (h *hasher) flush() {
	if len(h.buf) > 0 {
		h.full <- piece{h.buf, true}
		h.buf = <-h.free
	}
}

// state stops the goroutine and returns the digest's state after all that
// was written, to be summed or written on.
func (h *hasher) state() hash.Hash {
	if h.full != nil {
		h.flush()
		close(h.full)
		<-h.done
		h.full = nil
	}
	return h.d
}

// Sum returns the digest and the number of bytes written.
func (h *hasher) Sum() ([]byte, int64) {
	return h.state().Sum(nil), h.n
}

// prefix returns, after state, the digest's state at the last mark at or
// before n bytes, and that mark's offset; a fresh digest at 0 if none. The
// digest of the first n bytes is that state written on with the bytes
// from the offset to n.
func (h *hasher) prefix(n int) (hash.Hash, int) {
	i, found := slices.BinarySearchFunc(h.marks, n, func(m mark, n int) int { return m.n - n })
	if !found {
		i--
	}
	if i >= 0 {
		if c, err := h.marks[i].h.(hash.Cloner).Clone(); err == nil {
			return c, h.marks[i].n
		}
	}
	return sha256.New(), 0
}
