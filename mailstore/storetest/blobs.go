package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"testing"

	"sealmail/mailstore"
)

// BlobOpener returns a new empty blob store; cleanup is the opener's job.
type BlobOpener func(t *testing.T) mailstore.BlobStore

// RunBlobs checks a blob store against the BlobStore contract.
func RunBlobs(t *testing.T, open BlobOpener) {
	ctx := context.Background()
	b := open(t)
	content := bytes.Repeat([]byte("Nội dung thư. "), 1000)
	sum := sha256.Sum256(content)
	size := int64(len(content))
	if _, err := b.Stat(ctx, mailstore.Ref{Sum: sum}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat before put: %v", err)
	}
	if _, _, err := b.Open(ctx, mailstore.Ref{Sum: sum}, 0, -1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open before put: %v", err)
	}
	put := func(sum mailstore.Sum, data []byte) mailstore.Ref {
		t.Helper()
		loc, err := b.Put(ctx, sum, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		return mailstore.Ref{Sum: sum, Loc: loc}
	}
	// A second Put of the same content is no error; it may be a second copy.
	ref, again := put(sum, content), put(sum, content)
	if err := b.Sync(ctx, []mailstore.Ref{ref, again, ref}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []mailstore.Ref{ref, again} {
		if n, err := b.Stat(ctx, r); err != nil || n != size {
			t.Errorf("stat %q: %d, %v", r.Loc, n, err)
		}
	}
	read := func(r mailstore.Ref, off, n int64) []byte {
		t.Helper()
		rc, total, err := b.Open(ctx, r, off, n)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if total != size {
			t.Errorf("open reports size %d, want %d", total, size)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !bytes.Equal(read(ref, 0, -1), content) || !bytes.Equal(read(again, 0, -1), content) {
		t.Error("whole content differs")
	}
	if got := read(ref, 7, 100); !bytes.Equal(got, content[7:107]) {
		t.Errorf("range: %q", got)
	}
	if got := read(ref, size-3, -1); !bytes.Equal(got, content[size-3:]) {
		t.Errorf("tail: %q", got)
	}
	if got := read(ref, size-3, 100); !bytes.Equal(got, content[size-3:]) {
		t.Errorf("range past the end: %q", got)
	}
	other := []byte("another")
	osum := sha256.Sum256(other)
	oref := put(osum, other)
	if err := b.Sync(ctx, []mailstore.Ref{oref}); err != nil {
		t.Fatal(err)
	}
	if ref.Loc != "" {
		// A locator read with another sum never serves the other content.
		if _, _, err := b.Open(ctx, mailstore.Ref{Sum: osum, Loc: ref.Loc}, 0, -1); err == nil {
			t.Error("a locator opened under another content's sum")
		}
	}
	if _, err := b.Put(ctx, sha256.Sum256([]byte("short")), bytes.NewReader([]byte("sho")), 5); err == nil {
		t.Error("put of fewer bytes than announced succeeded")
	}
	if _, err := b.Put(ctx, sha256.Sum256([]byte("long")), bytes.NewReader([]byte("longer")), 4); err == nil {
		t.Error("put of more bytes than announced succeeded")
	}
	listed := map[mailstore.Ref]int64{}
	if err := b.List(ctx, func(r mailstore.Ref, n int64) error { listed[r] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	copies := map[bool]int{true: 2, false: 3}[ref == again]
	if len(listed) != copies || listed[ref] != size || listed[again] != size || listed[oref] != int64(len(other)) {
		t.Errorf("list: %v", listed)
	}
	for i := 0; i < 2; i++ { // deleting what is gone is no error
		if err := b.Delete(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Stat(ctx, ref); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat after delete: %v", err)
	}
	if _, _, err := b.Open(ctx, ref, 0, -1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open after delete: %v", err)
	}
	if again != ref {
		// Deleting one copy leaves the other.
		if !bytes.Equal(read(again, 0, -1), content) {
			t.Error("the second copy differs after the first was deleted")
		}
	}
	if n, err := b.Stat(ctx, oref); err != nil || n != int64(len(other)) {
		t.Errorf("other content after a delete: %d, %v", n, err)
	}
	// Put again after delete: content comes back (reclaim then redelivery).
	back := put(sum, content)
	if !bytes.Equal(read(back, 0, -1), content) {
		t.Error("content put again after delete differs")
	}
}
