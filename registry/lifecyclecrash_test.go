package registry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
)

// The lifecycle crash tests release a document from a.test to b.test, then
// kill a recall (by a.test), a return or the processing states (by b.test)
// at each step's fault points and at random moments, and check after each
// crash that every notice and answer is issued once or not at all, exactly
// when the register line says so, and is queued or filed at the other end
// once: after a restart the clerk, seeing the register, does what is left.

// TestLifecycleChild is the child half of the lifecycle crash tests: the
// clerk does SEALMAIL_LIFECYCLE_ACTION to SEALMAIL_LIFECYCLE_DOC as far as
// the register shows it is not done yet, and both queues are relayed;
// "DONE" at the end.
func TestLifecycleChild(t *testing.T) {
	dir := os.Getenv("SEALMAIL_LIFECYCLE_DIR")
	if dir == "" {
		return // not a test of its own: the lifecycle crash tests run it
	}
	ctx := context.Background()
	a, b := reopenSides(t, dir)
	id := os.Getenv("SEALMAIL_LIFECYCLE_DOC")
	line := func(s *side, dir mailstore.Direction) mailstore.DocEntry {
		e, err := s.reg.Entry(ctx, s.domain.Name, dir, id)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	relay(t, a, b)
	switch action := os.Getenv("SEALMAIL_LIFECYCLE_ACTION"); action {
	case "recall":
		if line(a, mailstore.DocOut).Status == StatusSent {
			if _, err := a.reg.Recall(ctx, "a.test", id, "Ban hành sai thẩm quyền"); err != nil {
				t.Fatal(err)
			}
		}
	case "return":
		if line(b, mailstore.DocIn).Status == StatusReceived {
			if _, err := b.reg.Return(ctx, "b.test", id, "Gửi sai nơi nhận"); err != nil {
				t.Fatal(err)
			}
		}
	case "state":
		for i, st := range processing[1:] {
			if slices.Index(processing, line(b, mailstore.DocIn).Status) > i {
				continue // reported before the crash
			}
			if _, err := b.reg.SetState(ctx, "b.test", id, st); err != nil {
				t.Fatal(err)
			}
			relay(t, a, b)
		}
	default:
		t.Fatalf("action %q", action)
	}
	relay(t, a, b)
	fmt.Println("DONE")
}

// processing are the statuses of a received document in the order the
// clerk reports them.
var processing = []string{StatusReceived, StatusAssigned, StatusProcessing, StatusDone}

// lifecycleCrash releases a document from a.test to b.test, then runs
// action on it in child processes, each killed at a fault point or at a
// random moment, checking with check after each crash; then lets a child
// finish and checks that all was done. It does so in rounds, each with a
// new exchange: the first kills at the k-th hit of each fault point for k
// from 1 to steps (the number of steps the action takes at both ends),
// the others at random hits and moments until a child finishes.
func lifecycleCrash(t *testing.T, action string, steps int, check func(t *testing.T, name, dir string, done bool) string) {
	if testing.Short() {
		t.Skip("crash loop")
	}
	ctx := context.Background()
	for round := range 4 {
		x := newExchange(t)
		msg := docMessage(t, x.a.domain.OfficialAddress, x.b.staff.Address, "Văn bản số 7", file{"cv.pdf", signedPDF(t, 1, 300)})
		x.submit(t, x.a, x.a.clerk, []string{x.b.staff.Address}, msg)
		es, err := x.a.store.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut})
		if err != nil || len(es) != 1 {
			t.Fatalf("released: %+v, %v", es, err)
		}
		dir := crashDir(t, x)
		env := []string{"SEALMAIL_LIFECYCLE_DIR=" + dir, "SEALMAIL_LIFECYCLE_DOC=" + es[0].DocumentID, "SEALMAIL_LIFECYCLE_ACTION=" + action}
		// A child does first what the one before left (relays again what
		// it had not removed from a queue), so the k-th hit falls on each
		// step in turn or on one done again. A random round ends when a
		// child was not killed: the action is done.
		for i := 0; i < 2*steps; i++ {
			k := kill{point: []string{"step:built", "step:committed"}[i%2], at: i/2 + 1}
			if round > 0 {
				k = kill{point: []string{"step:built", "step:committed"}[rand.IntN(2)], at: 1 + rand.IntN(steps)}
				if rand.IntN(3) == 0 {
					k = kill{after: time.Duration(5+rand.IntN(150)) * time.Millisecond}
				}
			}
			out := runChild(t, "TestLifecycleChild", env, k)
			name := fmt.Sprintf("round %d, %s", round, k)
			killed := !strings.Contains(out, "DONE")
			state := check(t, name, dir, false)
			t.Logf("%s: killed %v; %s", name, killed, state)
			if t.Failed() {
				t.Fatalf("child output:\n%s", out)
			}
			if round > 0 && !killed {
				break
			}
		}
		if out := runChild(t, "TestLifecycleChild", env, kill{}); !strings.Contains(out, "DONE") {
			t.Fatalf("last run:\n%s", out)
		}
		t.Logf("round %d, end: %s", round, check(t, "end", dir, true))
	}
}

