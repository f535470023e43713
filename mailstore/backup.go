package mailstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sealmail/internal/durable"
)

// Backup writes a consistent copy of the store, as of one moment, while it
// keeps serving: the database to dbPath (which must not exist), and every
// content that copy refers to into blobs. Reclaim is held back meanwhile, so
// content expunged after the snapshot is still there to copy. Everything is
// synced before Backup returns.
func (s *Store) Backup(ctx context.Context, dbPath string, blobs BlobStore) (err error) {
	if _, err := os.Stat(dbPath); err == nil {
		return fmt.Errorf("mailstore: backup: %s: %w", dbPath, ErrExists)
	}
	if err := s.holdReclaim(ctx, time.Now().Add(backupHold)); err != nil {
		return fmt.Errorf("mailstore: backup: %w", err)
	}
	defer func() {
		if herr := s.holdReclaim(context.Background(), time.Time{}); err == nil && herr != nil {
			err = fmt.Errorf("mailstore: backup: %w", herr)
		}
	}()
	err = s.read(ctx, func(db *sql.DB) error {
		_, err := db.ExecContext(ctx, `VACUUM INTO ?`, dbPath)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: backup to %s: %w", dbPath, err)
	}
	if err := syncFileAndDir(dbPath); err != nil {
		return fmt.Errorf("mailstore: backup to %s: %w", dbPath, err)
	}
	refs, err := referencedContent(ctx, dbPath)
	if err != nil {
		return fmt.Errorf("mailstore: backup: %w", err)
	}
	var batch, moved []Ref
	for _, c := range refs {
		loc, err := s.copyContent(ctx, c, blobs)
		if err != nil {
			return fmt.Errorf("mailstore: backup: %w", err)
		}
		if loc != c.Loc {
			moved = append(moved, Ref{Sum: c.Sum, Loc: loc})
		}
		if batch = append(batch, Ref{Sum: c.Sum, Loc: loc}); len(batch) == 1024 {
			if err := blobs.Sync(ctx, batch); err != nil {
				return fmt.Errorf("mailstore: backup: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := blobs.Sync(ctx, batch); err != nil {
		return fmt.Errorf("mailstore: backup: %w", err)
	}
	if err := relocate(ctx, dbPath, moved); err != nil {
		return fmt.Errorf("mailstore: backup to %s: %w", dbPath, err)
	}
	return nil
}

// relocate gives the copy's metadata the locators its blob store gave the
// content, and forgets the copies waiting for reclaim, which were not copied.
// (Index rows waiting to go stay queued: their content was not copied either,
// and they are removed without it.)
func relocate(ctx context.Context, dbPath string, moved []Ref) error {
	db, err := sql.Open(writerDriver, "file:"+dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM blob_reclaim`); err != nil {
		return err
	}
	st, err := tx.Prepare(`UPDATE blobs SET loc=? WHERE hash=?`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range moved {
		if _, err := st.Exec(r.Loc, r.Sum[:]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return syncFileAndDir(dbPath)
}

// backupHold is how long a backup holds reclaim back at most: long enough for
// a large store, short enough that a killed backup does not keep deleted mail
// on disk for long.
const backupHold = 12 * time.Hour

// referencedContent lists the content a database file refers to.
func referencedContent(ctx context.Context, dbPath string) ([]ContentRef, error) {
	db, err := sql.Open(readerDriver, "file:"+dbPath+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return scanRefs(ctx, db)
}

// scanRefs lists the content the metadata refers to.
func scanRefs(ctx context.Context, db *sql.DB) ([]ContentRef, error) {
	rows, err := db.QueryContext(ctx, `SELECT hash, size, loc FROM blobs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ContentRef
	for rows.Next() {
		var c ContentRef
		var h []byte
		if err := rows.Scan(&h, &c.Size, &c.Loc); err != nil {
			return nil, err
		}
		copy(c.Sum[:], h)
		out = append(out, c)
	}
	return out, rows.Err()
}

// copyContent copies one content to another blob store, checked against its
// sum on the way: a backup must not carry damage silently.
func (s *Store) copyContent(ctx context.Context, c ContentRef, to BlobStore) (string, error) {
	data, err := s.loadContent(ctx, c)
	if err != nil {
		return "", fmt.Errorf("%w; see 'sealmail check'", err)
	}
	return to.Put(ctx, c.Sum, bytes.NewReader(data), c.Size)
}

func syncFileAndDir(path string) error {
	if err := durable.SyncFile(path); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

// Check runs SQLite's integrity check and the store's own invariants.
func (s *Store) Check(ctx context.Context) error {
	return s.read(ctx, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
		if err != nil {
			return err
		}
		var problems []string
		for rows.Next() {
			var res string
			if err := rows.Scan(&res); err != nil {
				rows.Close()
				return err
			}
			// The index keeps no copy of the text (schema/0010), so SQLite
			// cannot compare the index with one and always says this; the
			// index's own tables are still checked as b-trees.
			if res != "ok" && res != "malformed inverted index for FTS4 table main.fts" {
				problems = append(problems, res)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(problems) > 0 {
			return fmt.Errorf("mailstore: integrity check: %s", strings.Join(problems, "; "))
		}
		var bad int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM blobs b WHERE refs != (SELECT COUNT(*) FROM messages WHERE blob_id = b.id)
			+ (SELECT COUNT(*) FROM queue WHERE blob_id = b.id) + (SELECT COUNT(*) FROM doc_register WHERE blob_id = b.id)`).Scan(&bad); err != nil {
			return err
		}
		if bad > 0 {
			return fmt.Errorf("mailstore: %d contents have a wrong reference count", bad)
		}
		return nil
	})
}

// ContentReport is what CheckContent found.
type ContentReport struct {
	Referenced int64 // contents the metadata refers to
	Bytes      int64 // their size
	Missing    []Sum // referenced, not in the blob store
	Corrupt    []Sum // referenced, of the wrong size or not hashing to their name
	Orphans    int64 // in the blob store, referenced by nothing
	Removed    int64 // orphans removed (repair)
}

// CheckContent reads every content the metadata refers to and checks it
// against its sum, and looks for stored content nothing refers to; with
// repair it removes those orphans (and nothing else). It works while the
// server runs: what looks wrong is checked again against the metadata of that
// moment, so mail delivered or expunged meanwhile is not reported.
func (s *Store) CheckContent(ctx context.Context, repair bool) (ContentReport, error) {
	var rep ContentReport
	stored := map[Ref]bool{}
	err := s.blobs.List(ctx, func(ref Ref, size int64) error {
		stored[ref] = true
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("mailstore: check: %w", err)
	}
	var refs []ContentRef
	err = s.read(ctx, func(db *sql.DB) error {
		var err error
		refs, err = scanRefs(ctx, db)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("mailstore: check: %w", err)
	}
	for _, c := range refs {
		delete(stored, c.ref())
		_, err := s.loadContent(ctx, c)
		if err != nil {
			// Expunged and reclaimed meanwhile, or delivered again?
			if still, rerr := s.referenced(ctx, c.ref()); rerr != nil {
				return rep, fmt.Errorf("mailstore: check: %w", rerr)
			} else if !still {
				continue
			}
			_, err = s.loadContent(ctx, c)
		}
		rep.Referenced++
		rep.Bytes += c.Size
		switch {
		case err == nil:
		case errors.Is(err, ErrContentMissing):
			rep.Missing = append(rep.Missing, c.Sum)
		case errors.Is(err, ErrContentCorrupt):
			rep.Corrupt = append(rep.Corrupt, c.Sum)
		default:
			return rep, fmt.Errorf("mailstore: check: %w", err)
		}
	}
	for ref := range stored {
		if still, err := s.referenced(ctx, ref); err != nil {
			return rep, fmt.Errorf("mailstore: check: %w", err)
		} else if still {
			continue // delivered since the listing
		}
		rep.Orphans++
		if !repair {
			continue
		}
		var gone bool
		err := s.write(ctx, func(tx *sql.Tx) error {
			var err error
			if gone, err = s.deleteUnreferenced(tx, ref); err != nil {
				return err
			}
			_, err = tx.Exec(`DELETE FROM blob_reclaim WHERE hash=? AND loc=?`, ref.Sum[:], ref.Loc)
			return err
		})
		if err != nil {
			return rep, fmt.Errorf("mailstore: check: remove orphan %s: %w", SumHex(ref.Sum), err)
		}
		if gone {
			rep.Removed++
			s.log.Info("removed orphaned content", "sum", SumHex(ref.Sum), "loc", ref.Loc)
		}
	}
	return rep, nil
}

// referenced reports whether the metadata refers to content now (or the
// index still needs its text).
func (s *Store) referenced(ctx context.Context, ref Ref) (bool, error) {
	var needed bool
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, neededQuery, ref.Sum[:], ref.Loc).Scan(&needed)
	})
	return needed, err
}
