package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sealmail/mailstore"
	"sealmail/signing"
)

// TestRecallChild is the child half of TestKill9Recall: the clerk recalls
// the document (unless the register shows it recalled already, as a clerk
// would see), and both queues are relayed; "DONE" at the end.
func TestRecallChild(t *testing.T) {
	dir := os.Getenv("SEALMAIL_RECALL_DIR")
	if dir == "" {
		t.Skip("child process of TestKill9Recall")
	}
	roots, err := signing.ParseCertsPEM(readFile(t, filepath.Join(dir, "authority.pem")))
	if err != nil {
		t.Fatal(err)
	}
	a := reopenSide(t, filepath.Join(dir, "a"), "a.test", roots)
	b := reopenSide(t, filepath.Join(dir, "b"), "b.test", roots)
	id := os.Getenv("SEALMAIL_RECALL_DOC")
	if e, err := a.reg.Entry(context.Background(), "a.test", mailstore.DocOut, id); err != nil {
		t.Fatal(err)
	} else if e.Status == StatusSent {
		if _, err := a.reg.Recall(context.Background(), "a.test", id, "Ban hành sai thẩm quyền"); err != nil {
			t.Fatal(err)
		}
	}
	relay(t, a, b)
	fmt.Println("DONE")
}

// TestKill9Recall kills a recall between a.test and b.test after each step
// is built and after it is committed (the recall at a.test, its arrival at
// b.test, the answer filed at a.test) and checks after each crash that the
// recall is sent, carried out and answered once or not at all: b.test's
// line is withdrawn exactly when its copy moved and its answer exists.
func TestKill9Recall(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop")
	}
	ctx := context.Background()
	x := newExchange(t)
	msg := docMessage(t, x.a.domain.OfficialAddress, x.b.staff.Address, "Văn bản thu hồi", file{"cv.pdf", signedPDF(t, 1, 300)})
	x.submit(t, x.a, x.a.clerk, []string{x.b.staff.Address}, msg)
	es, err := x.a.store.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut})
	if err != nil || len(es) != 1 {
		t.Fatalf("released: %+v, %v", es, err)
	}
	id := es[0].DocumentID
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
	run := func(point string, at int) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRecallChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SEALMAIL_RECALL_DIR="+dir, "SEALMAIL_RECALL_DOC="+id)
		if point != "" {
			cmd.Env = append(cmd.Env, "SEALMAIL_FAULT_POINT="+point, "SEALMAIL_FAULT_AT="+strconv.Itoa(at))
		}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	for _, k := range []struct {
		point string
		at    int
	}{{"step:built", 1}, {"step:committed", 1}, {"step:built", 1}, {"step:committed", 1}, {"step:built", 1}, {"step:committed", 1},
		{"step:built", 2}, {"step:committed", 1}} {
		out := run(k.point, k.at)
		state := checkRecall(t, k.point, dir, false)
		t.Logf("%s #%d: killed %v; %s", k.point, k.at, !strings.Contains(out, "DONE"), state)
		if t.Failed() {
			t.Fatalf("child output:\n%s", out)
		}
	}
	if out := run("", 0); !strings.Contains(out, "DONE") {
		t.Fatalf("last run:\n%s", out)
	}
	t.Log("end: " + checkRecall(t, "end", dir, true))
}

// checkRecall checks both stores after a crash and says how far the recall
// went; done says it must have gone all the way.
func checkRecall(t *testing.T, name, dir string, done bool) string {
	t.Helper()
	ctx := context.Background()
	a, b := reopenPair(t, name, dir)
	defer a.Close()
	defer b.Close()
	count := func(s *mailstore.Store, origin string, event signing.Event) int {
		evs, err := s.Evidence(ctx, mailstore.EvidenceQuery{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Origin == origin && e.Event == string(event) {
				n++
			}
		}
		return n
	}
	queued := func(s *mailstore.Store, event signing.Event) int {
		es, err := s.Queue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			msg, err := s.QueueContent(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			h, _, _ := splitHeader(msg)
			if strings.HasPrefix(h.Get(fieldReceipt), string(event)+";") {
				n++
			}
		}
		return n
	}
	for _, s := range []*mailstore.Store{a, b} {
		if err := s.Check(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, _, err := s.VerifyEvidence(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	out, err := a.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut})
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.Docs(ctx, mailstore.DocQuery{Domain: "b.test", Direction: mailstore.DocIn})
	if err != nil {
		t.Fatal(err)
	}
	sent, answered := count(a, mailstore.EvidenceIssued, signing.RecallRequest), count(a, mailstore.EvidenceReceived, signing.RecallAgreed)
	got, agreed := count(b, mailstore.EvidenceReceived, signing.RecallRequest), count(b, mailstore.EvidenceIssued, signing.RecallAgreed)
	switch out[0].Status {
	case StatusSent:
		if sent != 0 || queued(a, signing.RecallRequest) != 0 || got != 0 {
			t.Errorf("%s: not recalled at a.test, yet sent %d, queued %d, received %d", name, sent, queued(a, signing.RecallRequest), got)
		}
	case StatusRecalling, StatusRecalled:
		if sent != 1 || queued(a, signing.RecallRequest)+got < 1 || queued(a, signing.RecallRequest) > 1 || got > 1 {
			t.Errorf("%s: recall sent %d, queued %d, received %d", name, sent, queued(a, signing.RecallRequest), got)
		}
	default:
		t.Errorf("%s: a.test's line is %s", name, out[0].Status)
	}
	if (out[0].Status == StatusRecalled) != (answered == 1) || answered > 1 {
		t.Errorf("%s: a.test's line is %s with %d answers filed", name, out[0].Status, answered)
	}
	withdrawn := in[0].Status == StatusWithdrawn
	if withdrawn != (got == 1) || got != agreed || (agreed == 1) != (queued(b, signing.RecallAgreed)+answered >= 1) {
		t.Errorf("%s: b.test's line %s, recall received %d, agreed %d, answer queued %d, filed %d", name, in[0].Status, got, agreed,
			queued(b, signing.RecallAgreed), answered)
	}
	moved := messagesIn(t, b, "nam@b.test", RecalledFolder)
	if inbox := messagesIn(t, b, "nam@b.test", "INBOX"); moved != map[bool]int{true: 1, false: 0}[withdrawn] || inbox != 1 {
		// INBOX holds the document, or the recall notice once it moved.
		t.Errorf("%s: nam's INBOX %d, %s %d, line %s", name, inbox, RecalledFolder, moved, in[0].Status)
	}
	// The clerk's registered copy moves with nam's.
	if filed, moved := messagesIn(t, b, "clerk@b.test", InFolder), messagesIn(t, b, "clerk@b.test", RecalledFolder); filed+moved != 1 || (moved == 1) != withdrawn {
		t.Errorf("%s: the clerk's %s %d, %s %d, line %s", name, InFolder, filed, RecalledFolder, moved, in[0].Status)
	}
	if done && (out[0].Status != StatusRecalled || !withdrawn || answered != 1) {
		t.Errorf("%s: at the end a.test's line is %s, b.test's %s, answers %d", name, out[0].Status, in[0].Status, answered)
	}
	return fmt.Sprintf("a.test %s, b.test %s, answers filed %d", out[0].Status, in[0].Status, answered)
}
