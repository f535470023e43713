package registry

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
)

// The crash tests run an exchange between a.test and b.test in a child
// process, kill it with SIGKILL at a step's fault points or at a random
// moment, and check after each crash that nothing is half done: every
// document registered is delivered and answered or queued, nothing is
// delivered without its register line, and no receipt is issued or recorded
// twice. The next child goes on as a mail client and a relay would: the
// document whose answer it did not see is submitted again, and what was
// queued is sent (perhaps again).

// crashDocs documents are sent, at most crashBatch in each child process.
const (
	crashDocs  = 30
	crashBatch = 3
)

// TestCrashChild is the child half of TestKill9Exchange: it releases the
// documents SEALMAIL_CRASH_FROM to SEALMAIL_CRASH_TO (excluded), printing "RELEASED i" when
// Outgoing returned, and relays both queues after each, as the relay and the
// peer's SMTP server would; "DONE" when all is sent and answered.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("SEALMAIL_CRASH_DIR")
	if dir == "" {
		return // not a test of its own: TestKill9Exchange runs it
	}
	from, _ := strconv.Atoi(os.Getenv("SEALMAIL_CRASH_FROM"))
	to, _ := strconv.Atoi(os.Getenv("SEALMAIL_CRASH_TO"))
	a, b := reopenSides(t, dir)
	out := bufio.NewWriter(os.Stdout)
	relay(t, a, b)
	for i := from; i < to; i++ {
		msg := readFile(t, filepath.Join(dir, fmt.Sprintf("%d.eml", i)))
		sealed, err := a.reg.Outgoing(context.Background(), a.clerk, a.domain.OfficialAddress, nil, []string{b.staff.Address}, msg)
		if err != nil || sealed == nil {
			t.Fatalf("document %d: %q, %v", i, sealed, err)
		}
		fmt.Fprintf(out, "RELEASED %d\n", i)
		out.Flush()
		relay(t, a, b)
	}
	relay(t, a, b)
	fmt.Fprintln(out, "DONE")
	out.Flush()
}

