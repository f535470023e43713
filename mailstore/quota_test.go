package mailstore_test

import (
	"context"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

func TestDeletedSize(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	acct := storetest.Setup(t, s, "nam@example.test")[0]
	small := storetest.Msg("a@example.test", "nam@example.test", "small", "x")
	big := storetest.Msg("a@example.test", "nam@example.test", "big", string(make([]byte, 5000)))
	var uids []uint32
	for _, m := range [][]byte{small, big} {
		ds, err := s.Deliver(ctx, m, time.Time{}, []mailstore.Target{{AccountID: acct.ID, Mailbox: mailstore.Inbox}})
		if err != nil || ds[0].Err != nil {
			t.Fatalf("deliver: %v %v", err, ds)
		}
		uids = append(uids, ds[0].UID)
	}
	mb, err := s.Mailbox(ctx, acct.ID, mailstore.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	deleted := func() int64 {
		t.Helper()
		n, err := s.DeletedSize(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := deleted(); n != 0 {
		t.Errorf("nothing flagged: %d", n)
	}
	if _, err := s.StoreFlags(ctx, mb.ID, uids[1:], mailstore.FlagsAdd, []string{`\Deleted`, `\Seen`}); err != nil {
		t.Fatal(err)
	}
	n := deleted()
	if n != int64(len(big)) {
		t.Errorf("big flagged: %d, want %d", n, len(big))
	}

	// The figure is what an expunge gives back to the quota.
	before, err := s.Account(ctx, acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, mb.ID, nil); err != nil {
		t.Fatal(err)
	}
	after, err := s.Account(ctx, acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	if before.Used-after.Used != n {
		t.Errorf("expunge freed %d bytes, DeletedSize said %d", before.Used-after.Used, n)
	}
	if n := deleted(); n != 0 {
		t.Errorf("after expunge: %d", n)
	}
}
