package imapd

import (
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"

	"sealmail/mailstore"
)

// SORT and THREAD (RFC 5256). Messages are chosen by Search, so every search
// key works here as in SEARCH; their envelopes (References included) come
// from what the store parsed at delivery, so no content is read.
//
// Strings compare as RFC 5256's default collation, i;ascii-casemap, applied to
// the folded text (mailstore.Fold: no tone or vowel marks, đ as d), so that
// "Đà Nẵng" sorts with "da nang" and not after every ASCII subject; strings
// that fold alike are then ordered by the Vietnamese collation of
// golang.org/x/text/collate (a < ă < â, d < đ, tones in their order), case
// aside. I18NLEVEL (RFC 5255) is not advertised: its COMPARATOR command and
// per-session collation are not implemented.

// sortMsg is what SORT and THREAD know of one message.
type sortMsg struct {
	uid, seq uint32
	arrival  time.Time
	size     int64
	env      *mailstore.Envelope
	refs     []string // References, else In-Reply-To (THREAD=REFERENCES only)
}

// sent is the message's Date:, or its internal date when it has none.
func (m *sortMsg) sent() time.Time {
	if m.env != nil && !m.env.Date.IsZero() {
		return m.env.Date
	}
	return m.arrival
}

func (s *session) sortMessages(criteria *imap.SearchCriteria, refs bool) ([]sortMsg, error) {
	data, err := s.Search(imapserver.NumKindUID, criteria, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return nil, err
	}
	set, _ := data.All.(imap.UIDSet)
	found, _ := set.Nums()
	if len(found) == 0 {
		return nil, nil
	}
	uids := make([]uint32, len(found))
	for i, u := range found {
		uids[i] = uint32(u)
	}
	msgs := make([]sortMsg, 0, len(uids))
	err = s.srv.Store.Fetch(s.cmdCtx(), s.sel.mb.ID, uids, mailstore.FetchEnvelope, func(it mailstore.Item) error {
		n := s.sel.seq(it.UID)
		if n == 0 {
			return nil
		}
		m := sortMsg{uid: it.UID, seq: n, arrival: it.InternalDate, size: it.Size, env: it.Envelope}
		if refs {
			m.refs = references(it.Envelope)
		}
		msgs = append(msgs, m)
		return nil
	})
	if err != nil {
		return nil, s.fail("sort", err)
	}
	return msgs, nil
}

// references returns the message ids a message refers to, oldest first:
// References, or failing that the first id of In-Reply-To (RFC 5256 step 1A).
func references(env *mailstore.Envelope) []string {
	switch {
	case env == nil:
		return nil
	case len(env.References) > 0:
		return env.References
	case len(env.InReplyTo) > 0:
		return env.InReplyTo[:1]
	}
	return nil
}

