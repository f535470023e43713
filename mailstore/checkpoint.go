package mailstore

import (
	"context"
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
const maxWALFrames = 16384

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
	if frames > maxWALFrames {
		s.cdb.Exec(`PRAGMA wal_checkpoint(RESTART)`)
	}
}
