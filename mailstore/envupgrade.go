package mailstore

import (
	"context"
	"database/sql"
	"fmt"
)

// upgradeBatch is how many stored envelopes one upgrade transaction rewrites.
const upgradeBatch = 200

// upgradeEnvelopes re-parses, a batch at a time and in the background, the
// envelopes stored by an older codec version (see codec.go). Until a row is reached it is served as it was. It reports
// whether more may remain; once none does it costs nothing more.
func (s *Store) upgradeEnvelopes(ctx context.Context) (bool, error) {
	if s.envelopesCurrent.Load() {
		return false, nil
	}
	type row struct {
		id  int64
		env []byte
	}
	var rows []row
	err := s.read(ctx, func(db *sql.DB) error {
		rows = rows[:0]
		rs, err := db.QueryContext(ctx, `SELECT id, data FROM blobs WHERE substr(envelope, 1, 1) < ? AND data IS NOT NULL LIMIT ?`, []byte{envelopeVersion}, upgradeBatch)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			var data []byte
			if err := rs.Scan(&r.id, &data); err != nil {
				return err
			}
			env, _ := parse(data, nil)
			r.env = encodeEnvelope(&env)
			rows = append(rows, r)
		}
		return rs.Err()
	})
	if err != nil {
		return false, fmt.Errorf("mailstore: upgrading envelopes: %w", err)
	}
	if len(rows) == 0 {
		s.envelopesCurrent.Store(true)
		return false, nil
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, `UPDATE blobs SET envelope=? WHERE id=?`, r.env, r.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mailstore: upgrading envelopes: %w", err)
	}
	return len(rows) == upgradeBatch, nil
}
