package mailstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMigrateUpgrades opens a database left at schema 1 by an older sealmail,
// with data in it, and checks that Open brings it to the current version and
// keeps the data.
func TestMigrateUpgrades(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, DBFile)+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Skip("only one migration so far")
	}
	if _, err := db.Exec(ms[0].sql); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 1; INSERT INTO domains (name, created) VALUES ('old.test', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(dir, Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v int
	if err := s.rdb.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion() {
		t.Errorf("schema version %d after upgrade, want %d", v, SchemaVersion())
	}
	if _, err := s.Domain(context.Background(), "old.test"); err != nil {
		t.Errorf("data lost in upgrade: %v", err)
	}
	// Later migrations' tables exist and work.
	if _, err := s.Peers(context.Background()); err != nil {
		t.Errorf("table from a later migration: %v", err)
	}
}

// TestMigrateRefusesNewer checks that a database written by a newer sealmail is
// left alone, with an error saying what to do.
func TestMigrateRefusesNewer(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("opening a newer database: %v", err)
	}
	t.Log(err)
}

// TestMigrateBuildsCounters opens a database made before the counters
// (schema 3), with messages in it, and checks that the migration builds
// counters, UID runs and keywords that agree with the messages.
// dbBefore creates a database in dir with the migrations before the n-th
// applied (not its user_version: the caller sets it with its data).
func dbBefore(t *testing.T, dir string, n int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, DBFile)+"?_journal_mode=WAL&_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:n] {
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestMigrateBuildsCounters(t *testing.T) {
	dir := t.TempDir()
	db := dbBefore(t, dir, 3)
	_, err := db.Exec(`PRAGMA user_version = 3;
		INSERT INTO domains (name, created) VALUES ('old.test', 0);
		INSERT INTO accounts (id, address, domain, password, created) VALUES (1, 'a@old.test', 'old.test', 'x', 0);
		INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext) VALUES (1, 1, 'INBOX', 1, 11), (2, 1, 'Lưu', 2, 1);
		INSERT INTO blobs (id, hash, size, refs, envelope, structure, data) VALUES (1, x'01', 5, 6, x'', '{}', 'hello');
		INSERT INTO messages (mailbox_id, uid, blob_id, flags, internal_date, size, modseq) VALUES
			(1, 1, 1, '\Seen', 0, 5, 1), (1, 2, 1, '', 0, 5, 1), (1, 3, 1, 'Gấp \Deleted', 0, 5, 1),
			(1, 7, 1, '$Label1 \Seen', 0, 5, 1), (1, 8, 1, '', 0, 5, 1), (1, 10, 1, '\Deleted \Seen', 0, 5, 1)`)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(dir, Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.CheckCounters(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := s.View(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Status{Messages: 6, Unseen: 3, Deleted: 2, Size: 30}
	if v.Status != want || fmt.Sprint(v.UIDs) != "[{1 3} {7 8} {10 10}]" || v.FirstUnseen != 2 || fmt.Sprint(v.Keywords) != "[$Label1 Gấp]" {
		t.Errorf("after migration: %+v", v)
	}
	if n, err := s.DeletedSize(ctx, 1); n != 10 || err != nil {
		t.Errorf("deleted size %d, %v", n, err)
	}
	if v, err := s.View(ctx, 2); err != nil || v.Messages != 0 || v.UIDs.Len() != 0 {
		t.Errorf("empty mailbox after migration: %+v, %v", v, err)
	}
}

// oldStore writes a data directory as sealmail wrote it before the blob
// store (schema 3, content in blobs.data): n messages in one INBOX.
func oldStore(t *testing.T, dir string, n int) [][]byte {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, DBFile)+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`PRAGMA user_version = 3`)
	exec(`INSERT INTO domains (name, created) VALUES ('old.test', 0)`)
	exec(`INSERT INTO accounts (id, address, domain, password, created) VALUES (1, 'a@old.test', 'old.test', 'x', 0)`)
	exec(`INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext) VALUES (1, 1, 'INBOX', 1, ?)`, n+1)
	var raws [][]byte
	for i := 0; i < n; i++ {
		raw := []byte(fmt.Sprintf("From: a@old.test\r\nTo: a@old.test\r\nSubject: cũ %d\r\n\r\n%s\r\n", i, strings.Repeat("Thư lưu trữ từ trước. ", 200+i)))
		raws = append(raws, raw)
		b, err := newBlob(Bytes(raw))
		if err != nil {
			t.Fatal(err)
		}
		exec(`INSERT INTO blobs (id, hash, size, refs, envelope, structure, data) VALUES (?,?,?,1,?,?,?)`, i+1, b.hash[:], len(raw), b.envelope, b.structure, raw)
		exec(`INSERT INTO messages (mailbox_id, uid, blob_id, internal_date, size, modseq) VALUES (1,?,?,0,?,1)`, i+1, i+1, len(raw))
		exec(`INSERT INTO unindexed (blob_id) VALUES (?)`, i+1)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	return raws
}

// TestMigrateChild is the child of TestMigrateContentKill9: it opens (and so
// migrates) the store until a fault point kills it.
func TestMigrateChild(t *testing.T) {
	dir := os.Getenv("SEALMAIL_MIGRATE_DIR")
	if dir == "" {
		return // not a test of its own: TestMigrateContentKill9 runs it
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestMigrateContentKill9 upgrades a data directory of the previous schema,
// killing the migration with SIGKILL after a batch's content was synced and
// after a batch's commit, and checks that the last start finishes it: every
// message with its content, nothing left in the database, which shrank.
func TestMigrateContentKill9(t *testing.T) {
	dir := t.TempDir()
	raws := oldStore(t, dir, 700) // three batches
	before := fileSize(filepath.Join(dir, DBFile))
	for _, kill := range []struct {
		point string
		at    int
	}{{"migrate:committed", 1}, {"migrate:synced", 1}, {"migrate:synced", 2}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SEALMAIL_MIGRATE_DIR="+dir, "SEALMAIL_FAULT_POINT="+kill.point, "SEALMAIL_FAULT_AT="+strconv.Itoa(kill.at))
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("%s #%d: migration not killed:\n%s", kill.point, kill.at, out)
		}
	}
	var logs bytes.Buffer
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Log(logs.String())
	ctx := context.Background()
	i := 0
	err = s.Fetch(ctx, 1, nil, FetchContent, func(it Item) error {
		if it.Err != nil {
			return it.Err
		}
		if !bytes.Equal(it.Content, raws[i]) {
			t.Errorf("message %d differs after migration", i)
		}
		i++
		return nil
	})
	if err != nil || i != len(raws) {
		t.Fatalf("%d of %d messages after migration: %v", i, len(raws), err)
	}
	var cols int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('blobs') WHERE name = 'data'`).Scan(&cols); err != nil || cols != 0 {
		t.Errorf("blobs.data still there (%d, %v)", cols, err)
	}
	after := fileSize(filepath.Join(dir, DBFile))
	if after*2 > before {
		t.Errorf("database %d bytes before, %d after: not shrunk", before, after)
	}
	if !strings.Contains(logs.String(), "compacted") {
		t.Errorf("compaction not logged: %s", logs.String())
	}
	var mode int
	if err := s.rdb.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != autoVacuumIncremental {
		t.Errorf("auto_vacuum %d after the compaction, want %d (incremental): %v", mode, autoVacuumIncremental, err)
	}
	rep, err := s.CheckContent(ctx, false)
	if err != nil || rep.Referenced != int64(len(raws)) || len(rep.Missing)+len(rep.Corrupt) != 0 || rep.Orphans != 0 {
		t.Errorf("content after migration: %+v, %v", rep, err)
	}
	if hits, err := s.SearchText(ctx, 1, FieldSubject, "cu 699"); err != nil || len(hits) != 1 {
		t.Errorf("search after migration: %v, %v", hits, err)
	}
	t.Logf("database %d bytes before, %d after", before, after)
}

// TestMigrateDocSeries: registers written before series existed keep their
// lines, numbers and acknowledgements, in the ordinary series, and go on
// numbering from where they were.
func TestMigrateDocSeries(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	before := slices.IndexFunc(ms, func(m migration) bool { return strings.Contains(m.name, "doc_series") })
	if before < 0 {
		t.Fatal("no doc_series migration")
	}
	dir := t.TempDir()
	db := dbBefore(t, dir, before)
	_, err = db.Exec(fmt.Sprintf(`PRAGMA user_version = %d;
		INSERT INTO doc_numbers (domain, direction, year, last) VALUES ('a.test', 'out', 2026, 7);
		INSERT INTO doc_register (id, domain, direction, year, number, notation, document_id, message_id, doc_date, registered,
			subject, signer, organ, sender, recipients, copies, status, notes, files)
			VALUES (3, 'a.test', 'out', 2026, 7, '07/A-VP', 'X,2026/11/28,07/A-VP', '<7@a.test>', '2026-11-28', 0,
			'Công văn cũ', '', '', 'clerk@a.test', '["nam@b.test"]', 1, 'sent', '', '[]');
		INSERT INTO doc_acks (register_id, party, status_code, reason, time) VALUES (3, 'vanthu@b.test', '01', '', 0)`, before))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(dir, Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	es, err := s.Docs(ctx, DocQuery{Domain: "a.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].ID != 3 || es[0].Number != 7 || es[0].Series != SeriesOrdinary || es[0].Medium != MediumElectronic ||
		len(es[0].Acks) != 1 || es[0].Acks[0].StatusCode != "01" {
		t.Fatalf("after migration: %+v", es)
	}
	e, err := s.Register(ctx, DocEntry{Domain: "a.test", Direction: DocOut, Year: 2026, MessageID: "<8@a.test>"}, nil)
	if err != nil || e.Number != 8 {
		t.Errorf("next number %d, %v; want 8", e.Number, err)
	}
	// The acknowledgements still reference the register.
	if err := s.AckDoc(ctx, 999, DocAck{Party: "x@b.test", StatusCode: "01", Time: time.Unix(0, 0)}); err == nil {
		t.Error("an acknowledgement of no register line was stored")
	}
}

// TestMigrateVocab upgrades a store whose index predates fts_vocab: the
// migration takes the index's words from it, so substring searches find the
// mail indexed before.
func TestMigrateVocab(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.AddAccount(ctx, NewAccount{Address: "v@example.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Append(ctx, a.ID, "INBOX", []byte("Subject: Công văn về Đà Nẵng\r\n\r\nKính gửi Sở Tài chính\r\n"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	// The store as a sealmail before fts_vocab left it: the index without
	// the vocabulary taken from it, nor that vocabulary's trigrams.
	if _, err := s.wdb.Exec(`DROP TABLE fts_grams; DROP TABLE fts_vocab`); err != nil {
		t.Fatal(err)
	}
	// The upgrade runs the migrations that build them, in order (the later
	// ones between them touch neither).
	var ran []string
	for _, m := range must(migrations()) {
		if strings.HasSuffix(m.name, "_fts_vocab.sql") || strings.HasSuffix(m.name, "_fts_grams.sql") {
			if _, err := s.wdb.Exec(m.sql); err != nil {
				t.Fatalf("migration %s: %v", m.name, err)
			}
			ran = append(ran, m.name)
		}
	}
	if len(ran) != 2 {
		t.Fatalf("vocabulary migrations %v, want fts_vocab then fts_grams", ran)
	}
	for _, q := range []string{"ang", "ai chi", "cong van", "ính gử"} {
		if got, err := s.SearchText(ctx, d.MailboxID, FieldText, q); err != nil || len(got) != 1 {
			t.Errorf("search %q after migration: %v, %v", q, got, err)
		}
	}
	if got, err := s.SearchText(ctx, d.MailboxID, FieldText, "xylophone"); err != nil || len(got) != 0 {
		t.Errorf("search of a word nowhere: %v, %v", got, err)
	}
}

// TestMigrateGrams runs schema/0017 on a store whose vocabulary was filled
// before fts_grams existed: substring searches of three characters or more,
// which now look words up by their first trigram, find the mail indexed
// before, and the trigrams it cut are those the indexer cuts.
func TestMigrateGrams(t *testing.T) {
	ctx := context.Background()
	s, a := openWithAccount(t, "g@example.test")
	d, err := s.Append(ctx, a.ID, "INBOX", []byte("Subject: Đã ký: xylophone\r\n\r\nПривет, Sở Tài chính 20261205\r\n"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		t.Helper()
		rows, err := s.rdb.Query(`SELECT gram || ' ' || term FROM fts_grams ORDER BY gram, term`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var x string
			if err := rows.Scan(&x); err != nil {
				t.Fatal(err)
			}
			out = append(out, x)
		}
		return out
	}
	want := list()
	var migration string
	for _, m := range must(migrations()) {
		if strings.HasSuffix(m.name, "_fts_grams.sql") {
			migration = m.sql
		}
	}
	if _, err := s.wdb.Exec(`DROP TABLE fts_grams`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec(migration); err != nil {
		t.Fatal(err)
	}
	got := list()
	if !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("migration cut %d trigrams, the indexer %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for _, q := range []string{"ylophon", "xyl", "иве", "0261", "tai chinh", "ky: xy", "da"} {
		if got, err := s.SearchText(ctx, d.MailboxID, FieldText, q); err != nil || len(got) != 1 {
			t.Errorf("search %q: %v, %v", q, got, err)
		}
	}
	if got, err := s.SearchText(ctx, d.MailboxID, FieldText, "ylophones"); err != nil || len(got) != 0 {
		t.Errorf("search of a word nowhere: %v, %v", got, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
