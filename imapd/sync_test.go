package imapd

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// login opens a raw session as user@example.test.
func (e *env) login(t *testing.T, user string) *raw {
	r := e.raw(t)
	if _, st := r.cmd("LOGIN " + user + "@example.test pw"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("login: %s", st)
	}
	return r
}

// newInbox starts a server whose nam@example.test has n messages in INBOX.
func newInbox(t *testing.T, n int) *env {
	e := newEnv(t)
	for i := range n {
		e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", fmt.Sprint("m", i), "b"))
	}
	return e
}

// ok runs a command that must succeed and returns its untagged lines.
func (r *raw) ok(cmd string) []string {
	r.t.Helper()
	lines, st := r.cmd(cmd)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: %s", cmd, st)
	}
	return lines
}

func grep(lines []string, re string) []string {
	var out []string
	rx := regexp.MustCompile(re)
	for _, l := range lines {
		if rx.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// number returns the first decimal number after prefix in lines.
func number(t *testing.T, lines []string, prefix string) uint64 {
	t.Helper()
	for _, l := range lines {
		if i := strings.Index(l, prefix); i >= 0 {
			s := l[i+len(prefix):]
			j := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
			if j < 0 {
				j = len(s)
			}
			n, err := strconv.ParseUint(s[:j], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("no %q in %q", prefix, lines)
	return 0
}

func TestRecent(t *testing.T) {
	e := newInbox(t, 2)
	a := e.accts[0]
	first, second := e.login(t, "nam"), e.login(t, "nam")
	if got := grep(first.ok("SELECT INBOX"), `RECENT$`); fmt.Sprint(got) != "[* 2 RECENT]" {
		t.Errorf("first SELECT: %q", got)
	}
	if got := grep(first.ok("FETCH 1:* (FLAGS)"), `FETCH`); len(got) != 2 || !strings.Contains(got[0], `\Recent`) {
		t.Errorf("first FETCH: %q", got)
	}
	// The first session claimed them: the second sees them old.
	if got := grep(second.ok("SELECT INBOX"), `RECENT$`); fmt.Sprint(got) != "[* 0 RECENT]" {
		t.Errorf("second SELECT: %q", got)
	}
	if got := grep(second.ok("SEARCH RECENT"), `^\* SEARCH`); fmt.Sprint(got) != "[* SEARCH]" {
		t.Errorf("second SEARCH RECENT: %q", got)
	}

	// New mail is recent for whichever session hears of it first.
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "m2", "b"))
	if got := grep(first.ok("NOOP"), `EXISTS|RECENT`); fmt.Sprint(got) != "[* 3 EXISTS * 3 RECENT]" {
		t.Errorf("first NOOP: %q", got)
	}
	if got := grep(second.ok("NOOP"), `EXISTS|RECENT`); fmt.Sprint(got) != "[* 3 EXISTS * 0 RECENT]" {
		t.Errorf("second NOOP: %q", got)
	}
	first.ok("STORE 1 +FLAGS (\\Seen)")
	for key, want := range map[string]string{"RECENT": "* SEARCH 1 2 3", "NEW": "* SEARCH 2 3", "OLD": "* SEARCH", "UNSEEN RECENT": "* SEARCH 2 3"} {
		if got := grep(first.ok("SEARCH "+key), `^\* SEARCH`); len(got) != 1 || got[0] != want {
			t.Errorf("SEARCH %s: %q, want %q", key, got, want)
		}
	}
	if got := grep(second.ok("SEARCH OLD"), `^\* SEARCH`); fmt.Sprint(got) != "[* SEARCH 1 2 3]" {
		t.Errorf("second SEARCH OLD: %q", got)
	}
	// A client cannot set \Recent.
	first.ok(`STORE 1 +FLAGS (\Recent)`)
	if got := grep(second.ok("FETCH 1 FLAGS"), `FETCH`); len(got) != 1 || strings.Contains(got[0], `\Recent`) {
		t.Errorf("\\Recent stored by a client: %q", got)
	}

	// COPY and APPEND make messages recent in the destination; STATUS counts
	// them, EXAMINE shows them without taking them from the next SELECT.
	first.ok("COPY 1:2 Archive")
	first.ok("APPEND Archive {" + strconv.Itoa(len(storetest.Msg("a@b.test", "nam@example.test", "x", "y"))) + "+}\r\n" + string(storetest.Msg("a@b.test", "nam@example.test", "x", "y")))
	if got := grep(second.ok("STATUS Archive (MESSAGES RECENT)"), `STATUS`); fmt.Sprint(got) != `[* STATUS "Archive" (MESSAGES 3 RECENT 3)]` {
		t.Errorf("STATUS: %q", got)
	}
	if got := grep(second.ok("EXAMINE Archive"), `RECENT$`); fmt.Sprint(got) != "[* 3 RECENT]" {
		t.Errorf("EXAMINE: %q", got)
	}
	if got := grep(first.ok("SELECT Archive"), `RECENT$`); fmt.Sprint(got) != "[* 3 RECENT]" {
		t.Errorf("SELECT after EXAMINE: %q", got)
	}
	if got := grep(e.login(t, "nam").ok("STATUS Archive (RECENT)"), `STATUS`); fmt.Sprint(got) != `[* STATUS "Archive" (RECENT 0)]` {
		t.Errorf("STATUS after SELECT: %q", got)
	}

	// IMAP4rev2 has no \Recent.
	rev2 := e.login(t, "nam")
	rev2.ok("ENABLE IMAP4rev2")
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "m3", "b"))
	lines := rev2.ok("SELECT INBOX")
	if got := grep(lines, `RECENT`); len(got) != 0 {
		t.Errorf("IMAP4rev2 SELECT: %q", got)
	}
	if got := grep(rev2.ok("FETCH 4 FLAGS"), `Recent`); len(got) != 0 {
		t.Errorf("IMAP4rev2 FETCH: %q", got)
	}
	// ... and claims nothing: the message is still recent for a rev1 client.
	if got := grep(second.ok("SELECT INBOX"), `RECENT$`); fmt.Sprint(got) != "[* 1 RECENT]" {
		t.Errorf("rev1 SELECT after rev2: %q", got)
	}
}

func TestNewKeywordAnnounced(t *testing.T) {
	e := newInbox(t, 2)
	a, b := e.login(t, "nam"), e.login(t, "nam")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	lines := a.ok("STORE 1 +FLAGS ($CongViec)")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "* FLAGS (") || !strings.Contains(lines[0], "$CongViec") ||
		!strings.HasPrefix(lines[1], "* OK [PERMANENTFLAGS (") || !strings.Contains(lines[1], `$CongViec \*)`) ||
		!strings.Contains(lines[2], "FETCH") {
		t.Errorf("STORE of a new keyword: %q", lines)
	}
	// Once known, no repeat.
	if lines := a.ok("STORE 2 +FLAGS ($CongViec)"); len(lines) != 1 {
		t.Errorf("STORE of a known keyword: %q", lines)
	}
	// The other session hears of the keyword before the flags that use it.
	lines = b.ok("NOOP")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "* FLAGS (") || !strings.Contains(lines[0], "$CongViec") ||
		!strings.Contains(lines[1], "PERMANENTFLAGS") || !strings.Contains(lines[2], "FETCH") {
		t.Errorf("other session: %q", lines)
	}
	// A read-only session gets FLAGS without PERMANENTFLAGS.
	c := e.login(t, "nam")
	c.ok("EXAMINE INBOX")
	a.ok("STORE 1 +FLAGS (DaXuLy)")
	lines = c.ok("NOOP")
	if len(lines) != 2 || !strings.Contains(lines[0], "DaXuLy") || !strings.Contains(lines[1], "FETCH") {
		t.Errorf("EXAMINE session: %q", lines)
	}
}

