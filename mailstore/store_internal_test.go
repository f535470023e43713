package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// TestBatchFailureStaysItsOwn commits a batch whose middle operation fails:
// the others must commit and report success, the failing one its own error.
func TestBatchFailureStaysItsOwn(t *testing.T) {
	s, err := Open(t.TempDir(), Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("boom")
	insert := func(name string) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO domains (name, created) VALUES (?, 0)`, name)
			return err
		}
	}
	batch := []*op{
		{fn: insert("a.test"), errc: make(chan error, 1)},
		{fn: func(tx *sql.Tx) error {
			if err := insert("half.test")(tx); err != nil {
				return err
			}
			return boom // after a write: that write must not survive
		}, errc: make(chan error, 1)},
		{fn: insert("b.test"), errc: make(chan error, 1)},
	}
	s.commit(batch)
	for i, want := range []error{nil, boom, nil} {
		if got := <-batch[i].errc; !errors.Is(got, want) {
			t.Errorf("op %d: %v, want %v", i, got, want)
		}
	}
	ctx := context.Background()
	for name, want := range map[string]bool{"a.test": true, "half.test": false, "b.test": true} {
		if got, err := s.IsLocalDomain(ctx, name); err != nil || got != want {
			t.Errorf("%s stored: %v (%v), want %v", name, got, err, want)
		}
	}
}

// TestShrink frees 4 MiB of pages in a new database and checks that the
// idle store gives them back to the file system, down to none free.
func TestShrink(t *testing.T) {
	s, err := Open(t.TempDir(), Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode int
	if err := s.rdb.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != autoVacuumIncremental {
		t.Fatalf("auto_vacuum %d in a new database, want %d (incremental): %v", mode, autoVacuumIncremental, err)
	}
	ctx := context.Background()
	pages := func() (n, free int64) {
		t.Helper()
		if err := s.rdb.QueryRow(`SELECT page_count, freelist_count FROM pragma_page_count, pragma_freelist_count`).Scan(&n, &free); err != nil {
			t.Fatal(err)
		}
		return n, free
	}
	empty, _ := pages()
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE filler (b BLOB);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1400)
			INSERT INTO filler SELECT randomblob(3000) FROM n;
			DROP TABLE filler`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n, free := pages()
	if free < 1000 {
		t.Fatalf("%d pages, %d free after dropping the filler: the test frees too little", n, free)
	}
	s.pokeIndexer()
	for deadline := time.Now().Add(time.Minute); free > 0; n, free = pages() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pages still free a minute later", free, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n > empty {
		t.Errorf("%d pages once shrunk, %d before the filler", n, empty)
	}
}

// TestIndexLimits: small index batches only while deliveries keep the writer
// busy and the indexer keeps pace; a bulk import's backlog gets large ones.
func TestIndexLimits(t *testing.T) {
	for _, c := range []struct {
		idle    bool
		backlog int64
		want    int
	}{
		{false, 0, indexBatch},
		{false, 500, indexBatch}, // a second of deliveries at full speed
		{false, indexBacklog, indexBatch},
		{false, indexBacklog + 1, indexIdleBatch},
		{false, 1000000, indexIdleBatch},
		{true, 0, indexIdleBatch},
	} {
		if n, _ := indexLimits(c.idle, c.backlog); n != c.want {
			t.Errorf("indexLimits(idle %v, backlog %d) = %d contents, want %d", c.idle, c.backlog, n, c.want)
		}
	}
}
