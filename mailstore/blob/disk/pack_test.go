package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"sealmail/mailstore/blob"
)

func putN(t *testing.T, s *Store, n, size int) ([]blob.Ref, [][]byte) {
	t.Helper()
	ctx := context.Background()
	refs := make([]blob.Ref, n)
	datas := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			data := []byte(fmt.Sprintf("Subject: thư %d\r\n\r\n%s", i, bytes.Repeat([]byte{'a' + byte(i%26)}, size)))
			sum := sha256.Sum256(data)
			loc, err := s.Put(ctx, sum, bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Error(err)
				return
			}
			refs[i], datas[i] = blob.Ref{Sum: sum, Loc: loc}, data
		})
	}
	wg.Wait()
	if err := s.Sync(ctx, refs); err != nil {
		t.Fatal(err)
	}
	return refs, datas
}

func packBlocks(t *testing.T, s *Store) (apparent, allocated int64) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.dir, packDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		apparent += info.Size()
		allocated += info.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return apparent, allocated
}

// TestPackSpace checks that contents written concurrently all read back,
// that a pack takes their bytes rather than a block each, and that deleting
// them all, in any order, returns the blocks to the filesystem: a block
// shared by two records is freed by whichever is deleted second.
func TestPackSpace(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refs, datas := putN(t, s, 300, 4300)
	for i, r := range refs {
		rc, n, err := s.Open(ctx, r, 0, -1)
		if err != nil || n != int64(len(datas[i])) {
			t.Fatalf("open %d: %d, %v", i, n, err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		if !bytes.Equal(buf.Bytes(), datas[i]) {
			t.Fatalf("content %d differs", i)
		}
	}
	apparent, allocated := packBlocks(t, s)
	var raw int64
	for _, d := range datas {
		raw += int64(len(d))
	}
	t.Logf("%d bytes of content: pack %d bytes, %d allocated", raw, apparent, allocated)
	if apparent > raw+int64(len(datas))*(hdrSize+1) || allocated > apparent+block {
		t.Errorf("%d bytes of content take %d bytes (%d allocated)", raw, apparent, allocated)
	}

	// Deleted while the pack is written to: the records' own blocks only.
	if err := s.Delete(ctx, refs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, refs[0]); err == nil {
		t.Error("record still there after Delete")
	}
	s.Close()
	for _, i := range rand.Perm(len(refs)) {
		if err := s.Delete(ctx, refs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, allocated = packBlocks(t, s); allocated > 2*block {
		t.Errorf("%d bytes still allocated after deleting every record", allocated)
	}
	n := 0
	if err := s.List(ctx, func(blob.Ref, int64) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("list after deleting every record: %d, %v", n, err)
	}
}

// TestPackList checks that List finds every live record across holes, a
// rolled pack and a record torn by a crash at the end of a pack, and that
// a pack cut short reports its lost records as damaged.
func TestPackList(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.rollAt = 64 << 10
	ctx := context.Background()
	refs, _ := putN(t, s, 40, 3000)
	live := map[blob.Ref]bool{}
	for i, r := range refs {
		if i%3 == 0 {
			if err := s.Delete(ctx, r); err != nil {
				t.Fatal(err)
			}
			continue
		}
		live[r] = true
	}
	packs, _ := os.ReadDir(filepath.Join(s.dir, packDir))
	if len(packs) < 2 {
		t.Fatalf("%d packs, want the first rolled over", len(packs))
	}
	// A crash tore the last record of the active pack.
	s.mu.Lock()
	torn := s.packPath(s.active.name)
	s.mu.Unlock()
	f, err := os.OpenFile(torn, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("SMP1\x00\x00"))
	f.Close()
	listed := map[blob.Ref]bool{}
	err = s.List(ctx, func(r blob.Ref, n int64) error {
		listed[r] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for r := range live {
		if !listed[r] {
			t.Errorf("live record %s not listed", r.Loc)
		}
	}
	if len(listed) != len(live) {
		t.Errorf("listed %d records, %d live", len(listed), len(live))
	}
	// The pack cut in the middle of its last live record.
	var last blob.Ref
	for r := range live {
		if r.Loc[:16] == filepath.Base(torn)[:16] && (last.Loc == "" || locOff(r) > locOff(last)) {
			last = r
		}
	}
	if err := os.Truncate(torn, locOff(last)+hdrSize+10); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, last, 0, 5); !errors.Is(err, blob.ErrCorrupt) {
		t.Errorf("a record cut short: %v", err)
	}
}

func locOff(r blob.Ref) int64 {
	_, off, _ := parseLoc(r.Loc)
	return off
}
