package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
	"sealmail/mimetree"
)

// Fetch serves FETCH and UID FETCH. ENVELOPE and BODYSTRUCTURE come from what
// the store parsed at delivery; only body sections read the content.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	uids, err := sel.resolve(numSet)
	if err != nil || len(uids) == 0 {
		return err
	}
	what := 0
	if options.Envelope {
		what |= mailstore.FetchEnvelope
	}
	if options.BodyStructure != nil || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0 {
		what |= mailstore.FetchStructure // BINARY needs each part's encoding
	}
	if needsContent(options) {
		what |= mailstore.FetchContent
	}

	// Reading a body without PEEK sets \Seen; the FETCH then carries the new
	// flags, and the change log must not repeat them.
	var seenNow map[uint32]bool
	if !sel.readOnly && setsSeen(options) {
		changed, err := s.srv.Store.StoreFlags(s.ctx(), sel.mb.ID, uids, mailstore.FlagsAdd, []string{string(imap.FlagSeen)})
		if err != nil && !errors.Is(err, mailstore.ErrFull) {
			return s.fail("fetch", err)
		}
		// With the disk full the client still gets its mail, flags unchanged.
		sel.remember(changed)
		seenNow = make(map[uint32]bool, len(changed))
		for _, m := range changed {
			seenNow[m.UID] = true
		}
	}

	query := uids
	if uint32(len(uids)) == sel.view.len() {
		query = nil // all: one range scan instead of a long UID list
	}
	if options.Vanished {
		if err := s.vanished(w, int64(options.ChangedSince), numSet.(imap.UIDSet)); err != nil {
			return err
		}
	}
	// CONDSTORE: MODSEQ when asked for, and with every \Seen this FETCH set.
	condStore := len(seenNow) > 0 && s.conn.Enabled(imap.CapCondStore)
	var first error
	// One response is written before the next is prepared, so they share f.
	enabled := s.conn.EnabledCaps()
	f := fetched{addrs: make(addressCache), utf8: enabled.Has(imap.CapUTF8Accept) || enabled.Has(imap.CapIMAP4rev2)}
	written := 0
	var got []uint32 // for a FETCH of UIDs alone, which messages answered
	onlyUID := uidOnly(options)
	err = s.srv.Store.FetchChanged(s.cmdCtx(), sel.mb.ID, query, int64(options.ChangedSince), what, func(it mailstore.Item) error {
		n := sel.seq(it.UID)
		if n == 0 {
			return nil // delivered after the client last heard; not yet announced
		}
		written++
		if onlyUID {
			got = append(got, it.UID)
		}
		if err := s.prepare(&f, &it, options); err != nil {
			if first == nil {
				first = err
			}
			return nil
		}
		flags := options.Flags || seenNow[it.UID]
		if flags {
			if err := sel.announce(it.Flags, w.WriteFlagsUpdate); err != nil {
				return err
			}
			if sel.isRecent(it.UID) {
				it.Flags = append(it.Flags, string(flagRecent))
			}
		}
		return f.write(w.CreateMessage(n), &it, options, flags, options.ModSeq || condStore && seenNow[it.UID])
	})
	if err != nil {
		var imapErr *imap.Error
		if errors.As(err, &imapErr) {
			return err
		}
		return s.fail("fetch", err)
	}
	if written < len(uids) && options.ChangedSince == 0 && first == nil {
		return s.fetchExpunged(w, uids, got, onlyUID)
	}
	return first
}

// errExpungeIssued answers a FETCH of messages another session expunged,
// which this one has not been told of yet (it may not be during a FETCH:
// RFC 9051 7.5.1). The text is what Dovecot says, which clients and test
// suites recognise.
var errExpungeIssued = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeExpungeIssued,
	Text: "Some of the requested messages no longer exist"}

