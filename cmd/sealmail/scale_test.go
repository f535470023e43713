package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
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
// 'sealmail serve' child processes, through IMAP and SMTP. It runs only when
// SEALMAIL_SCALE lists the sizes to compare, smallest first:
//
//	SEALMAIL_SCALE=10000,100000,1000000 go test -run '^TestScale$' -timeout 6h -v ./cmd/sealmail/
//
// Each size's data directory is built once, in SEALMAIL_SCALE_ROOT/N
// (default /tmp/sealmail-scale/N), by the store's bulk path (AppendMany,
// batches of 1,000: every invariant kept, only SMTP skipped), and indexed;
// later runs reuse it. SEALMAIL_SCALE_BUILD_ONLY=1 stops after building: the
// long build of a million can run outside the benchmark lock, the measuring
// run inside it.
//
// A run starts a server on every size at once and times the reads in
// rounds that go from one size to the next, so that the ratios to the
// smallest size (the targets) come from one window of a shared
// machine. Searches must find what the layout put there. Then, size after
// size: STORE, the expunge of 1% (every 100th message; first run only), 200
// selected sessions, and SMTP ingest for SEALMAIL_SCALE_INGEST (default 20s);
// SEALMAIL_SCALE_SUSTAIN (e.g. 5m) adds sustained ingest into the smallest
// and then the largest, reported per 10 s window; the largest's mean is set
// against both the smallest's 20 s rate and its sustained mean. Each run adds the
// messages it ingests to the mailboxes.
func TestScale(t *testing.T) {
	var sizes []int
	for _, f := range strings.Split(os.Getenv("SEALMAIL_SCALE"), ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1000 || n%1000 != 0 {
			t.Fatalf("SEALMAIL_SCALE: %q is not a multiple of 1,000 (the layout assumes whole build batches)", f)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		t.Skip("set SEALMAIL_SCALE=N[,N...] to measure mailboxes of N messages")
	}
	root := cmp.Or(os.Getenv("SEALMAIL_SCALE_ROOT"), "/tmp/sealmail-scale")
	var boxes []*scaleBox
	for _, n := range sizes {
		boxes = append(boxes, scaleOpen(t, filepath.Join(root, strconv.Itoa(n)), n))
	}
	if os.Getenv("SEALMAIL_SCALE_BUILD_ONLY") != "" {
		return
	}
	for _, b := range boxes {
		b.start(t)
	}
	for _, b := range boxes {
		b.settle(t)
	}

	reads := []scaleRead{
		{"SELECT INBOX", 9, func(b *scaleBox) int { b.r.cmd(t, "SELECT INBOX"); return -1 }},
		{"UID FETCH last 1000 (FLAGS ENVELOPE)", 7, func(b *scaleBox) int {
			return len(b.r.cmd(t, fmt.Sprintf("UID FETCH %d:* (FLAGS ENVELOPE RFC822.SIZE)", b.last-999)))
		}},
	}
	// SEALMAIL_SCALE_NOSEARCH=1 skips the searches: for a mailbox whose
	// index the server is still building (searches would read every content
	// not indexed yet).
	if os.Getenv("SEALMAIL_SCALE_NOSEARCH") == "" {
		reads = append(reads,
			scaleRead{scaleRareSearch, 7, func(b *scaleBox) int {
				return b.search(t, "UID SEARCH TEXT xylophone", b.rare, b.rare)
			}},
			// The first word is in nearly every message, the answer small.
			scaleRead{scalePhraseSearch, 7, func(b *scaleBox) int {
				const q = "đã ký: xylophone"
				return b.search(t, fmt.Sprintf("UID SEARCH CHARSET UTF-8 TEXT {%d+}\r\n%s", len(q), q), b.rare, b.rare)
			}},
			// 10% of mail: every hit's text is read (seconds at a million).
			// Ingested messages add to the layout's hits.
			scaleRead{`UID SEARCH TEXT "da nang" (10% of mail)`, 3, func(b *scaleBox) int {
				return b.search(t, `UID SEARCH TEXT "da nang"`, b.n/10, math.MaxInt)
			}})
	}
	for _, m := range reads {
		for range m.rounds {
			for _, b := range boxes {
				start := time.Now()
				b.answers[m.name] = m.run(b)
				b.times[m.name] = append(b.times[m.name], time.Since(start))
			}
		}
	}

	for _, b := range boxes {
		b.time(t, "UID STORE last 1000 +FLAGS, -FLAGS", 5, func() int {
			b.r.cmd(t, fmt.Sprintf(`UID STORE %d:* +FLAGS.SILENT (\Flagged)`, b.last-999))
			b.r.cmd(t, fmt.Sprintf(`UID STORE %d:* -FLAGS.SILENT (\Flagged)`, b.last-999))
			return -1
		})
		b.expunge(t)
		b.r.cmd(t, "LOGOUT")
		// The index rows of the expunged go in the background: not
		// while the sessions' memory is measured, nor during another
		// size's ingest.
		b.settle(t)
		b.sessions(t)
	}

	ingest := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SEALMAIL_SCALE_INGEST")); err == nil && d >= 10*time.Second {
		ingest = d
	}
	rates := map[*scaleBox]float64{}
	for _, b := range boxes {
		rates[b], _ = b.ingest(t, "ingest", ingest)
		b.settle(t)
	}
	small, large := boxes[0], boxes[len(boxes)-1]
	var sustained []string
	if d, err := time.ParseDuration(os.Getenv("SEALMAIL_SCALE_SUSTAIN")); err == nil && d >= 10*time.Second {
		// The smallest size is sustained too, so that the largest's mean
		// is also set against a rate measured the same way: five minutes
		// include checkpoints and index merges that a 20 s run does not.
		var smallMean float64
		if small != large {
			smallMean, _ = small.ingest(t, "sustained ingest", d)
			small.settle(t)
		}
		mean, slowest := large.ingest(t, "sustained ingest", d)
		sustained = append(sustained, fmt.Sprintf("sustained ingest at %d for %v: mean %.0f msgs/s = %.0f%% of %d's %.0f in %v (target ≥ 80%%: %s); slowest 10 s window %.0f = %.0f%% (target ≥ 50%%: %s)",
			large.n, d, mean, 100*mean/rates[small], small.n, rates[small], ingest, met(mean >= 0.8*rates[small]),
			slowest, 100*slowest/rates[small], met(slowest >= 0.5*rates[small])))
		if smallMean > 0 {
			sustained = append(sustained, fmt.Sprintf("sustained ingest at %d for %v: mean %.0f msgs/s = %.0f%% of %d's %.0f sustained for %v (target ≥ 80%%: %s)",
				large.n, d, mean, 100*mean/smallMean, small.n, smallMean, d, met(mean >= 0.8*smallMean)))
		}
	}
	for _, b := range boxes {
		b.stop(t)
	}

	// The summary: every size's medians, and the largest's ratio to the smallest.
	targets := map[string]string{
		"UID FETCH last 1000 (FLAGS ENVELOPE)": "≤ 2×", scaleRareSearch: "≤ 2×", scalePhraseSearch: "≤ 2×",
	}
	var names []string
	for _, m := range reads {
		names = append(names, m.name)
	}
	names = append(names, "UID STORE last 1000 +FLAGS, -FLAGS")
	t.Logf("summary (medians, ms; ratio of %d to %d):", large.n, small.n)
	for _, name := range names {
		line := fmt.Sprintf("  %-44s", name)
		for _, b := range boxes {
			line += fmt.Sprintf("  %d: %8.2f", b.n, ms(b.median(name)))
			if a := b.answers[name]; a >= 0 {
				line += fmt.Sprintf(" (%d answers)", a)
			}
		}
		ratio := float64(large.median(name)) / float64(small.median(name))
		line += fmt.Sprintf("  ratio %.2f×", ratio)
		if tg := targets[name]; tg != "" {
			line += fmt.Sprintf(" (target %s: %s)", tg, met(ratio <= 2))
		}
		t.Log(line)
	}
	sel := large.median("SELECT INBOX")
	t.Logf("  SELECT INBOX at %d: %.2f ms (target ≤ 20 ms: %s)", large.n, ms(sel), met(sel <= 20*time.Millisecond))
	t.Logf("  ingest at %d: %.0f msgs/s = %.0f%% of %d's %.0f (target ≥ 80%%: %s)",
		large.n, rates[large], 100*rates[large]/rates[small], small.n, rates[small], met(rates[large] >= 0.8*rates[small]))
	for _, line := range sustained {
		t.Log("  " + line)
	}
	for _, b := range boxes {
		// The server's RSS can fall while the sessions open (the runtime
		// returning memory of earlier work): then nothing is shown.
		t.Logf("  %d: %.1f KB per selected session (target ≤ 100 KB: %s); data directory %.2f× the raw messages (target ≤ 1.5×: %s)",
			b.n, b.perSession/1024, met(b.perSession >= 0 && b.perSession <= 100*1024), b.dirRatio, met(b.dirRatio <= 1.5))
	}
}

