package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RcptStatus is where one recipient of a queued message stands.
type RcptStatus int

const (
	RcptPending RcptStatus = iota // not yet delivered; retried at NextTry
	RcptSent                      // accepted by the next hop
	RcptFailed                    // failed for good; the sender is owed a bounce
)

func (s RcptStatus) String() string {
	switch s {
	case RcptPending:
		return "pending"
	case RcptSent:
		return "sent"
	case RcptFailed:
		return "failed"
	}
	return fmt.Sprintf("RcptStatus(%d)", int(s))
}

// QueueRcpt is one recipient of a queued message.
type QueueRcpt struct {
	Addr      string
	Status    RcptStatus
	Attempts  int
	NextTry   time.Time
	LastError string
}

// QueueEntry is a message waiting for outbound delivery.
type QueueEntry struct {
	ID      int64
	From    string // envelope sender; "" is the null sender
	Created time.Time
	Size    int64
	Warned  bool // the sender was told the message is delayed
	Rcpts   []QueueRcpt
}

// Pending returns the recipients not yet sent or failed.
func (e QueueEntry) Pending() []QueueRcpt {
	var out []QueueRcpt
	for _, r := range e.Rcpts {
		if r.Status == RcptPending {
			out = append(out, r)
		}
	}
	return out
}

// Enqueue stores a message for outbound delivery to rcpts and returns its id once
// it is durable. Recipients are due at once.
func (s *Store) Enqueue(ctx context.Context, from string, rcpts []string, content []byte) (int64, error) {
	if len(rcpts) == 0 {
		return 0, fmt.Errorf("mailstore: enqueue: %w: no recipients", ErrInvalid)
	}
	a, err := s.Accept(ctx, Delivery{Content: Bytes(content), From: from, Remote: rcpts})
	return a.QueueID, err
}

// insertQueue adds a queue entry for content already referenced (blobID),
// its recipients due at t.
func insertQueue(tx *sql.Tx, from string, rcpts []string, blobID, t int64) (int64, error) {
	var id int64
	if err := tx.QueryRow(`INSERT INTO queue (sender, blob_id, created) VALUES (?,?,?) RETURNING id`, from, blobID, t).Scan(&id); err != nil {
		return 0, err
	}
	for _, r := range rcpts {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO queue_rcpts (queue_id, rcpt, next_try) VALUES (?,?,?)`, id, strings.TrimSpace(r), t); err != nil {
			return 0, err
		}
	}
	return id, nil
}

const queueCols = `q.id, q.sender, q.created, q.warned, b.size`

func (s *Store) queueEntries(ctx context.Context, where string, args ...any) ([]QueueEntry, error) {
	var out []QueueEntry
	err := s.read(ctx, func(db *sql.DB) error {
		out = out[:0]
		// One snapshot, so an entry is never seen without its recipients.
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, `SELECT `+queueCols+` FROM queue q JOIN blobs b ON b.id = q.blob_id WHERE `+where, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e QueueEntry
			var created int64
			if err := rows.Scan(&e.ID, &e.From, &created, &e.Warned, &e.Size); err != nil {
				return err
			}
			e.Created = time.Unix(created, 0)
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		for i := range out {
			if out[i].Rcpts, err = queueRcpts(ctx, tx, out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: queue: %w", err)
	}
	return out, nil
}

func queueRcpts(ctx context.Context, db *sql.Tx, id int64) ([]QueueRcpt, error) {
	rows, err := db.QueryContext(ctx, `SELECT rcpt, status, attempts, next_try, last_error FROM queue_rcpts WHERE queue_id=? ORDER BY rowid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []QueueRcpt
	for rows.Next() {
		var r QueueRcpt
		var next int64
		if err := rows.Scan(&r.Addr, &r.Status, &r.Attempts, &next, &r.LastError); err != nil {
			return nil, err
		}
		r.NextTry = time.Unix(next, 0)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Queue lists every queued message, oldest first.
func (s *Store) Queue(ctx context.Context) ([]QueueEntry, error) {
	return s.queueEntries(ctx, `1 ORDER BY q.id`)
}

// QueueStats returns how many messages the outbound queue holds and when the
// oldest was queued (zero when it is empty).
func (s *Store) QueueStats(ctx context.Context) (messages int, oldest time.Time, err error) {
	var first sql.NullInt64
	err = s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created) FROM queue`).Scan(&messages, &first)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("mailstore: queue: %w", err)
	}
	if first.Valid {
		oldest = time.Unix(first.Int64, 0)
	}
	return messages, oldest, nil
}

// QueueEntry returns one queued message.
func (s *Store) QueueEntry(ctx context.Context, id int64) (QueueEntry, error) {
	es, err := s.queueEntries(ctx, `q.id=?`, id)
	if err != nil {
		return QueueEntry{}, err
	}
	if len(es) == 0 {
		return QueueEntry{}, fmt.Errorf("mailstore: queue entry %d: %w", id, ErrNotFound)
	}
	return es[0], nil
}

// QueueDue returns up to limit messages, oldest first, that need work at now:
// a pending recipient whose NextTry has come, no pending recipient left (the
// entry only awaits its bounce and removal), or, for messages created at or
// before warnBefore, a delay warning not yet sent.
func (s *Store) QueueDue(ctx context.Context, now, warnBefore time.Time, limit int) ([]QueueEntry, error) {
	return s.queueEntries(ctx, `EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id=q.id AND r.status=0 AND r.next_try<=?)
		OR NOT EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id=q.id AND r.status=0)
		OR (q.warned=0 AND q.sender!='' AND q.created<=?)
		ORDER BY q.id LIMIT ?`, now.Unix(), warnBefore.Unix(), limit)
}

// QueueNextTry returns the earliest NextTry of any pending recipient; ok is
// false when nothing is pending.
func (s *Store) QueueNextTry(ctx context.Context) (t time.Time, ok bool, err error) {
	var next sql.NullInt64
	err = s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT MIN(next_try) FROM queue_rcpts WHERE status=0`).Scan(&next)
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("mailstore: queue: %w", err)
	}
	return time.Unix(next.Int64, 0), next.Valid, nil
}

