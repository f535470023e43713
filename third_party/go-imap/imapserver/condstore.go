package imapserver

// sealmail: CONDSTORE and QRESYNC (RFC 7162) are not in upstream. This file
// holds their parsing and writing; the commands' handlers call into it.

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionCondStore is an IMAP session which supports CONDSTORE and QRESYNC.
//
// Besides these methods, the session reports per-message mod-sequences in
// FETCH (imap.FetchOptions.ModSeq, ChangedSince, Vanished), honours
// imap.StoreOptions.UnchangedSince (FetchWriter.SetModified), SEARCH MODSEQ
// (imap.SearchData.ModSeq), STATUS HIGHESTMODSEQ and SELECT's
// SelectData.HighestModSeq; and, once the connection has them enabled (see
// Conn.Enabled), adds MODSEQ to unsolicited FETCH responses and reports
// expunges with WriteVanished instead of WriteExpunge.
type SessionCondStore interface {
	Session

	// Selected state
	//
	// HighestModSeq is the selected mailbox's highest mod-sequence as far
	// as the client has been told.
	HighestModSeq() uint64
	// Resync answers SELECT or EXAMINE with QRESYNC parameters whose
	// UIDVALIDITY matches the mailbox's: VANISHED (EARLIER) for what was
	// expunged since options.ModSeq, then FETCH (UID FLAGS MODSEQ) for what
	// changed.
	Resync(w *FetchWriter, options *imap.SelectQResync) error
}

// Enabled reports whether the client has enabled an extension (ENABLE, or
// implicitly, as a CONDSTORE enabling command does).
func (c *Conn) Enabled(cap imap.Cap) bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(cap)
}

// enableCondStore is called by every CONDSTORE enabling command (RFC 7162
// 3.1). It reports whether CONDSTORE was enabled just now.
func (c *Conn) enableCondStore() bool {
	if !c.server.options.caps().Has(imap.CapCondStore) {
		return false
	}
	c.mutex.Lock()
	defer c.mutex.Unlock()
	if c.enabled.Has(imap.CapCondStore) {
		return false
	}
	c.enabled[imap.CapCondStore] = struct{}{}
	return true
}

// condStoreEnabledBy enables CONDSTORE for a command other than SELECT; with
// a mailbox selected, the client then learns its HIGHESTMODSEQ, which it has
// not been told before.
func (c *Conn) condStoreEnabledBy() error {
	if !c.enableCondStore() || c.state != imap.ConnStateSelected {
		return nil
	}
	return c.writeHighestModSeq()
}

func (c *Conn) writeHighestModSeq() error {
	session, ok := c.session.(SessionCondStore)
	if !ok {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP().Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(positive(session.HighestModSeq())).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}

// highestModSeqCode is the response code of a tagged OK that reports the
// mailbox's HIGHESTMODSEQ (after EXPUNGE, RFC 7162 3.2.10 and 3.1.?).
func (c *Conn) highestModSeqCode() imap.ResponseCode {
	session, ok := c.session.(SessionCondStore)
	if !ok || !c.Enabled(imap.CapCondStore) {
		return ""
	}
	return imap.ResponseCode(fmt.Sprintf("HIGHESTMODSEQ %d", positive(session.HighestModSeq())))
}

// readSelectParams reads SELECT's optional parameter list.
func readSelectParams(dec *imapwire.Decoder, options *imap.SelectOptions) error {
	return dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			options.CondStore = true
		case "QRESYNC":
			q := new(imap.SelectQResync)
			if !dec.ExpectSP() {
				return dec.Err()
			}
			err := dec.ExpectList(func() error {
				if !dec.ExpectNumber(&q.UIDValidity) || !dec.ExpectSP() || !dec.ExpectModSeq(&q.ModSeq) {
					return dec.Err()
				}
				if !dec.SP() {
					return nil
				}
				if !dec.Special('(') {
					if !dec.ExpectUIDSet(&q.KnownUIDs) {
						return dec.Err()
					}
					if !dec.SP() {
						return nil
					}
					if !dec.ExpectSpecial('(') {
						return dec.Err()
					}
				}
				var seqs imap.NumSet
				if !dec.ExpectNumSet(imapwire.NumKindSeq, &seqs) || !dec.ExpectSP() || !dec.ExpectUIDSet(&q.UIDMatch) || !dec.ExpectSpecial(')') {
					return dec.Err()
				}
				var ok bool
				if q.SeqMatch, ok = seqs.(imap.SeqSet); !ok {
					return newClientBugError("QRESYNC sequence match data cannot be $")
				}
				return nil
			})
			if err != nil {
				return err
			}
			if q.UIDValidity == 0 || q.ModSeq == 0 {
				return newClientBugError("QRESYNC needs a non-zero UIDVALIDITY and mod-sequence")
			}
			options.QResync = q
		default:
			return newClientBugError("Unknown SELECT parameter")
		}
		return nil
	})
}

// readFetchModifiers reads FETCH's optional modifier list.
func readFetchModifiers(dec *imapwire.Decoder, options *imap.FetchOptions) error {
	changedSince := false
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CHANGEDSINCE":
			if !dec.ExpectSP() || !dec.ExpectModSeq(&options.ChangedSince) {
				return dec.Err()
			}
			changedSince = true
		case "VANISHED":
			options.Vanished = true
		default:
			return newClientBugError("Unknown FETCH modifier")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if options.Vanished && !changedSince {
		return newClientBugError("VANISHED needs CHANGEDSINCE")
	}
	if changedSince {
		options.ModSeq = true // RFC 7162 3.1.4.1
	}
	return nil
}