// TestKill9Recall: a recall (at a.test), carried out (at b.test) and
// answered (filed at a.test) is sent, carried out and answered once or not
// at all, and b.test's line is withdrawn exactly when its copies moved and
// its answer exists.
func TestKill9Recall(t *testing.T) {
	lifecycleCrash(t, "recall", 3, checkRecall)
}

// TestKill9Return: a return (at b.test) and its notice filed (at a.test):
// the notice, 02, is issued exactly when b.test's line is returned, queued
// or filed once, and a.test's line is returned exactly when it is filed.
func TestKill9Return(t *testing.T) {
	lifecycleCrash(t, "return", 2, checkReturn)
}

// TestKill9State: assigned, processing, done (at b.test), each notice filed
// at a.test: each of 04, 05, 06 is issued exactly when b.test's line
// reached its state, queued or filed once, and a.test's acknowledgement is
// the latest filed.
func TestKill9State(t *testing.T) {
	lifecycleCrash(t, "state", 6, checkState)
}

// lines returns a.test's outgoing and b.test's incoming line of the one
// document.
func lines(t *testing.T, a, b *mailstore.Store) (out, in mailstore.DocEntry) {
	t.Helper()
	ctx := context.Background()
	outs, err := a.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut})
	if err != nil || len(outs) != 1 {
		t.Fatalf("a.test's outgoing register: %+v, %v", outs, err)
	}
	ins, err := b.Docs(ctx, mailstore.DocQuery{Domain: "b.test", Direction: mailstore.DocIn})
	if err != nil || len(ins) != 1 {
		t.Fatalf("b.test's incoming register: %+v, %v", ins, err)
	}
	return outs[0], ins[0]
}

