package mailstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Indexing batches: how many contents, and how many bytes of them, per
// commit. Small while deliveries keep the writer busy, so that a batch adds
// a few milliseconds to the group commit it joins and the indexer keeps
// pace in small steps instead of falling 30 s behind and then catching up in
// a burst that halved the rate of deliveries (250–340 msgs/s for 30–40 s
// every minute, issue 11). Large when the writer is idle: a backlog (a bulk
// import, a re-index on upgrade) goes through at the index's own speed, not
// at the pace of a commit and a pause per 50 contents, which took hours for
// a million messages.
//
// Large also when more than indexBacklog contents wait, writer busy or not:
// during a bulk import (AppendMany of 1,000 messages per commit, back to
// back) the writer is never idle, and 50 contents a turn indexed ~40 of the
// 700 messages a second stored, leaving a million messages to index after
// the import (20 minutes). Deliveries at full speed leave a backlog of a
// second's mail, far below it; past it the indexer has fallen behind, and
// only large batches catch up.
const (
	indexBatch          = 50
	indexBatchBytes     = 256 << 10
	indexIdleBatch      = 1000
	indexIdleBatchBytes = 4 << 20
	indexBacklog        = 10000
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
// The other background writes that give way to deliveries take their turn
// after it: index rows of released content, envelopes of an older codec,
// and returning free pages to the file system.
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
		for _, step := range []func(context.Context, bool) (bool, error){
			s.indexSome,
			s.collectGarbage,
			func(ctx context.Context, _ bool) (bool, error) { return s.upgradeEnvelopes(ctx) },
			s.shrink,
		} {
			for {
				quiet, open := s.awaitQuiet(due)
				if !open {
					return
				}
				more, err := step(context.Background(), quiet)
				if err != nil || !more {
					break
				}
			}
		}
	}
}

// awaitQuiet returns once the writer has committed nothing for indexQuiet
// (quiet), or once due has passed; open is false if the store is closing.
func (s *Store) awaitQuiet(due time.Time) (quiet, open bool) {
	for time.Now().Before(due) {
		n := s.commits.Load()
		select {
		case <-s.done:
			return false, false
		case <-time.After(indexQuiet):
		}
		if s.commits.Load() == n && len(s.ops) == 0 {
			return true, true
		}
	}
	return false, true
}

func (s *Store) pokeIndexer() {
	select {
	case s.indexPoke <- struct{}{}:
	default:
	}
}

type pending struct {
	id   int64
	sum  Sum
	loc  string
	size int
	row  indexRow
}

// indexLimits returns how many contents, and bytes of them, one index batch
// takes: few while deliveries keep the writer busy, many when it is idle or
// the backlog has grown past indexBacklog.
func indexLimits(idle bool, backlog int64) (contents, bytes int) {
	if idle || backlog > indexBacklog {
		return indexIdleBatch, indexIdleBatchBytes
	}
	return indexBatch, indexBatchBytes
}

// indexSome indexes one batch (see indexLimits) and reports whether more
// content may be waiting. The text is extracted and
// its words listed before the batch joins the writer's queue, which then
// only inserts.
func (s *Store) indexSome(ctx context.Context, idle bool) (bool, error) {
	var batch []pending
	more := false
	err := s.read(ctx, func(db *sql.DB) error {
		batch = batch[:0]
		more = false
		backlog := int64(0)
		if !idle {
			// Ids are never reused and indexed in order: the span is the
			// backlog, but for contents reclaimed meanwhile.
			err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(blob_id) - MIN(blob_id) + 1, 0) FROM unindexed`).Scan(&backlog)
			if err != nil {
				return err
			}
		}
		limit, limitBytes := indexLimits(idle, backlog)
		rows, err := db.QueryContext(ctx, `SELECT b.id, b.hash, b.size, b.loc FROM unindexed u JOIN blobs b ON b.id = u.blob_id ORDER BY u.blob_id LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		size := 0
		for rows.Next() {
			if size >= limitBytes {
				more = true
				break
			}
			var p pending
			var hash []byte
			if err := rows.Scan(&p.id, &hash, &p.size, &p.loc); err != nil {
				return err
			}
			copy(p.sum[:], hash)
			size += p.size
			batch = append(batch, p)
		}
		if len(batch) == limit {
			more = true
		}
		return rows.Err()
	})
	if err != nil || len(batch) == 0 {
		return false, err
	}
	// Extracting the text is most of the indexer's work outside the
	// writer: spread over the cores, it keeps pace with a bulk import.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(batch)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(batch); i = int(next.Add(1)) - 1 {
				p := &batch[i]
				// Content reclaimed meanwhile is skipped below (its
				// unindexed row went with it).
				t, err := s.contentText(ctx, ContentRef{Sum: p.sum, Loc: p.loc, Size: int64(p.size)})
				if err != nil {
					// Indexed as empty rather than retried for ever;
					// 'sealmail check' reports the damage.
					s.log.Error("indexing", "err", err)
					t = new(text)
				}
				p.row = t.row()
			}
		})
	}
	wg.Wait()
	vocab := map[string]bool{}
	var words []string
	for _, p := range batch {
		for _, col := range p.row {
			for _, w := range strings.Split(col, " ") {
				if w != "" && !vocab[w] {
					vocab[w] = true
					words = append(words, w)
				}
			}
		}
	}
	vocabJSON, err := json.Marshal(words)
	if err != nil {
		return false, err
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
			if err := insertRow(tx, "fts", p.id, p.row); err != nil {
				return err
			}
		}
		return addVocab(tx, vocabJSON)
	})
	return more, err
}

