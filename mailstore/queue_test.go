package mailstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

func TestQueueAndPeers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }() // the store reopened below, too
	a := storetest.Setup(t, s, "a@example.test")[0]
	msg := storetest.Msg("a@example.test", "x@remote.test", "s", "b")
	// The same content in a mailbox and in the queue is stored once.
	if _, err := s.Append(ctx, a.ID, "Sent", msg, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	id, err := s.Enqueue(ctx, "a@example.test", []string{"x@remote.test", "y@remote.test", "x@remote.test"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.StorageStats(ctx); st.Blobs != 1 || st.Refs != 2 {
		t.Errorf("queue does not share content: %+v", st)
	}
	e, err := s.QueueEntry(ctx, id)
	if err != nil || len(e.Rcpts) != 2 || e.Size != int64(len(msg)) {
		t.Fatalf("entry %+v %v", e, err)
	}
	now := time.Now()
	if due, _ := s.QueueDue(ctx, now, now.Add(-time.Hour), 10); len(due) != 1 {
		t.Errorf("fresh entry not due: %d", len(due))
	}
	later := now.Add(time.Hour)
	if err := s.UpdateQueue(ctx, id, []mailstore.RcptUpdate{
		{Addr: "x@remote.test", Status: mailstore.RcptSent},
		{Addr: "y@remote.test", Status: mailstore.RcptPending, NextTry: later, Error: "451 later"},
	}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.QueueDue(ctx, now, now.Add(-time.Hour), 10); len(due) != 0 {
		t.Errorf("deferred entry due: %+v", due)
	}
	if next, ok, _ := s.QueueNextTry(ctx); !ok || next.Unix() != later.Unix() {
		t.Errorf("next try %v %v", next, ok)
	}
	if err := s.RetryQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.QueueDue(ctx, time.Now(), now.Add(-time.Hour), 10); len(due) != 1 || due[0].Rcpts[1].Attempts != 1 || due[0].Rcpts[1].LastError != "451 later" {
		t.Errorf("after retry: %+v", due)
	}
	// Durable across reopening.
	s.Close()
	s, err = mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.QueueContent(ctx, id); err != nil || string(b) != string(msg) {
		t.Errorf("content after reopen: %v", err)
	}
	if err := s.RemoveQueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveQueue(ctx, id); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if st, _ := s.StorageStats(ctx); st.Blobs != 1 || st.Refs != 1 {
		t.Errorf("after removal: %+v", st)
	}

	p := mailstore.Peer{Domain: "Agency-B.test", Relay: "127.0.0.1:25", TLSCA: "PEM", OrganID: "H10", OrganName: "Sở B"}
	if err := s.AddPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPeer(ctx, p); !errors.Is(err, mailstore.ErrExists) {
		t.Errorf("duplicate peer: %v", err)
	}
	got, err := s.Peer(ctx, "agency-b.TEST")
	if err != nil || got.Domain != "agency-b.test" || got.OrganName != "Sở B" || got.TLSCA != "PEM" {
		t.Errorf("peer %+v %v", got, err)
	}
	if ps, _ := s.Peers(ctx); len(ps) != 1 {
		t.Errorf("peers %v", ps)
	}
	if err := s.RemovePeer(ctx, "agency-b.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Peer(ctx, "agency-b.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("removed peer: %v", err)
	}
}
