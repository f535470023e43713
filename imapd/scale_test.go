package imapd

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/throttle"
)

// TestScale measures how costs grow with one mailbox's size (issue 11). It
// runs only when SEALMAIL_SCALE gives the number of messages:
//
//	SEALMAIL_SCALE=100000 go test -run '^TestScale$' -timeout 3h -v ./imapd/
//
// The mailbox is built once, in SEALMAIL_SCALE_DIR (default
// /tmp/sealmail-scale/N), through Store.Deliver from 16 goroutines: every
// invariant (counters, UID runs, index) is kept as in production, only SMTP
// is skipped. Later runs reuse it. The first run also expunges 1% (every
// 100th message) and measures that; later runs skip it. SEALMAIL_SCALE_SUSTAIN
// (e.g. 5m) adds deliveries by 8 writers for that long, reporting every 10 s.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SEALMAIL_SCALE"))
	if n == 0 {
		t.Skip("set SEALMAIL_SCALE=N to measure a mailbox of N messages")
	}
	dir := os.Getenv("SEALMAIL_SCALE_DIR")
	if dir == "" {
		dir = fmt.Sprintf("/tmp/sealmail-scale/%d", n)
	}
	e := newEnvAt(t, dir, func(s *Server) {
		s.ConnLimits = throttle.ConnLimits{PerAddress: 5000, PerAccountAddress: 5000, PerAccount: 5000}
	})
	ctx := context.Background()
	rawFile := filepath.Join(dir, "raw-bytes")
	if _, err := os.Stat(rawFile); err != nil {
		start := time.Now()
		raw := scaleBuild(t, e, n)
		if err := e.store.WaitIndexed(ctx); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(rawFile, []byte(strconv.FormatInt(raw, 10)), 0o600)
		t.Logf("built %d messages (%d raw bytes) in %v, indexed", n, raw, time.Since(start).Round(time.Second))
	}
	raw, _ := strconv.ParseInt(strings.TrimSpace(string(must[[]byte](t)(os.ReadFile(rawFile)))), 10, 64)
	mb := must[mailstore.Mailbox](t)(e.store.Mailbox(ctx, e.accts[0].ID, "INBOX"))
	st := must[mailstore.Status](t)(e.store.MailboxStatus(ctx, mb.ID))
	last := mb.UIDNext - 1
	t.Logf("mailbox: %d messages, UIDs up to %d", st.Messages, last)

	r := rawSelect(t, e)
	median := func(name string, runs int, cmd func() int) {
		var ds []time.Duration
		hits := 0
		for range runs {
			start := time.Now()
			hits = cmd()
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		t.Logf("%-40s median %8.2f ms  [%.2f..%.2f]  (%d responses)", name,
			ms(ds[len(ds)/2]), ms(ds[0]), ms(ds[len(ds)-1]), hits)
	}
	median("SELECT INBOX", 9, func() int { return r.run(t, "SELECT INBOX") })
	median("UID FETCH last 1000 (FLAGS ENVELOPE)", 7, func() int {
		return r.run(t, fmt.Sprintf("UID FETCH %d:* (FLAGS ENVELOPE RFC822.SIZE)", last-999))
	})
	median("UID SEARCH TEXT rare word", 7, func() int { return r.lines(t, "UID SEARCH TEXT xylophone") })
	median(`UID SEARCH TEXT "da nang" (phrase)`, 5, func() int { return r.lines(t, `UID SEARCH TEXT "da nang"`) })
	median(`UID SEARCH TEXT "da nang" xylophone`, 5, func() int { return r.lines(t, `UID SEARCH TEXT "da nang" TEXT xylophone`) })
	median("UID STORE last 1000 +FLAGS.SILENT", 5, func() int {
		r.run(t, fmt.Sprintf(`UID STORE %d:* +FLAGS.SILENT (\Flagged)`, last-999))
		return r.run(t, fmt.Sprintf(`UID STORE %d:* -FLAGS.SILENT (\Flagged)`, last-999))
	})
	marker := filepath.Join(dir, "expunged")
	if _, err := os.Stat(marker); err != nil {
		var uids []string
		for uid := uint32(1); uid <= last; uid += 100 {
			uids = append(uids, strconv.Itoa(int(uid)))
		}
		for len(uids) > 0 {
			k := min(len(uids), 500)
			r.run(t, `UID STORE `+strings.Join(uids[:k], ",")+` +FLAGS.SILENT (\Deleted)`)
			uids = uids[k:]
		}
		median("EXPUNGE 1%", 1, func() int { return r.lines(t, "EXPUNGE") })
		os.WriteFile(marker, nil, 0o600)
		median("SELECT INBOX after expunge", 9, func() int { return r.run(t, "SELECT INBOX") })
	}
	size, wal := dirSize(dir)
	t.Logf("data directory: %d bytes (+ %d of WAL), %.0f per message, %.2f× the raw messages (%d bytes)",
		size, wal, float64(size)/float64(n), float64(size)/float64(raw), raw)

	before := memNow()
	rssBefore := rss()
	const sessions = 200
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$")
	cmd.Env = append(os.Environ(), "IMAPD_IDLE_ADDR="+e.tls, "IMAPD_IDLE_CA="+e.certFile, "IMAPD_IDLE_N="+strconv.Itoa(sessions))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("client farm: %q %v", line, err)
	}
	opened := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	after := memNow()
	rssAfter := rss()
	t.Logf("%d sessions with INBOX selected (opened in %v): server heap+stack %.1f KB per session, RSS %.1f → %.1f MB (%.1f KB per session)",
		sessions, opened.Round(time.Millisecond), float64(after.heap+after.stack-before.heap-before.stack)/sessions/1024,
		float64(rssBefore)/1e6, float64(rssAfter)/1e6, float64(rssAfter-rssBefore)/sessions/1024)
	stdin.Close()
	cmd.Wait()

	if d, err := time.ParseDuration(os.Getenv("SEALMAIL_SCALE_SUSTAIN")); err == nil && d > 0 {
		scaleSustain(t, e, d)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lines sends a command and counts its untagged responses.
func (r *rawConn) lines(t testing.TB, cmd string) int {
	r.tag++
	tag := "t" + strconv.Itoa(r.tag)
	fmt.Fprintf(r.c, "%s %s\r\n", tag, cmd)
	n := 0
	for {
		line, err := r.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line[len(tag)+1:], "OK") {
				t.Fatalf("%s: %s", cmd, line)
			}
			return n
		}
		if strings.HasPrefix(line, "* SEARCH") {
			n += len(strings.Fields(line)) - 2
		} else {
			n++
		}
	}
}

