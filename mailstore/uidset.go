package mailstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// UIDSet is a mailbox's UIDs as runs of consecutive UIDs, with the number
// of UIDs before each run, so that the n-th UID and the rank of a UID take
// a binary search. It is never modified once made: the store hands the same
// one to every session that opens a mailbox in the same state, so a session
// costs no memory per UID run (10,000 runs after expunging every 100th of
// a million messages were 120 KB a session).
type UIDSet struct {
	runs   []UIDRange
	before []uint32 // before[i]: UIDs in runs[:i]
	n      uint32
}

// NewUIDSet makes a set of runs, ascending and not adjacent; it keeps runs,
// which the caller must not change afterwards.
func NewUIDSet(runs []UIDRange) *UIDSet {
	u := &UIDSet{runs: runs[:len(runs):len(runs)], before: make([]uint32, len(runs))}
	for i, r := range runs {
		u.before[i] = u.n
		u.n += r.Last - r.First + 1
	}
	return u
}

// Runs returns the runs, ascending; the caller must not change them.
func (u *UIDSet) Runs() []UIDRange { return u.runs }

// Len is the number of UIDs.
func (u *UIDSet) Len() uint32 { return u.n }

// Last is the highest UID, 0 if the set is empty.
func (u *UIDSet) Last() uint32 {
	if len(u.runs) == 0 {
		return 0
	}
	return u.runs[len(u.runs)-1].Last
}

// UID returns the n-th UID, n from 1 to Len().
func (u *UIDSet) UID(n uint32) uint32 {
	i := sort.Search(len(u.runs), func(i int) bool { return u.before[i] >= n }) - 1
	return u.runs[i].First + (n - 1 - u.before[i])
}

// Rank returns the position (from 1) of uid in the set, 0 if it is not in it.
func (u *UIDSet) Rank(uid uint32) uint32 {
	i := sort.Search(len(u.runs), func(i int) bool { return u.runs[i].Last >= uid })
	if i == len(u.runs) || u.runs[i].First > uid {
		return 0
	}
	return u.before[i] + uid - u.runs[i].First + 1
}

func (u *UIDSet) String() string { return fmt.Sprint(u.runs) }

// viewCache keeps the UIDSet of each mailbox opened lately, at the modseq it
// reflects: a SELECT of a big mailbox reads its runs once, and afterwards
// only the changes since (schema/0005: a mailbox's modseq is its last
// change's id, so an equal modseq is an equal set).
type viewCache struct {
	mu sync.Mutex
	m  map[int64]cachedSet
}

type cachedSet struct {
	// A deleted mailbox's id may be given to the next one created, whose
	// UIDVALIDITY differs.
	uidValidity uint32
	modseq      int64
	set         *UIDSet
	at          time.Time // when the set was read: changes after it are not pruned yet
}

// Changes since a cached set are applied to it when they are few, and when
// the set was read recently enough that none of them can have been pruned
// (PruneChanges keeps every record for at least a day; the cache is also
// emptied when this process prunes).
const (
	maxCachedChanges = 10000
	cacheFresh       = time.Hour
)

func (c *viewCache) get(id int64) (cachedSet, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	return e, ok
}

func (c *viewCache) put(id int64, e cachedSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64]cachedSet{}
	}
	// Keep the newest: a slower reader of an older snapshot may come second.
	if old, ok := c.m[id]; !ok || old.uidValidity != e.uidValidity || old.modseq <= e.modseq {
		c.m[id] = e
	}
}

func (c *viewCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// uidSet returns the UIDs of a mailbox at modseq, read in tx: the cached set
// if it is at that modseq, the cached one with the changes since applied if
// they are few, else all the runs.
func (s *Store) uidSet(ctx context.Context, tx *sql.Tx, mb Mailbox) (*UIDSet, error) {
	mailboxID, modseq := mb.ID, mb.ModSeq
	e, ok := s.views.get(mailboxID)
	ok = ok && e.uidValidity == mb.UIDValidity
	if ok && e.modseq == modseq {
		return e.set, nil
	}
	start := time.Now()
	var set *UIDSet
	if ok && e.modseq < modseq && time.Since(e.at) < cacheFresh {
		var err error
		if set, err = applyChanges(ctx, tx, e.set, mailboxID, e.modseq, modseq); err != nil {
			return nil, err
		}
	}
	if set == nil {
		var runs []UIDRange
		rows, err := tx.QueryContext(ctx, `SELECT first, last FROM uid_ranges WHERE mailbox_id=? ORDER BY first`, mailboxID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var r UIDRange
			if err := rows.Scan(&r.First, &r.Last); err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		set = NewUIDSet(runs)
	}
	s.views.put(mailboxID, cachedSet{uidValidity: mb.UIDValidity, modseq: modseq, set: set, at: start})
	return set, nil
}

// applyChanges returns set with the messages added and expunged after
// modseq from through to applied, or nil if there are too many of them.
func applyChanges(ctx context.Context, tx *sql.Tx, set *UIDSet, mailboxID, from, to int64) (*UIDSet, error) {
	rows, err := tx.QueryContext(ctx, `SELECT uid, kind FROM changes WHERE mailbox_id=? AND id>? AND id<=? AND kind IN (?,?) ORDER BY id LIMIT ?`,
		mailboxID, from, to, changeNew, changeExpunge, maxCachedChanges+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var added, gone []uint32
	for rows.Next() {
		var uid uint32
		var kind ChangeKind
		if err := rows.Scan(&uid, &kind); err != nil {
			return nil, err
		}
		if kind == changeNew {
			added = append(added, uid)
		} else {
			gone = append(gone, uid)
		}
	}
	if err := rows.Err(); err != nil || len(added)+len(gone) > maxCachedChanges {
		return nil, err
	}
	// UIDs are never reused, so the order of the changes does not matter:
	// the set is the old one plus the added, minus the expunged. One pass
	// over the runs, splitting them at the expunged UIDs.
	slices.Sort(gone)
	var runs []UIDRange
	g := 0
	for _, r := range set.runs {
		for ; g < len(gone) && gone[g] <= r.Last; g++ {
			switch u := gone[g]; {
			case u < r.First:
			case u == r.First && u == r.Last:
				r = UIDRange{1, 0} // empty
			case u == r.Last:
				r.Last--
			default:
				if u > r.First {
					runs = append(runs, UIDRange{r.First, u - 1})
				}
				r.First = u + 1
			}
		}
		if r.First <= r.Last {
			runs = append(runs, r)
		}
	}
	// New UIDs are above every UID of an earlier state: they extend the
	// last run or start runs of their own.
	slices.Sort(added)
	for _, uid := range added {
		if _, ok := slices.BinarySearch(gone, uid); ok {
			continue
		}
		i := sort.Search(len(runs), func(i int) bool { return runs[i].Last+1 >= uid })
		runs = addUID(runs, i, uid)
	}
	return NewUIDSet(runs), nil
}

// addUID adds uid to runs; i is the first run that ends at uid-1 or later.
func addUID(runs []UIDRange, i int, uid uint32) []UIDRange {
	switch {
	case i < len(runs) && runs[i].First <= uid && uid <= runs[i].Last:
		return runs // there already
	case i < len(runs) && runs[i].Last+1 == uid:
		runs[i].Last = uid
		if i+1 < len(runs) && runs[i+1].First == uid+1 {
			runs[i].Last = runs[i+1].Last
			runs = slices.Delete(runs, i+1, i+2)
		}
		return runs
	case i < len(runs) && runs[i].First == uid+1:
		runs[i].First = uid
		return runs
	}
	return slices.Insert(runs, i, UIDRange{uid, uid})
}
