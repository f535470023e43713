package migrate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/migrate"
)

// BenchmarkMaildirImport imports a maildir of 200 messages of 4 KiB into a
// fresh account: the store's side of every import.
func BenchmarkMaildirImport(b *testing.B) {
	const n = 200
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var fs []fixture
	for i := range n {
		fs = append(fs, fixture{"INBOX", fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("Nội dung. ", 400)), []string{`\Seen`}, t0.Add(time.Duration(i) * time.Minute)})
	}
	dir := filepath.Join(b.TempDir(), "Maildir")
	writeMaildir(b, dir, fs, map[string]string{"INBOX": ""})
	for b.Loop() {
		b.StopTimer()
		d := newDest(b)
		b.StartTimer()
		sum, err := migrate.Maildir(context.Background(), dir, d, migrate.Options{})
		if err != nil || sum.Messages != n {
			b.Fatal(sum, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
