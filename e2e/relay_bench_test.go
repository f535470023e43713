package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkRelayTwoInstances measures relay throughput between two instances:
// 8 submitters queue b.N messages on A (each durable before Enqueue returns),
// A's 8 workers sign each with DKIM and send it over its own verified-TLS
// connection to B's smtpd, which checks DKIM and stores it in B's mail store.
// The clock runs from the first Enqueue until B's INBOX holds all b.N.
func BenchmarkRelayTwoInstances(b *testing.B) {
	a, bb := pair(b)
	ctx := context.Background()
	lan, err := bb.store.Account(ctx, "lan@agency-b.test")
	if err != nil {
		b.Fatal(err)
	}
	inbox, err := bb.store.Mailbox(ctx, lan.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	stop := bb.store.Watch(inbox.ID, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer stop()
	body := strings.Repeat("Nội dung công văn thử nghiệm, dòng văn bản dài vừa phải cho một thư thật.\r\n", 40)
	rcpts := []string{"lan@agency-b.test"}

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += 8 {
				msg := letter("nam@agency-a.test", "lan@agency-b.test", fmt.Sprintf("Công văn %d", i), body)
				if err := a.queue.Enqueue(ctx, "nam@agency-a.test", rcpts, []byte(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for n := uint32(0); n < uint32(b.N); {
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			// A failed delivery waits minutes for its retry: report it
			// rather than hang.
			b.Fatalf("B's INBOX stuck at %d of %d messages; A's queue: %+v", n, b.N, a.queued(b))
		}
		st, err := bb.store.MailboxStatus(ctx, inbox.ID)
		if err != nil {
			b.Fatal(err)
		}
		n = st.Messages
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	wg.Wait()
}
