package mailstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestCommitDoc: a step commits whole or not at all; a stale number, a
// message registered before and a repeated receipt change nothing; a
// recall moves the copies; the register keeps the original.
func TestCommitDoc(t *testing.T) {
	ctx := context.Background()
	s := openDir(t, t.TempDir())
	accts := storetest.Setup(t, s, "nam@example.test", "clerk@example.test")
	nam, clerk := accts[0], accts[1]
	doc := []byte("From: vanthu@a.test\r\nTo: nam@example.test\r\nMessage-ID: <1@a.test>\r\nSubject: Công văn\r\n\r\nNội dung\r\n")
	receipt := []byte("From: vanthu@example.test\r\nTo: vanthu@a.test\r\nSubject: Biên nhận\r\n\r\n01\r\n")
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	ref := mailstore.DocRef{Domain: "example.test", Direction: mailstore.DocIn, MessageID: "<1@a.test>"}
	step := func(number int) mailstore.DocCommit {
		return mailstore.DocCommit{
			Entries: []mailstore.NewDoc{{DocEntry: mailstore.DocEntry{Domain: "example.test", Direction: mailstore.DocIn, Year: 2026,
				Number: number, MessageID: ref.MessageID, DocumentID: "D1", Status: "received", Time: t0}, Original: doc}},
			Deliveries: []mailstore.DocDelivery{{Content: doc, Date: t0, Targets: []mailstore.Target{{AccountID: nam.ID}, {AccountID: clerk.ID, Mailbox: "Văn bản đến"}}}},
			Queue:      []mailstore.QueuedMessage{{From: "vanthu@example.test", Rcpts: []string{"vanthu@a.test"}, Content: receipt}},
			Evidence: []mailstore.Evidence{{Domain: "example.test", Time: t0, Origin: mailstore.EvidenceIssued, Event: "ContentConsignment",
				DocumentID: "D1", MessageID: ref.MessageID, StatusCode: "01", Sender: "vanthu@a.test", Receipt: receipt}},
			Acks: []mailstore.EntryAck{{Ref: ref, Ack: mailstore.DocAck{Party: "vanthu@a.test", StatusCode: "01", Time: t0}}},
		}
	}
	if _, err := s.CommitDoc(ctx, step(2)); !errors.Is(err, mailstore.ErrNumberTaken) {
		t.Fatalf("number 2 of an empty register: %v", err)
	}
	n, err := s.NextDocNumber(ctx, "example.test", mailstore.DocIn, mailstore.SeriesOrdinary, 2026)
	if err != nil || n != 1 {
		t.Fatalf("next number %d, %v", n, err)
	}
	res, err := s.CommitDoc(ctx, step(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].Number != 1 || len(res.Deliveries) != 1 || res.Deliveries[0][1].Err != nil {
		t.Fatalf("committed %+v", res)
	}
	// Done before: nothing changes.
	if _, err := s.CommitDoc(ctx, step(2)); !errors.Is(err, mailstore.ErrExists) {
		t.Fatalf("the same message again: %v", err)
	}
	es, err := s.Docs(ctx, mailstore.DocQuery{Domain: "example.test"})
	if err != nil || len(es) != 1 || len(es[0].Acks) != 1 {
		t.Fatalf("register %+v, %v", es, err)
	}
	if q, _ := s.Queue(ctx); len(q) != 1 {
		t.Errorf("%d queued, want the receipt once", len(q))
	}
	if ev, _ := s.Evidence(ctx, mailstore.EvidenceQuery{}); len(ev) != 1 {
		t.Errorf("%d evidence rows, want 1", len(ev))
	}
	if got, err := s.DocOriginal(ctx, es[0].ID); err != nil || string(got) != string(doc) {
		t.Errorf("original %q, %v", got, err)
	}
	// A receipt recorded once.
	once := mailstore.Evidence{Domain: "example.test", Time: t0, Origin: mailstore.EvidenceReceived, Event: "ContentConsignment",
		DocumentID: "D0", MessageID: "<0@example.test>", StatusCode: "01", Sender: "vanthu@a.test"}
	for i := range 2 {
		_, err := s.CommitDoc(ctx, mailstore.DocCommit{Evidence: []mailstore.Evidence{once}, Once: &once})
		if (i == 0) != (err == nil) || i == 1 && !errors.Is(err, mailstore.ErrExists) {
			t.Errorf("receipt %d: %v", i, err)
		}
	}
	// Before the recall nam files the document in a folder of his own and
	// throws a copy away; an account of another domain holds the same
	// content (delivered to it on its own).
	inbox, err := s.Mailbox(ctx, nam.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	filed, err := s.CreateMailbox(ctx, nam.ID, "Hồ sơ/2026", "")
	if err != nil {
		t.Fatal(err)
	}
	trash, err := s.SpecialMailbox(ctx, nam.ID, `\Trash`)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Copy(ctx, inbox.ID, []uint32{1}, trash.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Move(ctx, inbox.ID, []uint32{1}, filed.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDomain(ctx, mailstore.Domain{Name: "other.test"}); err != nil {
		t.Fatal(err)
	}
	lan, err := s.AddAccount(ctx, mailstore.NewAccount{Address: "lan@other.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx, doc, t0, []mailstore.Target{{AccountID: lan.ID}}); err != nil {
		t.Fatal(err)
	}
	// A recall: the line is withdrawn and every copy held in the domain
	// moves, wherever it was filed, the clerk's too; the one in Trash and
	// the other domain's stay.
	res, err = s.CommitDoc(ctx, mailstore.DocCommit{
		Updates: []mailstore.DocUpdate{{Ref: ref, Status: "withdrawn", Note: "thu hồi"}},
		Moves:   []mailstore.DocMove{{Ref: ref, To: "Văn bản thu hồi", Keep: []string{`\Trash`}}},
	})
	if err != nil || res.Moved != 2 {
		t.Fatalf("recall: moved %d, %v", res.Moved, err)
	}
	for _, c := range []struct {
		acct mailstore.Account
		mb   string
		n    uint32
	}{{nam, "INBOX", 0}, {nam, "Hồ sơ/2026", 0}, {nam, "Văn bản thu hồi", 1}, {nam, "Trash", 1},
		{clerk, "Văn bản đến", 0}, {clerk, "Văn bản thu hồi", 1}, {lan, "INBOX", 1}} {
		mb, err := s.Mailbox(ctx, c.acct.ID, c.mb)
		if err != nil {
			t.Fatalf("%s %s: %v", c.acct.Address, c.mb, err)
		}
		if st, _ := s.MailboxStatus(ctx, mb.ID); st.Messages != c.n {
			t.Errorf("%s %s holds %d, want %d", c.acct.Address, c.mb, st.Messages, c.n)
		}
	}
	// Recalled again: what is in "Văn bản thu hồi" already stays.
	if res, err := s.CommitDoc(ctx, mailstore.DocCommit{Moves: []mailstore.DocMove{{Ref: ref, To: "Văn bản thu hồi", Keep: []string{`\Trash`}}}}); err != nil || res.Moved != 0 {
		t.Errorf("second recall: moved %d, %v", res.Moved, err)
	}
	es, _ = s.Docs(ctx, mailstore.DocQuery{Domain: "example.test"})
	if es[0].Status != "withdrawn" || es[0].Notes != "thu hồi" {
		t.Errorf("after recall: %+v", es[0])
	}
	if err := s.Check(ctx); err != nil {
		t.Error(err)
	}
}
