package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/blob/disk"
)

// stored counts the contents in s's blob store and their bytes.
func stored(t *testing.T, s *mailstore.Store) (n int, size int64) {
	t.Helper()
	err := s.Blobs().List(context.Background(), func(_ mailstore.Ref, sz int64) error {
		n++
		size += sz
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

func fetchOne(t *testing.T, s *mailstore.Store, mailboxID int64, uid uint32) mailstore.Item {
	t.Helper()
	var got *mailstore.Item
	err := s.Fetch(context.Background(), mailboxID, []uint32{uid}, mailstore.FetchContent, func(it mailstore.Item) error {
		got = &it
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatalf("UID %d not fetched", uid)
	}
	return *got
}

func testContentRanges(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "r@example.test")[0]
	raw := append(Msg("x@example.test", "r@example.test", "big", ""), bytes.Repeat([]byte("0123456789"), 30000)...)
	d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raw, nil, time.Time{}))
	it := fetchOne(t, s, d.MailboxID, d.UID)
	if it.Ref.Size != int64(len(raw)) || it.Ref.Sum != sha256.Sum256(raw) {
		t.Fatalf("content ref %x/%d", it.Ref.Sum, it.Ref.Size)
	}
	for _, c := range []struct{ off, n int64 }{{0, 10}, {100, 1000}, {int64(len(raw)) - 5, 100}, {int64(len(raw)), 10}, {5, -1}} {
		got := must[[]byte](t)(s.ReadContent(ctx, it.Ref, c.off, c.n))
		end := int64(len(raw))
		if c.n >= 0 && c.off+c.n < end {
			end = c.off + c.n
		}
		want := raw[min(c.off, int64(len(raw))):end]
		if !bytes.Equal(got, want) {
			t.Errorf("range %d+%d: got %d bytes, want %d", c.off, c.n, len(got), len(want))
		}
	}
}

// Harm is how Damage harms a content.
type Harm int

const (
	Garble Harm = iota // same size, other bytes
	Cut                // 7 bytes short (the content must be the last one stored)
	Remove
)

// Damage harms the stored content of sum in a blob store. A blob store that
// keeps content in local files says where (Locate), and the bytes are
// changed there; any other is damaged through its own interface, which works
// for a store that finds content by its sum alone.
func Damage(t *testing.T, blobs mailstore.BlobStore, sum mailstore.Sum, how Harm) {
	t.Helper()
	c := mailstore.ContentRef{Sum: sum, Size: -1}
	err := blobs.List(context.Background(), func(r mailstore.Ref, n int64) error {
		if r.Sum == sum {
			c.Loc, c.Size = r.Loc, n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Size < 0 {
		t.Fatalf("content %s is not stored", mailstore.SumHex(sum))
	}
	damage(t, blobs, c, how)
}

func damage(t *testing.T, blobs mailstore.BlobStore, c mailstore.ContentRef, how Harm) {
	t.Helper()
	ctx := context.Background()
	ref := mailstore.Ref{Sum: c.Sum, Loc: c.Loc}
	if how == Remove {
		must[struct{}](t)(struct{}{}, blobs.Delete(ctx, ref))
		return
	}
	if l, ok := blobs.(interface {
		Locate(mailstore.Ref) (string, int64, error)
	}); ok {
		path, off, err := l.Locate(ref)
		if err != nil {
			t.Fatal(err)
		}
		if how == Cut {
			must[struct{}](t)(struct{}{}, os.Truncate(path, off+c.Size-7))
			return
		}
		f := must[*os.File](t)(os.OpenFile(path, os.O_RDWR, 0))
		defer f.Close()
		b := make([]byte, c.Size)
		must[int](t)(f.ReadAt(b, off))
		b[len(b)/2] ^= 0x20
		must[int](t)(f.WriteAt(b, off))
		return
	}
	if c.Loc != "" {
		t.Skip("storetest: cannot damage content of a blob store that needs locators and has no Locate")
	}
	size := c.Size
	if how == Cut {
		size -= 7
	}
	must[struct{}](t)(struct{}{}, blobs.Delete(ctx, ref))
	must[string](t)(blobs.Put(ctx, c.Sum, bytes.NewReader(bytes.Repeat([]byte{'!'}, int(size))), size))
}

func testContentDamage(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "dmg@example.test")[0]
	var ds []mailstore.Delivered
	for i := 0; i < 4; i++ {
		ds = append(ds, must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@example.test", "dmg@example.test", "m", strings.Repeat("nội dung ", i+1)), nil, time.Time{})))
	}
	mb := ds[0].MailboxID
	garbled := fetchOne(t, s, mb, ds[0].UID)
	missing := fetchOne(t, s, mb, ds[1].UID)
	short := fetchOne(t, s, mb, ds[3].UID)
	damage(t, s.Blobs(), garbled.Ref, Garble)
	damage(t, s.Blobs(), missing.Ref, Remove)

	var items []mailstore.Item
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, mb, nil, mailstore.FetchContent|mailstore.FetchEnvelope, func(it mailstore.Item) error {
		items = append(items, it)
		return nil
	}))
	if len(items) != 4 {
		t.Fatalf("fetched %d of 4 messages", len(items))
	}
	if !errors.Is(items[0].Err, mailstore.ErrContentCorrupt) || items[0].Content != nil {
		t.Errorf("damaged content: err %v, %d bytes served", items[0].Err, len(items[0].Content))
	}
	if !errors.Is(items[1].Err, mailstore.ErrContentMissing) {
		t.Errorf("missing content: err %v", items[1].Err)
	}
	if items[2].Err != nil || items[2].Envelope == nil || items[0].Envelope == nil {
		t.Errorf("intact message or metadata of damaged ones: %+v", items)
	}
	if _, err := s.ReadContent(ctx, missing.Ref, 0, 10); !errors.Is(err, mailstore.ErrContentMissing) {
		t.Errorf("range of missing content: %v", err)
	}
	// A range of damaged content of the right size cannot be told from good
	// content; one cut short can.
	damage(t, s.Blobs(), short.Ref, Cut)
	if _, err := s.ReadContent(ctx, short.Ref, 0, 10); !errors.Is(err, mailstore.ErrContentCorrupt) {
		t.Errorf("range of truncated content: %v", err)
	}
	rep := must[mailstore.ContentReport](t)(s.CheckContent(ctx, false))
	if len(rep.Missing) != 1 || len(rep.Corrupt) != 2 || rep.Referenced != 4 {
		t.Errorf("check: %+v", rep)
	}
}

// testReclaimRace delivers content again after its last copy was expunged
// and before (and while) reclaim runs: it must survive.
func testReclaimRace(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "race@example.test")[0]
	raw := Msg("x@example.test", "race@example.test", "again", "same bytes")
	for round := 0; round < 20; round++ {
		d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raw, []string{`\Deleted`}, time.Time{}))
		must[[]uint32](t)(s.Expunge(ctx, d.MailboxID, []uint32{d.UID}))
		done := make(chan error, 1)
		go func() { done <- s.Reclaim(ctx) }()
		d2 := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raw, nil, time.Time{}))
		must[struct{}](t)(struct{}{}, <-done)
		must[struct{}](t)(struct{}{}, s.Reclaim(ctx))
		if it := fetchOne(t, s, d2.MailboxID, d2.UID); it.Err != nil || !bytes.Equal(it.Content, raw) {
			t.Fatalf("round %d: content delivered again during reclaim: %v", round, it.Err)
		}
		must[[]mailstore.Message](t)(s.StoreFlags(ctx, d2.MailboxID, []uint32{d2.UID}, mailstore.FlagsAdd, []string{`\Deleted`}))
		must[[]uint32](t)(s.Expunge(ctx, d2.MailboxID, nil))
	}
}