func TestMoveIntoSelectedMailbox(t *testing.T) {
	e := newInbox(t, 3)
	r := e.login(t, "nam")
	r.ok("SELECT INBOX")
	r.ok("STORE 2 +FLAGS (\\Flagged)")
	lines := r.ok("UID MOVE 2 INBOX")
	if len(grep(lines, `^\* OK \[COPYUID \d+ 2 4\]`)) != 1 || fmt.Sprint(grep(lines, `EXPUNGE|EXISTS`)) != "[* 2 EXPUNGE * 3 EXISTS]" {
		t.Errorf("UID MOVE into INBOX: %q", lines)
	}
	if got := grep(r.ok("UID FETCH 1:* (FLAGS)"), `FETCH`); len(got) != 3 || !strings.Contains(got[2], "UID 4 FLAGS (\\Flagged") {
		t.Errorf("after move: %q", got)
	}
	// With imapclient too, by sequence number.
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	md := must[*imapclient.MoveData](t)(c.Move(imap.SeqSetNum(1), "INBOX").Wait())
	if md.SourceUIDs.String() != "1" || md.DestUIDs.String() != "5" {
		t.Errorf("MOVE: %+v", md)
	}
	uids := must[*imap.SearchData](t)(c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()).AllUIDs()
	if fmt.Sprint(uids) != "[3 4 5]" {
		t.Errorf("UIDs after MOVE: %v", uids)
	}
}

