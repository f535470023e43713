// Package mailstore holds everything sealmail keeps: domains, accounts, aliases,
// mailboxes and messages, shared by the SMTP and IMAP daemons and by the admin
// command (which may run while the server does). It has two halves:
//
//   - metadata in one SQLite database, DIR/sealmail.db, in WAL mode with
//     synchronous=FULL: a transaction is durable once Commit returns, because
//     the WAL is fsynced at every commit;
//   - content (the message bytes) in a BlobStore, addressed by SHA-256: by
//     default DIR/blobs/, one file per content (mailstore/blob/disk). The
//     table blobs holds each content's sum, size and reference count, so a
//     circular to 3,000 staff is one file with refs = 3000.
//
// Durability order: content is written and synced before the commit of the
// metadata that refers to it, so a crash can leave content nothing refers to
// (removed later), never a reference to missing content. Content whose last
// reference goes is deleted after that commit, in the background (reclaim.go).
//
// All writes of one process go through a single writer goroutine which takes every
// operation that queued up while the previous commit was being fsynced, syncs the
// content they wrote in one go, and commits them together (group commit); one
// failing operation does not fail the others (see commit). Other processes writing
// the same file wait on SQLite's busy timeout.
//
// Metadata a client lists often (envelope, body structure) is parsed once at delivery
// and stored beside the content; the folded text for search lives in an FTS4 table
// keyed by blob, so a circular to 3,000 staff is indexed once. A background indexer
// fills it in batches; searches also scan the few contents not indexed yet.
package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"sealmail/mailstore/blob/disk"
)

// Errors the store returns; test them with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrOverQuota    = errors.New("over quota")
	ErrAuthFailed   = errors.New("authentication failed")
	ErrDisabled     = errors.New("account disabled")
	ErrInvalid      = errors.New("invalid argument")
	ErrClosed       = errors.New("store closed")
	ErrNewerSchema  = errors.New("database schema is newer than this sealmail")
	ErrMailboxInUse = errors.New("mailbox cannot be removed")
)

// Options tune a Store. The zero value is safe for production.
type Options struct {
	// PasswordParams overrides the argon2id cost (tests use a cheap one).
	PasswordParams *PasswordParams
	// PollInterval is how often the store looks for changes made by other
	// processes (default 200ms).
	PollInterval time.Duration
	// Blobs is where message content is kept; nil means a disk.Store in
	// DIR/blobs.
	Blobs BlobStore
	// Logger receives what the store has to tell an administrator (a full
	// disk, and its end); nil means slog.Default().
	Logger *slog.Logger
	// Committed, if set, is told how long each group commit took (SQL and
	// fsync; the content was synced before, beside the previous commit) and
	// how many operations it carried: monitoring.
	Committed func(d time.Duration, ops int)
	// Checkpointed, if set, is told after each periodic checkpoint (not
	// during a disk-full episode) how many frames (pages) the WAL holds, how
	// many of them a reader still kept from being copied into the database,
	// and whether a RESTART checkpoint (which holds the writer back)
	// followed and completed: monitoring.
	Checkpointed func(frames, uncopied int, restart bool)
}

// Store is an open mail store. It is safe for concurrent use.
type Store struct {
	path     string
	blobs    BlobStore
	ownBlobs io.Closer // nil if the caller gave the blob store
	log      *slog.Logger
	wdb      *sql.DB       // one connection: the writer goroutine's
	rdb      *sql.DB       // readers; WAL lets them run beside the writer
	cdb      *sql.DB       // the checkpointer's connection
	ops      chan *op      // operations ready to commit, for the writer
	unsynced chan *op      // operations whose content must be synced first, for the syncer
	synced   chan struct{} // closed when the syncer has handed on its last operation
	done     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.RWMutex
	closed   bool

	pw           PasswordParams
	auth         authCache
	dummyOnce    sync.Once
	dummy        string // a hash to check unknown users against, for equal timing
	watch        watchers
	views        viewCache
	poke         chan struct{} // wakes the notifier after a commit
	indexPoke    chan struct{} // wakes the indexer after a commit
	commits      atomic.Int64  // commits so far, so the indexer can see the writer idle
	poll         time.Duration
	full         atomic.Bool   // in an episode of full disk (see classify)
	lastFull     atomic.Int64  // when a write last failed for want of space, in Unix ns
	reclaimPoke  chan struct{} // wakes the reclaimer after content lost its last reference
	committed    func(time.Duration, int)
	checkpointed func(frames, uncopied int, restart bool)

	// envelopesCurrent is set once no envelope of an older codec version is left.
	envelopesCurrent atomic.Bool
	// shrinking: free pages are being returned (shrink; the indexer's goroutine only).
	shrinking bool
}

// DBFile is the database's file name inside the data directory.
const DBFile = "sealmail.db"

// BlobDir is the default blob store's directory inside the data directory.
const BlobDir = "blobs"

