package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// sealmail: SORT (RFC 5256, with SORT=DISPLAY's keys of RFC 5957) and THREAD
// (RFC 5256), which upstream has only in imapclient.

// SessionSort is a session that supports SORT and THREAD.
type SessionSort interface {
	// Sort returns the numbers (sequence numbers or UIDs, after kind) of the
	// messages matching criteria, ordered by keys.
	Sort(kind NumKind, keys []imap.SortCriterion, criteria *imap.SearchCriteria) ([]uint32, error)
	// Thread returns the threads of the messages matching criteria.
	Thread(kind NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imap.ThreadData, error)
}

var sortKeys = map[string]imap.SortKey{}

func init() {
	for _, k := range []imap.SortKey{imap.SortKeyArrival, imap.SortKeyCc, imap.SortKeyDate, imap.SortKeyFrom,
		imap.SortKeySize, imap.SortKeySubject, imap.SortKeyTo, imap.SortKeyDisplayFrom, imap.SortKeyDisplayTo} {
		sortKeys[string(k)] = k
	}
}

func (c *Conn) handleSort(dec *imapwire.Decoder, numKind NumKind) error {
	var keys []imap.SortCriterion
	reverse := false
	if !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectList(func() error {
		for {
			var atom string
			if !dec.ExpectAtom(&atom) {
				return dec.Err()
			}
			atom = strings.ToUpper(atom)
			if atom == "REVERSE" && !reverse {
				reverse = true
				if !dec.ExpectSP() {
					return dec.Err()
				}
				continue
			}
			k, ok := sortKeys[atom]
			if !ok || (k == imap.SortKeyDisplayFrom || k == imap.SortKeyDisplayTo) && !c.server.options.caps().Has(imap.CapSortDisplay) {
				return newClientBugError("Unknown sort key " + atom)
			}
			keys = append(keys, imap.SortCriterion{Key: k, Reverse: reverse})
			reverse = false
			return nil
		}
	})
	if err != nil {
		return err
	}
	if reverse || len(keys) == 0 {
		return newClientBugError("Missing sort key")
	}
	criteria, err := c.readCharsetAndCriteria(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	session, ok := c.session.(SessionSort)
	if !ok || !c.server.options.caps().Has(imap.CapSort) {
		return newClientBugError("SORT is not supported")
	}
	nums, err := session.Sort(numKind, keys, criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("SORT")
	for _, n := range nums {
		enc.SP().Number(n)
	}
	return enc.CRLF()
}

func (c *Conn) handleThread(dec *imapwire.Decoder, numKind NumKind) error {
	var alg string
	if !dec.ExpectSP() || !dec.ExpectAtom(&alg) {
		return dec.Err()
	}
	algorithm := imap.ThreadAlgorithm(strings.ToUpper(alg))
	criteria, err := c.readCharsetAndCriteria(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	session, ok := c.session.(SessionSort)
	if !ok || !c.server.options.caps().Has(imap.Cap("THREAD="+algorithm)) {
		return newClientBugError("Unsupported threading algorithm")
	}
	threads, err := session.Thread(numKind, algorithm, criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("THREAD")
	if len(threads) > 0 {
		enc.SP()
	}
	for i := range threads {
		writeThread(enc.Encoder, &threads[i])
	}
	return enc.CRLF()
}

// writeThread writes one thread-list: its chain, then its branches, each a
// thread-list of its own (RFC 5256 section 5).
func writeThread(enc *imapwire.Encoder, t *imap.ThreadData) {
	enc.Special('(')
	for i, n := range t.Chain {
		if i > 0 {
			enc.SP()
		}
		enc.Number(n)
	}
	if len(t.Chain) > 0 && len(t.SubThreads) > 0 {
		enc.SP()
	}
	for i := range t.SubThreads {
		writeThread(enc, &t.SubThreads[i])
	}
	enc.Special(')')
}

// readCharsetAndCriteria reads the charset and search keys SORT and THREAD
// end with; both are mandatory there.
func (c *Conn) readCharsetAndCriteria(dec *imapwire.Decoder) (*imap.SearchCriteria, error) {
	var charset string
	if !dec.ExpectSP() || !dec.ExpectAString(&charset) {
		return nil, dec.Err()
	}
	switch strings.ToUpper(charset) {
	case "US-ASCII", "UTF-8":
	default:
		return nil, &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeBadCharset,
			Text: "Only US-ASCII and UTF-8 are supported",
		}
	}
	var criteria imap.SearchCriteria
	for dec.SP() {
		if err := readSearchKey(&criteria, dec); err != nil {
			return nil, err
		}
	}
	if !dec.ExpectCRLF() {
		return nil, dec.Err()
	}
	return &criteria, nil
}
