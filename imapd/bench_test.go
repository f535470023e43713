package imapd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
	"sealmail/throttle"
)

const benchMessages = 10000

// benchEnv is a server whose nam@ INBOX holds 10,000 messages of a few KB; one
// of them has the word "xylophone".
func benchEnv(b *testing.B) *env {
	e := newEnv(b, func(s *Server) {
		s.ConnLimits = throttle.ConnLimits{PerAddress: 5000, PerAccountAddress: 5000, PerAccount: 5000}
	})
	body := strings.Repeat("Kính gửi các phòng ban, đề nghị báo cáo tình hình thực hiện kế hoạch năm 2026 tại Đà Nẵng.\r\n", 20)
	var wg sync.WaitGroup
	const workers = 50
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchMessages; i += workers {
				text := body
				if i == benchMessages/2 {
					text += "xylophone\r\n"
				}
				e.deliver(b, e.accts[0], "", storetest.Msg("Trần Văn B <b@example.test>", "nam@example.test", fmt.Sprintf("Công văn số %d", i), text))
			}
		}()
	}
	wg.Wait()
	// Measure the steady state, not the background indexer's first pass.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st, err := e.store.StorageStats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Indexed >= st.Blobs {
			break
		}
	}
	return e
}

func selectInbox(b *testing.B, e *env) *imapclient.Client {
	c := e.dial(b, "nam", nil)
	if d, err := c.Select("INBOX", nil).Wait(); err != nil || d.NumMessages != benchMessages {
		b.Fatal(d, err)
	}
	return c
}

func BenchmarkLoginSelect(b *testing.B) {
	e := benchEnv(b)
	for b.Loop() {
		c, err := imapclient.DialTLS(e.tls, &imapclient.Options{TLSConfig: e.client})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Login("nam@example.test", "pw").Wait(); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		c.Logout().Wait()
		c.Close()
	}
}

// BenchmarkFetchHeaders lists the envelopes of the whole mailbox, as a client
// opening it does. "client" parses the responses with imapclient, whose cost
// is the same whatever the server; "server" only counts the response lines, so
// its time is nearly all the server's. cpu-ms/op is the process's CPU time,
// which a loaded machine disturbs less than the elapsed time.
func BenchmarkFetchHeaders(b *testing.B) {
	e := benchEnv(b)
	b.Run("client", func(b *testing.B) {
		c := selectInbox(b, e)
		all := imap.UIDSet{{Start: 1, Stop: 0}}
		cpu := cpuTime()
		for b.Loop() {
			n := drain(b, c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true}))
			if n != benchMessages {
				b.Fatalf("%d messages", n)
			}
		}
		reportFetch(b, cpu)
	})
	b.Run("server", func(b *testing.B) {
		r := rawSelect(b, e)
		cpu := cpuTime()
		for b.Loop() {
			if n := r.run(b, "UID FETCH 1:* (FLAGS ENVELOPE RFC822.SIZE)"); n != benchMessages {
				b.Fatalf("%d messages", n)
			}
		}
		reportFetch(b, cpu)
	})
}

func reportFetch(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchMessages, "µs/msg")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawConn is a client that does not parse responses.
type rawConn struct {
	c   *tls.Conn
	r   *bufio.Reader
	tag int
}

func rawSelect(b testing.TB, e *env) *rawConn {
	c, err := tls.Dial("tcp", e.tls, e.client)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	r := &rawConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if _, err := r.r.ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	r.run(b, "LOGIN nam@example.test pw")
	r.run(b, "SELECT INBOX")
	return r
}

// run sends a command and reads up to its tagged response, which must be OK.
// It returns how many untagged FETCH responses came; message data holds no
// literal here, so every response is one line.
func (r *rawConn) run(b testing.TB, cmd string) int {
	n := 0
	r.each(b, cmd, func(line []byte) {
		if bytes.Contains(line[:min(len(line), 20)], []byte(" FETCH (")) {
			n++
		}
	})
	return n
}

// each sends a command and calls fn with each untagged response line (only
// valid until the next read) up to the tagged response, which must be OK.
func (r *rawConn) each(b testing.TB, cmd string, fn func(line []byte)) {
	r.tag++
	tag := "t" + strconv.Itoa(r.tag)
	if _, err := io.WriteString(r.c, tag+" "+cmd+"\r\n"); err != nil {
		b.Fatal(err)
	}
	for {
		line, err := r.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			b.Fatalf("%s: response line over %d bytes", cmd, r.r.Size())
		}
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case bytes.HasPrefix(line, []byte("* ")):
			fn(line)
		case bytes.HasPrefix(line, []byte(tag+" ")):
			if !bytes.HasPrefix(line[len(tag)+1:], []byte("OK")) {
				b.Fatalf("%s: %s", cmd, line)
			}
			return
		}
	}
}

