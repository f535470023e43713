package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"sealmail/config"
	"sealmail/mailstore"
)

// TestScale measures how costs grow with one mailbox's size (issue 11), on
// a 'sealmail serve' child process, through IMAP and SMTP. It runs only when
// SEALMAIL_SCALE gives the number of messages:
//
//	SEALMAIL_SCALE=1000000 go test -run '^TestScale$' -timeout 6h -v ./cmd/sealmail/
//
// The data directory is built once, in SEALMAIL_SCALE_DIR (default
// /tmp/sealmail-scale/N), by the store's bulk path (AppendMany, batches of
// 1,000: every invariant kept, only SMTP skipped), and indexed; later runs
// reuse it. The first run also expunges 1% (every 100th message).
// SEALMAIL_SCALE_INGEST (default 20s) is how long SMTP ingest is measured;
// SEALMAIL_SCALE_SUSTAIN (e.g. 5m) adds sustained ingest, reported per 10 s
// window. Each run adds the messages it ingests to the mailbox.
// SEALMAIL_SCALE_BUILD_ONLY=1 stops after building: the long build of a
// million can run outside the benchmark lock, the measuring run inside it.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SEALMAIL_SCALE"))
	if n == 0 {
		t.Skip("set SEALMAIL_SCALE=N to measure a mailbox of N messages")
	}
	dir := os.Getenv("SEALMAIL_SCALE_DIR")
	if dir == "" {
		dir = fmt.Sprintf("/tmp/sealmail-scale/%d", n)
	}
	data := filepath.Join(dir, "data")
	built := filepath.Join(dir, "built")
	if _, err := os.Stat(built); err != nil {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		raw := scaleBuild(t, data, n)
		size, _, alloc := dirSize(data)
		t.Logf("data directory as built: %.2f× the raw messages (%d bytes); %.2f× as allocated on disk",
			float64(size)/float64(raw), raw, float64(alloc)/float64(raw))
		os.WriteFile(built, nil, 0o600)
	}
	if os.Getenv("SEALMAIL_SCALE_BUILD_ONLY") != "" {
		return
	}

	srv := startServe(t, data)
	pid := srv.cmd.Process.Pid
	r := dialIMAP(t, srv, data)
	r.cmd(t, "LOGIN nam@agency.example pw")
	sel := r.cmd(t, "SELECT INBOX")
	exists := regexp.MustCompile(`\* (\d+) EXISTS`).FindStringSubmatch(strings.Join(sel, "\n"))
	next := regexp.MustCompile(`UIDNEXT (\d+)`).FindStringSubmatch(strings.Join(sel, "\n"))
	if exists == nil || next == nil {
		t.Fatalf("SELECT: %q", sel)
	}
	last, _ := strconv.Atoi(next[1])
	last--
	t.Logf("mailbox: %s messages, UIDs up to %d; server RSS idle %.1f MB", exists[1], last, float64(procStatus(t, pid, "VmRSS"))/1e6)

	median := func(name string, runs int, cmd func() int) {
		t.Helper()
		var ds []time.Duration
		count := 0
		for range runs {
			start := time.Now()
			count = cmd()
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		t.Logf("%-44s median %8.2f ms  [%.2f..%.2f]  (%d answers)", name, ms(ds[len(ds)/2]), ms(ds[0]), ms(ds[len(ds)-1]), count)
	}
	median("SELECT INBOX", 9, func() int { r.cmd(t, "SELECT INBOX"); return 0 })
	median("UID FETCH last 1000 (FLAGS ENVELOPE)", 7, func() int {
		return len(r.cmd(t, fmt.Sprintf("UID FETCH %d:* (FLAGS ENVELOPE RFC822.SIZE)", last-999)))
	})
	// SEALMAIL_SCALE_NOSEARCH=1 skips the searches: for a mailbox whose
	// index the server is still building (searches would read every content
	// not indexed yet).
	if os.Getenv("SEALMAIL_SCALE_NOSEARCH") == "" {
		scaleSearches(t, r, n, median)
	}
	median("UID STORE last 1000 +FLAGS, -FLAGS", 5, func() int {
		r.cmd(t, fmt.Sprintf(`UID STORE %d:* +FLAGS.SILENT (\Flagged)`, last-999))
		r.cmd(t, fmt.Sprintf(`UID STORE %d:* -FLAGS.SILENT (\Flagged)`, last-999))
		return 0
	})
	marker := filepath.Join(dir, "expunged")
	if _, err := os.Stat(marker); err != nil {
		var uids []string
		for uid := 1; uid <= last; uid += 100 {
			uids = append(uids, strconv.Itoa(uid))
		}
		for len(uids) > 0 {
			k := min(len(uids), 500)
			r.cmd(t, `UID STORE `+strings.Join(uids[:k], ",")+` +FLAGS.SILENT (\Deleted)`)
			uids = uids[k:]
		}
		median("EXPUNGE 1%", 1, func() int { return len(r.cmd(t, "EXPUNGE")) })
		os.WriteFile(marker, nil, 0o600)
		median("SELECT INBOX after expunge", 9, func() int { r.cmd(t, "SELECT INBOX"); return 0 })
	}
	r.cmd(t, "LOGOUT")

	// 200 sessions holding the mailbox selected.
	const sessions = 200
	before := procStatus(t, pid, "VmRSS")
	start := time.Now()
	var conns []*imapConn
	for range sessions {
		c := dialIMAP(t, srv, data)
		c.cmd(t, "LOGIN nam@agency.example pw")
		c.cmd(t, "SELECT INBOX")
		conns = append(conns, c)
	}
	opened := time.Since(start)
	time.Sleep(time.Second)
	after := procStatus(t, pid, "VmRSS")
	t.Logf("%d sessions with INBOX selected, opened in %v: server RSS %.1f → %.1f MB, %.1f KB per session",
		sessions, opened.Round(time.Millisecond), float64(before)/1e6, float64(after)/1e6, float64(after-before)/sessions/1024)
	for _, c := range conns {
		c.conn.Close()
	}

	ingest := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SEALMAIL_SCALE_INGEST")); err == nil && d >= 10*time.Second {
		ingest = d
	}
	scaleIngest(t, srv.addrs["smtp-addr"], "ingest", ingest)
	if d, err := time.ParseDuration(os.Getenv("SEALMAIL_SCALE_SUSTAIN")); err == nil && d >= 10*time.Second {
		scaleIngest(t, srv.addrs["smtp-addr"], "sustained ingest", d)
	}
	r = dialIMAP(t, srv, data)
	r.cmd(t, "LOGIN nam@agency.example pw")
	status := regexp.MustCompile(`MESSAGES (\d+) SIZE (\d+)`).FindStringSubmatch(strings.Join(r.cmd(t, "STATUS INBOX (MESSAGES SIZE)"), ""))
	if status == nil {
		t.Fatal("STATUS INBOX (MESSAGES SIZE) gave no answer")
	}
	msgs, _ := strconv.ParseFloat(status[1], 64)
	raw, _ := strconv.ParseFloat(status[2], 64)
	srv.stop(t)

	size, wal, alloc := dirSize(data)
	t.Logf("data directory (server stopped): %d bytes (+ %d of WAL), %.0f per message, %.2f× the %s messages' %s bytes; %.2f× as allocated on disk",
		size, wal, float64(size)/msgs, float64(size)/raw, status[1], status[2], float64(alloc)/raw)
}

