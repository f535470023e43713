package storetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
)

// testAccept stores one message for local mailboxes and the outbound queue
// in one operation, its content once, read from a file.
func testAccept(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	accts := Setup(t, s, "acc1@example.test", "acc2@example.test")
	raw := Msg("acc1@example.test", "acc2@example.test, x@remote.test", "cả hai", strings.Repeat("nội dung dài\r\n", 5000))
	path := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := s.Accept(ctx, mailstore.Delivery{
		Content: mailstore.Content{R: f, Size: int64(len(raw))},
		Targets: []mailstore.Target{{AccountID: accts[0].ID}, {AccountID: accts[1].ID}},
		From:    "acc1@example.test",
		Remote:  []string{"x@remote.test", "y@remote.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.QueueID == 0 || len(a.Delivered) != 2 {
		t.Fatalf("accepted %+v", a)
	}
	for _, d := range a.Delivered {
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		var it mailstore.Item
		err := s.Fetch(ctx, d.MailboxID, []uint32{d.UID}, mailstore.FetchContent|mailstore.FetchEnvelope|mailstore.FetchStructure, func(i mailstore.Item) error {
			it = i
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if it.Structure == nil || it.Structure.Lines != 5001 {
			t.Errorf("structure %+v, want a text part of 5001 lines", it.Structure)
		}
		if !bytes.Equal(it.Content, raw) || it.Envelope.Subject != "cả hai" || it.Size != int64(len(raw)) {
			t.Errorf("delivered %d bytes, subject %q; want the %d bytes sent", len(it.Content), it.Envelope.Subject, len(raw))
		}
	}
	e := must[mailstore.QueueEntry](t)(s.QueueEntry(ctx, a.QueueID))
	if e.From != "acc1@example.test" || len(e.Rcpts) != 2 || e.Size != int64(len(raw)) {
		t.Errorf("queued %+v", e)
	}
	if q := must[[]byte](t)(s.QueueContent(ctx, a.QueueID)); !bytes.Equal(q, raw) {
		t.Error("queued content differs")
	}
	st := must[mailstore.StorageStats](t)(s.StorageStats(ctx))
	if st.Blobs != 1 || st.Refs != 3 {
		t.Errorf("stats %+v: want one content with 3 references (2 messages, 1 queue entry)", st)
	}

	// A reader that fails stores nothing.
	_, err = s.Accept(ctx, mailstore.Delivery{Content: mailstore.Content{R: failing{}, Size: 100}, Targets: []mailstore.Target{{AccountID: accts[0].ID}}})
	if err == nil {
		t.Error("content that cannot be read was accepted")
	}
	if _, err := s.Accept(ctx, mailstore.Delivery{Content: mailstore.Bytes(raw)}); !errors.Is(err, mailstore.ErrInvalid) {
		t.Errorf("no targets, no recipients: %v, want ErrInvalid", err)
	}
}

type failing struct{}

func (failing) ReadAt(p []byte, off int64) (int, error) { return 0, errors.New("disk on fire") }

// testOverfill: a mailbox over quota takes the message after all when
// another target or the queue takes it (Delivery.Overfill), and only then.
func testOverfill(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	accts := Setup(t, s, "full@example.test", "room@example.test")
	if err := s.SetQuota(ctx, "full@example.test", 100); err != nil {
		t.Fatal(err)
	}
	raw := Msg("x@remote.test", "full@example.test", "big", strings.Repeat("x", 500))
	full := mailstore.Target{AccountID: accts[0].ID}
	room := mailstore.Target{AccountID: accts[1].ID}
	for _, tc := range []struct {
		name       string
		d          mailstore.Delivery
		overfilled bool
	}{
		{"alone", mailstore.Delivery{Targets: []mailstore.Target{full}, Overfill: true}, false},
		{"without Overfill", mailstore.Delivery{Targets: []mailstore.Target{full, room}}, false},
		{"with another mailbox", mailstore.Delivery{Targets: []mailstore.Target{full, room}, Overfill: true}, true},
		{"with the queue", mailstore.Delivery{Targets: []mailstore.Target{full}, Overfill: true, Remote: []string{"x@remote.test"}}, true},
	} {
		tc.d.Content, tc.d.Date = mailstore.Bytes(raw), time.Now()
		a, err := s.Accept(ctx, tc.d)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		d := a.Delivered[0]
		if tc.overfilled {
			if d.Err != nil || !d.Overfilled || d.UID == 0 {
				t.Errorf("%s: %+v, want delivered over quota", tc.name, d)
			}
		} else if !errors.Is(d.Err, mailstore.ErrOverQuota) || d.Overfilled {
			t.Errorf("%s: %+v, want ErrOverQuota", tc.name, d)
		}
	}
}
