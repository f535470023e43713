package imapd

import (
	"slices"
	"sort"

	"sealmail/mailstore"
)

// view is the UIDs a client knows, in order, so that sequence number n is
// the n-th of them. Its bulk is the mailbox's UID set as the session opened
// it, shared with every session that opened the mailbox in the same state
// (mailstore.UIDSet); the session keeps only what changed since: the UIDs
// of that set expunged (gone) and the runs of UIDs added above it. So a
// session's memory grows with the changes it saw, not with the mailbox's
// size or its gaps; past maxOwn changes it makes a set of its own.
type view struct {
	base   *mailstore.UIDSet
	gone   []uint32             // UIDs of base expunged since, ascending
	added  []mailstore.UIDRange // UIDs above base's last, ascending
	nAdded uint32
}

// maxOwn bounds the changes a view keeps beside its shared set.
const maxOwn = 1024

func newView(base *mailstore.UIDSet) *view { return &view{base: base} }

// len is the number of messages, the highest sequence number.
func (v *view) len() uint32 { return v.baseLen() + v.nAdded }

// baseLen is the number of the base set's UIDs still in the view.
func (v *view) baseLen() uint32 { return v.base.Len() - uint32(len(v.gone)) }

// last is the highest UID, 0 if the view is empty.
func (v *view) last() uint32 {
	if n := len(v.added); n > 0 {
		return v.added[n-1].Last
	}
	for k := v.base.Len(); k > 0; k-- {
		if uid := v.base.UID(k); !v.isGone(uid) {
			return uid
		}
	}
	return 0
}

func (v *view) isGone(uid uint32) bool {
	_, ok := slices.BinarySearch(v.gone, uid)
	return ok
}

// goneUpTo counts the expunged UIDs of the base set up to uid.
func (v *view) goneUpTo(uid uint32) uint32 {
	return uint32(sort.Search(len(v.gone), func(i int) bool { return v.gone[i] > uid }))
}

// uid returns the UID of sequence number seq (1 to len()).
func (v *view) uid(seq uint32) uint32 {
	if n := v.baseLen(); seq > n {
		seq -= n
		for _, r := range v.added {
			if k := r.Last - r.First + 1; seq > k {
				seq -= k
				continue
			}
			return r.First + seq - 1
		}
		return 0
	}
	// The least position p in the base set with p minus the expunged UIDs
	// up to it equal to seq: the iteration rises to it from below.
	p := seq
	for {
		next := seq + v.goneUpTo(v.base.UID(p))
		if next == p {
			return v.base.UID(p)
		}
		p = next
	}
}

// seq returns the sequence number of uid, or 0 if the client does not know it.
func (v *view) seq(uid uint32) uint32 {
	if uid > v.base.Last() {
		n := v.baseLen()
		for _, r := range v.added {
			if uid < r.First {
				return 0
			}
			if uid <= r.Last {
				return n + uid - r.First + 1
			}
			n += r.Last - r.First + 1
		}
		return 0
	}
	rank := v.base.Rank(uid)
	if rank == 0 || v.isGone(uid) {
		return 0
	}
	return rank - v.goneUpTo(uid)
}

// add appends a UID above all others; anything else is ignored (a change
// already contained in what the view was built from).
func (v *view) add(uid uint32) {
	if uid <= v.last() || uid <= v.base.Last() {
		return
	}
	if n := len(v.added); n > 0 && v.added[n-1].Last+1 == uid {
		v.added[n-1].Last = uid
	} else {
		v.added = append(v.added, mailstore.UIDRange{First: uid, Last: uid})
	}
	v.nAdded++
	v.compact()
}

