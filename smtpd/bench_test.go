package smtpd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"sealmail/mailstore"
)

// benchServer is a server whose per-transaction log lines are formatted but
// thrown away, as they would be written in production.
func benchServer(b *testing.B, maxRcpts int) *env {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return start(b, &Server{Logger: log, MaxRecipients: maxRcpts})
}

// benchMessage is a plain-text message of about size bytes, unique by its
// Message-ID.
func benchMessage(id string, size int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "From: Sở Tài chính <vanthu@stc.gov.test>\r\nTo: a@example.test\r\nSubject: Công văn %s\r\n"+
		"Date: Sat, 28 Nov 2026 10:00:00 +0700\r\nMessage-ID: <%s@bench.test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", id, id)
	line := "Kính gửi các đơn vị trực thuộc, đề nghị triển khai thực hiện.\r\n"
	for sb.Len() < size {
		sb.WriteString(line)
	}
	return sb.String()
}

// BenchmarkIngest is smtp-ingest: clients on parallel connections send one
// message each per transaction to a local user over the MX port; each gets its
// 250 only after the store's fsynced commit.
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{4 << 10, 100 << 10} {
		for _, conns := range []int{8, 32} {
			b.Run(fmt.Sprintf("size=%dKiB/conns=%d", size>>10, conns), func(b *testing.B) {
				e := benchServer(b, 0)
				clients := make([]*smtp.Client, conns)
				for i := range clients {
					clients[i] = e.dialMX(b)
				}
				rcpts := []string{"a@example.test", "b@example.test", "c@example.test"}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.SetBytes(int64(size))
				b.ResetTimer()
				begin := time.Now()
				for i, c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							n := next.Add(1)
							if n > int64(b.N) {
								return
							}
							msg := benchMessage(fmt.Sprintf("%d.%d", i, n), size)
							if err := send(c, "vanthu@stc.gov.test", []string{rcpts[n%3]}, msg); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkFanout sends a 1 MiB circular to 1,000 local recipients in one
// transaction: ns/op is the time to the 250, and content-B/op how much the
// stored content grew for it (about 1 MiB when stored once).
func BenchmarkFanout(b *testing.B) {
	e := benchServer(b, 1000)
	ctx := context.Background()
	var accts []mailstore.NewAccount
	var rcpts []string
	for i := range 1000 {
		addr := fmt.Sprintf("nv%04d@example.test", i)
		accts = append(accts, mailstore.NewAccount{Address: addr, Password: "pw"})
		rcpts = append(rcpts, addr)
	}
	if _, err := e.store.AddAccounts(ctx, accts); err != nil {
		b.Fatal(err)
	}
	c := e.dialMX(b)
	before, err := e.store.StorageStats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := range b.N {
		msg := benchMessage(fmt.Sprintf("fanout.%d", i), 1<<20)
		if err := send(c, "vanthu@stc.gov.test", rcpts, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after, err := e.store.StorageStats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if got := after.Messages - before.Messages; got != int64(b.N)*1000 {
		b.Fatalf("%d messages stored, want %d", got, b.N*1000)
	}
	b.ReportMetric(float64(after.ContentBytes-before.ContentBytes)/float64(b.N), "content-B/op")
}
