package mailstore

import (
	"context"
	"database/sql"
	"errors"
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