// fetchExpunged answers for those of uids that are gone from the store but
// still in the client's view: their UID is all that is still known, so a FETCH
// of UIDs alone (onlyUID) gets it (RFC 2180 4.1.2), any other gets NO
// [EXPUNGEISSUED] after the data of the messages that remain. got are the
// UIDs the store answered for.
func (s *session) fetchExpunged(w *imapserver.FetchWriter, uids, got []uint32, onlyUID bool) error {
	if !onlyUID {
		return errExpungeIssued
	}
	slices.Sort(got)
	for _, uid := range uids {
		if _, ok := slices.BinarySearch(got, uid); ok {
			continue
		}
		r := w.CreateMessage(s.sel.seq(uid))
		r.WriteUID(imap.UID(uid))
		if err := r.Close(); err != nil {
			return err
		}
	}
	return nil
}

func uidOnly(o *imap.FetchOptions) bool {
	return !o.Flags && !o.InternalDate && !o.RFC822Size && !o.Envelope && o.BodyStructure == nil &&
		len(o.BodySection) == 0 && len(o.BinarySection) == 0 && len(o.BinarySectionSize) == 0 && !o.ModSeq
}

// needsContent reports whether a FETCH needs whole messages. A partial of
// the whole message (BODY[]<0.1000>, how clients page through large mail) is
// read as a range instead.
func needsContent(options *imap.FetchOptions) bool {
	if len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0 {
		return true
	}
	for _, bs := range options.BodySection {
		if !isRange(bs) {
			return true
		}
	}
	return false
}

func isRange(bs *imap.FetchItemBodySection) bool {
	return len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone && bs.Partial != nil
}

func setsSeen(options *imap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range options.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// fetched is what one FETCH response carries beyond the per-message state,
// computed before the response starts: a failure then costs one message, not
// a half-written response and the connection.
type fetched struct {
	envelope   imap.Envelope
	structure  imap.BodyStructure
	sections   [][]byte
	binary     [][]byte
	binarySize []uint32

	addrs addressCache // kept from message to message
	utf8  bool         // the client enabled UTF8=ACCEPT or IMAP4rev2
}

var errUnknownCTE = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE, Text: "Cannot decode this part's transfer encoding"}

func (s *session) prepare(f *fetched, it *mailstore.Item, options *imap.FetchOptions) (err error) {
	defer s.logPanic("fetch", &err)
	f.sections, f.binary, f.binarySize = f.sections[:0], f.binary[:0], f.binarySize[:0]
	if options.Envelope {
		f.addrs.envelope(&f.envelope, it.Envelope)
	}
	if options.BodyStructure != nil {
		f.structure = bodyStructure(it.Structure, f.utf8)
	}
	if it.Err != nil {
		return s.contentFailed(it)
	}
	// Sections are cut from the parts as the store parsed them at delivery
	// (mimetree): the parts BODYSTRUCTURE describes, however broken the MIME.
	var root *mimetree.Node
	tree := func() *mimetree.Node {
		if root == nil {
			root = mimetree.Parse(it.Content)
		}
		return root
	}
	for _, bs := range options.BodySection {
		if it.Content == nil && isRange(bs) {
			b, err := s.srv.Store.ReadContent(s.ctx(), it.Ref, bs.Partial.Offset, bs.Partial.Size)
			if err != nil {
				it.Err = err
				return s.contentFailed(it)
			}
			f.sections = append(f.sections, b)
			continue
		}
		if len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone {
			f.sections = append(f.sections, partial(it.Content, bs.Partial))
			continue // the whole message, by far the most asked for
		}
		f.sections = append(f.sections, partial(bodySection(tree(), bs), bs.Partial))
	}
	for _, bs := range options.BinarySection {
		if bs.Specifier != imap.PartSpecifierNone {
			f.binary = append(f.binary, partial(bodySection(tree(), binaryAsBody(bs.Part, bs.Specifier, bs.HeaderFields, bs.HeaderFieldsNot)), bs.Partial))
			continue
		}
		if !decodable(it.Structure, bs.Part) {
			return errUnknownCTE
		}
		f.binary = append(f.binary, partial(binarySection(tree(), bs.Part), bs.Partial))
	}
	for _, bs := range options.BinarySectionSize {
		if bs.Specifier != imap.PartSpecifierNone {
			f.binarySize = append(f.binarySize, uint32(len(bodySection(tree(), binaryAsBody(bs.Part, bs.Specifier, bs.HeaderFields, bs.HeaderFieldsNot)))))
			continue
		}
		if !decodable(it.Structure, bs.Part) {
			return errUnknownCTE
		}
		f.binarySize = append(f.binarySize, uint32(len(binarySection(tree(), bs.Part))))
	}
	return nil
}