func TestCondStore(t *testing.T) {
	e := newInbox(t, 4)
	c := e.dial(t, "nam", nil)
	sd := must[*imap.SelectData](t)(c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait())
	if sd.HighestModSeq == 0 {
		t.Fatalf("no HIGHESTMODSEQ: %+v", sd)
	}
	base := sd.HighestModSeq
	msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1, 2, 3, 4), &imap.FetchOptions{ModSeq: true}).Collect())
	if len(msgs) != 4 || msgs[3].ModSeq != base {
		t.Fatalf("MODSEQ: %+v", msgs)
	}
	// STORE answers with the new MODSEQ; CHANGEDSINCE then finds just that.
	msgs = must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect())
	if len(msgs) != 1 || msgs[0].ModSeq <= base {
		t.Fatalf("STORE: %+v", msgs)
	}
	stored := msgs[0].ModSeq
	msgs = must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1, 2, 3, 4), &imap.FetchOptions{Flags: true, ChangedSince: base}).Collect())
	if len(msgs) != 1 || msgs[0].SeqNum != 2 || msgs[0].ModSeq != stored {
		t.Errorf("CHANGEDSINCE: %+v", msgs)
	}
	st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait())
	if st.HighestModSeq != stored {
		t.Errorf("STATUS HIGHESTMODSEQ %d, want %d", st.HighestModSeq, stored)
	}
	sr := must[*imap.SearchData](t)(c.Search(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: base + 1}}, nil).Wait())
	if fmt.Sprint(sr.AllSeqNums()) != "[2]" || sr.ModSeq != stored {
		t.Errorf("SEARCH MODSEQ: %v modseq %d", sr.AllSeqNums(), sr.ModSeq)
	}

	// A second process (the CLI, another server) changes a flag: the change
	// bumps MODSEQ, and a conditional STORE based on the old one fails.
	other, err := mailstore.Open(filepath.Dir(e.store.Path()), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	mb := must[mailstore.Mailbox](t)(other.Mailbox(context.Background(), e.accts[0].ID, "INBOX"))
	must[[]mailstore.Message](t)(other.StoreFlags(context.Background(), mb.ID, []uint32{3}, mailstore.FlagsAdd, []string{"$Junk"}))
	other.Close()

	r := e.login(t, "nam")
	lines := r.ok("SELECT INBOX")
	highest := number(t, lines, "[HIGHESTMODSEQ ")
	if highest <= stored {
		t.Errorf("HIGHESTMODSEQ %d after another process's change, was %d", highest, stored)
	}
	lines, st2 := r.cmd(fmt.Sprintf("STORE 1:4 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)", stored))
	if st2 != "OK [MODIFIED 3] Conditional STORE failed for some messages" {
		t.Errorf("conditional STORE: %s", st2)
	}
	if got := grep(lines, `FETCH`); len(got) != 3 || !strings.Contains(got[0], "MODSEQ (") {
		t.Errorf("conditional STORE responses: %q", got)
	}
	lines, st2 = r.cmd(fmt.Sprintf("UID STORE 3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)", highest))
	if !strings.HasPrefix(st2, "OK") || st2 == "OK [MODIFIED" || len(grep(lines, `^\* 3 FETCH \(UID 3 MODSEQ \(\d+\)\)$`)) != 1 {
		t.Errorf("silent conditional STORE: %q %s", lines, st2)
	}
	if _, st2 := r.cmd("UID STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)"); st2 != "OK [MODIFIED 1] Conditional UID STORE failed for some messages" {
		t.Errorf("UNCHANGEDSINCE 0: %s", st2)
	}
	if got := grep(r.ok("SEARCH MODSEQ \"/flags/\\\\draft\" all 1"), `SEARCH`); len(got) != 1 || !regexp.MustCompile(`^\* SEARCH 1 2 3 4 \(MODSEQ \d+\)$`).MatchString(got[0]) {
		t.Errorf("SEARCH MODSEQ with entry: %q", got)
	}
	if got := grep(r.ok("SEARCH RETURN (COUNT) MODSEQ 1"), `ESEARCH`); len(got) != 1 || !regexp.MustCompile(`^\* ESEARCH \(TAG "a\d+"\) COUNT 4 MODSEQ \d+$`).MatchString(got[0]) {
		t.Errorf("ESEARCH MODSEQ: %q", got)
	}
	// A mailbox that never changed has HIGHESTMODSEQ 1, below any change.
	if got := grep(r.ok("STATUS Drafts (HIGHESTMODSEQ)"), `STATUS`); fmt.Sprint(got) != `[* STATUS "Drafts" (HIGHESTMODSEQ 1)]` {
		t.Errorf("STATUS of an unchanged mailbox: %q", got)
	}
	// Once enabled, others' flag changes arrive with their MODSEQ.
	c2 := e.login(t, "nam")
	c2.ok("SELECT INBOX")
	c2.ok("STORE 4 +FLAGS (\\Answered)")
	if got := grep(r.ok("NOOP"), `FETCH`); len(got) != 1 || !regexp.MustCompile(`^\* 4 FETCH \(UID 4 FLAGS \(.*\) MODSEQ \(\d+\)\)$`).MatchString(got[0]) {
		t.Errorf("unsolicited FETCH: %q", got)
	}
	// EXPUNGE's tagged OK reports the new HIGHESTMODSEQ.
	r.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
	_, st2 = r.cmd("EXPUNGE")
	if !regexp.MustCompile(`^OK \[HIGHESTMODSEQ \d+\]`).MatchString(st2) {
		t.Errorf("EXPUNGE: %s", st2)
	}
	// A FETCH enabling CONDSTORE while selected tells HIGHESTMODSEQ first.
	c3 := e.login(t, "nam")
	c3.ok("SELECT INBOX")
	if lines := c3.ok("FETCH 1 (MODSEQ)"); len(lines) != 2 || !strings.HasPrefix(lines[0], "* OK [HIGHESTMODSEQ ") {
		t.Errorf("FETCH MODSEQ enabling CONDSTORE: %q", lines)
	}
}

