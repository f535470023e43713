package mailstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"

	"sealmail/mailstore/blob"
)

// Sum names a message's content: the SHA-256 of its bytes.
type Sum = [sha256.Size]byte

// Ref names one stored copy of a content: its sum and the locator its blob
// store gave it (kept in blobs.loc).
type Ref = blob.Ref

// BlobStore keeps message content, addressed by its SHA-256 and, for stores
// that need one, a locator that Put returns. Content is immutable: it is
// written once, read any number of times (in ranges) and deleted when no
// message refers to it any more. The metadata (which message holds which
// content, how many references it has, where it was put) is the Store's: a
// BlobStore knows nothing but sums, locators and bytes, so it can be a local
// directory (mailstore/blob/disk) or an object store.
//
// The Store's order of work makes content safe without the BlobStore having
// to know about messages: Put, then Sync, then the metadata commit that
// refers to the content; and Delete only inside the write transaction that
// has just seen that nothing refers to it (see reclaim.go).
type BlobStore interface {
	// Put stores size bytes from r under sum and returns the locator to
	// name it by. A store whose locator is empty replaces nothing if sum is
	// already stored; one that returns locators may store a second copy
	// under a second locator. The caller computed sum; Put need not check
	// it. The content need not be durable before Sync.
	Put(ctx context.Context, sum Sum, r io.Reader, size int64) (loc string, err error)
	// Sync makes the content of earlier Puts durable. One call covers many
	// so that a group commit shares the cost (a backend whose Put is durable
	// does nothing). Content deleted since its Put is skipped.
	Sync(ctx context.Context, refs []Ref) error
	// Open reads the content from offset off: n bytes, or to the end if n < 0.
	// It also returns the content's total size. Missing content is an error
	// satisfying errors.Is(err, fs.ErrNotExist); content found damaged
	// before reading it, one satisfying errors.Is(err, ErrContentCorrupt).
	Open(ctx context.Context, ref Ref, off, n int64) (io.ReadCloser, int64, error)
	// Stat returns the stored size of the content, or an fs.ErrNotExist error.
	Stat(ctx context.Context, ref Ref) (int64, error)
	// Delete removes the content. Deleting missing content is not an error.
	Delete(ctx context.Context, ref Ref) error
	// List calls fn for every stored content, in no particular order.
	List(ctx context.Context, fn func(ref Ref, size int64) error) error
}

// Errors of content that the metadata refers to but the blob store cannot
// give back as it was stored. They name the content's sum; test them with
// errors.Is.
var (
	ErrContentMissing = errors.New("message content missing from the blob store")
	ErrContentCorrupt = blob.ErrCorrupt
)

// SumHex spells a sum as the blob stores and the admin see it.
func SumHex(sum Sum) string { return hex.EncodeToString(sum[:]) }

// ParseSum reads a sum spelled by SumHex.
func ParseSum(s string) (Sum, bool) {
	var sum Sum
	if len(s) != 2*len(sum) {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return sum, err == nil
}

func contentErr(sum Sum, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s", ErrContentMissing, SumHex(sum))
	case errors.Is(err, ErrContentCorrupt):
		return fmt.Errorf("%w (%s)", err, SumHex(sum))
	}
	return fmt.Errorf("mailstore: content %s: %w", SumHex(sum), err)
}

// loadContent reads a whole content and checks it against its sum: a
// damaged file is reported, never served.
func (s *Store) loadContent(ctx context.Context, c ContentRef) ([]byte, error) {
	r, err := s.openContent(ctx, c)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := bytes.NewBuffer(make([]byte, 0, c.Size+bytes.MinRead))
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// OpenContent reads a whole content as a stream, checked against its sum:
// the read that reaches its end fails if the content is damaged, so what was
// read before must not be passed on as complete until then.
func (s *Store) OpenContent(ctx context.Context, c ContentRef) (io.ReadCloser, error) {
	return s.openContent(ctx, c)
}

// openContent opens a whole content for reading, checked against its sum as
// it is read: the read that reaches its end fails if the content is damaged,
// so what was read before is to be trusted only then.
func (s *Store) openContent(ctx context.Context, c ContentRef) (io.ReadCloser, error) {
	r, total, err := s.blobs.Open(ctx, c.ref(), 0, -1)
	if err != nil {
		return nil, contentErr(c.Sum, err)
	}
	if total != c.Size {
		r.Close()
		return nil, fmt.Errorf("%w: %s is %d bytes, should be %d", ErrContentCorrupt, SumHex(c.Sum), total, c.Size)
	}
	return &checked{r: r, h: sha256.New(), sum: c.Sum, left: c.Size}, nil
}

// contentAt opens a content for reading at offsets: the blob store's reader
// if it can (a file), else a range read per call.
func (s *Store) contentAt(ctx context.Context, c ContentRef) (interface {
	io.ReaderAt
	io.Closer
}, error) {
	r, _, err := s.blobs.Open(ctx, c.ref(), 0, -1)
	if err != nil {
		return nil, contentErr(c.Sum, err)
	}
	if ra, ok := r.(interface {
		io.ReaderAt
		io.Closer
	}); ok {
		return ra, nil
	}
	r.Close()
	return &rangeReader{ctx: ctx, blobs: s.blobs, ref: c.ref()}, nil
}

// rangeReader reads a content at offsets through BlobStore.Open.
type rangeReader struct {
	ctx   context.Context
	blobs BlobStore
	ref   Ref
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	rc, _, err := r.blobs.Open(r.ctx, r.ref, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (r *rangeReader) Close() error { return nil }

// checked hashes what is read through it and checks the sum at the end.
type checked struct {
	r    io.ReadCloser
	h    hash.Hash
	sum  Sum
	left int64
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.left -= int64(n)
	switch {
	case err == io.EOF && (c.left != 0 || !sumIs(c.h, c.sum)):
		return n, fmt.Errorf("%w: %s does not hash to its name", ErrContentCorrupt, SumHex(c.sum))
	case err != nil && err != io.EOF:
		return n, contentErr(c.sum, err)
	}
	return n, err
}

func (c *checked) Close() error { return c.r.Close() }

func sumIs(h hash.Hash, sum Sum) bool {
	var got Sum
	h.Sum(got[:0])
	return got == sum
}

// ReadContent reads n bytes of a message's content from offset off (n < 0:
// to the end), without reading the rest: a partial FETCH of a 50 MiB message
// costs what it returns. A range cannot be checked against the sum; the stored
// size is checked instead, and a short read is reported as damage.
func (s *Store) ReadContent(ctx context.Context, c ContentRef, off, n int64) ([]byte, error) {
	if off >= c.Size || n == 0 {
		return nil, nil
	}
	if n < 0 || off+n > c.Size {
		n = c.Size - off
	}
	r, total, err := s.blobs.Open(ctx, c.ref(), off, n)
	if err != nil {
		return nil, contentErr(c.Sum, err)
	}
	defer r.Close()
	if total != c.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes, should be %d", ErrContentCorrupt, SumHex(c.Sum), total, c.Size)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s ends early", ErrContentCorrupt, SumHex(c.Sum))
		}
		return nil, contentErr(c.Sum, err)
	}
	return buf, nil
}

// ContentRef names a message's content: enough to read it with ReadContent.
type ContentRef struct {
	Sum  Sum
	Loc  string // where the blob store put it (blobs.loc)
	Size int64
}

func (c ContentRef) ref() Ref { return Ref{Sum: c.Sum, Loc: c.Loc} }