// remove takes UIDs out of the view and returns the sequence numbers to
// announce, in order, for one EXPUNGE each: every number is what the message
// had after the ones before it were expunged. UIDs the view lacks are skipped.
func (v *view) remove(uids []uint32) []uint32 {
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var seqs []uint32
	for _, uid := range uids {
		seq := v.seq(uid)
		if seq == 0 {
			continue
		}
		seqs = append(seqs, seq)
		if uid <= v.base.Last() {
			i, _ := slices.BinarySearch(v.gone, uid)
			v.gone = slices.Insert(v.gone, i, uid)
			continue
		}
		i := sort.Search(len(v.added), func(i int) bool { return v.added[i].Last >= uid })
		r := &v.added[i]
		switch {
		case r.First == r.Last:
			v.added = slices.Delete(v.added, i, i+1)
		case uid == r.First:
			r.First++
		case uid == r.Last:
			r.Last--
		default:
			tail := mailstore.UIDRange{First: uid + 1, Last: r.Last}
			r.Last = uid - 1
			v.added = slices.Insert(v.added, i+1, tail)
		}
		v.nAdded--
		v.compact()
	}
	return seqs
}

// compact gives the view a set of its own once it holds many changes
// beside the shared one.
func (v *view) compact() {
	if len(v.gone)+len(v.added) <= maxOwn {
		return
	}
	var runs []mailstore.UIDRange
	v.runsFrom(1, func(first, last uint32) bool {
		runs = append(runs, mailstore.UIDRange{First: first, Last: last})
		return true
	})
	*v = view{base: mailstore.NewUIDSet(runs)}
}

// runsFrom calls fn with the runs of consecutive known UIDs from lo up, in
// order, while it returns true.
func (v *view) runsFrom(lo uint32, fn func(first, last uint32) bool) {
	runs := v.base.Runs()
	i := sort.Search(len(runs), func(i int) bool { return runs[i].Last >= lo })
	g := sort.Search(len(v.gone), func(i int) bool { return v.gone[i] >= lo })
	for ; i < len(runs); i++ {
		first, last, empty := max(runs[i].First, lo), runs[i].Last, false
		for ; g < len(v.gone) && v.gone[g] <= last; g++ {
			u := v.gone[g]
			if u > first && !fn(first, u-1) {
				return
			}
			if u == last {
				g++
				empty = true
				break
			}
			first = u + 1
		}
		if !empty && !fn(first, last) {
			return
		}
	}
	for _, r := range v.added {
		if r.Last >= lo && !fn(max(r.First, lo), r.Last) {
			return
		}
	}
}

// between appends to out the UIDs of sequence numbers from through to.
func (v *view) between(out []uint32, from, to uint32) []uint32 {
	to = min(to, v.len())
	if from == 0 || from > to {
		return out
	}
	need := to - from + 1
	v.runsFrom(v.uid(from), func(first, last uint32) bool {
		for u := first; need > 0; u++ {
			out = append(out, u)
			need--
			if u == last {
				break
			}
		}
		return need > 0
	})
	return out
}

// seqRuns appends the UID runs of sequence numbers from through to (those
// past the end are none).
func (v *view) seqRuns(out []mailstore.UIDRange, from, to uint32) []mailstore.UIDRange {
	to = min(to, v.len())
	if from == 0 || from > to {
		return out
	}
	need := to - from + 1
	v.runsFrom(v.uid(from), func(first, last uint32) bool {
		k := min(last-first+1, need)
		out = append(out, mailstore.UIDRange{First: first, Last: first + k - 1})
		need -= k
		return need > 0
	})
	return out
}

// within appends to out the known UIDs from lo through hi.
func (v *view) within(out []uint32, lo, hi uint32) []uint32 {
	v.runsFrom(lo, func(first, last uint32) bool {
		if first > hi {
			return false
		}
		for u := first; u <= min(last, hi); u++ {
			out = append(out, u)
			if u == ^uint32(0) {
				break
			}
		}
		return true
	})
	return out
}

// all appends every known UID to out.
func (v *view) all(out []uint32) []uint32 { return v.within(out, 1, ^uint32(0)) }

// count is how many known UIDs lie from lo through hi.
func (v *view) count(lo, hi uint32) uint32 {
	n := uint32(0)
	v.runsFrom(lo, func(first, last uint32) bool {
		if first > hi {
			return false
		}
		n += min(last, hi) - first + 1
		return true
	})
	return n
}
