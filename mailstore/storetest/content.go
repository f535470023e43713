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
	err := s.Blobs().List(context.Background(), func(_ mailstore.Sum, sz int64) error {
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

// damage replaces the stored content of sum with same-sized garbage (or
// removes it), through the blob store's own interface.
func damage(t *testing.T, s *mailstore.Store, sum mailstore.Sum, size int64, remove bool) {
	t.Helper()
	ctx := context.Background()
	if err := s.Blobs().Delete(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if !remove {
		junk := bytes.Repeat([]byte{'!'}, int(size))
		if err := s.Blobs().Put(ctx, sum, bytes.NewReader(junk), size); err != nil {
			t.Fatal(err)
		}
	}
}

func testContentDamage(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "dmg@example.test")[0]
	var ds []mailstore.Delivered
	for i := 0; i < 3; i++ {
		ds = append(ds, must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@example.test", "dmg@example.test", "m", strings.Repeat("nội dung ", i+1)), nil, time.Time{})))
	}
	mb := ds[0].MailboxID
	corrupt := fetchOne(t, s, mb, ds[0].UID)
	missing := fetchOne(t, s, mb, ds[1].UID)
	damage(t, s, corrupt.Ref.Sum, corrupt.Ref.Size, false)
	damage(t, s, missing.Ref.Sum, missing.Ref.Size, true)

	var items []mailstore.Item
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, mb, nil, mailstore.FetchContent|mailstore.FetchEnvelope, func(it mailstore.Item) error {
		items = append(items, it)
		return nil
	}))
	if len(items) != 3 {
		t.Fatalf("fetched %d of 3 messages", len(items))
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
	// content; one whose size changed can.
	short := bytes.Repeat([]byte{'!'}, int(corrupt.Ref.Size)-7)
	must[struct{}](t)(struct{}{}, s.Blobs().Delete(ctx, corrupt.Ref.Sum))
	must[struct{}](t)(struct{}{}, s.Blobs().Put(ctx, corrupt.Ref.Sum, bytes.NewReader(short), int64(len(short))))
	if _, err := s.ReadContent(ctx, corrupt.Ref, 0, 10); !errors.Is(err, mailstore.ErrContentCorrupt) {
		t.Errorf("range of truncated content: %v", err)
	}
	rep := must[mailstore.ContentReport](t)(s.CheckContent(ctx, false))
	if len(rep.Missing) != 1 || len(rep.Corrupt) != 1 || rep.Referenced != 3 {
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
	must[struct{}](t)(struct{}{}, s.Blobs().Put(ctx, sha256.Sum256(orphan), bytes.NewReader(orphan), int64(len(orphan))))
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
