package imapd

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
)

// selected is a session's view of its selected mailbox: the UIDs its client
// knows (view), what it has announced of the mailbox's flags, and which
// messages are \Recent for it. Everything else (flags, sizes, content) is read
// from the store when a command needs it. The view moves forward by replaying
// the store's change log from seen, which covers changes made by other
// sessions, by SMTP delivery and by other processes alike; seen is also the
// mod-sequence the client has been brought up to (CONDSTORE).
type selected struct {
	mb       mailstore.Mailbox
	readOnly bool
	view     *view
	seen     int64  // last change applied to view
	unwatch  func() // nil once the mailbox is deleted
	changes  changeSignal
	// own holds ids of flag changes this session made and already reported,
	// so the change log does not echo them back.
	own  map[int64]struct{}
	res  imap.UIDSet // saved SEARCH result (SEARCHRES)
	gone bool        // the mailbox was deleted under us
	// keywords are the keywords announced in FLAGS so far.
	keywords []imap.Flag
	// recent are the UIDs this session reports as \Recent (RFC 3501): those
	// it was the first to see. IMAP4rev2 has no \Recent; it stays empty.
	recent []mailstore.UIDRange
	rev1   bool // \Recent applies
}

var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	mb, err := s.mailbox(name)
	if err != nil {
		return nil, err
	}
	sel := &selected{readOnly: options.ReadOnly, rev1: !s.conn.Enabled(imap.CapIMAP4rev2)}
	// Watch before reading, so no change falls between the read and the watch;
	// changes already contained in the read replay harmlessly.
	unwatch := s.srv.Store.Watch(mb.ID, sel.changes.changed)
	v, err := s.srv.Store.View(s.ctx(), mb.ID)
	if err != nil {
		unwatch()
		return nil, s.fail("select", err)
	}
	sel.mb, sel.seen, sel.view, sel.unwatch = v.Mailbox, v.ModSeq, newView(v.UIDs), unwatch
	for _, k := range v.Keywords {
		sel.keywords = append(sel.keywords, imap.Flag(k))
	}
	var firstUnseen uint32
	if v.FirstUnseen != 0 {
		firstUnseen = sel.view.seq(v.FirstUnseen)
	}
	if err := s.claimRecent(sel); err != nil {
		unwatch()
		return nil, err
	}
	s.sel = sel
	return &imap.SelectData{
		Flags:             sel.flags(),
		PermanentFlags:    sel.permanentFlags(),
		NumMessages:       sel.view.len(),
		NumRecent:         sel.numRecent(),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(v.UIDNext),
		UIDValidity:       v.UIDValidity,
		HighestModSeq:     uint64(sel.seen),
	}, nil
}

// claimRecent makes the messages no session has seen yet recent for this
// one. EXAMINE changes nothing (RFC 3501 6.3.2): it shows them as recent and
// leaves them recent for the next SELECT.
func (s *session) claimRecent(sel *selected) error {
	last := sel.view.last()
	if !sel.rev1 || len(sel.recent) > 0 && sel.recent[len(sel.recent)-1].Last >= last {
		return nil
	}
	var from uint32
	var err error
	if sel.readOnly {
		from, err = s.srv.Store.RecentFrom(s.ctx(), sel.mb.ID)
	} else {
		from, err = s.srv.Store.ClaimRecent(s.ctx(), sel.mb.ID, last)
		if errors.Is(err, mailstore.ErrFull) {
			// With the disk full the mailbox still opens; its new messages
			// are shown recent without being claimed.
			from, err = s.srv.Store.RecentFrom(s.ctx(), sel.mb.ID)
		}
	}
	if err != nil {
		return s.fail("select", err)
	}
	if n := len(sel.recent); n > 0 {
		from = max(from, sel.recent[n-1].Last)
	}
	if from < last {
		sel.recent = append(sel.recent, mailstore.UIDRange{First: from + 1, Last: last})
	}
	return nil
}

func (sel *selected) numRecent() uint32 {
	n := uint32(0)
	for _, r := range sel.recent {
		n += sel.view.count(r.First, r.Last)
	}
	return n
}

func (sel *selected) isRecent(uid uint32) bool {
	i := sort.Search(len(sel.recent), func(i int) bool { return sel.recent[i].Last >= uid })
	return i < len(sel.recent) && sel.recent[i].First <= uid
}

// flagsOf is what the client is told of a message's flags.
func (sel *selected) flagsOf(uid uint32, flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags), len(flags)+1)
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	if sel.isRecent(uid) {
		out = append(out, flagRecent)
	}
	return out
}

const flagRecent = imap.Flag(`\Recent`)

// learn adds keywords the client has not been told of, and reports whether
// there were any.
func (sel *selected) learn(flags []string) bool {
	added := false
	for _, f := range flags {
		if f != "" && f[0] != '\\' && !slices.ContainsFunc(sel.keywords, func(k imap.Flag) bool { return strings.EqualFold(string(k), f) }) {
			sel.keywords = append(sel.keywords, imap.Flag(f))
			added = true
		}
	}
	return added
}

