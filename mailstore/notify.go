package mailstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ChangeKind says what happened to a message.
type ChangeKind int

const (
	changeNew ChangeKind = iota + 1
	changeFlags
	changeExpunge
	changeMailboxDeleted
)

// Exported names of change kinds.
const (
	ChangeNew            = changeNew
	ChangeFlags          = changeFlags
	ChangeExpunge        = changeExpunge
	ChangeMailboxDeleted = changeMailboxDeleted
)

// Change is one event in a mailbox. IDs grow across all mailboxes.
type Change struct {
	ID   int64
	UID  uint32
	Kind ChangeKind
}

// addChange records an event; its id is the mailbox's new modseq.
func addChange(tx *sql.Tx, mailboxID int64, uid uint32, kind ChangeKind) (int64, error) {
	r, err := tx.Exec(`INSERT INTO changes (mailbox_id, uid, kind, time) VALUES (?,?,?,?)`, mailboxID, uid, kind, now())
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

// Changes returns a mailbox's events after the change id since, in order.
func (s *Store) Changes(ctx context.Context, mailboxID, since int64) ([]Change, error) {
	out, err := queryAll(ctx, s, func(sc scanner) (c Change, err error) {
		return c, sc.Scan(&c.ID, &c.UID, &c.Kind)
	}, `SELECT id, uid, kind FROM changes WHERE mailbox_id=? AND id>? ORDER BY id`, mailboxID, since)
	if err != nil {
		return nil, fmt.Errorf("mailstore: changes: %w", err)
	}
	return out, nil
}

// Watch calls changed whenever the mailbox changes, in this process or another
// one, until stop is called. Calls coalesce: on one, read Changes since the last
// id seen. changed runs on the store's notifier goroutine and must not block;
// it may still run once after stop returns. A callback rather than a channel
// lets an idle IMAP session wait for mail without a goroutine of its own.
func (s *Store) Watch(mailboxID int64, changed func()) (stop func()) {
	return s.watch.add(mailboxID, changed)
}

type watchers struct {
	mu   sync.Mutex
	m    map[int64][]*watcher
	last int64 // highest change id dispatched

	logouts    map[int64]map[*logoutWatch]struct{} // by account id (logout.go)
	lastLogout int64                               // highest logouts id dispatched, under mu
}

type watcher struct{ changed func() }

func (w *watchers) init() {
	w.m = make(map[int64][]*watcher)
	w.logouts = make(map[int64]map[*logoutWatch]struct{})
}

func (w *watchers) add(mailboxID int64, changed func()) func() {
	x := &watcher{changed}
	w.mu.Lock()
	w.m[mailboxID] = append(w.m[mailboxID], x)
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		l := w.m[mailboxID]
		if i := slices.Index(l, x); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			delete(w.m, mailboxID)
		} else {
			w.m[mailboxID] = l
		}
	}
}

func (w *watchers) signal(mailboxID int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range w.m[mailboxID] {
		x.changed()
	}
}

func (s *Store) pokeNotifier() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// notifier turns new rows of the changes table into watcher signals. Our own
// commits poke it at once; commits of other processes (the admin command) are
// found by polling, which costs one indexed MAX() when nothing changed.
func (s *Store) notifier() {
	defer s.wg.Done()
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.poke:
		case <-t.C:
		}
		s.dispatch()
		s.dispatchLogouts()
	}
}

func (s *Store) dispatch() {
	rows, err := s.rdb.Query(`SELECT id, mailbox_id FROM changes WHERE id > ? ORDER BY id`, s.watch.last)
	if err != nil {
		return // next tick retries
	}
	defer rows.Close()
	touched := map[int64]bool{}
	for rows.Next() {
		var id, mb int64
		if rows.Scan(&id, &mb) != nil {
			return
		}
		touched[mb] = true
		s.watch.last = id
	}
	for mb := range touched {
		s.watch.signal(mb)
	}
}

// PruneChanges forgets change records older than age (the store itself keeps
// 30 days); records of expunges, which QRESYNC clients need (VANISHED), are
// kept for expungeAge instead. The newest id pruned of those is remembered:
// Vanished answers a client that was away longer with a superset.
func (s *Store) PruneChanges(ctx context.Context, age, expungeAge time.Duration) error {
	// Cached UID sets are brought up to date by the changes since; those
	// may be among the pruned.
	defer s.views.clear()
	return s.write(ctx, func(tx *sql.Tx) error {
		// Keep each mailbox's newest record: its id is the mailbox's modseq.
		const keep = `id NOT IN (SELECT MAX(id) FROM changes GROUP BY mailbox_id)`
		var last sql.NullInt64
		expungeCutoff := time.Now().Add(-expungeAge).Unix()
		err := tx.QueryRow(`SELECT MAX(id) FROM changes WHERE kind=? AND time < ? AND `+keep, changeExpunge, expungeCutoff).Scan(&last)
		if err != nil {
			return err
		}
		if last.Valid {
			if _, err := tx.Exec(`INSERT INTO counters (name, value) VALUES ('expunges_pruned', ?)
				ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, last.Int64); err != nil {
				return err
			}
		}
		_, err = tx.Exec(`DELETE FROM changes WHERE ((kind<>? AND time < ?) OR (kind=? AND time < ?)) AND `+keep,
			changeExpunge, time.Now().Add(-age).Unix(), changeExpunge, expungeCutoff)
		if err != nil {
			return err
		}
		return pruneLogouts(tx, age)
	})
}
