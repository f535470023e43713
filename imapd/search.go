package imapd

import (
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
)

// Search evaluates every RFC 9051 search key. Text keys go to the store's
// folded full-text index, so "da nang" finds "Đà Nẵng" whatever the client;
// the rest is decided here on the mailbox's per-message state.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	sel.static(criteria)
	msgs, err := s.srv.Store.Messages(s.cmdCtx(), sel.mb.ID)
	if err != nil {
		return nil, s.fail("search", err)
	}
	ev := &evaluator{s: s, text: map[textKey][]uint32{}}
	var uids, nums []uint32
	var modSeq int64 // highest of the matches, for CONDSTORE
	for i := range msgs {
		m := &msgs[i]
		n := sel.seq(m.UID)
		if n == 0 {
			continue
		}
		if sel.isRecent(m.UID) {
			m.Flags = append(m.Flags, string(flagRecent)) // RECENT, NEW, OLD
		}
		ok, err := ev.match(m, n, criteria)
		if err != nil {
			return nil, err
		}
		if ok {
			uids = append(uids, m.UID)
			nums = append(nums, n)
			modSeq = max(modSeq, m.ModSeq)
		}
	}
	if kind == imapserver.NumKindUID {
		nums = uids
	}
	data := &imap.SearchData{Count: uint32(len(nums))}
	if usesModSeq(criteria) {
		data.ModSeq = uint64(modSeq) // RFC 7162 3.1.5
	}
	if len(nums) > 0 {
		data.Min, data.Max = nums[0], nums[len(nums)-1]
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet(uids)
	} else {
		data.All = seqSet(nums)
	}
	if options.ReturnSave {
		// RFC 5182 2.1: with MIN or MAX but neither ALL nor COUNT, only those
		// messages are saved.
		saved := uids
		if (options.ReturnMin || options.ReturnMax) && !options.ReturnAll && !options.ReturnCount && len(uids) > 0 {
			saved = nil
			if options.ReturnMin {
				saved = append(saved, uids[0])
			}
			if options.ReturnMax && (len(saved) == 0 || saved[0] != uids[len(uids)-1]) {
				saved = append(saved, uids[len(uids)-1])
			}
		}
		sel.res = uidSet(saved)
	}
	return data, nil
}

func uidSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, r := range ranges(uids) {
		set = append(set, imap.UIDRange{Start: imap.UID(r[0]), Stop: imap.UID(r[1])})
	}
	return set
}

func seqSet(nums []uint32) imap.SeqSet {
	var set imap.SeqSet
	for _, r := range ranges(nums) {
		set = append(set, imap.SeqRange{Start: r[0], Stop: r[1]})
	}
	return set
}

// ranges folds ascending numbers into ranges; imap's AddNum would re-sort the
// set on every call.
func ranges(nums []uint32) [][2]uint32 {
	var out [][2]uint32
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		out = append(out, [2]uint32{nums[i], nums[j]})
		i = j + 1
	}
	return out
}

// static replaces "*" and "$" in the criteria's sets by what they stand for now.
func (sel *selected) static(c *imap.SearchCriteria) {
	n, last := sel.view.len(), sel.view.last()
	for i, set := range c.SeqNum {
		set = slices.Clone(set)
		for j := range set {
			set[j].Start, set[j].Stop = fill(set[j].Start, set[j].Stop, n)
		}
		c.SeqNum[i] = set
	}
	for i, set := range c.UID {
		if imap.IsSearchRes(set) {
			c.UID[i] = sel.res
			continue
		}
		set = slices.Clone(set)
		for j := range set {
			start, stop := fill(uint32(set[j].Start), uint32(set[j].Stop), last)
			set[j].Start, set[j].Stop = imap.UID(start), imap.UID(stop)
		}
		c.UID[i] = set
	}
	for i := range c.Not {
		sel.static(&c.Not[i])
	}
	for i := range c.Or {
		sel.static(&c.Or[i][0])
		sel.static(&c.Or[i][1])
	}
}

