package imapd

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
)

var _ imapserver.SessionCondStore = (*session)(nil)

// Resync answers SELECT (QRESYNC ...) (RFC 7162 3.2.5): the UIDs expunged
// since the client's mod-sequence, then the messages changed since, both
// found through indexes, so a resync costs what changed, not the mailbox.
func (s *session) Resync(w *imapserver.FetchWriter, q *imap.SelectQResync) error {
	sel := s.sel
	since := int64(min(q.ModSeq, 1<<63-1))
	known := q.KnownUIDs
	if known == nil {
		known = imap.UIDSet{{Start: 1, Stop: 0}}
	}
	if err := s.vanished(w, since, known); err != nil {
		return err
	}
	return s.srv.Store.FetchChanged(s.ctx(), sel.mb.ID, nil, since, 0, func(it mailstore.Item) error {
		n := sel.seq(it.UID)
		if n == 0 {
			return nil
		}
		if err := sel.announce(it.Flags, w.WriteFlagsUpdate); err != nil {
			return err
		}
		r := w.CreateMessage(n)
		r.WriteUID(imap.UID(it.UID))
		r.WriteFlags(sel.flagsOf(it.UID, it.Flags))
		r.WriteModSeq(uint64(it.ModSeq))
		return r.Close()
	})
}

// vanished writes VANISHED (EARLIER) for the UIDs of set expunged after
// modseq since. UIDs the session still counts are left out: their expunge
// happened after the client's view was made, and the next poll reports it
// as a plain VANISHED, which changes the message count.
func (s *session) vanished(w *imapserver.FetchWriter, since int64, set imap.UIDSet) error {
	sel := s.sel
	gone, err := s.srv.Store.Vanished(s.ctx(), sel.mb.ID, since)
	if err != nil {
		return s.fail("vanished", err)
	}
	last := imap.UID(max(sel.mb.UIDNext, sel.view.last()+1) - 1)
	var out imap.UIDSet
	for _, g := range gone {
		for _, r := range set {
			lo, hi := bounds(r.Start, r.Stop, last)
			lo, hi = max(lo, imap.UID(g.First)), min(hi, imap.UID(g.Last))
			for u := lo; u <= hi && u != 0; u++ {
				if sel.seq(uint32(u)) == 0 {
					out = appendUID(out, u)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return w.WriteVanished(out)
}

// appendUID adds uid to a set built in ascending order, extending its last
// range when it can: imap.UIDSet.AddNum would re-sort on every call.
func appendUID(set imap.UIDSet, uid imap.UID) imap.UIDSet {
	if n := len(set); n > 0 && set[n-1].Stop+1 >= uid {
		set[n-1].Stop = max(set[n-1].Stop, uid)
		return set
	}
	return append(set, imap.UIDRange{Start: uid, Stop: uid})
}

func usesModSeq(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if usesModSeq(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if usesModSeq(&c.Or[i][0]) || usesModSeq(&c.Or[i][1]) {
			return true
		}
	}
	return false
}