// QueueContent returns a queued message's content.
func (s *Store) QueueContent(ctx context.Context, id int64) ([]byte, error) {
	c, err := s.QueueContentRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.loadContent(ctx, c)
}

// QueueContentRef returns where a queued message's content lies, for the
// relay to read it in pieces (ReadContent, OpenContent) rather than whole:
// eight workers sending 50 MiB messages would otherwise hold 400 MiB.
func (s *Store) QueueContentRef(ctx context.Context, id int64) (ContentRef, error) {
	var c ContentRef
	var hash []byte
	err := s.read(ctx, func(db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT b.hash, b.size, b.loc FROM queue q JOIN blobs b ON b.id = q.blob_id WHERE q.id=?`, id).Scan(&hash, &c.Size, &c.Loc)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("mailstore: queue entry %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("mailstore: queue: %w", err)
	}
	copy(c.Sum[:], hash)
	return c, nil
}

// RcptUpdate records the outcome of one delivery attempt for a recipient.
type RcptUpdate struct {
	Addr    string
	Status  RcptStatus
	NextTry time.Time // for RcptPending
	Error   string
}

// UpdateQueue records delivery attempts of a queued message, counting one
// attempt for each recipient updated.
func (s *Store) UpdateQueue(ctx context.Context, id int64, ups []RcptUpdate) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, u := range ups {
			if _, err := tx.Exec(`UPDATE queue_rcpts SET status=?, next_try=?, last_error=?, attempts=attempts+1 WHERE queue_id=? AND rcpt=?`,
				u.Status, u.NextTry.Unix(), u.Error, id, u.Addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailstore: update queue entry %d: %w", id, err)
	}
	return nil
}

// SetQueueWarned records that the sender of a queued message was told of its delay.
func (s *Store) SetQueueWarned(ctx context.Context, id int64) error {
	return s.queueExec(ctx, id, `UPDATE queue SET warned=1 WHERE id=?`, id)
}

// RetryQueue makes the pending recipients of a queued message due now.
func (s *Store) RetryQueue(ctx context.Context, id int64) error {
	if _, err := s.QueueEntry(ctx, id); err != nil {
		return err
	}
	return s.queueExec(ctx, id, `UPDATE queue_rcpts SET next_try=? WHERE queue_id=? AND status=0`, now(), id)
}

// RetryQueueAll makes every pending recipient due now.
func (s *Store) RetryQueueAll(ctx context.Context) error {
	return s.queueExec(ctx, 0, `UPDATE queue_rcpts SET next_try=? WHERE status=0`, now())
}

func (s *Store) queueExec(ctx context.Context, id int64, q string, args ...any) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: queue entry %d: %w", id, err)
	}
	return nil
}

// RemoveQueue deletes a queued message, whatever its state, and releases its content.
func (s *Store) RemoveQueue(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var blobID int64
		err := tx.QueryRow(`DELETE FROM queue WHERE id=? RETURNING blob_id`, id).Scan(&blobID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return releaseBlobs(tx, map[int64]int{blobID: 1})
	})
	if err != nil {
		return fmt.Errorf("mailstore: remove queue entry %d: %w", id, err)
	}
	return nil
}
