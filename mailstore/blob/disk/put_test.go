package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"sealmail/mailstore/blob"
)

// TestPutModes checks both ways Put writes — unnamed files where the
// filesystem has them, temporary names in tmp/ where it does not — including
// a name already held by a damaged file of the wrong size, which Put replaces,
// and that neither leaves anything behind but the content.
func TestPutModes(t *testing.T) {
	for _, anon := range []bool{true, false} {
		t.Run(map[bool]string{true: "unnamed", false: "tmp"}[anon], func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if anon && !s.anon {
				t.Skip("disk: this filesystem has no O_TMPFILE")
			}
			s.anon = anon
			ctx := context.Background()
			// Large enough for a file of its own rather than a pack record.
			content := append([]byte("From: a@example.test\r\n\r\n"), bytes.Repeat([]byte("nội dung\r\n"), packMax/8)...)
			sum := sha256.Sum256(content)
			if err := os.WriteFile(s.Path(sum), content[:7], 0o600); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // the second Put finds the content there
				if loc, err := s.Put(ctx, sum, bytes.NewReader(content), int64(len(content))); err != nil || loc != "" {
					t.Fatalf("put: %q, %v", loc, err)
				}
			}
			if err := s.Sync(ctx, []blob.Ref{{Sum: sum}}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(s.Path(sum))
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("content %q, %v; want %q", got, err, content)
			}
			if tmp, _ := os.ReadDir(filepath.Join(s.dir, tmpDir)); len(tmp) != 0 {
				t.Errorf("tmp/ holds %d files after Put", len(tmp))
			}
			if shard, _ := os.ReadDir(filepath.Dir(s.Path(sum))); len(shard) != 1 {
				t.Errorf("the shard directory holds %d files, want the content only", len(shard))
			}
			if _, err := s.Put(ctx, sum, bytes.NewReader(content[:3]), int64(len(content))); err != nil {
				t.Fatal(err) // present with the right size: nothing to write
			}
			other := content[:len(content)-1]
			if _, err := s.Put(ctx, sha256.Sum256(other), bytes.NewReader(other[:3]), int64(len(other))); err == nil {
				t.Error("Put of a content shorter than its size succeeded")
			}
		})
	}
}
