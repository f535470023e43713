package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Origin says where a migrated message came from, so that a migration run
// again, or resumed after an interruption, copies nothing twice
// (schema/0013_imported.sql). Deliver records it with the message, in one
// transaction.
type Origin struct {
	// Source names a folder of the old system, such as
	// "imap://anna@old.example.vn:993/INBOX".
	Source string
	// Item names the message within Source, such as "UIDVALIDITY.UID".
	Item string
	// Ident is an optional second identity (Message-ID, size, date) that
	// survives the old server renumbering its messages.
	Ident string
}

// ErrImported is the error of a delivery target whose Origin was imported
// before: the message is not stored again.
var ErrImported = errors.New("already imported")

// Imported returns what was imported into an account from source: each item
// with its ident.
func (s *Store) Imported(ctx context.Context, accountID int64, source string) (map[string]string, error) {
	items := make(map[string]string)
	err := s.read(ctx, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT item, ident FROM imported WHERE account_id=? AND source=?`, accountID, source)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var item, ident string
			if err := rows.Scan(&item, &ident); err != nil {
				return err
			}
			items[item] = ident
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: imported from %s: %w", source, err)
	}
	return items, nil
}

// importedBefore reports whether o was recorded for the account already.
func importedBefore(tx *sql.Tx, accountID int64, o *Origin) error {
	var n int
	err := tx.QueryRow(`SELECT COUNT(*) FROM imported WHERE account_id=? AND source=? AND item=?`, accountID, o.Source, o.Item).Scan(&n)
	if err == nil && n > 0 {
		err = fmt.Errorf("%s %s: %w", o.Source, o.Item, ErrImported)
	}
	return err
}

func recordOrigin(tx *sql.Tx, accountID int64, o *Origin) error {
	_, err := tx.Exec(`INSERT INTO imported (account_id, source, item, ident) VALUES (?,?,?,?)`, accountID, o.Source, o.Item, o.Ident)
	return err
}