// relay hands what each side queued to the other until both queues are
// empty; an entry is removed only after the other side took it, so a crash
// in between sends it again.
func relay(t *testing.T, sides ...*side) {
	ctx := context.Background()
	for more := true; more; {
		more = false
		for i, s := range sides {
			peer := sides[1-i]
			es, err := s.store.Queue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				more = true
				msg, err := s.store.QueueContent(ctx, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				var rcpts []string
				for _, r := range e.Rcpts {
					rcpts = append(rcpts, r.Addr)
				}
				if err := peer.receive(ctx, e.From, rcpts, msg); err != nil {
					t.Fatal(err)
				}
				if err := s.store.RemoveQueue(ctx, e.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// reopenSides opens the agencies crashDir moved to dir.
func reopenSides(t *testing.T, dir string) (a, b *side) {
	t.Helper()
	roots, err := signing.ParseCertsPEM(readFile(t, filepath.Join(dir, "authority.pem")))
	if err != nil {
		t.Fatal(err)
	}
	return reopenSide(t, filepath.Join(dir, "a"), "a.test", roots), reopenSide(t, filepath.Join(dir, "b"), "b.test", roots)
}

// reopenSide opens an agency set up by newExchange in an earlier process.
func reopenSide(t *testing.T, dir, domain string, roots []*x509.Certificate) *side {
	ctx := context.Background()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	d, err := s.Domain(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	sd := &side{store: s, dir: dir, domain: d}
	if sd.clerk, err = s.Account(ctx, "clerk@"+domain); err != nil {
		t.Fatal(err)
	}
	if sd.staff, err = s.Account(ctx, "nam@"+domain); err != nil {
		t.Fatal(err)
	}
	sd.reg = &Registry{Store: s, DataDir: dir, Hostname: "mail." + domain, Now: func() time.Time { return t0 },
		Logger: discard, PDF: PDFPolicy{TrustRoots: roots}}
	return sd
}

// TestKill9Exchange kills the exchange at every step's fault points (after
// it is built, after it is committed: at a release, an arrival and a
// receipt filed, in turn) and at random moments, and checks after each
// crash what TestCrashChild's doc says.
func TestKill9Exchange(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop")
	}
	x := newExchange(t)
	dir := crashDir(t, x)
	ids := make([]string, crashDocs)
	for i := range crashDocs {
		msg := docMessage(t, x.a.domain.OfficialAddress, x.b.staff.Address, fmt.Sprintf("Văn bản số %d", i), file{"cv.pdf", signedPDF(t, byte(i), 300)})
		ids[i] = normID(header(t, msg, "Message-Id"))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.eml", i)), msg, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var kills []kill
	for range 3 {
		kills = append(kills, kill{after: time.Duration(300+rand.IntN(1500)) * time.Millisecond})
	}
	// A step is built and committed for each release, each arrival and each
	// receipt filed: hits 1, 2, 3 are those of the first document.
	for _, p := range []string{"step:built", "step:committed"} {
		for _, at := range []int{1, 2, 3, 4 + rand.IntN(5)} {
			kills = append(kills, kill{point: p, at: at})
		}
	}
	for range 3 {
		kills = append(kills, kill{after: time.Duration(300+rand.IntN(1500)) * time.Millisecond})
	}
	next := 0
	batch := func(to int) []string {
		return []string{"SEALMAIL_CRASH_DIR=" + dir, "SEALMAIL_CRASH_FROM=" + strconv.Itoa(next), "SEALMAIL_CRASH_TO=" + strconv.Itoa(to)}
	}
	for _, k := range kills {
		if next == crashDocs {
			break
		}
		out := runChild(t, "TestCrashChild", batch(min(next+crashBatch, crashDocs)), k)
		for _, line := range strings.Split(out, "\n") {
			if n, ok := strings.CutPrefix(line, "RELEASED "); ok {
				i, _ := strconv.Atoi(n)
				next = i + 1
			}
		}
		t.Logf("%s: killed %v, %d of %d documents acknowledged", k, !strings.Contains(out, "DONE"), next, crashDocs)
		checkExchange(t, k.String(), dir, ids[:next], false)
		if t.Failed() {
			return
		}
	}
	// The last run finishes: everything is sent and answered, once.
	if out := runChild(t, "TestCrashChild", batch(crashDocs), kill{}); !strings.Contains(out, "DONE") {
		t.Fatalf("last run:\n%s", out)
	}
	checkExchange(t, "end", dir, ids, true)
}

// crashDir closes x's two agencies and moves them to a new directory, "a"
// and "b", with the signer's CA in authority.pem: what child processes
// open with reopenSide.
func crashDir(t *testing.T, x *exchange) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range []*side{x.a, x.b} {
		s.store.Close()
		if err := os.Rename(s.dir, filepath.Join(dir, strings.TrimSuffix(s.domain.Name, ".test"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "authority.pem"), signing.EncodeCertsPEM(authority().ca.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// kill is where a crash test's child process dies: at the at-th hit of a
// fault point (internal/faultpoint), or after a while; the zero kill lets
// it finish.
type kill struct {
	point string
	at    int
	after time.Duration
}

func (k kill) String() string {
	if k.point == "" {
		return "after " + k.after.String()
	}
	return fmt.Sprintf("%s #%d", k.point, k.at)
}

// runChild runs this binary's test named test in a child process with env
// added, kills it as k says, and returns what it printed.
func runChild(t *testing.T, test string, env []string, k kill) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	if k.point != "" {
		cmd.Env = append(cmd.Env, "SEALMAIL_FAULT_POINT="+k.point, "SEALMAIL_FAULT_AT="+strconv.Itoa(k.at))
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if k.after > 0 {
		timer := time.AfterFunc(k.after, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	cmd.Wait()
	return out.String()
}

// checkSound checks stores after a crash: the database and its counters,
// every content there and intact, the evidence chain unbroken.
func checkSound(t *testing.T, name string, stores ...*mailstore.Store) {
	t.Helper()
	ctx := context.Background()
	for _, s := range stores {
		if err := s.Check(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if rep, err := s.CheckContent(ctx, false); err != nil || len(rep.Missing)+len(rep.Corrupt) > 0 {
			t.Errorf("%s: content %+v, %v", name, rep, err)
		}
		if _, _, err := s.VerifyEvidence(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// reopenPair opens the two agencies' stores in dir ("a" and "b") after a
// crash and checks them (checkSound); the caller closes them.
func reopenPair(t *testing.T, name, dir string) (a, b *mailstore.Store) {
	t.Helper()
	open := func(d string) *mailstore.Store {
		s, err := mailstore.Open(filepath.Join(dir, d), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
		if err != nil {
			t.Fatalf("%s: reopen %s: %v", name, d, err)
		}
		return s
	}
	a, b = open("a"), open("b")
	checkSound(t, name, a, b)
	return a, b
}

// messagesIn counts the messages in a mailbox of addr; a mailbox not yet
// made holds none.
func messagesIn(t *testing.T, s *mailstore.Store, addr, mailbox string) int {
	t.Helper()
	ctx := context.Background()
	acct, err := s.Account(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := s.Mailbox(ctx, acct.ID, mailbox)
	if err != nil {
		return 0
	}
	st, err := s.MailboxStatus(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Messages)
}

// checkExchange checks the two stores after a crash. acked are the
// documents whose release was acknowledged; done says both queues are empty
// and every document must have gone all the way.
func checkExchange(t *testing.T, name, dir string, acked []string, done bool) {
	t.Helper()
	ctx := context.Background()
	a, b := reopenPair(t, name, dir)
	defer a.Close()
	defer b.Close()
	queued := func(s *mailstore.Store) map[string]int {
		es, err := s.Queue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, e := range es {
			msg, err := s.QueueContent(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := splitHeader(msg)
			if err != nil {
				t.Fatal(err)
			}
			key := normID(h.Get("Message-Id"))
			if h.Has(fieldReceipt) {
				key = "receipt " + normID(h.Get("In-Reply-To"))
			}
			out[key]++
		}
		return out
	}
	aq, bq := queued(a), queued(b)
	count := func(s *mailstore.Store, domain, user, mailbox string) int {
		return messagesIn(t, s, user+"@"+domain, mailbox)
	}
	evidence := func(s *mailstore.Store, origin string, event signing.Event) map[string]int {
		es, err := s.Evidence(ctx, mailstore.EvidenceQuery{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, e := range es {
			if e.Origin == origin && e.Event == string(event) {
				out[e.DocumentID]++
			}
		}
		return out
	}

	// a.test: every line sent, numbered 1..n, filed, accepted once, and
	// either queued for b.test or registered there.
	outs, err := a.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut})
	if err != nil {
		t.Fatal(err)
	}
	accepted := evidence(a, mailstore.EvidenceIssued, signing.SubmissionAcceptance)
	byMessage := map[string]mailstore.DocEntry{}
	for i, e := range outs {
		byMessage[e.MessageID] = e
		if e.Number != i+1 || e.Status != StatusSent {
			t.Errorf("%s: a.test line %d: number %d, status %s", name, i+1, e.Number, e.Status)
		}
		if accepted[e.DocumentID] != 1 {
			t.Errorf("%s: %s accepted %d times", name, e.DocumentID, accepted[e.DocumentID])
		}
		if _, err := a.DocOriginal(ctx, e.ID); err != nil {
			t.Errorf("%s: %s: %v", name, e.DocumentID, err)
		}
		_, err := b.DocByMessage(ctx, mailstore.DocRef{Domain: "b.test", Direction: mailstore.DocIn, MessageID: e.MessageID})
		there := err == nil
		if !there && aq[e.MessageID] == 0 {
			t.Errorf("%s: %s registered at a.test, neither queued nor at b.test", name, e.DocumentID)
		}
		if done && (!there || aq[e.MessageID] > 0) {
			t.Errorf("%s: %s not delivered at the end", name, e.DocumentID)
		}
	}
	for _, id := range acked {
		if _, ok := byMessage[id]; !ok {
			t.Errorf("%s: acknowledged release %s not registered", name, id)
		}
	}
	if n := count(a, "a.test", "clerk", OutFolder); n != len(outs) {
		t.Errorf("%s: %d sealed copies filed for %d lines", name, n, len(outs))
	}
	if n := count(a, "a.test", "clerk", "INBOX"); n < len(outs) {
		t.Errorf("%s: %d messages in the clerk's INBOX for %d acceptance receipts", name, n, len(outs))
	}

	// b.test: every line delivered once to the addressee and the clerks,
	// answered once, the answer queued or filed at a.test once.
	ins, err := b.Docs(ctx, mailstore.DocQuery{Domain: "b.test", Direction: mailstore.DocIn})
	if err != nil {
		t.Fatal(err)
	}
	issued := evidence(b, mailstore.EvidenceIssued, signing.ContentConsignment)
	received := evidence(a, mailstore.EvidenceReceived, signing.ContentConsignment)
	for i, e := range ins {
		if e.Number != i+1 || e.Status != StatusReceived {
			t.Errorf("%s: b.test line %d: number %d, status %s", name, i+1, e.Number, e.Status)
		}
		if _, ok := byMessage[e.MessageID]; !ok {
			t.Errorf("%s: b.test registered %s, which a.test never registered", name, e.DocumentID)
		}
		if issued[e.DocumentID] != 1 {
			t.Errorf("%s: %s answered %d times", name, e.DocumentID, issued[e.DocumentID])
		}
		q, r := bq["receipt "+e.MessageID], received[e.DocumentID]
		if q+r != 1 && !(q == 1 && r == 1) {
			// Queued and also filed: the relay died between the two; it is
			// sent again and filed once.
			t.Errorf("%s: %s's receipt queued %d times, filed %d times", name, e.DocumentID, q, r)
		}
		if done && (r != 1 || q != 0) {
			t.Errorf("%s: %s's receipt not filed once at the end (%d, queued %d)", name, e.DocumentID, r, q)
		}
		if o := byMessage[e.MessageID]; done && (len(o.Acks) != 1 || o.Acks[0].StatusCode != "03") {
			t.Errorf("%s: %s acknowledged %+v at a.test", name, e.DocumentID, o.Acks)
		}
	}
	if n := count(b, "b.test", "nam", "INBOX"); n != len(ins) {
		t.Errorf("%s: %d copies in the addressee's INBOX for %d lines", name, n, len(ins))
	}
	if n := count(b, "b.test", "clerk", InFolder); n != len(ins) {
		t.Errorf("%s: %d copies in the clerk's %s for %d lines", name, n, InFolder, len(ins))
	}
	for id, n := range received {
		if n > 1 {
			t.Errorf("%s: receipt for %s filed %d times", name, id, n)
		}
	}
	if done && (len(outs) != crashDocs || len(ins) != crashDocs) {
		t.Errorf("%s: %d released, %d received, want %d", name, len(outs), len(ins), crashDocs)
	}
}