func testCheckContent(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "chk@example.test")[0]
	raw := Msg("x@example.test", "chk@example.test", "kept", "kept")
	must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raw, nil, time.Time{}))
	orphan := []byte("left by a crash")
	ref := mailstore.Ref{Sum: sha256.Sum256(orphan)}
	ref.Loc = must[string](t)(s.Blobs().Put(ctx, ref.Sum, bytes.NewReader(orphan), int64(len(orphan))))
	must[struct{}](t)(struct{}{}, s.Blobs().Sync(ctx, []mailstore.Ref{ref}))
	rep := must[mailstore.ContentReport](t)(s.CheckContent(ctx, false))
	if rep.Referenced != 1 || rep.Orphans != 1 || rep.Removed != 0 || len(rep.Missing)+len(rep.Corrupt) != 0 {
		t.Errorf("check: %+v", rep)
	}
	rep = must[mailstore.ContentReport](t)(s.CheckContent(ctx, true))
	if rep.Orphans != 1 || rep.Removed != 1 {
		t.Errorf("check --repair: %+v", rep)
	}
	if n, _ := stored(t, s); n != 1 {
		t.Errorf("after repair the blob store holds %d contents, want the 1 referenced", n)
	}
	rep = must[mailstore.ContentReport](t)(s.CheckContent(ctx, false))
	if rep.Referenced != 1 || rep.Orphans != 0 {
		t.Errorf("check after repair: %+v", rep)
	}
}

// testBackup backs the store up (into a local directory, whatever the
// backend) and opens the copy as a store of its own.
func testBackup(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "bk@example.test")[0]
	var raws [][]byte
	for i := 0; i < 5; i++ {
		raws = append(raws, Msg("x@example.test", "bk@example.test", "Đà Nẵng", strings.Repeat("sao lưu ", i+1)))
		must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raws[i], nil, time.Time{}))
	}
	dest := t.TempDir()
	blobs := must[*disk.Store](t)(disk.Open(filepath.Join(dest, mailstore.BlobDir)))
	must[struct{}](t)(struct{}{}, s.Backup(ctx, filepath.Join(dest, mailstore.DBFile), blobs))
	if _, err := os.Stat(filepath.Join(dest, mailstore.DBFile)); err != nil {
		t.Fatal(err)
	}
	b, err := mailstore.Open(dest, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mb := must[mailstore.Mailbox](t)(b.Mailbox(ctx, a.ID, "INBOX"))
	var got [][]byte
	must[struct{}](t)(struct{}{}, b.Fetch(ctx, mb.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		if it.Err != nil {
			return it.Err
		}
		got = append(got, it.Content)
		return nil
	}))
	if len(got) != len(raws) {
		t.Fatalf("backup holds %d of %d messages", len(got), len(raws))
	}
	for i := range raws {
		if !bytes.Equal(got[i], raws[i]) {
			t.Errorf("message %d differs in the backup", i)
		}
	}
	rep := must[mailstore.ContentReport](t)(b.CheckContent(ctx, false))
	if rep.Referenced != 5 || rep.Orphans != 0 || len(rep.Missing)+len(rep.Corrupt) != 0 {
		t.Errorf("backup's content: %+v", rep)
	}
}