// scaleRead is a read timed on every size in turn; run returns the number of
// answers, or -1.
type scaleRead struct {
	name   string
	rounds int
	run    func(*scaleBox) int
}

// Searches for the rare word: the summary states their targets.
const (
	scaleRareSearch   = "UID SEARCH TEXT rare word"
	scalePhraseSearch = `UID SEARCH TEXT "đã ký: xylophone" (phrase)`
)

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// scaleLayout names the layout of scaleMessage; a directory built with
// another is not reused (its searches would find other counts).
const scaleLayout = "2: rare words never among the expunged"

// scaleBox is one size's data directory, and its server while measured.
type scaleBox struct {
	n, rare    int // messages as built, and how many hold the rare word
	dir, data  string
	srv        *server
	pid        int
	r          *imapConn
	last       int // the highest UID at the start
	times      map[string][]time.Duration
	answers    map[string]int
	perSession float64 // server RSS per selected session
	dirRatio   float64 // data directory / raw message bytes, at the end
}

// scaleOpen builds the data directory of n messages in dir unless a run
// already did.
func scaleOpen(t *testing.T, dir string, n int) *scaleBox {
	b := &scaleBox{n: n, dir: dir, data: filepath.Join(dir, "data"), times: map[string][]time.Duration{}, answers: map[string]int{}}
	for i := range n {
		if scaleRare(i, n) {
			b.rare++
		}
	}
	built := filepath.Join(dir, "built")
	layout, err := os.ReadFile(built)
	switch {
	case err == nil && string(layout) != scaleLayout:
		t.Fatalf("%s was built with another layout (%q); remove it", dir, layout)
	case err != nil:
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		raw := scaleBuild(t, b.data, n)
		size, _, alloc := dirSize(b.data)
		t.Logf("%d: data directory as built: %.2f× the raw messages (%d bytes); %.2f× as allocated on disk",
			n, float64(size)/float64(raw), raw, float64(alloc)/float64(raw))
		if err := os.WriteFile(built, []byte(scaleLayout), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// start serves the directory and selects INBOX on one connection.
func (b *scaleBox) start(t *testing.T) {
	warmCache(t, filepath.Join(b.data, mailstore.DBFile))
	b.srv = startServe(t, b.data)
	b.pid = b.srv.cmd.Process.Pid
	b.r = dialIMAP(t, b.srv, b.data)
	b.r.cmd(t, "LOGIN nam@agency.example pw")
	sel := strings.Join(b.r.cmd(t, "SELECT INBOX"), "\n")
	exists := regexp.MustCompile(`\* (\d+) EXISTS`).FindStringSubmatch(sel)
	next := regexp.MustCompile(`UIDNEXT (\d+)`).FindStringSubmatch(sel)
	if exists == nil || next == nil {
		t.Fatalf("SELECT: %q", sel)
	}
	b.last, _ = strconv.Atoi(next[1])
	b.last--
	t.Logf("%d: mailbox of %s messages, UIDs up to %d; server RSS idle %.1f MB", b.n, exists[1], b.last, float64(procStatus(t, b.pid, "VmRSS"))/1e6)
}

func (b *scaleBox) median(name string) time.Duration {
	ds := slices.Clone(b.times[name])
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// time runs cmd runs times and logs the median; cmd returns its number of
// answers, or -1.
func (b *scaleBox) time(t *testing.T, name string, runs int, cmd func() int) {
	t.Helper()
	for range runs {
		start := time.Now()
		b.answers[name] = cmd()
		b.times[name] = append(b.times[name], time.Since(start))
	}
	ds := b.times[name]
	t.Logf("%d: %-44s median %8.2f ms  [%.2f..%.2f]", b.n, name, ms(b.median(name)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

// search runs a SEARCH and fails unless it finds between lo and hi
// messages: a search that finds nothing must not pass for a fast one.
func (b *scaleBox) search(t *testing.T, cmd string, lo, hi int) int {
	t.Helper()
	n := b.r.search(t, cmd)
	if n < lo || n > hi {
		t.Errorf("%d: %s found %d messages, the layout puts %d..%d there", b.n, cmd, n, lo, hi)
	}
	return n
}

// settle waits until the server's index holds exactly the stored contents
// (what Store.WaitIndexed waits for), so that a measurement does not share
// the machine with a backlog; it logs how long that took.
func (b *scaleBox) settle(t *testing.T) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(b.data, mailstore.DBFile)+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	first := -1
	for {
		var n int
		if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM unindexed) + (SELECT COUNT(*) FROM fts_garbage)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if first > 0 {
		t.Logf("%d: the server indexed a backlog of %d contents in %v", b.n, first, time.Since(start).Round(time.Second))
	}
	// A database with auto_vacuum=INCREMENTAL gives free pages back when
	// idle, down to none once more than 1/64 of the file (or 1 MiB) is free.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		var mode, free, pages int
		if err := db.QueryRow(`SELECT auto_vacuum, freelist_count, page_count FROM pragma_auto_vacuum, pragma_freelist_count, pragma_page_count`).Scan(&mode, &free, &pages); err != nil {
			t.Fatal(err)
		}
		if mode != 2 || free <= max(256, pages/64) {
			break
		}
	}
}

// expunge removes every 100th message, once per data directory.
func (b *scaleBox) expunge(t *testing.T) {
	marker := filepath.Join(b.dir, "expunged")
	if _, err := os.Stat(marker); err == nil {
		return
	}
	var uids []string
	for uid := 1; uid <= b.last; uid += 100 {
		uids = append(uids, strconv.Itoa(uid))
	}
	for len(uids) > 0 {
		k := min(len(uids), 500)
		b.r.cmd(t, `UID STORE `+strings.Join(uids[:k], ",")+` +FLAGS.SILENT (\Deleted)`)
		uids = uids[k:]
	}
	b.time(t, "EXPUNGE 1%", 1, func() int { return len(b.r.cmd(t, "EXPUNGE")) })
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.time(t, "SELECT INBOX after expunge", 9, func() int { b.r.cmd(t, "SELECT INBOX"); return -1 })
}

// sessions measures the server's memory for 200 sessions holding the
// mailbox selected.
func (b *scaleBox) sessions(t *testing.T) {
	const sessions = 200
	before := procStatus(t, b.pid, "VmRSS")
	start := time.Now()
	var conns []*imapConn
	for range sessions {
		c := dialIMAP(t, b.srv, b.data)
		c.cmd(t, "LOGIN nam@agency.example pw")
		c.cmd(t, "SELECT INBOX")
		conns = append(conns, c)
	}
	opened := time.Since(start)
	time.Sleep(time.Second)
	after := procStatus(t, b.pid, "VmRSS")
	b.perSession = float64(after-before) / sessions
	t.Logf("%d: %d sessions with INBOX selected, opened in %v: server RSS %.1f → %.1f MB, %.1f KB per session",
		b.n, sessions, opened.Round(time.Millisecond), float64(before)/1e6, float64(after)/1e6, b.perSession/1024)
	for _, c := range conns {
		c.conn.Close()
	}
}

// stop stops the server and measures the data directory against the
// messages' bytes.
func (b *scaleBox) stop(t *testing.T) {
	b.settle(t)
	r := dialIMAP(t, b.srv, b.data)
	r.cmd(t, "LOGIN nam@agency.example pw")
	status := regexp.MustCompile(`MESSAGES (\d+) SIZE (\d+)`).FindStringSubmatch(strings.Join(r.cmd(t, "STATUS INBOX (MESSAGES SIZE)"), ""))
	if status == nil {
		t.Fatal("STATUS INBOX (MESSAGES SIZE) gave no answer")
	}
	msgs, _ := strconv.ParseFloat(status[1], 64)
	raw, _ := strconv.ParseFloat(status[2], 64)
	b.srv.stop(t)
	size, wal, alloc := dirSize(b.data)
	b.dirRatio = float64(size) / raw
	t.Logf("%d: data directory (server stopped): %d bytes (+ %d of WAL), %.0f per message, %.2f× the %s messages' %s bytes; %.2f× as allocated on disk",
		b.n, size, wal, float64(size)/msgs, b.dirRatio, status[1], status[2], float64(alloc)/raw)
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
	t.Logf("%d: indexed in %v after the last message was stored (the index lag of a bulk import)", n, time.Since(indexing).Round(time.Second))
	return raw.Load()
}

// scaleMessage is message i of a mailbox of n: ~4 KiB of varied Vietnamese
// and English text. Every tenth (i%10 == 3) mentions Đà Nẵng; 40 messages,
// spread out (scaleRare), hold the rare word "xylophone", after "Đã ký:"
// ("đã", folded "da", is common everywhere). n = 0: no rare word.
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
	if scaleRare(i, n) {
		b.WriteString("Đã ký: xylophone\r\n")
	}
	return []byte(b.String())
}

// scaleRare reports whether message i of n holds the rare word: one in
// the middle of each 40th of the mailbox, moved on by one where that is a
// message the benchmark expunges (every 100th: UID%100 == 1, that is
// i%100 == 0, as the build's batches of 1,000 take whole UID ranges), so
// that every search finds all 40 before and after the expunge (a million
// had them all expunged: its searches found nothing).
func scaleRare(i, n int) bool {
	if n < 400 {
		return false
	}
	stride := n / 40
	at := i - i%stride + stride/2
	if at%100 == 0 {
		at++
	}
	return i == at
}

var (
	viWords = strings.Fields("công văn đề nghị báo cáo tình hình thực hiện kế hoạch năm nay các phòng ban đã được giao nhiệm vụ " +
		"sở tài chính ủy ban nhân dân tỉnh huyện xã kính gửi trân trọng quyết định thông báo hướng dẫn triển khai " +
		"đã hoàn thành kinh phí dự toán ngân sách cán bộ công chức viên chức hội nghị tổng kết đánh giá chỉ đạo")
	enWords = strings.Fields("the report meeting budget department schedule review please find attached document office " +
		"province council plan implementation deadline update regarding request approval minutes agenda")
)

// ingest sends messages to nam over 8 MX connections for d and reports the
// mean rate and the slowest 10 s window's. Every window is logged with what
// the server did meanwhile: the CPU it used (of the machine's cores), the
// share of the time its writer spent in group commits, and how many it made.
func (b *scaleBox) ingest(t *testing.T, name string, d time.Duration) (mean, slowest float64) {
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(b.srv.addrs["smtp-addr"])
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; !stop.Load(); i++ {
				if err := c.SendMail("x@other.example", []string{"nam@agency.example"}, bytes.NewReader(scaleMessage(rnd, i, 0))); err != nil {
					t.Error(err)
					return
				}
				count.Add(1)
			}
			c.Quit()
		}()
	}
	var rates []float64
	var windows []string
	prev, prevSample := int64(0), b.sample(t)
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(10 * time.Second)
		c, sm := count.Load(), b.sample(t)
		rate := float64(c-prev) / 10
		rates = append(rates, rate)
		var wal int64
		if fi, err := os.Stat(filepath.Join(b.data, mailstore.DBFile+"-wal")); err == nil {
			wal = fi.Size()
		}
		windows = append(windows, fmt.Sprintf("%.0f/s (cpu %.0f%%, writer %.0f%%, %.0f commits, WAL %d MiB, %.0f RESTART checkpoints)", rate,
			100*(sm.cpu-prevSample.cpu).Seconds()/10, 100*(sm.commitTime-prevSample.commitTime)/10, sm.commits-prevSample.commits, wal>>20,
			sm.restarts-prevSample.restarts))
		prev, prevSample = c, sm
	}
	stop.Store(true)
	wg.Wait()
	lo, sum := rates[0], 0.0
	for _, r := range rates {
		lo = min(lo, r)
		sum += r
	}
	mean = sum / float64(len(rates))
	t.Logf("%d: %s, 8 SMTP connections, %v: mean %.0f msgs/s, slowest 10 s window %.0f msgs/s; windows:\n\t%s",
		b.n, name, d, mean, lo, strings.Join(windows, "\n\t"))
	return mean, lo
}

// warmCache reads a database file through the page cache, as a server that
// has run for a while finds it: a directory built hours before and followed
// by other work may be mostly evicted, and then the first minutes of a run
// measure the disk's random reads instead of the store.
func warmCache(t *testing.T, path string) {
	for _, p := range []string{path, path + "-wal"} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// serverSample is what the server has done so far: CPU time, and its
// group commits (count, and seconds spent in them) from its metrics.
type serverSample struct {
	cpu                           time.Duration
	commits, commitTime, restarts float64
}

func (b *scaleBox) sample(t *testing.T) serverSample {
	var sm serverSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis; utime and stime are
	// the 12th and 13th, in clock ticks of 1/100 s.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	sm.cpu = time.Duration(utime+stime) * 10 * time.Millisecond
	resp, err := http.Get("http://" + b.srv.addrs["metrics-addr"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "sealmail_store_commit_seconds_sum":
			sm.commitTime, _ = strconv.ParseFloat(value, 64)
		case "sealmail_store_commit_seconds_count":
			sm.commits, _ = strconv.ParseFloat(value, 64)
		case `sealmail_store_checkpoints_total{mode="restart"}`:
			sm.restarts, _ = strconv.ParseFloat(value, 64)
		}
	}
	return sm
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
