package imapd

import (
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Thread answers THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
// sections 3 and 4). Sent dates are the Date: header, or the internal date
// when there is none; ties go by sequence number.
func (s *session) Thread(kind imapserver.NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imap.ThreadData, error) {
	msgs, err := s.sortMessages(criteria, alg == imap.ThreadReferences)
	if err != nil {
		return nil, err
	}
	var roots []*node
	switch alg {
	case imap.ThreadOrderedSubject:
		roots = orderedSubject(msgs)
	case imap.ThreadReferences:
		roots = referenceThreads(msgs)
	default:
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unsupported threading algorithm"}
	}
	out := make([]imap.ThreadData, len(roots))
	for i, r := range roots {
		out[i] = r.data(kind)
	}
	return out, nil
}

// node is a container of RFC 5256's REFERENCES algorithm; a nil msg makes it
// a dummy, standing for a message referred to but not in the set.
type node struct {
	msg      *sortMsg
	parent   *node
	children []*node
}

// date is the sent date a node sorts by: a dummy's is its first child's.
func (n *node) date() (time.Time, uint32) {
	for n.msg == nil {
		if len(n.children) == 0 {
			return time.Time{}, 0
		}
		n = n.children[0]
	}
	return n.msg.sent(), n.msg.seq
}

func sortNodes(l []*node) {
	slices.SortStableFunc(l, func(a, b *node) int {
		da, sa := a.date()
		db, sb := b.date()
		if r := da.Compare(db); r != 0 {
			return r
		}
		return cmpInt(sa, sb)
	})
}

// data renders the thread below n: a message with one child continues the
// chain, more children are branches.
func (n *node) data(kind imapserver.NumKind) imap.ThreadData {
	var t imap.ThreadData
	for n.msg != nil {
		t.Chain = append(t.Chain, sortNum(kind, n.msg))
		if len(n.children) != 1 {
			break
		}
		n = n.children[0]
	}
	if len(n.children) == 1 { // a dummy with one child cannot survive pruning; render its child
		return n.children[0].data(kind)
	}
	if len(n.children) > 1 {
		for _, c := range n.children {
			t.SubThreads = append(t.SubThreads, c.data(kind))
		}
	}
	return t
}

func (n *node) addChild(c *node) {
	c.parent = n
	n.children = append(n.children, c)
}

func (n *node) removeChild(c *node) {
	if i := slices.Index(n.children, c); i >= 0 {
		n.children = slices.Delete(n.children, i, i+1)
	}
	c.parent = nil
}

// isAncestorOf reports whether n is c or one of its ancestors.
func (n *node) isAncestorOf(c *node) bool {
	for ; c != nil; c = c.parent {
		if c == n {
			return true
		}
	}
	return false
}

// orderedSubject groups messages by base subject; the earliest of each group
// is its parent and the others its children, in date order; threads are in
// the order of their first message (RFC 5256 section 3).
func orderedSubject(msgs []sortMsg) []*node {
	sorted := make([]*node, len(msgs))
	for i := range msgs {
		sorted[i] = &node{msg: &msgs[i]}
	}
	sortNodes(sorted)
	var roots []*node
	bySubject := map[string]*node{}
	c := newSortCollator()
	for _, n := range sorted {
		subject := ""
		if n.msg.env != nil {
			subject = n.msg.env.Subject
		}
		base, _ := baseSubject(subject)
		key := c.key(base).folded
		if root, ok := bySubject[key]; ok {
			root.addChild(n)
			continue
		}
		bySubject[key] = n
		roots = append(roots, n)
	}
	return roots
}

// referenceThreads is RFC 5256's REFERENCES algorithm (section 4): threads
// by Message-ID, References and In-Reply-To, then messages whose threads
// broke are brought together by base subject.
func referenceThreads(msgs []sortMsg) []*node {
	byID := map[string]*node{}
	get := func(id string) *node {
		n := byID[id]
		if n == nil {
			n = &node{}
			byID[id] = n
		}
		return n
	}
	unique := 0
	// (1) containers and links.
	for i := range msgs {
		m := &msgs[i]
		id := ""
		if m.env != nil {
			id = m.env.MessageID
		}
		var n *node
		if id != "" {
			if n = get(id); n.msg != nil {
				n = nil // a duplicate Message-ID counts as none
			}
		}
		if n == nil {
			unique++
			n = get("\x00" + strconv.Itoa(unique))
		}
		n.msg = m
		var prev *node
		for _, ref := range m.refs {
			r := get(ref)
			if prev != nil && r.parent == nil && !r.isAncestorOf(prev) {
				prev.addChild(r)
			}
			prev = r
		}
		if n.parent != nil {
			n.parent.removeChild(n)
		}
		if prev != nil && !n.isAncestorOf(prev) {
			prev.addChild(n)
		}
	}
	// (2) the root set, in the order messages came for a stable result.
	var roots []*node
	seen := map[*node]bool{}
	for _, n := range byID {
		for n.parent != nil {
			n = n.parent
		}
		if !seen[n] {
			seen[n] = true
			roots = append(roots, n)
		}
	}
	// (3) prune dummies.
	roots = prune(roots, true)
	// (4) sort the root set; children first, since a dummy sorts by its first child.
	for _, r := range roots {
		sortTree(r)
	}
	sortNodes(roots)
	// (5) gather threads by base subject.
	roots = mergeBySubject(roots)
	// (6) sort siblings at every level once more.
	for _, r := range roots {
		sortTree(r)
	}
	sortNodes(roots)
	return roots
}

// prune drops dummies without children and lifts the children of the rest a
// level, but at the root only a lone child (RFC 5256 step 3).
func prune(l []*node, root bool) []*node {
	var out []*node
	for _, n := range l {
		n.children = prune(n.children, false)
		for _, c := range n.children {
			c.parent = n
		}
		switch {
		case n.msg != nil:
			out = append(out, n)
		case len(n.children) == 0:
		case !root || len(n.children) == 1:
			for _, c := range n.children {
				c.parent = n.parent
			}
			if root {
				n.children[0].parent = nil
			}
			out = append(out, n.children...)
		default:
			out = append(out, n)
		}
	}
	return out
}

func sortTree(n *node) {
	for _, c := range n.children {
		sortTree(c)
	}
	sortNodes(n.children)
}

// subjectOf is a root's base subject: its message's, or its first child's.
func subjectOf(n *node) (string, bool, bool) {
	m := n.msg
	if m == nil {
		if len(n.children) == 0 {
			return "", false, false
		}
		m = n.children[0].msg
		if m == nil {
			return "", false, false
		}
	}
	subject := ""
	if m.env != nil {
		subject = m.env.Subject
	}
	base, reply := baseSubject(subject)
	return base, reply, base != ""
}

// mergeBySubject is RFC 5256 step 5.
func mergeBySubject(roots []*node) []*node {
	c := newSortCollator()
	key := func(n *node) (string, bool, bool) {
		base, reply, ok := subjectOf(n)
		return c.key(base).folded, reply, ok
	}
	table := map[string]*node{}
	for _, r := range roots {
		k, reply, ok := key(r)
		if !ok {
			continue
		}
		old := table[k]
		if old == nil || old.msg != nil && r.msg == nil {
			table[k] = r
			continue
		}
		if _, oldReply, _ := key(old); oldReply && !reply && !(old.msg == nil) {
			table[k] = r
		}
	}
	var out []*node
	merged := map[*node]bool{} // roots already put under another
	for _, r := range roots {
		if merged[r] {
			continue
		}
		k, reply, ok := key(r)
		t := table[k]
		if !ok || t == nil || t == r {
			out = append(out, r)
			continue
		}
		switch {
		case t.msg == nil && r.msg == nil:
			for _, ch := range r.children {
				t.addChild(ch)
			}
		case t.msg == nil:
			t.addChild(r)
		case r.msg == nil:
			// The dummy takes the table's place; t becomes its child.
			r.addChild(t)
			merged[t] = true
			table[k] = r
			out = replace(out, t, r)
		default:
			_, tReply, _ := key(t)
			if !tReply && reply {
				t.addChild(r)
			} else {
				d := &node{}
				d.addChild(t)
				d.addChild(r)
				merged[t] = true
				table[k] = d
				out = replace(out, t, d)
			}
		}
	}
	return out
}

// replace puts n where old was in l; old may not be in l yet (it comes later
// in the root set, and is then skipped as merged).
func replace(l []*node, old, n *node) []*node {
	if i := slices.Index(l, old); i >= 0 {
		l[i] = n
		return l
	}
	return append(l, n)
}
