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
	var refs []ContentRef
	err := s.read(ctx, func(db *sql.DB) error {
		rows, refs = rows[:0], refs[:0]
		rs, err := db.QueryContext(ctx, `SELECT id, hash, size, loc FROM blobs WHERE substr(envelope, 1, 1) < ? LIMIT ?`, []byte{envelopeVersion}, upgradeBatch)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			var c ContentRef
			var hash []byte
			if err := rs.Scan(&r.id, &hash, &c.Size, &c.Loc); err != nil {
				return err
			}
			copy(c.Sum[:], hash)
			rows, refs = append(rows, r), append(refs, c)
		}
		return rs.Err()
	})
	for i := range rows {
		if err != nil {
			break
		}
		data, lerr := s.loadContent(ctx, refs[i])
		if lerr != nil {
			// Damaged content: an empty envelope, rather than retrying for ever;
			// 'sealmail check' reports it.
			s.log.Error("upgrading envelope", "err", lerr)
		}
		env, _ := parse(data, nil)
		rows[i].env = encodeEnvelope(&env)
	}
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
