package mailstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/mattn/go-sqlite3"
)

// writerDriver is SQLite with automatic checkpoints off. SQLite would run a
// checkpoint inside whichever commit pushes the WAL past 1,000 pages, copying
// megabytes and fsyncing the database while every delivery in that group
// commit waits for its 250. The checkpointer does it beside the writer instead.
const writerDriver = "sqlite3-sealmail-writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(`PRAGMA wal_autocheckpoint = 0`, nil)
			return err
		},
	})
}

// checkpointEvery is how often the checkpointer copies the WAL into the
// database. A PASSIVE checkpoint never blocks the writer or readers; it copies
// what no reader still needs, and the writer then restarts the WAL from its
// beginning, so the file stays small.
const checkpointEvery = 500 * time.Millisecond

// The change log keeps this much history; see PruneChanges.
const (
	changeHistory = 30 * 24 * time.Hour
	pruneEvery    = time.Hour
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
			// A last full copy, so a cleanly stopped store leaves little WAL behind.
			s.cdb.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			return
		case <-t.C:
			s.cdb.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			if time.Since(lastPrune) > pruneEvery {
				lastPrune = time.Now()
				s.PruneChanges(context.Background(), changeHistory)
			}
		}
	}
}