// scaleMessage is message i of a mailbox of n: ~4 KiB of varied Vietnamese
// and English text. About 10% mention Đà Nẵng; 40 messages, spread out,
// hold the rare word "xylophone". "đã" (folded "da") is common everywhere.
func scaleMessage(rnd *rand.Rand, i, n int) []byte {
	vi := strings.Fields("công văn đề nghị báo cáo tình hình thực hiện kế hoạch năm nay các phòng ban đã được giao nhiệm vụ " +
		"sở tài chính ủy ban nhân dân tỉnh huyện xã kính gửi trân trọng quyết định thông báo hướng dẫn triển khai " +
		"đã hoàn thành kinh phí dự toán ngân sách cán bộ công chức viên chức hội nghị tổng kết đánh giá chỉ đạo")
	en := strings.Fields("the report meeting budget department schedule review please find attached document office " +
		"province council plan implementation deadline update regarding request approval minutes agenda")
	var b strings.Builder
	fmt.Fprintf(&b, "From: Nguyễn Văn %d <user%d@so%d.example.gov.vn>\r\nTo: nam@example.test\r\n", i%97, i%997, i%13)
	fmt.Fprintf(&b, "Subject: Công văn số %d/%d về %s %s\r\n", i, 2026, vi[rnd.IntN(len(vi))], en[rnd.IntN(len(en))])
	fmt.Fprintf(&b, "Date: Sat, 05 Dec 2026 %02d:%02d:00 +0700\r\nMessage-ID: <%d.scale@example.test>\r\n", i/60%24, i%60, i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < 4000 {
		words := vi
		if rnd.IntN(3) == 0 {
			words = en
		}
		for k := 8 + rnd.IntN(10); k > 0; k-- {
			b.WriteString(words[rnd.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(rnd.IntN(100000)))
		b.WriteString(".\r\n")
	}
	if i%10 == 3 {
		b.WriteString("Hội nghị tổ chức tại Đà Nẵng.\r\n")
	}
	if i%(n/40) == n/80 {
		b.WriteString("xylophone\r\n")
	}
	return []byte(b.String())
}

// scaleBuild delivers n messages to nam's INBOX and returns their bytes.
func scaleBuild(t *testing.T, e *env, n int) int64 {
	var next, raw atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				m := scaleMessage(rnd, i, n)
				raw.Add(int64(len(m)))
				e.deliver(t, e.accts[0], "", m)
				if i%50000 == 0 && i > 0 {
					t.Logf("built %d in %v", i, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	return raw.Load()
}

// scaleSustain delivers into the big mailbox from 8 writers for d and
// reports the rate of every 10 s window.
func scaleSustain(t *testing.T, e *env, d time.Duration) {
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e.deliver(t, e.accts[0], "", scaleMessage(rnd, i, 1<<30))
				count.Add(1)
			}
		}()
	}
	var rates []float64
	prev := int64(0)
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(10 * time.Second)
		c := count.Load()
		rates = append(rates, float64(c-prev)/10)
		prev = c
	}
	close(stop)
	wg.Wait()
	lo, sum := rates[0], 0.0
	for _, r := range rates {
		lo = min(lo, r)
		sum += r
	}
	t.Logf("sustained delivery, 8 writers, %v: mean %.0f msgs/s, slowest 10 s window %.0f msgs/s; windows %.0f", d, sum/float64(len(rates)), lo, rates)
}

// dirSize sums the files of dir, the WAL apart: checkpoints empty it.
func dirSize(dir string) (n, wal int64) {
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		switch {
		case err != nil || !fi.Mode().IsRegular():
		case strings.HasSuffix(path, "-wal") || strings.HasSuffix(path, "-shm"):
			wal += fi.Size()
		default:
			n += fi.Size()
		}
		return nil
	})
	return n, wal
}

// rss is the process's resident set in bytes.
func rss() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
