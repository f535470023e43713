package signing

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

func TestHasher(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1000, hashBuffers * hashChunk, 3 << 20} {
		data := testPDF(size)
		h := newHasher(size)
		buf := make([]byte, 0, decodeChunk)
		for p := data; len(p) > 0; {
			k := min(len(p), r.IntN(2*decodeChunk))
			if r.IntN(2) == 0 {
				h.Write(p[:k])
			} else {
				k = min(k, cap(buf))
				buf = h.take(append(buf, p[:k]...))
			}
			p = p[k:]
		}
		sum, n := h.Sum()
		if want := sha256.Sum256(data); !bytes.Equal(sum, want[:]) || n != int64(size) {
			t.Errorf("%d bytes: hashed %d bytes to %x, want %x", size, n, sum, want)
		}
	}
}