// binaryAsBody is the BODY section a BINARY section with a specifier
// (BINARY[1.MIME], BINARY[2.HEADER], Dovecot's extension of RFC 3516) stands
// for: headers and MIME entities have no transfer encoding to undo.
func binaryAsBody(part []int, spec imap.PartSpecifier, fields, fieldsNot []string) *imap.FetchItemBodySection {
	return &imap.FetchItemBodySection{Part: part, Specifier: spec, HeaderFields: fields, HeaderFieldsNot: fieldsNot, Peek: true}
}

// contentFailed answers for a message whose content the store could not
// give back intact: the client gets NO [CORRUPTION] naming the message (and
// the other messages of the FETCH), never wrong bytes; the admin gets the log
// line to act on ('sealmail check', a restore).
func (s *session) contentFailed(it *mailstore.Item) error {
	s.srv.log.Error("imap fetch: message content", "err", it.Err, "uid", it.UID, "user", s.user(), "mailbox", s.selName())
	if errors.Is(it.Err, mailstore.ErrContentMissing) || errors.Is(it.Err, mailstore.ErrContentCorrupt) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCorruption,
			Text: fmt.Sprintf("Message UID %d is damaged on the server and cannot be read; the administrator has been told", it.UID)}
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: fmt.Sprintf("Message UID %d cannot be read now, try again later", it.UID)}
}