// TestQResync: a client goes offline; meanwhile another session flags and
// expunges messages and new mail arrives; the client's SELECT (QRESYNC)
// gets exactly those changes.
func TestQResync(t *testing.T) {
	e := newInbox(t, 10)
	r := e.login(t, "nam")
	if _, st := r.cmd("SELECT INBOX (QRESYNC (1 1))"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("QRESYNC without ENABLE: %s", st)
	}
	if got := r.ok("ENABLE QRESYNC"); fmt.Sprint(got) != "[* ENABLED QRESYNC]" {
		t.Errorf("ENABLE: %q", got)
	}
	lines := r.ok("SELECT INBOX")
	validity, highest := number(t, lines, "[UIDVALIDITY "), number(t, lines, "[HIGHESTMODSEQ ")
	r.ok("LOGOUT")

	// Offline: another session works on the mailbox.
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(2, 7), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect())
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(3, 5, 6), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	must[[]uint32](t)(c.Expunge().Collect())
	e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", "new", "b"))

	r, lines = e.resync(t, validity, highest, "1:10")
	if got := grep(lines, `VANISHED`); fmt.Sprint(got) != "[* VANISHED (EARLIER) 3,5:6]" {
		t.Errorf("VANISHED: %q", got)
	}
	fetches := grep(lines, `FETCH`)
	if len(fetches) != 3 || !regexp.MustCompile(`^\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$`).MatchString(fetches[0]) ||
		!strings.HasPrefix(fetches[1], "* 4 FETCH (UID 7 FLAGS (\\Seen) MODSEQ") || !strings.HasPrefix(fetches[2], "* 8 FETCH (UID 11 FLAGS (\\Recent) MODSEQ") {
		t.Errorf("changed messages: %q", fetches)
	}
	if number(t, lines, "[HIGHESTMODSEQ ") <= highest || len(grep(lines, `^\* 8 EXISTS$`)) != 1 {
		t.Errorf("SELECT: %q", lines)
	}
	// Known UIDs limit VANISHED; a stale UIDVALIDITY gets a plain SELECT.
	lines = r.ok(fmt.Sprintf("EXAMINE INBOX (QRESYNC (%d %d 4:5))", validity, highest))
	if got := grep(lines, `VANISHED`); fmt.Sprint(got) != "[* VANISHED (EARLIER) 5]" {
		t.Errorf("VANISHED within known UIDs: %q", got)
	}
	lines = r.ok(fmt.Sprintf("EXAMINE INBOX (QRESYNC (%d %d 1:10 (1:3 1:3)))", validity+1, highest))
	if got := grep(lines, `VANISHED|FETCH`); len(got) != 0 {
		t.Errorf("stale UIDVALIDITY: %q", got)
	}
	// UID FETCH (CHANGEDSINCE VANISHED).
	lines = r.ok(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", highest))
	if got := grep(lines, `VANISHED|FETCH`); len(got) != 4 || got[0] != "* VANISHED (EARLIER) 3,5:6" {
		t.Errorf("UID FETCH VANISHED: %q", got)
	}
	if _, st := r.cmd(fmt.Sprintf("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", highest)); !strings.HasPrefix(st, "BAD") {
		t.Errorf("FETCH VANISHED without UID: %s", st)
	}

	// With QRESYNC on, expunges come as VANISHED, from this session and others.
	r.ok("SELECT INBOX")
	r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	lines, st := r.cmd("EXPUNGE")
	if fmt.Sprint(lines) != "[* VANISHED 1]" || !strings.HasPrefix(st, "OK [HIGHESTMODSEQ ") {
		t.Errorf("EXPUNGE with QRESYNC: %q %s", lines, st)
	}
	if err := c.Noop().Wait(); err != nil { // c hears of UID 1's expunge
		t.Fatal(err)
	}
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect())
	must[[]uint32](t)(c.Expunge().Collect())
	if got := grep(r.ok("NOOP"), `VANISHED|EXPUNGE`); fmt.Sprint(got) != "[* VANISHED 2,4]" {
		t.Errorf("others' expunge with QRESYNC: %q", got)
	}
	lines = r.ok("UID MOVE 7 Archive")
	if got := grep(lines, `VANISHED|EXPUNGE`); fmt.Sprint(got) != "[* VANISHED 7]" {
		t.Errorf("MOVE with QRESYNC: %q", lines)
	}
}