// Open opens (creating if needed) the store in dir and brings its schema up to date.
func Open(dir string, opt Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	blobs := opt.Blobs
	var own io.Closer // the blob store opened here, closed with the store
	if blobs == nil {
		d, err := disk.Open(filepath.Join(dir, BlobDir))
		if err != nil {
			return nil, fmt.Errorf("mailstore: %w", err)
		}
		blobs, own = d, d
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "30000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	// Statements are prepared once per connection, not on every Exec.
	q.Set("_stmt_cache_size", "64")
	dsn := "file:" + path + "?" + q.Encode()
	wdb, err := sql.Open(writerDriver, dsn)
	if err != nil {
		return nil, fmt.Errorf("mailstore: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	if err := migrate(wdb, blobs, log); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("mailstore: %s: %w", path, err)
	}
	q.Set("mode", "ro")
	q.Del("_txlock")
	q.Del("_journal_mode")
	rdb, err := sql.Open(readerDriver, "file:"+path+"?"+q.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("mailstore: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(16)
	rdb.SetMaxIdleConns(16)
	q.Del("mode")
	// A RESTART checkpoint holds new writers back while it waits for readers
	// (an IMAP client streaming a large FETCH): give up after 100 ms rather
	// than stall deliveries, and try again at the next tick.
	q.Set("_busy_timeout", "100")
	cdb, err := sql.Open(readerDriver, "file:"+path+"?"+q.Encode())
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("mailstore: open %s: %w", path, err)
	}
	cdb.SetMaxOpenConns(1)
	s := &Store{
		path:        path,
		blobs:       blobs,
		ownBlobs:    own,
		log:         log,
		reclaimPoke: make(chan struct{}, 1),
		wdb:         wdb,
		rdb:         rdb,
		cdb:         cdb,
		ops:         make(chan *op, 1024),
		unsynced:    make(chan *op, 1024),
		synced:      make(chan struct{}),
		done:        make(chan struct{}),
		pw:          defaultPasswordParams,
		poke:        make(chan struct{}, 1),
		indexPoke:   make(chan struct{}, 1),
		poll:        200 * time.Millisecond,
	}
	if opt.PasswordParams != nil {
		s.pw = *opt.PasswordParams
	}
	s.committed = opt.Committed
	s.checkpointed = opt.Checkpointed
	if opt.PollInterval > 0 {
		s.poll = opt.PollInterval
	}
	s.watch.init()
	if err := s.rdb.QueryRow(`SELECT COALESCE(MAX(id), 0) FROM changes`).Scan(&s.watch.last); err != nil {
		s.Close()
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	if err := s.rdb.QueryRow(`SELECT COALESCE(MAX(id), 0) FROM logouts`).Scan(&s.watch.lastLogout); err != nil {
		s.Close()
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	s.wg.Add(6)
	go s.syncer()
	go s.writer()
	go s.notifier()
	go s.indexer()
	go s.checkpointer()
	go s.reclaimer()
	return s, nil
}

// dir is the data directory the store's files are in.
func (s *Store) dir() string { return filepath.Dir(s.path) }

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Blobs returns the store's blob store.
func (s *Store) Blobs() BlobStore { return s.blobs }

// Close waits for queued writes to commit and closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.closeMu.Unlock()
	s.wg.Wait()
	err := errors.Join(s.rdb.Close(), s.cdb.Close(), s.wdb.Close())
	if s.ownBlobs != nil {
		err = errors.Join(err, s.ownBlobs.Close())
	}
	return err
}

// op is one write operation waiting for the writer goroutine.
type op struct {
	fn   func(tx *sql.Tx) error
	errc chan error
	// refs is the content fn refers to that was Put for it: the syncer
	// makes it durable before the writer gets the operation.
	refs []Ref
}

// maxBatch bounds a group commit so one transaction stays short.
const maxBatch = 256

// write runs fn in a write transaction and returns once it is durable (or failed).
// fn may be run more than once if the commit has to be retried, so it must only
// touch the transaction and variables it fully overwrites.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.writeContent(ctx, nil, fn)
}

// writeContent is write for an operation that refers to content it has Put:
// refs are synced, together with the rest of the batch's, before the commit.
func (s *Store) writeContent(ctx context.Context, refs []Ref, fn func(tx *sql.Tx) error) error {
	o := &op{fn: fn, errc: make(chan error, 1), refs: refs}
	q := s.ops
	if len(refs) > 0 {
		q = s.unsynced
	}
	// The read lock orders enqueueing before Close, so the writer, which drains
	// the queue after Close, answers every operation that got in.
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case q <- o:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued the operation may commit; report its real outcome, not ctx's.
	return <-o.errc
}

// syncer makes the content of queued operations durable, many operations'
// at once, and hands them to the writer: the next group's content syncs
// while the writer commits the last group, rather than each group paying
// both in turn on the writer's time.
func (s *Store) syncer() {
	defer s.wg.Done()
	defer close(s.synced)
	for {
		select {
		case o := <-s.unsynced:
			s.syncContent(gather(o, s.unsynced))
		case <-s.done:
			// Hand on what was queued before Close.
			drain(s.unsynced, s.syncContent)
			return
		}
	}
}

// writer commits operations in groups. It stops once the syncer, which
// stops after Close, has handed on everything and the queue is empty.
func (s *Store) writer() {
	defer s.wg.Done()
	for {
		select {
		case o := <-s.ops:
			s.commit(gather(o, s.ops))
		case <-s.synced:
			drain(s.ops, s.commit)
			return
		}
	}
}

// drain passes what is queued in q to fn, in batches, until q is empty.
func drain(q chan *op, fn func([]*op)) {
	for {
		select {
		case o := <-q:
			fn(gather(o, q))
		default:
			return
		}
	}
}

// gather returns first and whatever else is queued in q, up to maxBatch.
func gather(first *op, q chan *op) []*op {
	batch := []*op{first}
	for len(batch) < maxBatch {
		select {
		case o := <-q:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction. Operations rarely fail, so they run
// without savepoints (each costs two more statements per operation); when one
// fails, the transaction is rolled back and every operation of the batch runs
// again in a transaction of its own, so the failure stays its own.
func (s *Store) commit(batch []*op) {
	start := time.Now()
	if s.committed != nil {
		defer func() { s.committed(time.Since(start), len(batch)) }()
	}
	errs := make([]error, len(batch))
	err := s.retryBusy(func() error { return runBatch(s.wdb, batch, errs) })
	fault("commit:done")
	if errors.Is(err, errOpFailed) && len(batch) > 1 {
		for i, o := range batch {
			one := errs[i : i+1]
			if err := s.retryBusy(func() error { return runBatch(s.wdb, []*op{o}, one) }); err != nil && !errors.Is(err, errOpFailed) {
				errs[i] = fmt.Errorf("mailstore: commit: %w", err)
			}
		}
		err = nil
	}
	for i, o := range batch {
		switch {
		case errors.Is(err, errOpFailed):
			o.errc <- s.classify(errs[i])
		case err != nil:
			o.errc <- s.classify(fmt.Errorf("mailstore: commit: %w", err))
		default:
			o.errc <- s.classify(errs[i])
		}
	}
	s.commits.Add(1)
	s.pokeNotifier()
	s.pokeIndexer()
}

// syncContent makes the content of a batch durable in one Sync for all of
// its operations, so concurrent deliveries share the fsyncs, and passes the
// operations to the writer. If the Sync fails, the operations fail.
func (s *Store) syncContent(batch []*op) {
	var refs []Ref
	for _, o := range batch {
		refs = append(refs, o.refs...)
	}
	err := s.blobs.Sync(context.Background(), refs)
	if err != nil {
		err = s.classify(fmt.Errorf("mailstore: sync content: %w", err))
	} else {
		fault("content:synced")
	}
	for _, o := range batch {
		if err != nil {
			o.errc <- err
		} else {
			s.ops <- o
		}
	}
}

// errOpFailed says an operation of the batch returned an error (kept in errs)
// and the transaction was rolled back.
var errOpFailed = errors.New("operation failed")

// retryBusy runs fn again while another process holds the write lock longer
// than the busy timeout.
func (s *Store) retryBusy(fn func() error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = fn(); err == nil || !isBusy(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

func runBatch(db *sql.DB, batch []*op, errs []error) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	for i, o := range batch {
		if errs[i] = o.fn(tx); errs[i] != nil {
			tx.Rollback()
			if isBusy(errs[i]) {
				return errs[i]
			}
			return errOpFailed
		}
	}
	return tx.Commit()
}

func isBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

func isUnique(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}

// read runs fn against the read pool, retrying briefly if another process holds a
// lock SQLite cannot wait on (rare in WAL mode: during recovery or checkpoint).
func (s *Store) read(ctx context.Context, fn func(db *sql.DB) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = fn(s.rdb); err == nil || !isBusy(err) {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// normAddr lower-cases an address for lookup, its domain in A-labels (idn.go). Local
// parts are case-insensitive here (RFC 5321 allows otherwise, but no agency wants
// Nam@ and nam@ to be two people).
func normAddr(a string) string {
	return ASCIIDomain(strings.ToLower(strings.TrimSpace(a)))
}

func now() int64 { return time.Now().Unix() }

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll runs a read query and returns every row as scan reads it.
func queryAll[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := s.read(ctx, func(db *sql.DB) error {
		out = out[:0]
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

// queryOne runs a read query for one row, as scan reads it. what names the
// row in errors: a missing row is "what: not found" (ErrNotFound), any other
// failure "mailstore: what: ...".
func queryOne[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	var v T
	err := s.read(ctx, func(db *sql.DB) error {
		var err error
		v, err = scan(db.QueryRowContext(ctx, query, args...))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	case err != nil:
		var zero T
		return zero, fmt.Errorf("mailstore: %s: %w", what, err)
	}
	return v, nil
}

func scanString(sc scanner) (v string, err error) { return v, sc.Scan(&v) }