func (f *fetched) write(w *imapserver.FetchResponseWriter, it *mailstore.Item, options *imap.FetchOptions, flags, modSeq bool) error {
	// UID always: clients match responses by it, and RFC 9051 allows it.
	w.WriteUID(imap.UID(it.UID))
	if flags {
		w.WriteFlags(imapFlags(it.Flags))
	}
	if modSeq {
		w.WriteModSeq(uint64(it.ModSeq))
	}
	if options.InternalDate {
		w.WriteInternalDate(it.InternalDate)
	}
	if options.RFC822Size {
		w.WriteRFC822Size(it.Size)
	}
	if options.Envelope {
		w.WriteEnvelope(&f.envelope)
	}
	if options.BodyStructure != nil {
		w.WriteBodyStructure(f.structure)
	}
	for i, bs := range options.BodySection {
		b := noNUL(f.sections[i])
		if err := writeLiteral(w.WriteBodySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for i, bs := range options.BinarySection {
		if err := writeLiteral(w.WriteBinarySection(bs, int64(len(f.binary[i]))), f.binary[i]); err != nil {
			return err
		}
	}
	for i, bs := range options.BinarySectionSize {
		w.WriteBinarySectionSize(bs, f.binarySize[i])
	}
	return w.Close()
}

func writeLiteral(wc interface {
	Write([]byte) (int, error)
	Close() error
}, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// bodySection extracts BODY[section] from a message's parts (RFC 3501
// 6.4.5, read as Dovecot does): HEADER and TEXT of a part apply only to a
// message/rfc822 part, and are empty for any other.
func bodySection(root *mimetree.Node, bs *imap.FetchItemBodySection) []byte {
	p := root.Part(bs.Part)
	if p == nil {
		return nil
	}
	if len(bs.Part) > 0 {
		switch bs.Specifier {
		case imap.PartSpecifierNone:
			return p.Body
		case imap.PartSpecifierMIME:
			return p.Header
		}
		if !p.IsMessage() || len(p.Children) == 0 {
			return nil
		}
		p = p.Children[0]
	}
	switch {
	case bs.Specifier == imap.PartSpecifierText:
		return p.Body
	case len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0:
		return p.Header
	}
	// HEADER.FIELDS (and .NOT): the fields as written, then an empty line.
	var b []byte
	for _, f := range p.Fields {
		if slices.ContainsFunc(bs.HeaderFields, func(k string) bool { return strings.EqualFold(k, f.Name) }) == (len(bs.HeaderFields) > 0) &&
			!slices.ContainsFunc(bs.HeaderFieldsNot, func(k string) bool { return strings.EqualFold(k, f.Name) }) {
			b = append(b, f.Raw...)
			if !bytes.HasSuffix(f.Raw, []byte("\n")) {
				b = append(b, "\r\n"...)
			}
		}
	}
	return append(b, "\r\n"...)
}

// binarySection is BINARY[section] (RFC 3516): the part's body with its
// transfer encoding undone (the charset is left as it is); of the whole
// message, its header and decoded body.
func binarySection(root *mimetree.Node, path []int) []byte {
	p := root.Part(path)
	if p == nil {
		return nil
	}
	var b []byte
	if len(path) == 0 {
		b = append(b, p.Header...)
	}
	if p.IsMultipart() {
		return append(b, p.Body...) // RFC 2045 6.4: a multipart is not encoded
	}
	r, err := mimetree.Decode(p.Body, p.H.Get("Content-Transfer-Encoding"))
	if err != nil {
		return nil // decodable refused it first
	}
	var buf bytes.Buffer
	buf.Write(b)
	io.Copy(&buf, r) // broken base64: what decodes
	return buf.Bytes()
}

// noNUL replaces NUL bytes with 0x80, as Dovecot does: a literal may not
// carry NUL (RFC 3501 CHAR8; only BINARY's literal8 may), and a client
// reading the body as a C string would lose the rest of it. The length stays
// the same, so sizes and partial offsets still hold.
func noNUL(b []byte) []byte {
	if bytes.IndexByte(b, 0) < 0 {
		return b
	}
	b = bytes.Clone(b)
	for i, c := range b {
		if c == 0 {
			b[i] = 0x80
		}
	}
	return b
}

// partial applies a <offset.size> to a section.
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) {
		return nil
	}
	return b[p.Offset:min(p.Offset+p.Size, int64(len(b)))]
}

// partAt finds the part a section path names, the way IMAP numbers them: a
// non-multipart message has the single part 1, and the parts of an attached
// message are numbered under the attachment's number.
func partAt(p *mailstore.Part, path []int) *mailstore.Part {
	for i, n := range path {
		if i > 0 && isMessage(p) && len(p.Children) > 0 {
			p = &p.Children[0]
		}
		switch {
		case p.IsMultipart():
			if n < 1 || n > len(p.Children) {
				return nil
			}
			p = &p.Children[n-1]
		case n != 1:
			return nil
		}
	}
	return p
}

func isMessage(p *mailstore.Part) bool {
	return strings.EqualFold(p.Type, "message") && (strings.EqualFold(p.Subtype, "rfc822") || strings.EqualFold(p.Subtype, "global"))
}

// decodable reports whether BINARY can decode the part: RFC 3516 wants
// UNKNOWN-CTE for an encoding the server does not know.
func decodable(root *mailstore.Part, path []int) bool {
	if root == nil {
		return true
	}
	p := partAt(root, path)
	if p == nil {
		return true // a missing part is empty, not an error
	}
	switch strings.ToLower(p.Encoding) {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
		return true
	}
	return false
}

func envelope(e *mailstore.Envelope) *imap.Envelope {
	if e == nil {
		return nil
	}
	out := new(imap.Envelope)
	addressCache(nil).envelope(out, e)
	return out
}

// addressCache converts the address lists of one FETCH's envelopes.
// imapserver Q-encodes every display name as it writes it, and writes From
// twice more for a missing Sender and Reply-To, so a listing would encode its
// few correspondents' names tens of thousands of times. The cache keeps each
// single-address list it made, its name already encoded: that is plain ASCII,
// which the writer's encoding leaves as it is, and the list is shared by every
// message from the same sender. A nil cache converts without keeping.
type addressCache map[mailstore.Address][]imap.Address

// maxCached bounds the cache on a mailbox whose every message has its own
// correspondent.
const maxCached = 4096

func (c addressCache) envelope(out *imap.Envelope, e *mailstore.Envelope) {
	if e == nil {
		*out = imap.Envelope{}
		return
	}
	*out = imap.Envelope{
		Date:      e.Date,
		DateRaw:   e.DateRaw,
		Subject:   e.Subject,
		From:      c.list(e.From),
		Sender:    c.list(e.Sender),
		ReplyTo:   c.list(e.ReplyTo),
		To:        c.list(e.To),
		Cc:        c.list(e.Cc),
		Bcc:       c.list(e.Bcc),
		InReplyTo: e.InReplyTo,
		MessageID: e.MessageID,
	}
}

func (c addressCache) list(as []mailstore.Address) []imap.Address {
	switch len(as) {
	case 0:
		return nil
	case 1:
		if l, ok := c[as[0]]; ok {
			return l
		}
	}
	out := make([]imap.Address, len(as))
	for i, a := range as {
		out[i] = imap.Address{Name: mime.QEncoding.Encode("utf-8", a.Name), ADL: a.Route, Mailbox: a.Mailbox, Host: a.Host}
		if a.Host == "" && a.Mailbox != "" {
			// A group's name stands where a mailbox would; RFC 3501 has it
			// as a phrase, encoded like any display name.
			out[i].Mailbox = mime.QEncoding.Encode("utf-8", a.Mailbox)
		}
	}
	if len(as) == 1 && c != nil && len(c) < maxCached {
		c[as[0]] = out
	}
	return out
}

// bodyStructure converts the stored structure. It never yields what
// imapserver's writer would panic on: a multipart without children, a missing
// extension block, an attached message without a body.
func bodyStructure(p *mailstore.Part, utf8 bool) imap.BodyStructure {
	if p == nil {
		return &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Text: &imap.BodyStructureText{}, Extended: &imap.BodyStructureSinglePartExt{}}
	}
	var disp *imap.BodyStructureDisposition
	if p.Disposition != "" {
		disp = &imap.BodyStructureDisposition{Value: p.Disposition, Params: params(p.DispositionParams, p.RawDispositionParams, utf8)}
	}
	if p.IsMultipart() && len(p.Children) > 0 {
		mp := &imap.BodyStructureMultiPart{
			Subtype:  p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{Params: params(p.Params, p.RawParams, utf8), Disposition: disp, Language: p.Language, Location: p.Location},
		}
		for i := range p.Children {
			mp.Children = append(mp.Children, bodyStructure(&p.Children[i], utf8))
		}
		return mp
	}
	sp := &imap.BodyStructureSinglePart{
		Type: p.Type, Subtype: p.Subtype, Params: params(p.Params, p.RawParams, utf8),
		ID: p.ID, Description: p.Description, Encoding: p.Encoding, Size: uint32(p.Size),
		Extended: &imap.BodyStructureSinglePartExt{Disposition: disp, Language: p.Language, Location: p.Location},
	}
	switch {
	case p.IsMultipart():
		// Broken MIME: a multipart with no parts. Present it as the text it is.
		sp.Type, sp.Subtype, sp.Params = "text", "plain", nil
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	case sp.Type == "":
		sp.Type, sp.Subtype = "text", "plain"
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	case strings.EqualFold(p.Type, "text"):
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	case isMessage(p):
		var child *mailstore.Part
		if len(p.Children) > 0 {
			child = &p.Children[0]
		}
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{Envelope: envelope(p.Envelope), BodyStructure: bodyStructure(child, utf8), NumLines: p.Lines}
	}
	return sp
}

// params are a part's parameters for the client: decoded for one that
// accepts UTF-8, otherwise as the message wrote them (RFC 2231 or 2047), or,
// for structures stored before those were kept, encoded as RFC 2047 words,
// which clients decode in file names too.
func params(decoded, raw map[string]string, utf8 bool) map[string]string {
	if utf8 || isASCII(decoded) {
		return decoded
	}
	if raw != nil {
		return raw
	}
	out := make(map[string]string, len(decoded))
	for k, v := range decoded {
		out[k] = mime.BEncoding.Encode("utf-8", v)
	}
	return out
}

func isASCII(m map[string]string) bool {
	for _, v := range m {
		for i := 0; i < len(v); i++ {
			if v[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}
