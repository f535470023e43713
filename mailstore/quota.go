package mailstore

import (
	"context"
	"database/sql"
	"fmt"
)

// DeletedSize is the size in bytes of a mailbox's messages flagged \Deleted:
// what expunging them would give back to the account's quota. A counter
// (schema/0004_counters.sql) keeps it.
func (s *Store) DeletedSize(ctx context.Context, mailboxID int64) (int64, error) {
	var n int64
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT deleted_bytes FROM mailboxes WHERE id=?`, mailboxID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("mailstore: deleted size: %w", err)
	}
	return n, nil
}
