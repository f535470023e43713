package imapd

import (
	"errors"
	"slices"
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
)

// selected is a session's view of its selected mailbox: the UIDs its client
// knows, in order, so that sequence number n is uids[n-1]. Everything else
// (flags, sizes, content) is read from the store when a command needs it. The
// view moves forward by replaying the store's change log from seen, which
// covers changes made by other sessions, by SMTP delivery and by other
// processes alike.
type selected struct {
	mb       mailstore.Mailbox
	readOnly bool
	uids     []uint32
	seen     int64 // last change applied to uids
	watch    <-chan struct{}
	unwatch  func()
	// own holds ids of flag changes this session made and already reported,
	// so the change log does not echo them back.
	own  map[int64]struct{}
	res  imap.UIDSet // saved SEARCH result (SEARCHRES)
	gone bool        // the mailbox was deleted under us
}

var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	mb, err := s.mailbox(name)
	if err != nil {
		return nil, err
	}
	// Watch before reading, so no change falls between the read and the watch;
	// changes already contained in the read replay harmlessly.
	watch, unwatch := s.srv.Store.Watch(mb.ID)
	v, err := s.srv.Store.View(s.ctx(), mb.ID)
	if err != nil {
		unwatch()
		return nil, s.fail("select", err)
	}
	sel := &selected{mb: v.Mailbox, readOnly: options.ReadOnly, seen: v.ModSeq, watch: watch, unwatch: unwatch,
		uids: make([]uint32, 0, v.Messages)}
	var firstUnseen uint32
	for _, r := range v.UIDs {
		if v.FirstUnseen >= r.First && v.FirstUnseen <= r.Last {
			firstUnseen = uint32(len(sel.uids)) + v.FirstUnseen - r.First + 1
		}
		for uid := r.First; uid <= r.Last && uid != 0; uid++ {
			sel.uids = append(sel.uids, uid)
		}
	}
	flags := slices.Clone(systemFlags)
	for _, k := range v.Keywords {
		flags = append(flags, imap.Flag(k))
	}
	s.sel = sel
	data := &imap.SelectData{
		Flags:             flags,
		NumMessages:       uint32(len(sel.uids)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(v.UIDNext),
		UIDValidity:       v.UIDValidity,
	}
	if !options.ReadOnly {
		data.PermanentFlags = append(slices.Clone(systemFlags), imap.FlagWildcard)
	}
	return data, nil
}

func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	if s.sel != nil && s.sel.unwatch != nil {
		s.sel.unwatch()
	}
	s.sel = nil
}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only (EXAMINE)"}

// Poll tells the client what changed since it last heard. Expunges may not be
// sent after FETCH, STORE and SEARCH (RFC 9051 7.5.1); then the log is applied
// up to the first expunge of a message the client knows, and the rest waits.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil || s.sel.gone {
		return nil
	}
	sel := s.sel
	chs, err := s.srv.Store.Changes(s.ctx(), sel.mb.ID, sel.seen)
	if err != nil {
		return s.fail("poll", err)
	}
	announced := len(sel.uids)
	exists := func() error {
		if len(sel.uids) == announced {
			return nil
		}
		announced = len(sel.uids)
		return w.WriteNumMessages(uint32(announced))
	}
	var flagged []uint32