func fill(start, stop, star uint32) (uint32, uint32) {
	if start == 0 {
		start = star
	}
	if stop == 0 {
		stop = star
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

type textKey struct {
	field  mailstore.Field
	header string // for SearchHeader; field unused then
	query  string
}

// evaluator decides criteria for one SEARCH, asking the store for each text
// key once whatever the number of messages.
type evaluator struct {
	s    *session
	text map[textKey][]uint32
	sent map[uint32]time.Time // Date header, read only if SENT* keys are used
}

var textFields = map[string]mailstore.Field{
	"from": mailstore.FieldFrom, "to": mailstore.FieldTo, "cc": mailstore.FieldCc,
	"bcc": mailstore.FieldBcc, "subject": mailstore.FieldSubject,
}

func (ev *evaluator) hits(k textKey) ([]uint32, error) {
	if r, ok := ev.text[k]; ok {
		return r, nil
	}
	sel := ev.s.sel
	var r []uint32
	var err error
	if k.header != "" {
		r, err = ev.s.srv.Store.SearchHeader(ev.s.cmdCtx(), sel.mb.ID, k.header, k.query)
	} else {
		r, err = ev.s.srv.Store.SearchText(ev.s.cmdCtx(), sel.mb.ID, k.field, k.query)
	}
	if err != nil {
		return nil, ev.s.fail("search", err)
	}
	slices.Sort(r)
	ev.text[k] = r
	return r, nil
}

func (ev *evaluator) contains(k textKey, uid uint32) (bool, error) {
	r, err := ev.hits(k)
	if err != nil {
		return false, err
	}
	_, ok := slices.BinarySearch(r, uid)
	return ok, nil
}

func (ev *evaluator) sentDate(m *mailstore.Message) (time.Time, error) {
	if ev.sent == nil {
		ev.sent = map[uint32]time.Time{}
		sel := ev.s.sel
		err := ev.s.srv.Store.Fetch(ev.s.cmdCtx(), sel.mb.ID, nil, mailstore.FetchEnvelope, func(it mailstore.Item) error {
			if it.Envelope != nil && !it.Envelope.Date.IsZero() {
				ev.sent[it.UID] = it.Envelope.Date
			}
			return nil
		})
		if err != nil {
			return time.Time{}, ev.s.fail("search", err)
		}
	}
	if d, ok := ev.sent[m.UID]; ok {
		return d, nil
	}
	return m.InternalDate, nil // no Date: header, as RFC 9051 leaves open
}

// day keeps the calendar date of t in its own zone, as SINCE/BEFORE/ON and
// their SENT* forms compare dates only.
func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (ev *evaluator) match(m *mailstore.Message, seq uint32, c *imap.SearchCriteria) (bool, error) {
	for _, set := range c.SeqNum {
		if !set.Contains(seq) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if !set.Contains(imap.UID(m.UID)) {
			return false, nil
		}
	}
	for _, f := range c.Flag {
		if !hasFlag(m.Flags, f) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(m.Flags, f) {
			return false, nil
		}
	}
	if c.ModSeq != nil && uint64(m.ModSeq) < c.ModSeq.ModSeq {
		return false, nil
	}
	if c.Larger > 0 && m.Size <= c.Larger {
		return false, nil
	}
	if c.Smaller > 0 && m.Size >= c.Smaller {
		return false, nil
	}
	if !c.Since.IsZero() || !c.Before.IsZero() {
		d := day(m.InternalDate)
		if (!c.Since.IsZero() && d.Before(c.Since)) || (!c.Before.IsZero() && !d.Before(c.Before)) {
			return false, nil
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		t, err := ev.sentDate(m)
		if err != nil {
			return false, err
		}
		d := day(t)
		if (!c.SentSince.IsZero() && d.Before(c.SentSince)) || (!c.SentBefore.IsZero() && !d.Before(c.SentBefore)) {
			return false, nil
		}
	}
	var keys []textKey
	for _, q := range c.Text {
		keys = append(keys, textKey{field: mailstore.FieldText, query: q})
	}
	for _, q := range c.Body {
		keys = append(keys, textKey{field: mailstore.FieldBody, query: q})
	}
	for _, h := range c.Header {
		if f, ok := textFields[strings.ToLower(h.Key)]; ok && h.Value != "" {
			keys = append(keys, textKey{field: f, query: h.Value})
		} else {
			keys = append(keys, textKey{header: h.Key, query: h.Value})
		}
	}
	for _, k := range keys {
		if ok, err := ev.contains(k, m.UID); !ok || err != nil {
			return false, err
		}
	}
	for i := range c.Not {
		if ok, err := ev.match(m, seq, &c.Not[i]); ok || err != nil {
			return false, err
		}
	}
	for i := range c.Or {
		a, err := ev.match(m, seq, &c.Or[i][0])
		if err != nil {
			return false, err
		}
		if !a {
			b, err := ev.match(m, seq, &c.Or[i][1])
			if !b || err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

func hasFlag(flags []string, f imap.Flag) bool {
	for _, g := range flags {
		if strings.EqualFold(g, string(f)) {
			return true
		}
	}
	return false
}