// resync logs in as a QRESYNC client that knew INBOX at validity and highest.
func (e *env) resync(t *testing.T, validity, highest uint64, known string) (*raw, []string) {
	r := e.login(t, "nam")
	r.ok("ENABLE QRESYNC")
	return r, r.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d %s))", validity, highest, known))
}

// TestQResyncAfterHistory: expunge records older than the store keeps are
// answered with every UID the client knows that is gone (RFC 7162 allows a
// superset), never with nothing.
func TestQResyncAfterHistory(t *testing.T) {
	e := newInbox(t, 6)
	r := e.login(t, "nam")
	r.ok("ENABLE QRESYNC")
	lines := r.ok("SELECT INBOX")
	validity, highest := number(t, lines, "[UIDVALIDITY "), number(t, lines, "[HIGHESTMODSEQ ")
	r.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
	r.ok("EXPUNGE")
	r.ok("LOGOUT")
	if err := e.store.PruneChanges(context.Background(), -time.Hour, -time.Hour); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", "new", "b"))
	_, lines = e.resync(t, validity, highest, "1:6")
	if got := grep(lines, `VANISHED`); fmt.Sprint(got) != "[* VANISHED (EARLIER) 2,4]" {
		t.Errorf("VANISHED after pruning: %q", got)
	}
	if got := grep(lines, `FETCH`); len(got) != 1 || !strings.Contains(got[0], "UID 7 ") {
		t.Errorf("FETCH after pruning: %q", got)
	}
}