// readStoreModifiers reads STORE's modifier list, if there is one.
func readStoreModifiers(dec *imapwire.Decoder, options *imap.StoreOptions) (bool, error) {
	return dec.List(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		if !strings.EqualFold(name, "UNCHANGEDSINCE") {
			return newClientBugError("Unknown STORE modifier")
		}
		if !dec.ExpectSP() || !dec.ExpectModSeq(&options.UnchangedSince) {
			return dec.Err()
		}
		options.Unchanged = true
		return nil
	})
}

// readSearchModSeq reads the arguments of the MODSEQ search key.
func readSearchModSeq(dec *imapwire.Decoder, criteria *imap.SearchCriteria) error {
	var m imap.SearchCriteriaModSeq
	if !dec.ExpectSP() {
		return dec.Err()
	}
	if dec.Quoted(&m.MetadataName) {
		var typ string
		if !dec.ExpectSP() || !dec.ExpectAtom(&typ) || !dec.ExpectSP() {
			return dec.Err()
		}
		switch t := imap.SearchCriteriaMetadataType(strings.ToLower(typ)); t {
		case imap.SearchCriteriaMetadataAll, imap.SearchCriteriaMetadataPrivate, imap.SearchCriteriaMetadataShared:
			m.MetadataType = t
		default:
			return newClientBugError("Unknown MODSEQ entry type")
		}
	}
	var n uint64
	if !dec.ExpectModSeq(&n) {
		// mod-sequence-valzer also allows 0, which ModSeq refuses.
		return dec.Err()
	}
	m.ModSeq = n
	if criteria.ModSeq == nil || criteria.ModSeq.ModSeq < m.ModSeq {
		criteria.ModSeq = &m
	}
	return nil
}

func searchUsesModSeq(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if searchUsesModSeq(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if searchUsesModSeq(&c.Or[i][0]) || searchUsesModSeq(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// WriteModSeq writes the message's mod-sequence.
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

func (c *Conn) writeVanished(uids imap.UIDSet, earlier bool) error {
	if len(uids) == 0 {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP()
	if earlier {
		enc.Special('(').Atom("EARLIER").Special(')').SP()
	}
	enc.NumSet(uids)
	return enc.CRLF()
}

// writeFlagsUpdate announces the mailbox's flags anew, for instance when a
// keyword is first used: FLAGS, then PERMANENTFLAGS unless permanent is nil
// (a read-only mailbox).
func (c *Conn) writeFlagsUpdate(flags, permanent []imap.Flag) error {
	if err := c.writeFlags(flags); err != nil {
		return err
	}
	if permanent == nil {
		return nil
	}
	return c.writePermanentFlags(permanent)
}

// WriteVanished writes VANISHED (EARLIER) for a UID FETCH with the VANISHED
// modifier or a QRESYNC resync.
func (cmd *FetchWriter) WriteVanished(uids imap.UIDSet) error {
	return cmd.conn.writeVanished(uids, true)
}

// WriteFlagsUpdate writes FLAGS and PERMANENTFLAGS (unless nil), between
// FETCH responses.
func (cmd *FetchWriter) WriteFlagsUpdate(flags, permanent []imap.Flag) error {
	return cmd.conn.writeFlagsUpdate(flags, permanent)
}

// SetModified records the messages a STORE (UNCHANGEDSINCE) left alone, for
// the tagged OK's MODIFIED response code: sequence numbers for STORE, UIDs
// for UID STORE.
func (cmd *FetchWriter) SetModified(set imap.NumSet) {
	cmd.modified = set
}

// WriteVanished writes VANISHED for expunged messages, instead of EXPUNGE
// once the client has enabled QRESYNC.
func (w *ExpungeWriter) WriteVanished(uids imap.UIDSet) error {
	if w.conn == nil {
		return nil
	}
	return w.conn.writeVanished(uids, false)
}

// WriteVanished writes VANISHED for the moved messages, instead of EXPUNGE
// once the client has enabled QRESYNC.
func (w *MoveWriter) WriteVanished(uids imap.UIDSet) error {
	return w.conn.writeVanished(uids, false)
}

// WriteVanished writes VANISHED, instead of EXPUNGE once the client has
// enabled QRESYNC.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: VANISHED updates are not allowed in this context")
	}
	return w.conn.writeVanished(uids, false)
}

// WriteFlagsUpdate writes FLAGS and PERMANENTFLAGS (unless nil).
func (w *UpdateWriter) WriteFlagsUpdate(flags, permanent []imap.Flag) error {
	return w.conn.writeFlagsUpdate(flags, permanent)
}

// WriteMessageFlagsModSeq writes a FETCH response with FLAGS and MODSEQ, as
// unsolicited FETCH responses must be once CONDSTORE is enabled.
func (w *UpdateWriter) WriteMessageFlagsModSeq(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	respWriter.WriteUID(uid)
	respWriter.WriteFlags(flags)
	respWriter.WriteModSeq(modSeq)
	return respWriter.Close()
}

// positive turns a mod-sequence of a mailbox that never changed (0) into 1:
// HIGHESTMODSEQ has no zero (RFC 7162 7).
func positive(modSeq uint64) uint64 {
	if modSeq == 0 {
		return 1
	}
	return modSeq
}
