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
	if _, err := b.Stat(ctx, sum); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat before put: %v", err)
	}
	if _, _, err := b.Open(ctx, sum, 0, -1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open before put: %v", err)
	}
	for i := 0; i < 2; i++ { // a second Put of the same content is no error
		if err := b.Put(ctx, sum, bytes.NewReader(content), size); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := b.Sync(ctx, []mailstore.Sum{sum, sum}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Stat(ctx, sum); err != nil || n != size {
		t.Errorf("stat: %d, %v", n, err)
	}
	read := func(off, n int64) []byte {
		t.Helper()
		r, total, err := b.Open(ctx, sum, off, n)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if total != size {
			t.Errorf("open reports size %d, want %d", total, size)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !bytes.Equal(read(0, -1), content) {
		t.Error("whole content differs")
	}
	if got := read(7, 100); !bytes.Equal(got, content[7:107]) {
		t.Errorf("range: %q", got)
	}
	if got := read(size-3, -1); !bytes.Equal(got, content[size-3:]) {
		t.Errorf("tail: %q", got)
	}
	other := []byte("another")
	osum := sha256.Sum256(other)
	if err := b.Put(ctx, osum, bytes.NewReader(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx, []mailstore.Sum{osum}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, sha256.Sum256([]byte("short")), bytes.NewReader([]byte("sho")), 5); err == nil {
		t.Error("put of fewer bytes than announced succeeded")
	}
	listed := map[mailstore.Sum]int64{}
	if err := b.List(ctx, func(s mailstore.Sum, n int64) error { listed[s] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[sum] != size || listed[osum] != int64(len(other)) {
		t.Errorf("list: %v", listed)
	}
	for i := 0; i < 2; i++ { // deleting what is gone is no error
		if err := b.Delete(ctx, sum); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Stat(ctx, sum); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat after delete: %v", err)
	}
	// Put again after delete: content comes back (reclaim then redelivery).
	if err := b.Put(ctx, sum, bytes.NewReader(content), size); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(0, -1), content) {
		t.Error("content put again after delete differs")
	}
}