// BenchmarkQResync reopens the 10,000-message INBOX as a QRESYNC client
// that was offline while 100 things happened: 50 messages flagged, 30
// expunged, 20 delivered. The answer must carry exactly those: 70 FETCHes
// and 30 UIDs in VANISHED (EARLIER). Its cost must not depend on the
// mailbox's size (target: under 5 ms of server time); cpu-ms/op is the
// process's CPU, the server's nearly all (the client only splits lines).
func BenchmarkQResync(b *testing.B) {
	e := benchEnv(b)
	r := rawSelect(b, e)
	r.run(b, "ENABLE QRESYNC")
	var validity, highest string
	r.each(b, "SELECT INBOX", func(line []byte) {
		if m := regexp.MustCompile(`\[(UIDVALIDITY|HIGHESTMODSEQ) (\d+)\]`).FindSubmatch(line); m != nil {
			if string(m[1]) == "UIDVALIDITY" {
				validity = string(m[2])
			} else {
				highest = string(m[2])
			}
		}
	})
	// Offline, another session changes 100 messages' worth.
	c := selectInbox(b, e)
	var flagged, deleted imap.UIDSet
	for i := range 50 {
		flagged.AddNum(imap.UID(1 + i*197))
	}
	for i := range 30 {
		deleted.AddNum(imap.UID(100 + i*331))
	}
	for _, op := range []struct {
		set  imap.UIDSet
		flag imap.Flag
	}{{flagged, imap.FlagFlagged}, {deleted, imap.FlagDeleted}} {
		if _, err := c.Store(op.set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{op.flag}}, nil).Collect(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := c.Expunge().Collect(); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		e.deliver(b, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", fmt.Sprint("new ", i), "b"))
	}
	cmd := fmt.Sprintf("SELECT INBOX (QRESYNC (%s %s 1:%d))", validity, highest, benchMessages)
	cpu := cpuTime()
	for b.Loop() {
		fetches, vanished := 0, 0
		r.each(b, cmd, func(line []byte) {
			switch {
			case bytes.Contains(line, []byte(" FETCH (")):
				fetches++
			case bytes.HasPrefix(line, []byte("* VANISHED (EARLIER) ")):
				set, err := imapwireUIDSet(string(bytes.TrimSpace(line[len("* VANISHED (EARLIER) "):])))
				if err != nil {
					b.Fatal(err)
				}
				uids, _ := set.Nums()
				vanished += len(uids)
			}
		})
		if fetches != 70 || vanished != 30 {
			b.Fatalf("resync sent %d FETCHes and %d vanished UIDs, want 70 and 30", fetches, vanished)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// imapwireUIDSet parses a UID set as the server wrote it.
func imapwireUIDSet(s string) (imap.UIDSet, error) {
	var set imap.UIDSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, ":")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 32)
		z, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad UID set %q", s)
		}
		set = append(set, imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(z)})
	}
	return set, nil
}

func BenchmarkFetchBodies(b *testing.B) {
	e := benchEnv(b)
	c := selectInbox(b, e)
	all := imap.UIDSet{{Start: 1, Stop: 0}}
	for b.Loop() {
		n := drain(b, c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}))
		if n != benchMessages {
			b.Fatalf("%d messages", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchMessages, "µs/msg")
}

