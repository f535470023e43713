package mailstore

import (
	"context"
	"database/sql"
	"time"
)

// Indexing batches: how many contents, and how many bytes of them, per commit.
const (
	indexBatch      = 100
	indexBatchBytes = 1 << 20
)

// indexer moves new contents into the full-text index in the background, in
// large transactions: FTS4 writes a new index segment at every commit, so
// indexing inside each delivery's commit would double the cost of delivery.
func (s *Store) indexer() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second) // contents delivered by other processes
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.indexPoke:
		case <-t.C:
		}
		for {
			n, err := s.indexSome(context.Background())
			if err != nil || n < indexBatch {
				break
			}
		}
		for {
			n, err := s.collectGarbage(context.Background())
			if err != nil || n < garbageBatch {
				break
			}
		}
	}
}

func (s *Store) pokeIndexer() {
	select {
	case s.indexPoke <- struct{}{}:
	default:
	}
}

type pending struct {
	id   int64
	text *text
}

// indexSome indexes one batch and returns how many contents it looked at.
func (s *Store) indexSome(ctx context.Context) (int, error) {
	var batch []pending
	err := s.read(ctx, func(db *sql.DB) error {
		batch = batch[:0]
		rows, err := db.QueryContext(ctx, `SELECT b.id, b.data FROM unindexed u JOIN blobs b ON b.id = u.blob_id ORDER BY u.blob_id LIMIT ?`, indexBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		size := 0
		for rows.Next() && size < indexBatchBytes {
			var p pending
			var data []byte
			if err := rows.Scan(&p.id, &data); err != nil {
				return err
			}
			size += len(data)
			p.text = extractText(data)
			batch = append(batch, p)
		}
		return rows.Err()
	})
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, p := range batch {
			// The content may have been reclaimed, or indexed by another process, meanwhile.
			r, err := tx.Exec(`DELETE FROM unindexed WHERE blob_id=?`, p.id)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				continue
			}
			t := p.text
			if _, err := tx.Exec(`INSERT INTO fts (docid, subject, "from", "to", cc, bcc, body) VALUES (?,?,?,?,?,?,?)`,
				p.id, t.subject, t.from, t.to, t.cc, t.bcc, t.body.String()); err != nil {
				return err
			}
		}
		return nil
	})
	return len(batch), err
}

// garbageBatch bounds how many index entries one transaction removes.
const garbageBatch = 200

// collectGarbage removes index entries of reclaimed content, and returns how
// many it removed. Until then they are harmless: searches only report
// messages, and a blob id is never reused.
func (s *Store) collectGarbage(ctx context.Context) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM fts WHERE docid IN (SELECT docid FROM fts_garbage ORDER BY docid LIMIT ?)`, garbageBatch); err != nil {
			return err
		}
		r, err := tx.Exec(`DELETE FROM fts_garbage WHERE docid IN (SELECT docid FROM fts_garbage ORDER BY docid LIMIT ?)`, garbageBatch)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return int(n), err
}

// WaitIndexed blocks until the full-text index holds exactly the contents
// stored so far: new ones added, reclaimed ones removed. Searches never need
// it (they also scan what is not yet indexed); tests and benchmarks use it to
// measure the indexed path.
func (s *Store) WaitIndexed(ctx context.Context) error {
	for {
		var n int
		if err := s.rdb.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM unindexed) + (SELECT COUNT(*) FROM fts_garbage)`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		s.pokeIndexer()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