apply:
	for _, c := range chs {
		switch c.Kind {
		case mailstore.ChangeNew:
			if n := len(sel.uids); n == 0 || c.UID > sel.uids[n-1] {
				sel.uids = append(sel.uids, c.UID)
			}
		case mailstore.ChangeFlags:
			if _, ok := sel.own[c.ID]; ok {
				delete(sel.own, c.ID)
			} else {
				flagged = append(flagged, c.UID)
			}
		case mailstore.ChangeExpunge:
			i, ok := slices.BinarySearch(sel.uids, c.UID)
			if !ok {
				break
			}
			if !allowExpunge {
				break apply
			}
			if err := exists(); err != nil {
				return err
			}
			sel.uids = slices.Delete(sel.uids, i, i+1)
			announced--
			if err := w.WriteExpunge(uint32(i + 1)); err != nil {
				return err
			}
		case mailstore.ChangeMailboxDeleted:
			if !allowExpunge {
				break apply
			}
			// Show the mailbox as emptied and stay selected: commands then
			// find nothing, and the next LIST shows it gone.
			if err := exists(); err != nil {
				return err
			}
			for n := len(sel.uids); n > 0; n-- {
				if err := w.WriteExpunge(uint32(n)); err != nil {
					return err
				}
			}
			sel.uids, announced, sel.gone = nil, 0, true
			sel.unwatch()
			sel.watch, sel.unwatch = nil, nil
			sel.seen = c.ID
			return nil
		}
		sel.seen = c.ID
	}
	if err := exists(); err != nil {
		return err
	}
	if len(flagged) == 0 {
		return nil
	}
	slices.Sort(flagged)
	flagged = slices.Compact(flagged)
	return s.srv.Store.Fetch(s.ctx(), sel.mb.ID, flagged, 0, func(it mailstore.Item) error {
		if i, ok := slices.BinarySearch(sel.uids, it.UID); ok {
			return w.WriteMessageFlags(uint32(i+1), imap.UID(it.UID), imapFlags(it.Flags))
		}
		return nil
	})
}

// Idle pushes changes as they happen. It needs no poll of its own to start
// with: the watch channel is only ever drained here, so any change not yet
// reported has left a signal in it, and the first select takes it at once.
// That keeps an idle session's goroutine on a minimal stack.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	var watch <-chan struct{}
	if s.sel != nil {
		watch = s.sel.watch
	}
	for {
		select {
		case <-stop:
			return nil
		case <-watch:
			if err := s.Poll(w, true); err != nil {
				return err
			}
			watch = s.sel.watch // nil once the mailbox is deleted
		}
	}
}

// resolve turns a sequence or UID set into the UIDs the client means, in
// ascending order. Sequence numbers past the end are a client error.
func (sel *selected) resolve(set imap.NumSet) ([]uint32, error) {
	if imap.IsSearchRes(set) {
		set = sel.res
	}
	var out []uint32
	switch set := set.(type) {
	case imap.SeqSet:
		n := uint32(len(sel.uids))
		for _, r := range set {
			start, stop := bounds(r.Start, r.Stop, n)
			if stop > n || start == 0 {
				if n == 0 && r.Start == 0 && r.Stop == 0 {
					continue
				}
				return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Message sequence number out of range"}
			}
			out = append(out, sel.uids[start-1:stop]...)
		}
		if len(set) > 1 {
			slices.Sort(out)
			out = slices.Compact(out)
		}
	case imap.UIDSet:
		if len(sel.uids) == 0 {
			return nil, nil
		}
		last := imap.UID(sel.uids[len(sel.uids)-1])
		for _, r := range set {
			start, stop := bounds(r.Start, r.Stop, last)
			i := sort.Search(len(sel.uids), func(i int) bool { return imap.UID(sel.uids[i]) >= start })
			j := sort.Search(len(sel.uids), func(i int) bool { return imap.UID(sel.uids[i]) > stop })
			out = append(out, sel.uids[i:j]...)
		}
		if len(set) > 1 {
			slices.Sort(out)
			out = slices.Compact(out)
		}
	}
	return out, nil
}

// seq returns the sequence number of uid, or 0 if the client does not know it.
func (sel *selected) seq(uid uint32) uint32 {
	if i, ok := slices.BinarySearch(sel.uids, uid); ok {
		return uint32(i + 1)
	}
	return 0
}

// remember records flag changes this session reports itself.
func (sel *selected) remember(msgs []mailstore.Message) {
	if len(msgs) == 0 {
		return
	}
	if sel.own == nil {
		sel.own = make(map[int64]struct{}, len(msgs))
	}
	for _, m := range msgs {
		sel.own[m.ModSeq] = struct{}{}
	}
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	uids, err := sel.resolve(numSet)
	if err != nil || len(uids) == 0 {
		return err
	}
	op := map[imap.StoreFlagsOp]mailstore.FlagOp{
		imap.StoreFlagsAdd: mailstore.FlagsAdd,
		imap.StoreFlagsDel: mailstore.FlagsRemove,
		imap.StoreFlagsSet: mailstore.FlagsSet,
	}[flags.Op]
	changed, err := s.srv.Store.StoreFlags(s.ctx(), sel.mb.ID, uids, op, storeFlags(flags.Flags))
	if err != nil {
		return s.fail("store", err)
	}
	sel.remember(changed)
	if flags.Silent {
		return nil
	}
	return s.srv.Store.Fetch(s.ctx(), sel.mb.ID, uids, 0, func(it mailstore.Item) error {
		if n := sel.seq(it.UID); n != 0 {
			r := w.CreateMessage(n)
			r.WriteUID(imap.UID(it.UID))
			r.WriteFlags(imapFlags(it.Flags))
			return r.Close()
		}
		return nil
	})
}