// TestView checks the UID-range view against a plain slice through random
// additions and expunges, past the point where it makes a set of its own,
// and that views opened on one set share it.
func TestView(t *testing.T) {
	var ref []uint32
	var runs []mailstore.UIDRange
	for uid := uint32(1); uid <= 3000; uid++ {
		if uid%7 != 0 && uid%11 != 0 {
			ref = append(ref, uid)
			if n := len(runs); n > 0 && runs[n-1].Last+1 == uid {
				runs[n-1].Last = uid
			} else {
				runs = append(runs, mailstore.UIDRange{First: uid, Last: uid})
			}
		}
	}
	shared := mailstore.NewUIDSet(runs)
	v, other := newView(shared), newView(shared)
	check := func(step string) {
		t.Helper()
		if v.len() != uint32(len(ref)) {
			t.Fatalf("%s: len %d, want %d", step, v.len(), len(ref))
		}
		if got := v.all(nil); !slices.Equal(got, ref) {
			t.Fatalf("%s: %d UIDs, want %d", step, len(got), len(ref))
		}
		for i, uid := range ref {
			if v.uid(uint32(i+1)) != uid || v.seq(uid) != uint32(i+1) {
				t.Fatalf("%s: seq %d uid %d: got uid %d seq %d", step, i+1, uid, v.uid(uint32(i+1)), v.seq(uid))
			}
		}
		if len(ref) > 3 {
			if got := v.between(nil, 2, uint32(len(ref)-1)); !slices.Equal(got, ref[1:len(ref)-1]) {
				t.Fatalf("%s: between gave %d UIDs", step, len(got))
			}
			var fromRuns []uint32
			for _, r := range v.seqRuns(nil, 2, uint32(len(ref)+5)) {
				for u := r.First; u <= r.Last; u++ {
					fromRuns = append(fromRuns, u)
				}
			}
			if !slices.Equal(fromRuns, ref[1:]) {
				t.Fatalf("%s: seqRuns gave %d UIDs", step, len(fromRuns))
			}
			lo, hi := ref[0]+1, ref[len(ref)-1]-1
			if got := v.within(nil, lo, hi); !slices.Equal(got, ref[1:len(ref)-1]) || v.count(lo, hi) != uint32(len(ref)-2) {
				t.Fatalf("%s: within %d:%d gave %d UIDs, count %d; want %d", step, lo, hi, len(got), v.count(lo, hi), len(ref)-2)
			}
		}
		if v.last() != ref[len(ref)-1] {
			t.Fatalf("%s: last %d, want %d", step, v.last(), ref[len(ref)-1])
		}
	}
	check("start")
	seed := uint32(1)
	rnd := func(n int) int { seed = seed*1103515245 + 12345; return int(seed>>16) % n }
	for round := range 700 {
		if rnd(3) == 0 {
			uid := v.last() + 1 + uint32(rnd(3))
			v.add(uid)
			ref = append(ref, uid)
		} else if len(ref) > 0 {
			var batch []uint32
			for range 1 + rnd(4) {
				batch = append(batch, ref[rnd(len(ref))])
			}
			batch = append(batch, 100000) // unknown: skipped
			want := slices.Clone(ref)
			var seqs []uint32
			sorted := slices.Clone(batch)
			slices.Sort(sorted)
			for _, uid := range slices.Compact(sorted) {
				if i := slices.Index(want, uid); i >= 0 {
					seqs = append(seqs, uint32(i+1))
					want = slices.Delete(want, i, i+1)
				}
			}
			if got := v.remove(batch); !slices.Equal(got, seqs) {
				t.Fatalf("round %d: remove %v gave %v, want %v", round, batch, got, seqs)
			}
			ref = want
		}
		if round%50 == 0 || round > 650 {
			check(fmt.Sprint("round ", round))
		}
	}
	if v.base == shared {
		t.Errorf("a view that saw %d changes still holds only the shared set", 700)
	}
	if other.base != shared || other.len() != shared.Len() {
		t.Errorf("another view of the same set changed with the first")
	}
}
