package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"testing"
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
