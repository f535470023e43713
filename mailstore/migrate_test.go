package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
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
func TestMigrateBuildsCounters(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, DBFile)+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.Exec(`PRAGMA user_version = 3;
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
	if v, err := s.View(ctx, 2); err != nil || v.Messages != 0 || len(v.UIDs) != 0 {
		t.Errorf("empty mailbox after migration: %+v, %v", v, err)
	}
}