func (sel *selected) flags() []imap.Flag {
	return append(slices.Clone(systemFlags), sel.keywords...)
}

// permanentFlags is nil for a read-only mailbox: nothing can be stored.
func (sel *selected) permanentFlags() []imap.Flag {
	if sel.readOnly {
		return nil
	}
	return append(sel.flags(), imap.FlagWildcard)
}

// announce tells the client of keywords it has not heard of before a response
// that carries them, so it never sees a keyword missing from FLAGS.
func (sel *selected) announce(flags []string, write func(flags, permanent []imap.Flag) error) error {
	if !sel.learn(flags) {
		return nil
	}
	return write(sel.flags(), sel.permanentFlags())
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
	announced := sel.view.len()
	exists := func() error {
		if sel.view.len() == announced {
			return nil
		}
		grew := sel.view.len() > announced
		announced = sel.view.len()
		if err := w.WriteNumMessages(announced); err != nil {
			return err
		}
		if !grew || !sel.rev1 {
			return nil
		}
		// RECENT goes with EXISTS; claiming writes, after the client has
		// heard of the new mail.
		if err := s.claimRecent(sel); err != nil {
			return err
		}
		return w.WriteNumRecent(sel.numRecent())
	}
	// Expunges come in batches (one EXPUNGE command, one MOVE), answered
	// with one VANISHED for a QRESYNC client.
	var gone []uint32
	expunge := func() error {
		if len(gone) == 0 {
			return nil
		}
		if err := exists(); err != nil {
			return err
		}
		err := s.drop(gone, w.WriteExpunge, w.WriteVanished)
		announced = sel.view.len()
		gone = gone[:0]
		return err
	}
	var flagged []uint32
apply:
	for _, c := range chs {
		switch c.Kind {
		case mailstore.ChangeNew:
			if err := expunge(); err != nil {
				return err
			}
			sel.view.add(c.UID)
		case mailstore.ChangeFlags:
			if _, ok := sel.own[c.ID]; ok {
				delete(sel.own, c.ID)
			} else {
				flagged = append(flagged, c.UID)
			}
		case mailstore.ChangeExpunge:
			if sel.view.seq(c.UID) == 0 {
				break
			}
			if !allowExpunge {
				break apply
			}
			gone = append(gone, c.UID)
		case mailstore.ChangeMailboxDeleted:
			if !allowExpunge {
				break apply
			}
			// Show the mailbox as emptied and stay selected: commands then
			// find nothing, and the next LIST shows it gone.
			if err := expunge(); err != nil {
				return err
			}
			if err := exists(); err != nil {
				return err
			}
			if err := s.drop(sel.view.all(nil), w.WriteExpunge, w.WriteVanished); err != nil {
				return err
			}
			sel.gone = true
			sel.unwatch()
			sel.unwatch = nil
			sel.seen = c.ID
			return nil
		}
		sel.seen = c.ID
	}
	if err := expunge(); err != nil {
		return err
	}
	if err := exists(); err != nil {
		return err
	}
	if len(flagged) == 0 {
		return nil
	}
	slices.Sort(flagged)
	flagged = slices.Compact(flagged)
	condStore := s.conn.Enabled(imap.CapCondStore)
	return s.srv.Store.Fetch(s.ctx(), sel.mb.ID, flagged, 0, func(it mailstore.Item) error {
		n := sel.view.seq(it.UID)
		if n == 0 {
			return nil
		}
		if err := sel.announce(it.Flags, w.WriteFlagsUpdate); err != nil {
			return err
		}
		flags := sel.flagsOf(it.UID, it.Flags)
		if condStore {
			return w.WriteMessageFlagsModSeq(n, imap.UID(it.UID), flags, uint64(it.ModSeq))
		}
		return w.WriteMessageFlags(n, imap.UID(it.UID), flags)
	})
}

// changeSignal passes the store's word that the selected mailbox changed to
// an idling client (IdleNotify), or keeps it for the next IDLE, which then
// polls at once: no change is left unreported, and an IDLE that starts with
// nothing new costs no poll.
type changeSignal struct {
	mu      sync.Mutex
	pending bool
	notify  func() // set while the client idles
}

