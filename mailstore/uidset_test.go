package mailstore

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestViewCache checks that the UID set a View gets from the cache (the
// cached one, or the cached one with the changes since applied) is always
// the one the mailbox's UID runs give, through random appends, expunges and
// moves, and that sessions opening a mailbox in one state share one set.
func TestViewCache(t *testing.T) {
	ctx := context.Background()
	s, a := openWithAccount(t, "v@example.test")
	other, err := s.CreateMailbox(ctx, a.ID, "Khác", "")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, Inbox)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var msgs []NewMessage
	for range 300 {
		msgs = append(msgs, NewMessage{Content: []byte("Subject: x\r\n\r\ny\r\n")})
	}
	if _, err := s.AppendMany(ctx, a.ID, Inbox, msgs); err != nil {
		t.Fatal(err)
	}
	for step := range 60 {
		v, err := s.View(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.views.clear()
		fresh, err := s.View(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.UIDs.Runs(), fresh.UIDs.Runs()) || v.UIDs.Len() != fresh.Messages {
			t.Fatalf("step %d: cached %v (%d), read %v (%d messages)", step, v.UIDs, v.UIDs.Len(), fresh.UIDs, fresh.Messages)
		}
		if again, _ := s.View(ctx, inbox.ID); again.UIDs != fresh.UIDs {
			t.Fatalf("step %d: two views of one state do not share their UID set", step)
		}
		for k := fresh.UIDs.Len(); k > 0 && k > fresh.UIDs.Len()-3; k-- {
			if uid := fresh.UIDs.UID(k); fresh.UIDs.Rank(uid) != k {
				t.Fatalf("step %d: UID(%d) = %d, whose rank is %d", step, k, uid, fresh.UIDs.Rank(uid))
			}
		}
		// A few random changes between two views.
		for range 1 + rnd.IntN(4) {
			var pick []uint32
			for range 1 + rnd.IntN(8) {
				if n := fresh.UIDs.Len(); n > 0 {
					pick = append(pick, fresh.UIDs.UID(1+uint32(rnd.IntN(int(n)))))
				}
			}
			switch rnd.IntN(3) {
			case 0:
				if _, err := s.AppendMany(ctx, a.ID, Inbox, msgs[:1+rnd.IntN(5)]); err != nil {
					t.Fatal(err)
				}
			case 1:
				if _, err := s.StoreFlags(ctx, inbox.ID, pick, FlagsAdd, []string{`\Deleted`}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Expunge(ctx, inbox.ID, nil); err != nil {
					t.Fatal(err)
				}
			case 2:
				if _, _, err := s.Move(ctx, inbox.ID, pick, other.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
