package mailstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations are schema/NNNN_name.sql, applied in order; PRAGMA user_version holds
// the number of the last one applied. A migration is never edited once released:
// a change is a new file.
//
//go:embed schema/*.sql
var schemaFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(schemaFS, "schema")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		b, err := schemaFS.ReadFile("schema/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int {
	ms, _ := migrations()
	return len(ms)
}

// preSteps are work in Go that a migration, named without its number, needs
// done first. They must be restartable: a step may be killed at any point and
// run again at the next Open.
var preSteps = map[string]func(db *sql.DB, blobs BlobStore, log *slog.Logger) error{
	"blob_store.sql": moveContent,
	"blob_loc.sql":   func(db *sql.DB, _ BlobStore, _ *slog.Logger) error { return addLoc(db) },
}

// addLoc adds blobs.loc (schema/0022) unless it is there.
func addLoc(db *sql.DB) error {
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('blobs') WHERE name = 'loc'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := db.Exec(`ALTER TABLE blobs ADD COLUMN loc TEXT NOT NULL DEFAULT ''`)
	return err
}

func migrate(db *sql.DB, blobs BlobStore, log *slog.Logger) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var cur int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%w: database is at version %d, this build knows up to %d; run a newer sealmail", ErrNewerSchema, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		_, base, _ := strings.Cut(m.name, "_")
		if step := preSteps[base]; step != nil {
			if err := step(db, blobs, log); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		tx, err := db.Begin()
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		// Re-check inside the write lock: another process may have migrated meanwhile.
		var v int
		if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if v >= m.version {
			tx.Rollback()
			continue
		}
		if _, err := tx.Exec(m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, m.version)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	if cur == 0 {
		// A new database gives free pages back while the store is idle
		// (Store.shrink). The WAL header is written at connect, so the mode
		// takes a VACUUM, of a database that holds only the schema.
		if _, err := db.Exec(`PRAGMA auto_vacuum = INCREMENTAL; VACUUM`); err != nil {
			return fmt.Errorf("auto_vacuum: %w", err)
		}
	}
	return vacuumIfPending(db, log)
}

// moveBatch is how many contents moveContent moves per transaction.
const moveBatch = 256

// moveContent moves message content out of the column blobs.data, where
// sealmail kept it before the blob store, in batches: each batch is written
// to the blob store and synced, then its rows' data emptied in one
// transaction. Killed at any point it loses nothing (the data is still in the
// database until its copy is durable) and the next Open carries on.
func moveContent(db *sql.DB, blobs BlobStore, log *slog.Logger) error {
	ctx := context.Background()
	var total, left, bytesLeft int64
	err := db.QueryRow(`SELECT COUNT(*), COUNT(*) FILTER (WHERE length(data) > 0), COALESCE(SUM(size) FILTER (WHERE length(data) > 0), 0) FROM blobs`).
		Scan(&total, &left, &bytesLeft)
	if err != nil {
		return err
	}
	if left == 0 {
		return nil
	}
	if err := addLoc(db); err != nil {
		return err
	}
	log.Info("moving message content out of the database into the blob store",
		"contents", left, "of", total, "bytes", bytesLeft)
	start, lastLog := time.Now(), time.Now()
	var moved, movedBytes, last int64
	for {
		type row struct {
			id   int64
			sum  Sum
			loc  string
			data []byte
		}
		var rs []row
		rows, err := db.Query(`SELECT id, hash, loc, data FROM blobs WHERE id > ? AND length(data) > 0 ORDER BY id LIMIT ?`, last, moveBatch)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			var h []byte
			if err := rows.Scan(&r.id, &h, &r.loc, &r.data); err != nil {
				rows.Close()
				return err
			}
			copy(r.sum[:], h)
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(rs) == 0 {
			break
		}
		refs := make([]Ref, len(rs))
		for i, r := range rs {
			if sha256.Sum256(r.data) != r.sum {
				// Damaged inside the database already: keep it under the name
				// the metadata uses, for 'sealmail check' to report.
				log.Warn("content does not hash to its name; moved as it is", "sum", SumHex(r.sum))
			}
			refs[i] = Ref{Sum: r.sum, Loc: r.loc}
			if r.loc != "" {
				// Put by a run killed before the data was emptied: if the
				// copy outlived it, it need not be put again.
				if n, err := blobs.Stat(ctx, refs[i]); err == nil && n == int64(len(r.data)) {
					continue
				}
			}
			loc, err := blobs.Put(ctx, r.sum, bytes.NewReader(r.data), int64(len(r.data)))
			if err != nil {
				return err
			}
			refs[i].Loc = loc
			movedBytes += int64(len(r.data))
		}
		// Where each copy went is written before it is synced, so that a
		// run killed after the sync finds the copies rather than leaving
		// them orphaned; the data stays until it is durable.
		if err := markMoved(db, refs, false); err != nil {
			return err
		}
		if err := blobs.Sync(ctx, refs); err != nil {
			return err
		}
		fault("migrate:synced")
		if err := markMoved(db, refs, true); err != nil {
			return err
		}
		fault("migrate:committed")
		moved += int64(len(rs))
		last = rs[len(rs)-1].id
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			log.Info("moving message content", "moved", moved, "of", left, "bytes", movedBytes)
		}
	}
	log.Info("message content moved to the blob store", "contents", moved, "bytes", movedBytes, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// markMoved records where the content of rows went, in one transaction, and
// with empty, empties their data.
func markMoved(db *sql.DB, refs []Ref, empty bool) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := `UPDATE blobs SET loc = ? WHERE hash = ?`
	if empty {
		q = `UPDATE blobs SET data = x'', loc = ? WHERE hash = ?`
	}
	st, err := tx.Prepare(q)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range refs {
		if _, err := st.Exec(r.Loc, r.Sum[:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// vacuumIfPending rebuilds the database once after the content migration,
// returning the pages the content took to the file system, with
// auto_vacuum=INCREMENTAL from then on. It costs a pass
// over what is left (the metadata), and as much free disk space.
func vacuumIfPending(db *sql.DB, log *slog.Logger) error {
	var pending int
	err := db.QueryRow(`SELECT COUNT(*) FROM counters WHERE name = 'vacuum_pending'`).Scan(&pending)
	if err != nil || pending == 0 {
		return err
	}
	var path string
	if err := db.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		return err
	}
	start := time.Now()
	// Copy the WAL in first, so the size logged is the database's own.
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	before := fileSize(path)
	log.Info("compacting the database after moving content out", "bytes", before)
	// The rebuild is also when a database made before auto_vacuum can turn
	// it on (Store.shrink).
	if _, err := db.Exec(`PRAGMA auto_vacuum = INCREMENTAL; VACUUM`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := db.Exec(`DELETE FROM counters WHERE name = 'vacuum_pending'`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	log.Info("database compacted", "bytes before", before, "bytes after", fileSize(path), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}
