package mailstore

import (
	"context"
	"database/sql"
	"fmt"
)

// ClaimRecent gives the caller alone the messages of a mailbox up to UID upto
// that no one has claimed yet: RFC 3501's \Recent, which only the first
// session to see a message reports. It returns the UID after which the claim
// starts; the claim is empty when that is upto or more.
func (s *Store) ClaimRecent(ctx context.Context, mailboxID int64, upto uint32) (uint32, error) {
	from, err := s.RecentFrom(ctx, mailboxID)
	if err != nil || from >= upto {
		return upto, err
	}
	// Claiming writes, so only a session that has something to claim pays it.
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRow(`SELECT recent_uid FROM mailboxes WHERE id=?`, mailboxID).Scan(&from); err != nil {
			return err
		}
		if from >= upto {
			return nil
		}
		_, err := tx.Exec(`UPDATE mailboxes SET recent_uid=? WHERE id=?`, upto, mailboxID)
		return err
	})
	if err != nil {
		return upto, wrapNotFound(err, "claim recent", mailboxID)
	}
	return from, nil
}

// RecentFrom returns the UID after which a mailbox's messages are still
// unclaimed, so recent for the next session (EXAMINE looks without claiming).
func (s *Store) RecentFrom(ctx context.Context, mailboxID int64) (uint32, error) {
	var from uint32
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT recent_uid FROM mailboxes WHERE id=?`, mailboxID).Scan(&from)
	})
	return from, wrapNotFound(err, "recent", mailboxID)
}

// UnclaimedRecent counts a mailbox's messages that no session has claimed as
// recent yet (STATUS RECENT).
func (s *Store) UnclaimedRecent(ctx context.Context, mailboxID int64) (uint32, error) {
	var n uint32
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE mailbox_id=?1
			AND uid > (SELECT recent_uid FROM mailboxes WHERE id=?1)`, mailboxID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("mailstore: recent: %w", err)
	}
	return n, nil
}

func wrapNotFound(err error, op string, mailboxID int64) error {
	switch {
	case err == nil:
		return nil
	case err == sql.ErrNoRows:
		return fmt.Errorf("mailstore: %s: mailbox %d: %w", op, mailboxID, ErrNotFound)
	default:
		return fmt.Errorf("mailstore: %s: %w", op, err)
	}
}

// Vanished returns, as ranges, the UIDs expunged from a mailbox after modseq
// since (QRESYNC's VANISHED (EARLIER)). Expunge records are kept for
// expungeHistory; for a client that was away longer, it returns every UID
// below the mailbox's UIDNEXT that is not in the mailbox now. RFC 7162 allows
// such a superset (3.2.5.2, 3.2.10): the client drops the UIDs it knows of
// and ignores the others.
func (s *Store) Vanished(ctx context.Context, mailboxID int64, since int64) ([]UIDRange, error) {
	var pruned int64
	var uidNext uint32
	var uids []uint32
	err := s.read(ctx, func(db *sql.DB) error {
		err := db.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM counters WHERE name='expunges_pruned'), 0),
			(SELECT uidnext FROM mailboxes WHERE id=?)`, mailboxID).Scan(&pruned, &uidNext)
		if err != nil || since < pruned {
			return err
		}
		rows, err := db.QueryContext(ctx, `SELECT uid FROM changes WHERE mailbox_id=? AND id>? AND kind=? ORDER BY uid`, mailboxID, since, changeExpunge)
		if err != nil {
			return err
		}
		defer rows.Close()
		uids = uids[:0]
		for rows.Next() {
			var uid uint32
			if err := rows.Scan(&uid); err != nil {
				return err
			}
			uids = append(uids, uid)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: vanished: %w", err)
	}
	if since >= pruned {
		var out []UIDRange
		for _, uid := range uids {
			if n := len(out); n > 0 && out[n-1].Last+1 >= uid {
				out[n-1].Last = max(out[n-1].Last, uid)
			} else {
				out = append(out, UIDRange{uid, uid})
			}
		}
		return out, nil
	}
	v, err := s.View(ctx, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("mailstore: vanished: %w", err)
	}
	var out []UIDRange
	next := uint32(1)
	for _, r := range v.UIDs.Runs() {
		if r.First > next {
			out = append(out, UIDRange{next, r.First - 1})
		}
		next = r.Last + 1
	}
	if v.UIDNext > next {
		out = append(out, UIDRange{next, v.UIDNext - 1})
	}
	return out, nil
}
