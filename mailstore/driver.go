package mailstore

import (
	"bytes"
	"compress/flate"
	"database/sql"
	"io"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// The store opens SQLite through two drivers of its own, so that every
// connection gets what the schema relies on.
const (
	// readerDriver has the full-text index's compression functions.
	readerDriver = "sqlite3-sealmail"
	// writerDriver has them too, with automatic checkpoints off: SQLite would
	// run a checkpoint inside whichever commit pushes the WAL past 1,000 pages,
	// copying megabytes and fsyncing the database while every delivery in that
	// group commit waits for its 250. The checkpointer does it beside the
	// writer instead (checkpoint.go).
	writerDriver = "sqlite3-sealmail-writer"
)

func init() {
	sql.Register(readerDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			if err := registerFuncs(c); err != nil {
				return err
			}
			// Readers read the database page by page, not mapped. Mapped
			// reads of a static mailbox were 8–10% faster, but SQLite unmaps
			// the whole map at the first read transaction after any commit
			// (the file may have changed under it), so under mail arriving
			// without pause every read paid an munmap, a flush of every
			// core's TLB, and page faults to map again: 4 KiB SMTP ingest
			// took 14% more time with the map (docs/benchmarks.md, session 9).
			_, err := c.Exec(`PRAGMA mmap_size = 0`, nil)
			return err
		},
	})
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			if err := registerFuncs(c); err != nil {
				return err
			}
			// When the WAL restarts after a checkpoint, cut the file back to
			// 64 MiB: a burst of mail must not leave a huge file behind.
			_, err := c.Exec(`PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864`, nil)
			return err
		},
	})
}

// registerFuncs adds the functions FTS4 calls (compress=, uncompress= in
// schema/0001_init.sql). FTS4 keeps its own copy of every indexed text; stored
// raw, it doubled the bytes written per message and the size of the database.
func registerFuncs(c *sqlite3.SQLiteConn) error {
	if err := c.RegisterFunc("sealmail_zip", zip, true); err != nil {
		return err
	}
	if err := c.RegisterFunc("sealmail_unzip", unzip, true); err != nil {
		return err
	}
	return c.RegisterFunc("sealmail_sent_day", sentDay, true)
}

// sentDay is the calendar day (YYYY-MM-DD) of a stored envelope's Date:
// header in the header's own zone, or NULL without one: what SEARCH
// SENTBEFORE, SENTON and SENTSINCE compare.
func sentDay(envelope []byte) any {
	e, err := decodeEnvelope(envelope)
	if err != nil || e.Date.IsZero() {
		return nil
	}
	return e.Date.Format(time.DateOnly)
}

var zippers = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

func zip(s string) []byte {
	var b bytes.Buffer
	w := zippers.Get().(*flate.Writer)
	w.Reset(&b)
	io.WriteString(w, s)
	w.Close()
	zippers.Put(w)
	return b.Bytes()
}

func unzip(b []byte) (string, error) {
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	return string(out), err
}