// Expunge serves EXPUNGE, UID EXPUNGE and the silent expunge of CLOSE, which
// imapserver signals with a writer that writes nothing.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uidSet *imap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		if *w == (imapserver.ExpungeWriter{}) {
			return nil // CLOSE of an EXAMINEd mailbox just unselects
		}
		return errReadOnly
	}
	var uids []uint32
	if uidSet != nil {
		var err error
		if uids, err = sel.resolve(*uidSet); err != nil || len(uids) == 0 {
			return err
		}
	} else {
		// Only messages the client knows: one delivered meanwhile may not be
		// expunged before it was announced.
		uids = sel.uids
	}
	if len(uids) == 0 {
		return nil
	}
	gone, err := s.srv.Store.Expunge(s.ctx(), sel.mb.ID, uids)
	if err != nil {
		return s.fail("expunge", err)
	}
	return sel.drop(gone, w.WriteExpunge)
}

// drop removes expunged UIDs from the view, announcing each.
func (sel *selected) drop(gone []uint32, write func(uint32) error) error {
	slices.Sort(gone)
	for _, uid := range gone {
		i, ok := slices.BinarySearch(sel.uids, uid)
		if !ok {
			continue
		}
		sel.uids = slices.Delete(sel.uids, i, i+1)
		if err := write(uint32(i + 1)); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) target(name string) (mailstore.Mailbox, error) {
	mb, err := s.srv.Store.Mailbox(s.ctx(), s.acct.ID, mailstore.CanonicalName(name))
	if err != nil {
		if errors.Is(err, mailstore.ErrNotFound) {
			return mb, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
		}
		return mb, s.fail("copy", err)
	}
	return mb, nil
}

func copyData(validity uint32, pairs []mailstore.UIDPair) *imap.CopyData {
	if len(pairs) == 0 {
		return nil
	}
	var src, dst imap.UIDSet
	for _, p := range pairs {
		src.AddNum(imap.UID(p.Src))
		dst.AddNum(imap.UID(p.Dst))
	}
	return &imap.CopyData{UIDValidity: validity, SourceUIDs: src, DestUIDs: dst}
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	sel := s.sel
	uids, err := sel.resolve(numSet)
	if err != nil {
		return nil, err
	}
	dst, err := s.target(dest)
	if err != nil || len(uids) == 0 {
		return nil, err
	}
	validity, pairs, err := s.srv.Store.Copy(s.ctx(), sel.mb.ID, uids, dst.ID)
	if err != nil {
		return nil, s.fail("copy", err)
	}
	return copyData(validity, pairs), nil
}

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	uids, err := sel.resolve(numSet)
	if err != nil {
		return err
	}
	dst, err := s.target(dest)
	if err != nil || len(uids) == 0 {
		return err
	}
	if dst.ID == sel.mb.ID {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Source and destination are the same mailbox"}
	}
	validity, pairs, err := s.srv.Store.Move(s.ctx(), sel.mb.ID, uids, dst.ID)
	if err != nil {
		return s.fail("move", err)
	}
	if data := copyData(validity, pairs); data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	moved := make([]uint32, len(pairs))
	for i, p := range pairs {
		moved[i] = p.Src
	}
	// Each moved message is expunged once, here; the change log's record of
	// it later finds the UID gone from the view and stays silent.
	return sel.drop(moved, w.WriteExpunge)
}

// bounds resolves a range of a sequence or UID set: 0 stands for "*" (the
// largest number in the mailbox, star), and the ends may come in either order.
func bounds[T ~uint32](start, stop, star T) (T, T) {
	if start == 0 {
		start = star
	}
	if stop == 0 {
		stop = star
	}
	return min(start, stop), max(start, stop)
}
