package relay

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"sealmail/mailstore/storetest"
)

// BenchmarkRelay measures queue-to-delivery throughput: b.N messages are
// enqueued by 8 submitters (each durable before Enqueue returns) and relayed by
// 8 workers, one SMTP connection each, to a server on 127.0.0.1.
func BenchmarkRelay(b *testing.B) {
	s, _ := openStore(b, "a@example.test")
	ts, _ := startServer(b)
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: ts.port(), Workers: 8,
		Logger: discardLogger()}
	runQueue(b, q)
	var body string
	for range 40 {
		body += "Nội dung công văn thử nghiệm, dòng văn bản dài vừa phải cho một thư thật.\r\n"
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += 8 {
				msg := storetest.Msg("a@example.test", "x@remote.test", fmt.Sprintf("bench %d", i), body)
				if err := q.Enqueue(ctx, "a@example.test", []string{"x@remote.test"}, msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for len(ts.messages()) < b.N {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
