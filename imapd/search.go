package imapd

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
)

// Search evaluates every RFC 9051 search key in the store, which answers
// text keys from its folded full-text index (so "da nang" finds "Đà Nẵng"
// whatever the client) and the rest from the messages' metadata, in one
// query. Sequence numbers and \Recent become UIDs here, as only the session
// knows them.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	if err := checkSearchSize(criteria); err != nil {
		return nil, err
	}
	sel := s.sel
	sel.static(criteria)
	var found mailstore.Found
	if last := sel.view.last(); last > 0 {
		c := sel.criteria(criteria)
		// Only messages the client has been told of.
		c.UIDs = append(c.UIDs, []mailstore.UIDRange{{First: 1, Last: last}})
		var err error
		if found, err = s.srv.Store.Search(s.cmdCtx(), sel.mb.ID, c); err != nil {
			return nil, s.fail("search", err)
		}
	}
	var uids, nums []uint32
	for _, uid := range found.UIDs {
		if n := sel.seq(uid); n != 0 {
			uids = append(uids, uid)
			nums = append(nums, n)
		}
	}
	modSeq := found.ModSeq // highest of the matches, for CONDSTORE
	if usesModSeq(criteria) && minMaxOnly(options) && len(uids) > 0 {
		// RFC 7162 3.1.5: with only MIN or MAX returned, MODSEQ is the
		// highest of the messages returned, not of all that matched.
		c := sel.criteria(criteria)
		c.UIDs = append(c.UIDs, returned(options, uids))
		of, err := s.srv.Store.Search(s.cmdCtx(), sel.mb.ID, c)
		if err != nil {
			return nil, s.fail("search", err)
		}
		modSeq = of.ModSeq
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
		if minMaxOnly(options) && len(uids) > 0 {
			saved = nil
			for _, r := range returned(options, uids) {
				saved = append(saved, r.First)
			}
		}
		sel.res = uidSet(saved)
	}
	return data, nil
}

// minMaxOnly reports whether a search returns MIN or MAX but neither ALL nor
// COUNT, when only those messages count (RFC 5182 2.1, RFC 7162 3.1.5).
func minMaxOnly(options *imap.SearchOptions) bool {
	return (options.ReturnMin || options.ReturnMax) && !options.ReturnAll && !options.ReturnCount
}

// returned are the messages a MIN/MAX-only search reports, of its ascending
// matches uids.
func returned(options *imap.SearchOptions, uids []uint32) []mailstore.UIDRange {
	var out []mailstore.UIDRange
	if options.ReturnMin {
		out = append(out, mailstore.UIDRange{First: uids[0], Last: uids[0]})
	}
	if last := uids[len(uids)-1]; options.ReturnMax && (len(out) == 0 || out[0].First != last) {
		out = append(out, mailstore.UIDRange{First: last, Last: last})
	}
	return out
}

// Search criteria are answered by one SQL expression, which SQLite bounds
// (1000 levels deep); past these bounds the client gets an answer naming its
// mistake rather than the store's error as a server fault.
const (
	maxSearchDepth = 64  // NOT and OR nested
	maxSearchKeys  = 400 // keys in all
)

func checkSearchSize(c *imap.SearchCriteria) error {
	keys, depth := searchSize(c)
	if depth > maxSearchDepth {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Search criteria nested too deep"}
	}
	if keys > maxSearchKeys {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: "Too many search keys"}
	}
	return nil
}

// searchSize counts c's keys and how deep NOT and OR nest in it.
func searchSize(c *imap.SearchCriteria) (keys, depth int) {
	keys = len(c.SeqNum) + len(c.UID) + len(c.Header) + len(c.Body) + len(c.Text) + len(c.Flag) + len(c.NotFlag) + 1
	sub := func(c *imap.SearchCriteria) {
		k, d := searchSize(c)
		keys += k
		depth = max(depth, d+1)
	}
	for i := range c.Not {
		sub(&c.Not[i])
	}
	for i := range c.Or {
		sub(&c.Or[i][0])
		sub(&c.Or[i][1])
	}
	return keys, depth
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

// criteria turns the client's criteria into the store's: sequence numbers
// into the UIDs they stand for, \Recent into the UIDs recent for this session.
func (sel *selected) criteria(c *imap.SearchCriteria) *mailstore.Criteria {
	out := &mailstore.Criteria{
		Since: c.Since, Before: c.Before, SentSince: c.SentSince, SentBefore: c.SentBefore,
		Larger: c.Larger, Smaller: c.Smaller,
	}
	if c.ModSeq != nil {
		out.ModSeq = int64(c.ModSeq.ModSeq)
	}
	for _, set := range c.SeqNum {
		rs := []mailstore.UIDRange{}
		for _, r := range set {
			rs = sel.view.seqRuns(rs, r.Start, r.Stop)
		}
		out.UIDs = append(out.UIDs, rs)
	}
	for _, set := range c.UID {
		rs := []mailstore.UIDRange{}
		for _, r := range set {
			rs = append(rs, mailstore.UIDRange{First: uint32(r.Start), Last: uint32(r.Stop)})
		}
		out.UIDs = append(out.UIDs, rs)
	}
	recent := append([]mailstore.UIDRange{}, sel.recent...)
	for _, f := range c.Flag {
		if strings.EqualFold(string(f), string(flagRecent)) {
			out.UIDs = append(out.UIDs, recent)
		} else {
			out.Flags = append(out.Flags, string(f))
		}
	}
	for _, f := range c.NotFlag {
		if strings.EqualFold(string(f), string(flagRecent)) {
			if len(recent) > 0 {
				out.Not = append(out.Not, mailstore.Criteria{UIDs: [][]mailstore.UIDRange{recent}})
			}
		} else {
			out.NotFlags = append(out.NotFlags, string(f))
		}
	}
	for _, q := range c.Text {
		out.Text = append(out.Text, mailstore.TextKey{Field: mailstore.FieldText, Query: q})
	}
	for _, q := range c.Body {
		out.Text = append(out.Text, mailstore.TextKey{Field: mailstore.FieldBody, Query: q})
	}
	for _, h := range c.Header {
		if f, ok := textFields[strings.ToLower(h.Key)]; ok && h.Value != "" {
			out.Text = append(out.Text, mailstore.TextKey{Field: f, Query: h.Value})
		} else {
			out.Text = append(out.Text, mailstore.TextKey{Header: h.Key, Query: h.Value})
		}
	}
	for i := range c.Not {
		out.Not = append(out.Not, *sel.criteria(&c.Not[i]))
	}
	for i := range c.Or {
		out.Or = append(out.Or, [2]mailstore.Criteria{*sel.criteria(&c.Or[i][0]), *sel.criteria(&c.Or[i][1])})
	}
	return out
}

var textFields = map[string]mailstore.Field{
	"from": mailstore.FieldFrom, "to": mailstore.FieldTo, "cc": mailstore.FieldCc,
	"bcc": mailstore.FieldBcc, "subject": mailstore.FieldSubject,
}
