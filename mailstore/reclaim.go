package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Content whose last reference goes (EXPUNGE, a mailbox or account removed,
// a queue entry done) leaves the metadata in that transaction and is queued
// in blob_reclaim; the reclaimer deletes it afterwards, in the background.
//
// The race to get right: a delivery of the same content Puts it (finding the
// file already there), then commits a new reference — while the reclaimer,
// which saw no reference, deletes the file. Two rules settle it:
//   - the reclaimer deletes content only inside a write transaction in which
//     it has just seen that nothing refers to it;
//   - a transaction that adds the first reference to content (insertBlob)
//     checks, under that same write lock, that the content is still stored,
//     and if not the delivery Puts it again (errContentGone).
// Whichever commits first, the other sees it: no reference to missing content.
// The write lock is SQLite's, so this holds across processes too.

// reclaimEvery is how often the reclaimer looks for content to delete.
const reclaimEvery = time.Second

// reclaimBatch bounds the deletions done inside one write transaction.
const reclaimBatch = 64

func (s *Store) reclaimer() {
	defer s.wg.Done()
	t := time.NewTicker(reclaimEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.reclaimPoke:
		}
		if err := s.Reclaim(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Error("reclaiming content", "err", err)
		}
	}
}

// Reclaim deletes the content that no message or queue entry refers to any
// more, unless a backup is holding it back. The store does it by itself in
// the background; tests and the admin command call it to finish now.
func (s *Store) Reclaim(ctx context.Context) error {
	// Content waits for its index rows to go (neededQuery); take them out
	// now rather than at the indexer's turn.
	for {
		more, err := s.collectGarbage(ctx, true)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	for {
		more, err := s.reclaimSome(ctx)
		if err != nil || !more {
			return err
		}
	}
}

func (s *Store) reclaimSome(ctx context.Context) (bool, error) {
	var refs []Ref
	err := s.read(ctx, func(db *sql.DB) error {
		refs = refs[:0]
		// Content whose index row is still to be removed waits: removing
		// it reads the text again (collectGarbage).
		rows, err := db.QueryContext(ctx, `SELECT hash, loc FROM blob_reclaim r WHERE NOT EXISTS
			(SELECT 1 FROM counters WHERE name = 'reclaim_hold' AND value > ?)
			AND NOT EXISTS (SELECT 1 FROM fts_garbage g WHERE g.hash = r.hash AND g.loc = r.loc) ORDER BY since LIMIT ?`, now(), reclaimBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h []byte
			var ref Ref
			if err := rows.Scan(&h, &ref.Loc); err != nil {
				return err
			}
			copy(ref.Sum[:], h)
			refs = append(refs, ref)
		}
		return rows.Err()
	})
	if err != nil || len(refs) == 0 {
		return false, err
	}
	var deleted int
	err = s.write(ctx, func(tx *sql.Tx) error {
		deleted = 0
		// A backup that started after the read above holds content back.
		var held int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM counters WHERE name = 'reclaim_hold' AND value > ?`, now()).Scan(&held); err != nil {
			return err
		}
		if held > 0 {
			return nil
		}
		for _, ref := range refs {
			var waiting int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM fts_garbage WHERE hash=? AND loc=?`, ref.Sum[:], ref.Loc).Scan(&waiting); err != nil {
				return err
			}
			if waiting > 0 {
				continue // released again since the read above, indexed meanwhile
			}
			gone, err := s.deleteUnreferenced(tx, ref)
			if err != nil {
				return err
			}
			if gone {
				deleted++
			}
			fault("reclaim:deleted")
			if _, err := tx.Exec(`DELETE FROM blob_reclaim WHERE hash=? AND loc=?`, ref.Sum[:], ref.Loc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mailstore: reclaim: %w", err)
	}
	fault("reclaim:committed")
	if deleted > 0 {
		s.log.Debug("reclaimed content", "contents", deleted)
	}
	return len(refs) == reclaimBatch, nil
}

// neededQuery tells whether a stored copy of content is still needed: a
// message or queue entry refers to it, or the index row of its text is still
// to be removed (which reads the text again).
const neededQuery = `SELECT EXISTS (SELECT 1 FROM blobs WHERE hash=?1 AND loc=?2) OR EXISTS (SELECT 1 FROM fts_garbage WHERE hash=?1 AND loc=?2)`

// deleteUnreferenced deletes content from the blob store if the metadata, as
// tx sees it, does not refer to it. Only ever call it in a write transaction:
// see the rules above.
func (s *Store) deleteUnreferenced(tx *sql.Tx, ref Ref) (bool, error) {
	var needed bool
	if err := tx.QueryRow(neededQuery, ref.Sum[:], ref.Loc).Scan(&needed); err != nil {
		return false, err
	}
	if needed {
		return false, nil // referenced again since it was queued
	}
	if err := s.blobs.Delete(context.Background(), ref); err != nil {
		return false, err
	}
	return true, nil
}

// claimContent is called by the transaction adding the first reference to
// content it Put: a pending reclaim is cancelled, and content deleted since
// the Put makes the operation start again (errContentGone).
func (s *Store) claimContent(tx *sql.Tx, ref Ref, size int64) error {
	if _, err := tx.Exec(`DELETE FROM blob_reclaim WHERE hash=? AND loc=?`, ref.Sum[:], ref.Loc); err != nil {
		return err
	}
	n, err := s.blobs.Stat(context.Background(), ref)
	if errors.Is(err, fs.ErrNotExist) || err == nil && n != size {
		return errContentGone
	}
	return err
}

// forget queues content that was Put but whose operation was rolled back: if
// nothing refers to it by the reclaimer's turn, it is deleted.
func (s *Store) forget(refs ...Ref) {
	if len(refs) == 0 {
		return
	}
	err := s.write(context.Background(), func(tx *sql.Tx) error {
		for _, r := range refs {
			if _, err := tx.Exec(`INSERT OR IGNORE INTO blob_reclaim (hash, loc, since) VALUES (?,?,?)`, r.Sum[:], r.Loc, now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		s.log.Warn("content left unreferenced; 'sealmail check --repair' removes it", "contents", len(refs), "err", err)
	}
}

// holdReclaim keeps the reclaimer from deleting anything until the given time
// (zero: release the hold), so that a backup can copy every content its
// snapshot of the metadata refers to. The hold expires by itself if the
// backup dies.
func (s *Store) holdReclaim(ctx context.Context, until time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if until.IsZero() {
			_, err := tx.Exec(`DELETE FROM counters WHERE name = 'reclaim_hold'`)
			return err
		}
		_, err := tx.Exec(`INSERT INTO counters (name, value) VALUES ('reclaim_hold', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, until.Unix())
		return err
	})
}

// fault marks the steps of storing and reclaiming content where the crash
// tests kill the process (durability_test.go); it does nothing otherwise.
var fault = func(point string) {}
