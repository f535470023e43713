package mailstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"os"
	"testing"
	"time"
)

// openWithAccount opens a store in a temporary directory, closed at the
// end of the test, with one account.
func openWithAccount(t *testing.T, addr string) (*Store, Account) {
	t.Helper()
	s, err := Open(t.TempDir(), Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.AddDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.AddAccount(ctx, NewAccount{Address: addr, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// TestIndexKeepsNoText checks that the full-text index holds no copy of the
// text (schema/0010), and that the terms of expunged content leave the index
// (the text read again from the blob store) before the content is deleted.
func TestIndexKeepsNoText(t *testing.T) {
	ctx := context.Background()
	s, a := openWithAccount(t, "idx@example.test")
	raw := []byte("From: Lê Thị Hoa <hoa@example.test>\r\nTo: idx@example.test\r\nSubject: Báo cáo quý\r\n\r\nHội nghị tổng kết tại Quy Nhơn, zephyrine.\r\n")
	d, err := s.Append(ctx, a.ID, "INBOX", raw, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := s.rdb.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT COUNT(*) FROM fts_text`); n != 0 {
		t.Errorf("fts_text holds %d rows after indexing, want 0", n)
	}
	if n := count(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'fts_content'`); n != 0 {
		t.Errorf("the index has a content table of its own")
	}
	for _, q := range []string{"zephyrine", `"quy nhon"`, "hoa"} {
		if n := count(`SELECT COUNT(*) FROM fts WHERE fts MATCH ?`, q); n != 1 {
			t.Errorf("index finds %q in %d rows, want 1", q, n)
		}
	}
	if got, err := s.SearchText(ctx, d.MailboxID, FieldText, "quy nhơn"); err != nil || len(got) != 1 {
		t.Errorf("search: %v %v", got, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("check with an indexed content: %v", err)
	}

	if _, err := s.StoreFlags(ctx, d.MailboxID, []uint32{d.UID}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, d.MailboxID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"zephyrine", `"quy nhon"`, "hoa"} {
		if n := count(`SELECT COUNT(*) FROM fts WHERE fts MATCH ?`, q); n != 0 {
			t.Errorf("index still finds %q in %d rows after reclaim", q, n)
		}
	}
	if n := count(`SELECT COUNT(*) FROM fts_garbage`) + count(`SELECT COUNT(*) FROM fts_docsize`) + count(`SELECT COUNT(*) FROM fts_text`); n != 0 {
		t.Errorf("%d index rows left after reclaim", n)
	}
	if n := count(`SELECT COUNT(*) FROM blob_reclaim`); n != 0 {
		t.Errorf("content still waiting for reclaim: %d", n)
	}
	var left int
	if err := s.blobs.List(ctx, func(Ref, int64) error { left++; return nil }); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("blob store holds %d contents after reclaim", left)
	}
}

// TestPhraseReadsOnlyTheMailbox checks that a query of several words reads
// the candidates of the mailbox searched only: another account's damaged
// message with the same words neither fails nor slows the search.
func TestPhraseReadsOnlyTheMailbox(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	var boxes []int64
	var sums []Sum
	for _, addr := range []string{"a@example.test", "b@example.test"} {
		acct, err := s.AddAccount(ctx, NewAccount{Address: addr, Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		raw := []byte("To: " + addr + "\r\nSubject: Giấy mời\r\n\r\nHội nghị tổng kết tại Đà Nẵng.\r\n")
		d, err := s.Append(ctx, acct.ID, "INBOX", raw, nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, d.MailboxID)
		sums = append(sums, sha256.Sum256(raw))
	}
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	damageContent(t, s, sums[1])
	got, err := s.SearchText(ctx, boxes[0], FieldBody, "tổng kết tại đà nẵng")
	if err != nil || len(got) != 1 {
		t.Errorf("search of a's INBOX: %v %v", got, err)
	}
	if _, err := s.SearchText(ctx, boxes[1], FieldBody, "tổng kết tại đà nẵng"); err == nil {
		t.Errorf("search of b's INBOX, whose candidate is damaged, did not fail")
	}
}

// TestIndexDistinctWords checks that the index holds each word of a column
// once per content (no positions of repeats), and that a row indexed whole,
// as before, still leaves the index entirely when its content is reclaimed.
func TestIndexDistinctWords(t *testing.T) {
	ctx := context.Background()
	s, a := openWithAccount(t, "idx@example.test")
	raw := []byte("Subject: Họp họp\r\n\r\nHọp giao ban, họp chi bộ, họp tổ: họp.\r\n")
	d, err := s.Append(ctx, a.ID, "INBOX", raw, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	old := []byte("Subject: Cũ\r\n\r\nBáo cáo cũ, báo cáo mới, báo cáo tháng.\r\n")
	dOld, err := s.Append(ctx, a.ID, "INBOX", old, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	terms := func() map[string][2]int { // term: documents, occurrences
		t.Helper()
		out := map[string][2]int{}
		err := s.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_aux USING fts4aux(main, fts)`); err != nil {
				return err
			}
			rows, err := tx.Query(`SELECT term, documents, occurrences FROM temp.fts_aux WHERE col = '*'`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var term string
				var docs, occ int
				if err := rows.Scan(&term, &docs, &occ); err != nil {
					return err
				}
				out[term] = [2]int{docs, occ}
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := terms()["hop"]; got != [2]int{1, 2} { // once in subject, once in body
		t.Errorf(`"hop": %d documents, %d occurrences; want 1, 2`, got[0], got[1])
	}
	if got, err := s.SearchText(ctx, d.MailboxID, FieldBody, "họp chi bộ"); err != nil || len(got) != 1 {
		t.Errorf("phrase search: %v %v", got, err)
	}

	// Index the second content's row whole, words repeated, as sealmail did
	// before: FTS4 removes the row of an external-content table by the
	// words fts_text holds then.
	var blobID int64
	if err := s.rdb.QueryRow(`SELECT blob_id FROM messages WHERE mailbox_id=? AND uid=?`, dOld.MailboxID, dOld.UID).Scan(&blobID); err != nil {
		t.Fatal(err)
	}
	whole := extractText(old)
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := insertRow(tx, "fts_text", blobID, whole.row()); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM fts WHERE docid=?`, `DELETE FROM fts_text WHERE docid=?`} {
			if _, err := tx.Exec(q, blobID); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO fts (docid, subject, body) VALUES (?,?,?)`, blobID, whole.subject, whole.body.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := terms()["bao"]; got != [2]int{1, 3} {
		t.Fatalf(`"bao" in the row indexed whole: %d documents, %d occurrences; want 1, 3`, got[0], got[1])
	}
	if _, err := s.StoreFlags(ctx, d.MailboxID, []uint32{d.UID, dOld.UID}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, d.MailboxID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if left := terms(); len(left) != 0 {
		t.Errorf("terms left in the index after reclaim: %v", left)
	}
}

// damageContent overwrites the first bytes of a stored content where the
// blob store keeps it.
func damageContent(t *testing.T, s *Store, sum Sum) {
	t.Helper()
	var ref Ref
	err := s.blobs.List(context.Background(), func(r Ref, _ int64) error {
		if r.Sum == sum {
			ref = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	path, off, err := s.blobs.(interface {
		Locate(Ref) (string, int64, error)
	}).Locate(ref)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("damaged"), off); err != nil {
		t.Fatal(err)
	}
}
