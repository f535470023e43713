package mailstore_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// BenchmarkDeliver measures durable deliveries: every Deliver returns after its
// group commit was fsynced. With 16 writers the rate should be a multiple of the
// 1-writer rate, because one fsync covers many deliveries.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("size=%dKiB/writers=%d", size>>10, writers), func(b *testing.B) {
				s, err := mailstore.Open(b.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var addrs []string
				for i := 0; i < 16; i++ {
					addrs = append(addrs, fmt.Sprintf("u%d@example.test", i))
				}
				accts := storetest.Setup(b, s, addrs...)
				tmpl := benchMessage(size)
				b.SetBytes(int64(len(tmpl)))
				b.ResetTimer()
				var n atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := n.Add(1)
							if i > int64(b.N) {
								return
							}
							raw := bytes.Clone(tmpl)
							// Distinct content per message, so nothing is deduplicated.
							copy(raw[len(raw)-24:], fmt.Sprintf("%020d\r\n", i))
							if _, err := s.Deliver(context.Background(), raw, time.Time{}, []mailstore.Target{{AccountID: accts[i%16].ID}}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}

// benchMessage returns a message of about size bytes ending in a line of 22
// characters that callers overwrite to make each copy distinct: a text mail for
// small sizes, a mail with a base64 PDF-like attachment (what official documents
// look like) for large ones.
func benchMessage(size int) []byte {
	head := "From: a@example.test\r\nTo: b@example.test\r\nSubject: bench\r\nMIME-Version: 1.0\r\n"
	if size < 64<<10 {
		return []byte(head + "Content-Type: text/plain\r\n\r\n" + strings.Repeat("meeting notes ", (size-len(head))/14) + "\r\n" + strings.Repeat("0", 22) + "\r\n")
	}
	var b strings.Builder
	b.WriteString(head + "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--XX\r\n")
	b.WriteString("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=doc.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for b.Len() < size-100 {
		b.WriteString("JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29k\r\n")
	}
	b.WriteString("--XX--\r\n" + strings.Repeat("0", 22) + "\r\n")
	return []byte(b.String())
}

// BenchmarkIndexBacklog measures how fast the indexer works off a backlog
// (a bulk import): b.N ~4 KiB messages of varied words are stored with
// AppendMany, then the clock runs until the index holds them all.
func BenchmarkIndexBacklog(b *testing.B) {
	s, err := mailstore.Open(b.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	acct := storetest.Setup(b, s, "u@example.test")[0]
	words := strings.Fields("công văn đề nghị báo cáo tình hình thực hiện kế hoạch năm nay các phòng ban đã được giao " +
		"the report meeting budget department schedule review please find attached document office province council")
	var msgs []mailstore.NewMessage
	for i := range b.N {
		var m strings.Builder
		fmt.Fprintf(&m, "From: a%d@example.test\r\nSubject: số %d\r\nMessage-ID: <%d.bench@example.test>\r\n\r\n", i%97, i, i)
		for k := 0; m.Len() < 4000; k++ {
			fmt.Fprintf(&m, "%s %s %s %d\r\n", words[(i+k)%len(words)], words[(i*7+k)%len(words)], words[(i*k)%len(words)], (i*7919+k*104729)%100000)
		}
		msgs = append(msgs, mailstore.NewMessage{Content: []byte(m.String())})
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for len(msgs) > 0 {
		k := min(len(msgs), 1000)
		if _, err := s.AppendMany(ctx, acct.ID, "INBOX", msgs[:k]); err != nil {
			b.Fatal(err)
		}
		msgs = msgs[k:]
	}
	if err := s.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