// drain reads a FETCH's responses without keeping them.
func drain(b *testing.B, cmd *imapclient.FetchCommand) int {
	n := 0
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		for item := m.Next(); item != nil; item = m.Next() {
			if s, ok := item.(imapclient.FetchItemDataBodySection); ok {
				io.Copy(io.Discard, s.Literal)
			}
		}
		n++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkSearchRareWord(b *testing.B) {
	e := benchEnv(b)
	c := selectInbox(b, e)
	for b.Loop() {
		d, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{"xylophone"}}, nil).Wait()
		if err != nil || len(d.AllUIDs()) != 1 {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkStoreAll(b *testing.B) {
	e := benchEnv(b)
	c := selectInbox(b, e)
	op := imap.StoreFlagsAdd
	for b.Loop() {
		if _, err := c.Store(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
			b.Fatal(err)
		}
		if op == imap.StoreFlagsAdd {
			op = imap.StoreFlagsDel
		} else {
			op = imap.StoreFlagsAdd
		}
	}
}

const idleClients = 1000

// BenchmarkIdleMemory measures what the server holds for each client idling
// on a selected INBOX over TLS. The clients run in a child process so that
// only server memory is counted. "starttls" is how mailbench's imap-idle
// connects; the argon2id memory its 1000 logins leave behind is
// mailstore's concern, not measured here (the test store hashes cheaply).
func BenchmarkIdleMemory(b *testing.B) {
	e := newEnv(b, func(s *Server) {
		s.ConnLimits = throttle.ConnLimits{PerAddress: 2 * idleClients, PerAccountAddress: 2 * idleClients, PerAccount: 2 * idleClients}
	})
	for i := range 20 {
		e.deliver(b, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", fmt.Sprintf("m%d", i), "b"))
	}
	b.Run("tls", func(b *testing.B) { idleMemory(b, e, e.tls) })
	b.Run("starttls", func(b *testing.B) { idleMemory(b, e, e.plain, "IMAPD_IDLE_STARTTLS=1") })
	// As mailbench's imap-idle: each client its own account, so nothing of
	// one session's mailbox state is shared with another's.
	users := make([]mailstore.NewAccount, idleClients)
	for i := range users {
		users[i] = mailstore.NewAccount{Address: fmt.Sprintf("u%d@example.test", i), Password: "pw"}
	}
	if _, err := e.store.AddAccounts(context.Background(), users); err != nil {
		b.Fatal(err)
	}
	b.Run("starttls-users", func(b *testing.B) {
		idleMemory(b, e, e.plain, "IMAPD_IDLE_STARTTLS=1", "IMAPD_IDLE_USERS=1")
	})
}

// BenchmarkSelectedMemory is BenchmarkIdleMemory with the 10,000-message
// INBOX selected: what a session holds must not grow with the mailbox.
func BenchmarkSelectedMemory(b *testing.B) {
	e := benchEnv(b)
	idleMemory(b, e, e.tls)
}

func idleMemory(b *testing.B, e *env, addr string, env ...string) {
	for b.Loop() {
		before := memNow()
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$")
		cmd.Env = append(os.Environ(), "IMAPD_IDLE_ADDR="+addr, "IMAPD_IDLE_CA="+e.certFile, "IMAPD_IDLE_N="+strconv.Itoa(idleClients))
		cmd.Env = append(cmd.Env, env...)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			b.Fatalf("client farm: %q %v", line, err)
		}
		time.Sleep(200 * time.Millisecond) // let the last IDLE goroutines park
		after := memNow()
		stdin.Close()
		cmd.Wait()
		b.ReportMetric(float64(after.heap-before.heap)/idleClients, "heap-B/conn")
		b.ReportMetric(float64(after.stack-before.stack)/idleClients, "stack-B/conn")
		b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/idleClients, "B/conn")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/idleClients, "goroutines/conn")
	}
}

type mem struct{ heap, stack, goroutines int64 }

// memNow measures after a few collections: each may halve the stacks that
// have grown during login and SELECT, as a long-running server's would be.
func memNow() mem {
	for range 5 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{int64(ms.HeapInuse), int64(ms.StackInuse), int64(runtime.NumGoroutine())}
}

// TestIdleClientsHelper is the client side of BenchmarkIdleMemory, run in a
// child process; in a normal test run it has nothing to do.
func TestIdleClientsHelper(t *testing.T) {
	addr := os.Getenv("IMAPD_IDLE_ADDR")
	if addr == "" {
		return // not a test of its own: BenchmarkIdleMemory's client farm
	}
	n, _ := strconv.Atoi(os.Getenv("IMAPD_IDLE_N"))
	pem, err := os.ReadFile(os.Getenv("IMAPD_IDLE_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	conns := make([]net.Conn, 0, n)
	starttls := os.Getenv("IMAPD_IDLE_STARTTLS") != ""
	users := os.Getenv("IMAPD_IDLE_USERS") != ""
	for i := range n {
		var c net.Conn
		var err error
		if starttls {
			c, err = net.Dial("tcp", addr)
		} else {
			c, err = tls.Dial("tcp", addr, cfg)
		}
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		r := bufio.NewReader(c)
		expect := func(prefix string) {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				if strings.HasPrefix(l, prefix) {
					return
				}
			}
		}
		expect("* OK")
		if starttls {
			fmt.Fprintf(c, "s STARTTLS\r\n")
			expect("s OK")
			c = tls.Client(c, cfg)
			r.Reset(c)
		}
		user := "nam@example.test"
		if users {
			user = fmt.Sprintf("u%d@example.test", i)
		}
		fmt.Fprintf(c, "a LOGIN %s pw\r\nb SELECT INBOX\r\nc IDLE\r\n", user)
		expect("a OK")
		expect("b OK")
		expect("+ ")
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