// addVocab records the words (a JSON list) the index did not have yet in
// fts_vocab and fts_grams, where substring searches look for the words
// containing theirs: a few statements for a batch's words (one each was
// half the indexer's time).
func addVocab(tx *sql.Tx, words []byte) error {
	rows, err := tx.Query(`SELECT value FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM fts_vocab WHERE term = value)`, string(words))
	if err != nil {
		return err
	}
	var terms []string
	var pieces [][2]string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		terms = append(terms, t)
		for _, g := range grams(t) {
			pieces = append(pieces, [2]string{g, t})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(terms) == 0 {
		return err
	}
	// In key order, the inserts walk each b-tree once instead of jumping about.
	slices.Sort(terms)
	slices.SortFunc(pieces, func(a, b [2]string) int { return cmp.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	termsJSON, err := json.Marshal(terms)
	if err != nil {
		return err
	}
	piecesJSON, err := json.Marshal(pieces)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT OR IGNORE INTO fts_vocab (term) SELECT value FROM json_each(?)`, string(termsJSON)); err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT OR IGNORE INTO fts_grams (gram, term) SELECT value->>0, value->>1 FROM json_each(?)`, string(piecesJSON))
	return err
}

// grams returns the trigrams of a word, as schema/0017 cuts them: every
// three characters in a row, or the word itself if it is shorter; none for
// a number (see there).
func grams(w string) []string {
	if isNumber(w) {
		return nil
	}
	r := []rune(w)
	if len(r) <= 3 {
		return []string{w}
	}
	out := make([]string, 0, len(r)-2)
	for i := 0; i+3 <= len(r); i++ {
		out = append(out, string(r[i:i+3]))
	}
	return out
}

// isNumber reports whether a word is ASCII digits only.
func isNumber(w string) bool {
	return strings.Trim(w, "0123456789") == ""
}

// indexRow is a content's text as the index takes it: each column
// (subject, from, to, cc, bcc, header, body) as its distinct words.
// Searches ask the index which contents hold a word, never where (a query
// of several words is checked on the text itself), so the positions of
// repeated words were dead weight: a third of a 4 KiB message's words, and
// of the index's size and the indexer's time. Rows indexed whole before
// stay valid: FTS4 removes a row by its words, and both forms have the
// same ones.
type indexRow [7]string

func (t *text) row() indexRow {
	return indexRow{distinctWords(t.subject), distinctWords(t.from), distinctWords(t.to), distinctWords(t.cc),
		distinctWords(t.bcc), distinctWords(t.header), distinctWords(t.body.String())}
}

// insertRow adds row as row docid of the index (fts) or of the content
// table FTS4 reads to delete one (fts_text).
func insertRow(tx *sql.Tx, table string, docid int64, row indexRow) error {
	_, err := tx.Exec(`INSERT INTO `+table+` (docid, subject, "from", "to", cc, bcc, header, body) VALUES (?,?,?,?,?,?,?,?)`,
		docid, row[0], row[1], row[2], row[3], row[4], row[5], row[6])
	return err
}

// distinctWords returns the words of folded text (as FTS4's simple
// tokenizer splits it), each once, in order, separated by spaces.
func distinctWords(s string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for w := range tokenSeq(s) {
		if seen[w] {
			continue
		}
		seen[w] = true
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

// Removing an index row costs about what adding it did, so its batches are
// sized the same way: small while deliveries keep the writer busy (the
// expunge of 10,000 messages must not stall them), large when it is idle.
const (
	garbageBatch     = 50
	garbageIdleBatch = 500
)

// collectGarbage removes index rows of released content, and reports whether
// more may be waiting. Until then they are harmless: searches only report
// messages, and a blob id is never reused. The index keeps no copy of the
// text (schema/0010), and FTS4 needs the text to find the row's terms, so it
// is extracted again from the blob store, which keeps the content until this
// is done (neededQuery). Content that cannot be read any more leaves its
// terms behind: they point at an id nothing uses, and cost only their space.
func (s *Store) collectGarbage(ctx context.Context, idle bool) (bool, error) {
	limit := garbageBatch
	if idle {
		limit = garbageIdleBatch
	}
	type garbage struct {
		docid int64
		text  *text
	}
	var batch []garbage
	err := s.read(ctx, func(db *sql.DB) error {
		batch = batch[:0]
		rows, err := db.QueryContext(ctx, `SELECT docid, hash, size, loc FROM fts_garbage ORDER BY docid LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g garbage
			var c ContentRef
			var hash []byte
			if err := rows.Scan(&g.docid, &hash, &c.Size, &c.Loc); err != nil {
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
			if err := insertRow(tx, "fts_text", g.docid, g.text.row()); err != nil {
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
	return len(batch) == limit, err
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

// contentText extracts the searchable text of a content, after checking it
// against its sum. A small one is read once, then parsed in memory; a large
// one is parsed where it lies, so that a 50 MiB attachment costs the indexer
// a few buffers, not its size (and a second read, for the check).
func (s *Store) contentText(ctx context.Context, c ContentRef) (*text, error) {
	t := new(text)
	if c.Size <= textInMemory {
		b, err := s.loadContent(ctx, c)
		if err != nil {
			return nil, err
		}
		parse(b, t)
		return t, nil
	}
	r, err := s.openContent(ctx, c)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, r)
	r.Close()
	if err != nil {
		return nil, err
	}
	ra, err := s.contentAt(ctx, c)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	if _, _, err := parseContent(Content{R: ra, Size: c.Size}, t); err != nil {
		return nil, contentErr(c.Sum, err)
	}
	return t, nil
}

// textInMemory is the largest content contentText reads whole.
const textInMemory = 256 << 10
