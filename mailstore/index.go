package mailstore

import (
	"context"
	"database/sql"
	"io"
	"time"
)

// Indexing batches: how many contents, and how many bytes of them, per commit.
// Small, so that a batch holds the writer for a few milliseconds: under
// sustained mail the indexer takes its turn at every pause and every
// indexMaxLag, keeping pace in small steps instead of falling 30 s behind
// and then catching up in a burst that halved the rate of deliveries
// (250–340 msgs/s for 30–40 s every minute, issue 11).
const (
	indexBatch      = 50
	indexBatchBytes = 256 << 10
)

// Indexing gives way to deliveries: the indexer waits for a pause of
// indexQuiet in the writer's commits, or until content has waited
// indexMaxLag; past that its batches go through the writer's queue beside
// the deliveries, each adding a few milliseconds to one group commit.
// Searches do not depend on it: they read what is not indexed yet.
const (
	indexQuiet  = 20 * time.Millisecond
	indexMaxLag = time.Second
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
		due := time.Now().Add(indexMaxLag)
		for _, step := range []func(context.Context) (bool, error){s.indexSome, s.collectGarbage, s.upgradeEnvelopes} {
			for {
				if !s.awaitQuiet(due) {
					return
				}
				more, err := step(context.Background())
				if err != nil || !more {
					break
				}
			}
		}
	}
}

// awaitQuiet returns once the writer has committed nothing for indexQuiet, or
// once due has passed; false if the store is closing.
func (s *Store) awaitQuiet(due time.Time) bool {
	for time.Now().Before(due) {
		n := s.commits.Load()
		select {
		case <-s.done:
			return false
		case <-time.After(indexQuiet):
		}
		if s.commits.Load() == n {
			break
		}
	}
	return true
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

// indexSome indexes one batch and reports whether more content may be waiting.
func (s *Store) indexSome(ctx context.Context) (bool, error) {
	var batch []pending
	more := false
	err := s.read(ctx, func(db *sql.DB) error {
		batch = batch[:0]
		more = false
		rows, err := db.QueryContext(ctx, `SELECT b.id, b.hash, b.size FROM unindexed u JOIN blobs b ON b.id = u.blob_id ORDER BY u.blob_id LIMIT ?`, indexBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		size := 0
		for rows.Next() {
			if size >= indexBatchBytes {
				more = true
				break
			}
			var p pending
			var c ContentRef
			var hash []byte
			if err := rows.Scan(&p.id, &hash, &c.Size); err != nil {
				return err
			}
			copy(c.Sum[:], hash)
			p.text, err = s.contentText(ctx, c)
			if err != nil {
				// Indexed as empty rather than retried for ever; 'sealmail
				// check' reports the damage.
				s.log.Error("indexing", "err", err)
				p.text = new(text)
			}
			size += int(c.Size)
			batch = append(batch, p)
		}
		if len(batch) == indexBatch {
			more = true
		}
		return rows.Err()
	})
	if err != nil || len(batch) == 0 {
		return false, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		vocab := map[string]struct{}{}
		for _, p := range batch {
			// The content may have been reclaimed, or indexed by another process, meanwhile.
			r, err := tx.Exec(`DELETE FROM unindexed WHERE blob_id=?`, p.id)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				continue
			}
			if err := insertText(tx, "fts", p.id, p.text); err != nil {
				return err
			}
			for _, col := range p.text.columns(FieldText) {
				for _, w := range tokens(col) {
					vocab[w] = struct{}{}
				}
			}
		}
		return addVocab(tx, vocab)
	})
	return more, err
}

// insertText adds a content's text as row docid of the index (fts) or of
// the content table it reads on deletes (fts_text).
func insertText(tx *sql.Tx, table string, docid int64, t *text) error {
	_, err := tx.Exec(`INSERT INTO `+table+` (docid, subject, "from", "to", cc, bcc, header, body) VALUES (?,?,?,?,?,?,?,?)`,
		docid, t.subject, t.from, t.to, t.cc, t.bcc, t.header, t.body.String())
	return err
}

// garbageBatch bounds how many index rows one transaction removes.
const garbageBatch = 200

// collectGarbage removes index rows of released content, and reports whether
// more may be waiting. Until then they are harmless: searches only report
// messages, and a blob id is never reused. The index keeps no copy of the
// text (schema/0010), and FTS4 needs the text to find the row's terms, so it
// is extracted again from the blob store, which keeps the content until this
// is done (neededQuery). Content that cannot be read any more leaves its
// terms behind: they point at an id nothing uses, and cost only their space.
func (s *Store) collectGarbage(ctx context.Context) (bool, error) {
	type garbage struct {
		docid int64
		text  *text
	}
	var batch []garbage
	err := s.read(ctx, func(db *sql.DB) error {
		batch = batch[:0]
		rows, err := db.QueryContext(ctx, `SELECT docid, hash, size FROM fts_garbage ORDER BY docid LIMIT ?`, garbageBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g garbage
			var c ContentRef
			var hash []byte
			if err := rows.Scan(&g.docid, &hash, &c.Size); err != nil {
				return err
			}
			copy(c.Sum[:], hash)
			g.text, err = s.contentText(ctx, c)
			if err != nil {
				s.log.Warn("removing an index row without its text; its terms stay behind", "err", err)
				g.text = new(text)
			}
			batch = append(batch, g)
		}
		return rows.Err()
	})
	if err != nil || len(batch) == 0 {
		return false, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, g := range batch {
			r, err := tx.Exec(`DELETE FROM fts_garbage WHERE docid=?`, g.docid)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				continue // removed by another process meanwhile
			}
			if err := insertText(tx, "fts_text", g.docid, g.text); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM fts WHERE docid=?`, g.docid); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM fts_text WHERE docid=?`, g.docid); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		select {
		case s.reclaimPoke <- struct{}{}:
		default:
		}
	}
	return len(batch) == garbageBatch, err
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

// addVocab records the words of newly indexed text in fts_vocab, where
// substring searches look for the words containing theirs.
func addVocab(tx *sql.Tx, words map[string]struct{}) error {
	if len(words) == 0 {
		return nil
	}
	st, err := tx.Prepare(`INSERT OR IGNORE INTO fts_vocab (term) VALUES (?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for w := range words {
		if _, err := st.Exec(w); err != nil {
			return err
		}
	}
	return nil
}

// contentText extracts the searchable text of a content as it reads it from
// the blob store: a 50 MiB attachment costs the indexer a few buffers.
func (s *Store) contentText(ctx context.Context, c ContentRef) (*text, error) {
	r, err := s.openContent(ctx, c.Sum, c.Size)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	er := &errReader{r: r}
	t := extractTextFrom(er)
	if _, err := io.Copy(io.Discard, er); err != nil {
		return nil, err
	}
	return t, er.err
}