// evidenceCount counts the evidence of s with origin and event.
func evidenceCount(t *testing.T, s *mailstore.Store, origin string, event signing.Event) int {
	t.Helper()
	evs, err := s.Evidence(context.Background(), mailstore.EvidenceQuery{})
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

// queuedNotices counts the receipts and notices of event in s's queue.
func queuedNotices(t *testing.T, s *mailstore.Store, event signing.Event) int {
	t.Helper()
	ctx := context.Background()
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

// checkNotice checks a notice of event issued at from and filed at to:
// issued once exactly when want, then queued or filed, each at most once
// (queued and filed both when the relay died in between); once done, filed
// and no longer queued. It returns how many times it was filed.
func checkNotice(t *testing.T, name string, event signing.Event, from, to *mailstore.Store, want, done bool) int {
	t.Helper()
	issued, queued := evidenceCount(t, from, mailstore.EvidenceIssued, event), queuedNotices(t, from, event)
	filed := evidenceCount(t, to, mailstore.EvidenceReceived, event)
	switch {
	case issued != map[bool]int{true: 1, false: 0}[want]:
		t.Errorf("%s: %s issued %d times", name, event, issued)
	case !want && queued+filed > 0:
		t.Errorf("%s: %s not issued, yet queued %d, filed %d", name, event, queued, filed)
	case want && (queued+filed < 1 || queued > 1 || filed > 1):
		t.Errorf("%s: %s issued, queued %d, filed %d", name, event, queued, filed)
	case done && want && (filed != 1 || queued != 0):
		t.Errorf("%s: %s at the end: queued %d, filed %d", name, event, queued, filed)
	}
	return filed
}

// checkRecall checks both stores after a crash in a recall and says how
// far it went; done says it must have gone all the way.
func checkRecall(t *testing.T, name, dir string, done bool) string {
	t.Helper()
	a, b := reopenPair(t, name, dir)
	defer a.Close()
	defer b.Close()
	out, in := lines(t, a, b)
	if !slices.Contains([]string{StatusSent, StatusRecalling, StatusRecalled}, out.Status) {
		t.Errorf("%s: a.test's line is %s", name, out.Status)
	}
	got := checkNotice(t, name, signing.RecallRequest, a, b, out.Status != StatusSent, done)
	withdrawn := in.Status == StatusWithdrawn
	if withdrawn != (got == 1) {
		t.Errorf("%s: b.test's line is %s with the recall received %d times", name, in.Status, got)
	}
	answered := checkNotice(t, name, signing.RecallAgreed, b, a, withdrawn, done)
	if (out.Status == StatusRecalled) != (answered == 1) {
		t.Errorf("%s: a.test's line is %s with %d answers filed", name, out.Status, answered)
	}
	moved := messagesIn(t, b, "nam@b.test", RecalledFolder)
	if inbox := messagesIn(t, b, "nam@b.test", "INBOX"); moved != map[bool]int{true: 1, false: 0}[withdrawn] || inbox != 1 {
		// INBOX holds the document, or the recall notice once it moved.
		t.Errorf("%s: nam's INBOX %d, %s %d, line %s", name, inbox, RecalledFolder, moved, in.Status)
	}
	// The clerk's registered copy moves with nam's.
	if filed, moved := messagesIn(t, b, "clerk@b.test", InFolder), messagesIn(t, b, "clerk@b.test", RecalledFolder); filed+moved != 1 || (moved == 1) != withdrawn {
		t.Errorf("%s: the clerk's %s %d, %s %d, line %s", name, InFolder, filed, RecalledFolder, moved, in.Status)
	}
	if done && (out.Status != StatusRecalled || !withdrawn) {
		t.Errorf("%s: at the end a.test's line is %s, b.test's %s", name, out.Status, in.Status)
	}
	return fmt.Sprintf("a.test %s, b.test %s, answers filed %d", out.Status, in.Status, answered)
}

// checkReturn checks both stores after a crash in a return.
func checkReturn(t *testing.T, name, dir string, done bool) string {
	t.Helper()
	a, b := reopenPair(t, name, dir)
	defer a.Close()
	defer b.Close()
	out, in := lines(t, a, b)
	if in.Status != StatusReceived && in.Status != StatusReturned {
		t.Errorf("%s: b.test's line is %s", name, in.Status)
	}
	filed := checkNotice(t, name, signing.Returned, b, a, in.Status == StatusReturned, done)
	ack := map[bool]string{true: "02", false: "03"}[filed == 1]
	if (out.Status == StatusReturned) != (filed == 1) || len(out.Acks) != 1 || out.Acks[0].StatusCode != ack {
		t.Errorf("%s: a.test's line is %s, acknowledged %+v, with the return filed %d times", name, out.Status, out.Acks, filed)
	}
	if done && (in.Status != StatusReturned || out.Status != StatusReturned) {
		t.Errorf("%s: at the end b.test's line is %s, a.test's %s", name, in.Status, out.Status)
	}
	return fmt.Sprintf("b.test %s, a.test %s", in.Status, out.Status)
}

// checkState checks both stores after a crash in the processing states.
func checkState(t *testing.T, name, dir string, done bool) string {
	t.Helper()
	a, b := reopenPair(t, name, dir)
	defer a.Close()
	defer b.Close()
	out, in := lines(t, a, b)
	reached := slices.Index(processing, in.Status)
	if reached < 0 {
		t.Fatalf("%s: b.test's line is %s", name, in.Status)
	}
	ack := "03"
	for i, st := range processing[1:] {
		if checkNotice(t, name, States[st].Event, b, a, i < reached, done) == 1 {
			ack = States[st].Code
		}
	}
	if out.Status != StatusSent || len(out.Acks) != 1 || out.Acks[0].StatusCode != ack {
		t.Errorf("%s: a.test's line is %s, acknowledged %+v, want %s", name, out.Status, out.Acks, ack)
	}
	if done && in.Status != StatusDone {
		t.Errorf("%s: at the end b.test's line is %s", name, in.Status)
	}
	return fmt.Sprintf("b.test %s, a.test acknowledged %s", in.Status, out.Acks[0].StatusCode)
}
