package mailstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// checkpointEvery is how often the checkpointer copies the WAL into the
// database. A PASSIVE checkpoint never blocks the writer or readers; it copies
// what no reader still needs, and the writer then restarts the WAL from its
// beginning, so the file stays small.
const checkpointEvery = 500 * time.Millisecond

// The change log keeps this much history, and expunges for a year, for
// QRESYNC clients that come back after months; see PruneChanges.
const (
	changeHistory  = 30 * 24 * time.Hour
	expungeHistory = 365 * 24 * time.Hour
	pruneEvery     = time.Hour
)

// checkpointer does the store's housekeeping beside the writer: WAL
// checkpoints, and pruning the change log.
func (s *Store) checkpointer() {
	defer s.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-s.done:
			// A last copy, so a cleanly stopped store leaves little WAL behind.
			s.checkpoint()
			return
		case <-t.C:
			s.checkpoint()
			if time.Since(lastPrune) > pruneEvery {
				lastPrune = time.Now()
				s.PruneChanges(context.Background(), changeHistory, expungeHistory)
			}
		}
	}
}

// maxWALFrames is when the checkpointer stops being polite: past it (64 MiB of
// 4 KiB pages), under mail arriving without pause, a PASSIVE checkpoint never
// catches up with the writer and the WAL would grow without bound, so a
// RESTART checkpoint makes the writer wait the moment it takes to finish.
//
// That moment is short only if little is left to copy: RESTART holds every
// writer back while it copies the frames PASSIVE left and syncs the database,
// then while it waits for readers. So it runs right after a PASSIVE
// checkpoint that left at most restartTail frames; one that left more was
// held back by a reader, which RESTART would wait for too, with the deliveries
// stalled behind it (the likely cause, never proven, of a 10 s window of the
// million-message benchmark at a third of the rate). Only past hardWALFrames
// (256 MiB) does it run anyway.
const (
	maxWALFrames  = 16384
	restartTail   = 1024
	hardWALFrames = 4 * maxWALFrames
)

func (s *Store) checkpoint() {
	s.endFull()
	if s.full.Load() {
		// The disk is full: the WAL may hold megabytes (up to maxWALFrames,
		// and the frames of the transactions that failed) that
		// journal_size_limit (64 MiB) would leave in place. TRUNCATE copies
		// what is committed into the database, when the disk has room for
		// it, and cuts the file to nothing, giving its space to the next
		// deliveries as soon as there is any.
		s.cdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		return
	}
	var busy, frames, done int
	if err := s.cdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done); err != nil {
		return
	}
	restarted := false
	if frames > maxWALFrames && (frames-done <= restartTail || frames > hardWALFrames) {
		// Busy: a reader outlasted the 100 ms wait; the next tick tries again.
		var rbusy, rframes, rdone int
		restarted = s.cdb.QueryRow(`PRAGMA wal_checkpoint(RESTART)`).Scan(&rbusy, &rframes, &rdone) == nil && rbusy == 0
	}
	if s.checkpointed != nil {
		s.checkpointed(frames, frames-done, restarted)
	}
}

// The pages a transaction frees (index segments merged into a larger one,
// the rows of expunged mail) stay in the database file for reuse: a quarter
// of the database at 10,000 messages after the scale benchmark's ingest and
// expunge. A database made with auto_vacuum=INCREMENTAL (every new one, and
// those compacted after the content migration) gives them back to the file
// system while the writer is idle, shrinkStep pages per transaction (about
// what an index batch writes, so a delivery arriving meanwhile waits no
// longer than behind one), once more than a slack are free: the next merges
// reuse a few free pages without the file shrinking and growing back.
const (
	shrinkStep       = 256 // pages of 4 KiB
	shrinkSlack      = 256 // pages, or
	shrinkSlackShare = 64  // 1/64 of the file, whichever is more
)

// shrink returns free pages to the file system, a step at a time, while the
// writer is idle; it reports whether more remain. Once it has started it goes
// on to none, then waits for the slack to fill again. Other databases
// (auto_vacuum off) are left as they are.
func (s *Store) shrink(ctx context.Context, idle bool) (bool, error) {
	if !idle {
		return false, nil
	}
	var mode, free, pages int64
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT auto_vacuum, freelist_count, page_count FROM pragma_auto_vacuum, pragma_freelist_count, pragma_page_count`).
			Scan(&mode, &free, &pages)
	})
	if err != nil || mode != autoVacuumIncremental {
		return false, err
	}
	if !s.shrinking && free <= max(shrinkSlack, pages/shrinkSlackShare) {
		return false, nil
	}
	n := min(free, shrinkStep)
	s.shrinking = free > n
	if n == 0 {
		return false, nil
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		// The pragma frees one page per row it returns: Exec would take one.
		rows, err := tx.Query(fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, n))
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	})
	return s.shrinking, err
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2