// changed is called by the store; it must not block.
func (c *changeSignal) changed() {
	c.mu.Lock()
	notify := c.notify
	if notify == nil {
		c.pending = true
	}
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// IdleNotify has notify called whenever the selected mailbox changes, so that
// imapserver polls then: an idling client costs no goroutine waiting for mail.
func (s *session) IdleNotify(notify func()) (stop func()) {
	if s.sel == nil || s.sel.unwatch == nil {
		return func() {}
	}
	c := &s.sel.changes
	c.mu.Lock()
	c.notify = notify
	pending := c.pending
	c.pending = false
	c.mu.Unlock()
	if pending {
		notify()
	}
	return func() {
		c.mu.Lock()
		c.notify = nil
		c.mu.Unlock()
	}
}

// Idle is Session.Idle for servers that do not use IdleNotify: it waits for
// the notifications in a goroutine of its own.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	changed := make(chan struct{}, 1)
	end := s.IdleNotify(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer end()
	for {
		select {
		case <-stop:
			return nil
		case <-changed:
			if err := s.Poll(w, true); err != nil {
				return err
			}
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
		n := sel.view.len()
		for _, r := range set {
			start, stop := bounds(r.Start, r.Stop, n)
			if stop > n || start == 0 {
				if n == 0 && r.Start == 0 && r.Stop == 0 {
					continue
				}
				return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Message sequence number out of range"}
			}
			out = sel.view.between(out, start, stop)
		}
		if len(set) > 1 {
			slices.Sort(out)
			out = slices.Compact(out)
		}
	case imap.UIDSet:
		last := imap.UID(sel.view.last())
		if last == 0 {
			return nil, nil
		}
		for _, r := range set {
			start, stop := bounds(r.Start, r.Stop, last)
			out = sel.view.within(out, uint32(start), uint32(stop))
		}
		if len(set) > 1 {
			slices.Sort(out)
			out = slices.Compact(out)
		}
	}
	return out, nil
}

// seq returns the sequence number of uid, or 0 if the client does not know it.
func (sel *selected) seq(uid uint32) uint32 { return sel.view.seq(uid) }

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

// HighestModSeq is the mod-sequence the client has been brought up to
// (imapserver.SessionCondStore).
func (s *session) HighestModSeq() uint64 {
	if s.sel == nil {
		return 0
	}
	return uint64(s.sel.seen)
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
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
	unchangedSince := int64(-1)
	if options.Unchanged {
		unchangedSince = int64(min(options.UnchangedSince, 1<<63-1))
	}
	changed, modified, err := s.srv.Store.StoreFlagsIf(s.ctx(), sel.mb.ID, uids, op, storeFlags(flags.Flags), unchangedSince)
	if err != nil {
		return s.fail("store", err)
	}
	sel.remember(changed)
	if len(modified) > 0 {
		if _, ok := numSet.(imap.UIDSet); ok {
			w.SetModified(uidSet(modified))
		} else {
			nums := make([]uint32, 0, len(modified))
			for _, uid := range modified {
				nums = append(nums, sel.seq(uid))
			}
			w.SetModified(seqSet(nums))
		}
	}
	// CONDSTORE clients hear of every new mod-sequence, even after .SILENT
	// (RFC 7162 3.1.3); the others only of flags, unless silent.
	condStore := s.conn.Enabled(imap.CapCondStore)
	if flags.Silent && !condStore {
		return nil
	}
	report := uids
	if flags.Silent {
		report = report[:0:0]
		for _, m := range changed {
			report = append(report, m.UID)
		}
		if len(report) == 0 {
			return nil
		}
	}
	skip := make(map[uint32]bool, len(modified))
	for _, uid := range modified {
		skip[uid] = true
	}
	return s.srv.Store.Fetch(s.ctx(), sel.mb.ID, report, 0, func(it mailstore.Item) error {
		n := sel.seq(it.UID)
		if n == 0 || skip[it.UID] {
			return nil
		}
		if err := sel.announce(it.Flags, w.WriteFlagsUpdate); err != nil {
			return err
		}
		r := w.CreateMessage(n)
		r.WriteUID(imap.UID(it.UID))
		if !flags.Silent {
			r.WriteFlags(sel.flagsOf(it.UID, it.Flags))
		}
		if condStore {
			r.WriteModSeq(uint64(it.ModSeq))
		}
		return r.Close()
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
		uids = sel.view.all(nil)
	}
	if len(uids) == 0 {
		return nil
	}
	gone, err := s.srv.Store.Expunge(s.ctx(), sel.mb.ID, uids)
	if err != nil {
		return s.fail("expunge", err)
	}
	return s.drop(gone, w.WriteExpunge, w.WriteVanished)
}

// drop removes expunged UIDs from the view and tells the client: VANISHED
// once it enabled QRESYNC (RFC 7162 3.2.10), else an EXPUNGE each.
func (s *session) drop(gone []uint32, expunge func(uint32) error, vanished func(imap.UIDSet) error) error {
	sel := s.sel
	if s.conn.Enabled(imap.CapQResync) {
		var known []uint32
		for _, uid := range gone {
			if sel.view.seq(uid) != 0 {
				known = append(known, uid)
			}
		}
		slices.Sort(known)
		known = slices.Compact(known)
		sel.view.remove(known)
		if len(known) == 0 {
			return nil
		}
		return vanished(uidSet(known))
	}
	for _, n := range sel.view.remove(gone) {
		if err := expunge(n); err != nil {
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
	// it later finds the UID gone from the view and stays silent. A move into
	// the selected mailbox itself (RFC 6851 allows it) gives the messages new
	// UIDs, which the poll after the command announces.
	return s.drop(moved, w.WriteExpunge, w.WriteVanished)
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
