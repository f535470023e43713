package imapd

import (
	"slices"
	"sort"

	"sealmail/mailstore"
)

// view is the UIDs a client knows, in order, so that sequence number n is
// the n-th of them. It keeps them as runs of consecutive UIDs, with the
// number of UIDs before each run, so a session's memory grows with the gaps
// in its mailbox, not with the number of messages: a 200,000-message INBOX
// whose UIDs have no gaps is one run.
type view struct {
	runs   []mailstore.UIDRange
	before []uint32 // before[i]: UIDs in runs[:i]
	n      uint32
}

func newView(runs []mailstore.UIDRange) *view {
	v := &view{runs: runs}
	v.reindex(0)
	return v
}

// reindex recomputes before from run i on.
func (v *view) reindex(i int) {
	v.before = slices.Grow(v.before[:min(i, len(v.before))], len(v.runs)-i)[:len(v.runs)]
	n := uint32(0)
	if i > 0 {
		n = v.before[i-1] + v.runs[i-1].Last - v.runs[i-1].First + 1
	}
	for ; i < len(v.runs); i++ {
		v.before[i] = n
		n += v.runs[i].Last - v.runs[i].First + 1
	}
	v.n = n
}

// len is the number of messages, the highest sequence number.
func (v *view) len() uint32 { return v.n }

// last is the highest UID, 0 if the view is empty.
func (v *view) last() uint32 {
	if len(v.runs) == 0 {
		return 0
	}
	return v.runs[len(v.runs)-1].Last
}

// uid returns the UID of sequence number seq (1 to len()).
func (v *view) uid(seq uint32) uint32 {
	i := sort.Search(len(v.runs), func(i int) bool { return v.before[i] >= seq }) - 1
	return v.runs[i].First + (seq - 1 - v.before[i])
}

// find returns the index of the run holding uid, and whether there is one.
func (v *view) find(uid uint32) (int, bool) {
	i := sort.Search(len(v.runs), func(i int) bool { return v.runs[i].Last >= uid })
	return i, i < len(v.runs) && v.runs[i].First <= uid
}

// seq returns the sequence number of uid, or 0 if the client does not know it.
func (v *view) seq(uid uint32) uint32 {
	i, ok := v.find(uid)
	if !ok {
		return 0
	}
	return v.before[i] + uid - v.runs[i].First + 1
}

// add appends a UID above all others; anything else is ignored (a change
// already contained in what the view was built from).
func (v *view) add(uid uint32) {
	if uid <= v.last() {
		return
	}
	if n := len(v.runs); n > 0 && v.runs[n-1].Last+1 == uid {
		v.runs[n-1].Last = uid
	} else {
		v.runs = append(v.runs, mailstore.UIDRange{First: uid, Last: uid})
		v.before = append(v.before, v.n)
	}
	v.n++
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
		i, ok := v.find(uid)
		if !ok {
			continue
		}
		seqs = append(seqs, v.before[i]+uid-v.runs[i].First+1)
		r := &v.runs[i]
		switch {
		case r.First == r.Last:
			v.runs = slices.Delete(v.runs, i, i+1)
			v.before = slices.Delete(v.before, i, i+1)
		case uid == r.First:
			r.First++
		case uid == r.Last:
			r.Last--
		default:
			tail := mailstore.UIDRange{First: uid + 1, Last: r.Last}
			r.Last = uid - 1
			v.runs = slices.Insert(v.runs, i+1, tail)
			v.before = slices.Insert(v.before, i+1, 0)
		}
		// Counts change from run i on; expunges are usually of recent
		// messages, in the last runs, so this is cheap.
		v.reindex(i)
	}
	return seqs
}

// between appends to out the UIDs of sequence numbers from through to.
func (v *view) between(out []uint32, from, to uint32) []uint32 {
	if from > to || to == 0 {
		return out
	}
	i := sort.Search(len(v.runs), func(i int) bool { return v.before[i] >= from }) - 1
	for seq := from; i < len(v.runs) && seq <= to; i++ {
		r := v.runs[i]
		start := r.First + (seq - 1 - v.before[i])
		count := min(r.Last-start+1, to-seq+1)
		for u := start; u < start+count; u++ {
			out = append(out, u)
		}
		seq += count
	}
	return out
}

// within appends to out the known UIDs from lo through hi.
func (v *view) within(out []uint32, lo, hi uint32) []uint32 {
	i, _ := v.find(lo)
	for ; i < len(v.runs) && v.runs[i].First <= hi; i++ {
		r := v.runs[i]
		for u := max(r.First, lo); u <= min(r.Last, hi); u++ {
			out = append(out, u)
			if u == ^uint32(0) {
				break
			}
		}
	}
	return out
}

// all appends every known UID to out.
func (v *view) all(out []uint32) []uint32 { return v.within(out, 1, ^uint32(0)) }

// count is how many known UIDs lie from lo through hi.
func (v *view) count(lo, hi uint32) uint32 {
	n := uint32(0)
	i, _ := v.find(lo)
	for ; i < len(v.runs) && v.runs[i].First <= hi; i++ {
		r := v.runs[i]
		n += min(r.Last, hi) - max(r.First, lo) + 1
	}
	return n
}
