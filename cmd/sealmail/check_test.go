package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/blob/disk"
	"sealmail/mailstore/storetest"
)

// TestCheck damages a data directory in each way 'sealmail check' looks for
// and checks its counts, its exit status, and that --repair removes the
// orphans and nothing else.
func TestCheck(t *testing.T) {
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	s := openStore(t, data)
	ctx := context.Background()
	acct, err := s.Account(ctx, "a@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	var sums []mailstore.Sum
	for _, subject := range []string{"Công văn 1", "Công văn 2", "Công văn 3"} {
		msg := storetest.Msg("x@other.example", "a@agency.example", subject, "Kính gửi phòng Tổ chức.")
		if _, err := s.Deliver(ctx, msg, time.Now(), []mailstore.Target{{AccountID: acct.ID}}); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sha256.Sum256(msg))
	}
	s.Close()

	out := ok(t, "", "check", "--data", data)
	for _, want := range []string{"contents referenced: 3", "missing: 0\n", "damaged: 0\n", "orphans: 0", "database: ok", "mailbox counters: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("check of a sound directory: no %q in\n%s", want, out)
		}
	}

	// One content damaged (a byte changed), one gone, one orphan left by a crash.
	blobs, err := disk.Open(filepath.Join(data, mailstore.BlobDir))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Damage(t, blobs, sums[0], storetest.Garble)
	storetest.Damage(t, blobs, sums[1], storetest.Remove)
	orphan := []byte("From: x@other.example\r\nSubject: nobody's\r\n\r\nmồ côi\r\n")
	orphanRef := mailstore.Ref{Sum: sha256.Sum256(orphan)}
	if orphanRef.Loc, err = blobs.Put(ctx, orphanRef.Sum, bytes.NewReader(orphan), int64(len(orphan))); err != nil {
		t.Fatal(err)
	}
	if err := blobs.Sync(ctx, []mailstore.Ref{orphanRef}); err != nil {
		t.Fatal(err)
	}
	blobs.Close()
	r := sealmail(t, "", "check", "--data", data)
	if r.code != 1 {
		t.Fatalf("check of a damaged directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"missing: " + mailstore.SumHex(sums[1]), "damaged: " + mailstore.SumHex(sums[0]),
		"missing: 1\n", "damaged: 1\n", "orphans: 1 (remove them with 'sealmail check --repair')", "mailbox counters: ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check of a damaged directory: no %q in\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "1 contents missing, 1 damaged") {
		t.Errorf("check's error: %s", r.stderr)
	}

	r = sealmail(t, "", "check", "--repair", "--data", data)
	if r.code != 1 || !strings.Contains(r.stdout, "orphans: 1 (removed 1)") {
		t.Fatalf("check --repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := blobs.Stat(ctx, orphanRef); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the orphan is still there: %v", err)
	}
	stored := map[mailstore.Sum]bool{}
	blobs.List(ctx, func(r mailstore.Ref, _ int64) error { stored[r.Sum] = true; return nil })
	if !stored[sums[0]] {
		t.Error("--repair removed damaged content, which is evidence for the admin")
	}

	// Counters that disagree with the messages are reported too.
	db, err := sql.Open("sqlite3", filepath.Join(data, mailstore.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE mailboxes SET n_messages = n_messages + 5 WHERE name = 'INBOX'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r = sealmail(t, "", "check", "--data", data)
	if r.code != 1 || !strings.Contains(r.stdout, "mailbox counters: ") || strings.Contains(r.stdout, "mailbox counters: ok") ||
		!strings.Contains(r.stderr, "mailbox counters wrong") {
		t.Errorf("check with a wrong counter: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