func (s *session) Sort(kind imapserver.NumKind, keys []imap.SortCriterion, criteria *imap.SearchCriteria) ([]uint32, error) {
	msgs, err := s.sortMessages(criteria, false)
	if err != nil {
		return nil, err
	}
	c := newSortCollator()
	// Each key's string is computed once per message, not per comparison.
	type keyed struct {
		m    *sortMsg
		strs []sortString
	}
	items := make([]keyed, len(msgs))
	for i := range msgs {
		items[i].m = &msgs[i]
		items[i].strs = make([]sortString, len(keys))
		for j, k := range keys {
			if str, ok := sortText(&msgs[i], k.Key); ok {
				items[i].strs[j] = c.key(str)
			}
		}
	}
	slices.SortFunc(items, func(a, b keyed) int {
		for j, k := range keys {
			var r int
			switch k.Key {
			case imap.SortKeyArrival:
				r = a.m.arrival.Compare(b.m.arrival)
			case imap.SortKeyDate:
				r = a.m.sent().Compare(b.m.sent())
			case imap.SortKeySize:
				r = cmpInt(a.m.size, b.m.size)
			default:
				r = c.compare(&a.strs[j], &b.strs[j])
			}
			if k.Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmpInt(a.m.seq, b.m.seq)
	})
	out := make([]uint32, len(items))
	for i, it := range items {
		out[i] = sortNum(kind, it.m)
	}
	return out, nil
}

func sortNum(kind imapserver.NumKind, m *sortMsg) uint32 {
	if kind == imapserver.NumKindUID {
		return m.uid
	}
	return m.seq
}

func cmpInt[T int64 | uint32](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sortText is the string a key sorts a message by (RFC 5256 section 3,
// RFC 5957 for the DISPLAY keys).
func sortText(m *sortMsg, key imap.SortKey) (string, bool) {
	e := m.env
	if e == nil {
		e = &mailstore.Envelope{}
	}
	switch key {
	case imap.SortKeySubject:
		base, _ := baseSubject(e.Subject)
		return base, true
	case imap.SortKeyFrom:
		return firstMailbox(e.From), true
	case imap.SortKeyTo:
		return firstMailbox(e.To), true
	case imap.SortKeyCc:
		return firstMailbox(e.Cc), true
	case imap.SortKeyDisplayFrom:
		return display(e.From), true
	case imap.SortKeyDisplayTo:
		return display(e.To), true
	}
	return "", false
}

// firstAddress skips group markers (which have no host).
func firstAddress(l []mailstore.Address) *mailstore.Address {
	for i := range l {
		if l[i].Host != "" {
			return &l[i]
		}
	}
	return nil
}

func firstMailbox(l []mailstore.Address) string {
	if a := firstAddress(l); a != nil {
		return a.Mailbox
	}
	return ""
}

// display is RFC 5957's display name: the name, or the address without one.
func display(l []mailstore.Address) string {
	a := firstAddress(l)
	switch {
	case a == nil:
		return ""
	case strings.TrimSpace(a.Name) != "":
		return a.Name
	}
	return a.Mailbox + "@" + a.Host
}

// sortCollator compares strings as described at the top of this file. A
// collate.Collator keeps buffers, so each command has its own.
type sortCollator struct{ c *collate.Collator }

type sortString struct {
	folded string // Fold, then upper-cased as i;ascii-casemap does
	orig   string
}

func newSortCollator() *sortCollator {
	return &sortCollator{collate.New(language.Vietnamese, collate.IgnoreCase)}
}

func (c *sortCollator) key(s string) sortString {
	return sortString{folded: asciiUpper(mailstore.Fold(s)), orig: s}
}

func (c *sortCollator) compare(a, b *sortString) int {
	if r := strings.Compare(a.folded, b.folded); r != 0 {
		return r
	}
	if a.orig == b.orig {
		return 0
	}
	return c.c.CompareString(a.orig, b.orig)
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if 'a' <= ch && ch <= 'z' {
			b[i] = ch - 'a' + 'A'
		}
	}
	return string(b)
}

// baseSubject extracts the base subject of RFC 5256 section 2.1 from a
// decoded subject, and reports whether it was a reply or forward (a
// "Re:"/"Fwd:" leader, a "(fwd)" trailer or a "[fwd: ...]" wrapper).
func baseSubject(s string) (string, bool) {
	// (1) whitespace runs become one space.
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }), " ")
	reply := false
	for {
		// (2) trailers: "(fwd)" and whitespace.
		for {
			t := strings.TrimRight(s, " ")
			if len(t) >= 5 && strings.EqualFold(t[len(t)-5:], "(fwd)") {
				t = t[:len(t)-5]
				reply = true
			}
			if t == s {
				break
			}
			s = t
		}
		// (3) and (4): leaders and blobs, until neither changes anything.
		for {
			before := s
			for {
				if isRefwd(s) {
					reply = true
				}
				rest, ok := cutLeader(s)
				if !ok {
					break
				}
				s = rest
			}
			if rest, ok := cutBlob(s); ok && rest != "" {
				s = rest
			}
			if s == before {
				break
			}
		}
		// (5) "[fwd: ... ]".
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		return s, reply
	}
}

// cutBlob removes a leading subj-blob: "[" *BLOBCHAR "]" *WSP.
func cutBlob(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return s, false
	}
	return strings.TrimLeft(s[end+2:], " "), true
}

// cutRefwd removes a leading subj-refwd: ("re" / "fw" ["d"]) *WSP [subj-blob] ":".
func cutRefwd(s string) (string, bool) {
	var n int
	switch l := strings.ToLower(s); {
	case strings.HasPrefix(l, "re"):
		n = 2
	case strings.HasPrefix(l, "fwd"):
		n = 3
	case strings.HasPrefix(l, "fw"):
		n = 2
	default:
		return s, false
	}
	rest := strings.TrimLeft(s[n:], " ")
	if r, ok := cutBlob(rest); ok {
		rest = r
	}
	if !strings.HasPrefix(rest, ":") {
		return s, false
	}
	return rest[1:], true
}

// cutLeader removes one subj-leader: (*subj-blob subj-refwd) / WSP.
func cutLeader(s string) (string, bool) {
	if strings.HasPrefix(s, " ") {
		return s[1:], true
	}
	rest := s
	for {
		if r, ok := cutRefwd(rest); ok {
			return r, true
		}
		r, ok := cutBlob(rest)
		if !ok {
			return s, false
		}
		rest = r
	}
}

// isRefwd reports whether s starts with *subj-blob subj-refwd.
func isRefwd(s string) bool {
	for {
		if _, ok := cutRefwd(s); ok {
			return true
		}
		r, ok := cutBlob(s)
		if !ok {
			return false
		}
		s = r
	}
}