// scaleSearches times a rare word, a phrase whose first word is in nearly
// every message but whose answer is small, and a phrase found in 10% of mail
// (once from a million on: every hit's text is read, minutes at that size).
func scaleSearches(t *testing.T, r *imapConn, n int, median func(string, int, func() int)) {
	median("UID SEARCH TEXT rare word", 7, func() int { return r.search(t, "UID SEARCH TEXT xylophone") })
	median(`UID SEARCH TEXT "đã ký: xylophone" (phrase)`, 7, func() int {
		const q = "đã ký: xylophone"
		return r.search(t, fmt.Sprintf("UID SEARCH CHARSET UTF-8 TEXT {%d+}\r\n%s", len(q), q))
	})
	runs := 5
	if n >= 1000000 {
		runs = 1
	}
	median(`UID SEARCH TEXT "da nang" (10% of mail)`, runs, func() int { return r.search(t, `UID SEARCH TEXT "da nang"`) })
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scaleBuild makes a data directory whose nam@agency.example has n
// messages in INBOX, indexed, and returns their bytes.
func scaleBuild(t *testing.T, data string, n int) int64 {
	ok(t, "", "init", "--data", data, "--domain", "agency.example")
	ok(t, "pw\n", "user", "add", "nam@agency.example", "--password-stdin", "--data", data)
	// One account from one address holds the 200 sessions.
	path := filepath.Join(data, config.FileName)
	conf := readAll(t, path)
	for _, k := range []string{"max-unauthenticated-per-ip", "max-connections-per-user-ip", "max-connections-per-user"} {
		conf = regexp.MustCompile(`(?m)^`+k+` = \d+`).ReplaceAll(conf, []byte(k+" = 1000"))
	}
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := mailstore.Open(data, mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	acct, err := s.Account(ctx, "nam@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	const batch = 1000
	var next, raw atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				first := int(next.Add(batch)) - batch
				if first >= n {
					return
				}
				var msgs []mailstore.NewMessage
				for i := first; i < min(first+batch, n); i++ {
					m := scaleMessage(rnd, i, n)
					raw.Add(int64(len(m)))
					msgs = append(msgs, mailstore.NewMessage{Content: m, Date: time.Unix(1764900000+int64(i), 0)})
				}
				if _, err := s.AppendMany(ctx, acct.ID, "INBOX", msgs); err != nil {
					t.Error(err)
					return
				}
				if (first+batch)%100000 == 0 {
					t.Logf("stored %d in %v", first+batch, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("stored %d messages (%d bytes) in %v, %.0f msgs/s", n, raw.Load(), time.Since(start).Round(time.Second),
		float64(n)/time.Since(start).Seconds())
	indexing := time.Now()
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("indexed in %v more", time.Since(indexing).Round(time.Second))
	return raw.Load()
}

// scaleMessage is message i of a mailbox of n: ~4 KiB of varied Vietnamese
// and English text. About 10% mention Đà Nẵng; 40 messages, spread out,
// hold the rare word "xylophone", after "Đã ký:" ("đã", folded "da", is
// common everywhere).
func scaleMessage(rnd *rand.Rand, i, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Nguyễn Văn %d <user%d@so%d.example.gov.vn>\r\nTo: nam@agency.example\r\n", i%97, i%997, i%13)
	fmt.Fprintf(&b, "Subject: Công văn số %d/%d về %s %s\r\n", i, 2026, viWords[rnd.IntN(len(viWords))], enWords[rnd.IntN(len(enWords))])
	fmt.Fprintf(&b, "Date: Sat, 05 Dec 2026 %02d:%02d:00 +0700\r\nMessage-ID: <%d.scale@agency.example>\r\n", i/60%24, i%60, i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < 4000 {
		words := viWords
		if rnd.IntN(3) == 0 {
			words = enWords
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
	if n >= 80 && i%(n/40) == n/80 {
		b.WriteString("Đã ký: xylophone\r\n")
	}
	return []byte(b.String())
}

var (
	viWords = strings.Fields("công văn đề nghị báo cáo tình hình thực hiện kế hoạch năm nay các phòng ban đã được giao nhiệm vụ " +
		"sở tài chính ủy ban nhân dân tỉnh huyện xã kính gửi trân trọng quyết định thông báo hướng dẫn triển khai " +
		"đã hoàn thành kinh phí dự toán ngân sách cán bộ công chức viên chức hội nghị tổng kết đánh giá chỉ đạo")
	enWords = strings.Fields("the report meeting budget department schedule review please find attached document office " +
		"province council plan implementation deadline update regarding request approval minutes agenda")
)

// scaleIngest sends messages to nam over 8 MX connections for d and
// reports the mean rate and that of every 10 s window.
func scaleIngest(t *testing.T, addr, name string, d time.Duration) {
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; !stop.Load(); i++ {
				if err := c.SendMail("x@other.example", []string{"nam@agency.example"}, bytes.NewReader(scaleMessage(rnd, i, 1<<30))); err != nil {
					t.Error(err)
					return
				}
				count.Add(1)
			}
			c.Quit()
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
	stop.Store(true)
	wg.Wait()
	lo, sum := rates[0], 0.0
	for _, r := range rates {
		lo = min(lo, r)
		sum += r
	}
	t.Logf("%s, 8 SMTP connections, %v: mean %.0f msgs/s, slowest 10 s window %.0f msgs/s; windows %.0f",
		name, d, sum/float64(len(rates)), lo, rates)
}

// dirSize sums the sizes of the files under dir, the WAL apart (checkpoints
// empty it), and the space they take on disk.
func dirSize(dir string) (n, wal, alloc int64) {
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		if strings.HasSuffix(path, "-wal") || strings.HasSuffix(path, "-shm") {
			wal += fi.Size()
			return nil
		}
		n += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			alloc += st.Blocks * 512
		}
		return nil
	})
	return n, wal, alloc
}

// imapConn is a raw IMAP client over TLS: the benchmark times the server's
// answers, not a client library's parsing.
type imapConn struct {
	conn *tls.Conn
	r    *bufio.Reader
	tag  int
}

func dialIMAP(t *testing.T, srv *server, data string) *imapConn {
	t.Helper()
	conn, err := tls.Dial("tcp", srv.addrs["imaps-addr"], clientTLS(t, data))
	if err != nil {
		t.Fatal(err)
	}
	c := &imapConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if line, err := c.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting: %q %v", line, err)
	}
	return c
}

// cmd sends a command (with literals already inline, as LITERAL+) and
// returns its untagged answers, failing unless it ends in OK.
func (c *imapConn) cmd(t *testing.T, cmd string) []string {
	t.Helper()
	c.tag++
	tag := "s" + strconv.Itoa(c.tag)
	if _, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, cmd); err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line[len(tag)+1:], "OK") {
				t.Fatalf("%s: %s", cmd, line)
			}
			return out
		}
		out = append(out, line)
	}
}

// search runs a SEARCH and returns how many messages it found.
func (c *imapConn) search(t *testing.T, cmd string) int {
	n := 0
	for _, l := range c.cmd(t, cmd) {
		if strings.HasPrefix(l, "* SEARCH") {
			n += len(strings.Fields(l)) - 2
		}
	}
	return n
}
