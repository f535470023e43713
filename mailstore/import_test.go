package mailstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestOrigin delivers a migrated message twice: the second time it is
// recognised by its origin and not stored again; over quota, no origin is
// recorded, so a later run copies it.
func TestOrigin(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	acct := storetest.Setup(t, s, "nam@example.test")[0]
	m := storetest.Msg("a@example.test", "nam@example.test", "old", "x")
	o := &mailstore.Origin{Source: "imap://nam@old.example.test/INBOX", Item: "7.1", Ident: "<1@old> 100 0"}
	deliver := func(o *mailstore.Origin) error {
		t.Helper()
		ds, err := s.Deliver(ctx, m, time.Time{}, []mailstore.Target{{AccountID: acct.ID, Mailbox: "Cũ", Origin: o}})
		if err != nil {
			t.Fatal(err)
		}
		return ds[0].Err
	}
	if err := deliver(o); err != nil {
		t.Fatal(err)
	}
	if err := deliver(o); !errors.Is(err, mailstore.ErrImported) {
		t.Fatalf("second delivery of one origin: %v, want ErrImported", err)
	}
	got, err := s.Imported(ctx, acct.ID, o.Source)
	if err != nil || len(got) != 1 || got["7.1"] != o.Ident {
		t.Errorf("Imported: %v, %v", got, err)
	}
	mb, err := s.Mailbox(ctx, acct.ID, "Cũ")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.MailboxStatus(ctx, mb.ID); st.Messages != 1 {
		t.Errorf("%d messages, want 1", st.Messages)
	}

	if err := s.SetQuota(ctx, acct.Address, 1); err != nil {
		t.Fatal(err)
	}
	o2 := &mailstore.Origin{Source: o.Source, Item: "7.2"}
	if err := deliver(o2); !errors.Is(err, mailstore.ErrOverQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if got, _ := s.Imported(ctx, acct.ID, o.Source); len(got) != 1 {
		t.Errorf("a message refused over quota was recorded as imported: %v", got)
	}
	if err := s.SetQuota(ctx, acct.Address, 0); err != nil {
		t.Fatal(err)
	}
	if err := deliver(o2); err != nil {
		t.Fatalf("after raising the quota: %v", err)
	}
}
