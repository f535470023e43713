package mailstore

import (
	"fmt"
	"io"
	"math"
	"mime"
	stdtextproto "net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"sealmail/mimetree"
)

// Address is a decoded mail address, or a marker of RFC 5322 group syntax
// in an address list: a group's start has its name in Mailbox and no Host,
// its end is all empty (the form IMAP's ENVELOPE gives them).
type Address struct {
	Name    string `json:"n,omitempty"`
	Mailbox string `json:"m,omitempty"`
	Host    string `json:"h,omitempty"`
	Route   string `json:"r,omitempty"` // obsolete source route, "@relay1,@relay2"
}

// Envelope holds the decoded header fields clients list.
type Envelope struct {
	Date time.Time `json:"d"`
	// DateRaw is the Date: field as sent (unfolded), which IMAP's ENVELOPE
	// carries; Date is its parsed time, for sorting and SENTBEFORE.
	DateRaw   string    `json:"dr,omitempty"`
	Subject   string    `json:"s,omitempty"`
	From      []Address `json:"f,omitempty"`
	Sender    []Address `json:"se,omitempty"`
	ReplyTo   []Address `json:"r,omitempty"`
	To        []Address `json:"t,omitempty"`
	Cc        []Address `json:"c,omitempty"`
	Bcc       []Address `json:"b,omitempty"`
	InReplyTo []string  `json:"i,omitempty"`
	// References are the ids of the References: field, oldest first.
	References []string `json:"rf,omitempty"`
	MessageID  string   `json:"id,omitempty"`
}

// Part is one node of a message's MIME structure.
type Part struct {
	Type              string            `json:"t"`
	Subtype           string            `json:"st"`
	Params            map[string]string `json:"p,omitempty"`
	ID                string            `json:"id,omitempty"`
	Description       string            `json:"de,omitempty"`
	Encoding          string            `json:"e,omitempty"`
	Size              int64             `json:"sz"` // body octets as transmitted
	Lines             int64             `json:"l"`  // body lines, for text/* and message/rfc822
	Disposition       string            `json:"di,omitempty"`
	DispositionParams map[string]string `json:"dp,omitempty"`
	Language          []string          `json:"la,omitempty"`
	Location          string            `json:"lo,omitempty"`
	// RawParams and RawDispositionParams are the parameters as the message
	// wrote them (RFC 2231 or RFC 2047 encoded), kept only when a decoded
	// value is not ASCII: clients that have not enabled UTF-8 get these.
	RawParams            map[string]string `json:"rp,omitempty"`
	RawDispositionParams map[string]string `json:"rdp,omitempty"`
	// Envelope and Children[0] describe an encapsulated message/rfc822.
	Envelope *Envelope `json:"en,omitempty"`
	Children []Part    `json:"c,omitempty"`
}

// IsMultipart reports whether the part is a multipart/*.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" }

// text is the folded text of a message, for the full-text index: the
// address fields and the subject each in a column of their own (SEARCH FROM,
// TO, CC, BCC, SUBJECT), every other header field as "name: value" lines in
// header, and the decoded text parts in body. SEARCH TEXT looks in all of them.
type text struct {
	subject, from, to, cc, bcc, header string
	body                               strings.Builder
}

// columns returns the texts a search of field f looks in, one per index
// column: words in a row never span two of them.
func (t *text) columns(f Field) []string {
	switch f {
	case FieldBody:
		return []string{t.body.String()}
	case FieldSubject:
		return []string{t.subject}
	case FieldFrom:
		return []string{t.from}
	case FieldTo:
		return []string{t.to}
	case FieldCc:
		return []string{t.cc}
	case FieldBcc:
		return []string{t.bcc}
	}
	return []string{t.subject, t.from, t.to, t.cc, t.bcc, t.header, t.body.String()}
}

// columns says which column of text holds each header field that has one.
var columns = map[string]func(t *text) *string{
	"Subject": func(t *text) *string { return &t.subject },
	"From":    func(t *text) *string { return &t.from },
	"To":      func(t *text) *string { return &t.to },
	"Cc":      func(t *text) *string { return &t.cc },
	"Bcc":     func(t *text) *string { return &t.bcc },
}

// unindexedFields are header fields whose values are not indexed: signatures,
// whose base64 would fill the index with words nobody searches for. Their
// names are, so HEADER DKIM-Signature "" still finds messages that have one.
var unindexedFields = map[string]bool{"Dkim-Signature": true, "Arc-Seal": true, "Arc-Message-Signature": true}

// addHeader folds a message's header fields into t. Address fields are
// indexed as written, decoded (RFC 2047), so display names, comments such as
// "(Phòng TC)" and the addresses themselves are all found. A line without a
// colon is indexed as it is: a reader sees it.
func (t *text) addHeader(fields []mimetree.Field) {
	var other strings.Builder
	for _, f := range fields {
		if !f.Colon {
			other.WriteString(f.Name)
			other.WriteByte('\n')
			continue
		}
		key := stdtextproto.CanonicalMIMEHeaderKey(f.Name)
		other.WriteString(key)
		if col, ok := columns[key]; ok {
			c := col(t)
			v := Fold(decodeHeader(f.Value()))
			*c += v + "\n"
			if key != "Subject" {
				// An address written with comments or a route inside it
				// ("<a (x)@ (y) host>") is also found as what it is.
				for _, a := range parseAddrs(f.Value()) {
					if spec := Fold(a.Mailbox + "@" + a.Host); a.Host != "" && !strings.Contains(v, spec) {
						*c += spec + "\n"
					}
				}
			}
			other.WriteByte('\n')
			continue
		}
		other.WriteString(": ")
		if !unindexedFields[key] {
			other.WriteString(decodeHeader(f.Value()))
		}
		other.WriteByte('\n')
	}
	t.header = Fold(other.String())
}

// maxIndexedText bounds how much body text of one message is indexed; beyond a
// megabyte it is attachments pasted as text, not words anyone searches for.
const maxIndexedText = 1 << 20

// parse extracts a message's envelope and structure, and its searchable text
// into t unless t is nil. It never fails: broken MIME yields what a reader
// would make of it (mimetree); the content stays as it is.
func parse(raw []byte, t *text) (Envelope, Part) {
	env, st, _ := parseTree(mimetree.Parse(raw), t)
	return env, st
}

// parseContent is parse of a message read where it lies: only part headers
// and the indexed text are ever in memory, whatever the message's size.
// It fails only when reading the content does.
func parseContent(c Content, t *text) (Envelope, Part, error) {
	if c.b != nil {
		env, st := parse(c.b, t)
		return env, st, nil
	}
	r := &errReaderAt{r: c.R}
	root, err := mimetree.ParseAt(r, c.Size)
	if err != nil {
		return Envelope{}, Part{}, fmt.Errorf("reading the message: %w", err)
	}
	env, st, err := parseTree(root, t)
	if err == nil && r.err != nil {
		err = fmt.Errorf("reading the message: %w", r.err)
	}
	return env, st, err
}

func parseTree(root *mimetree.Node, t *text) (Envelope, Part, error) {
	if t != nil {
		t.addHeader(root.Fields)
	}
	st, err := structure(root, t)
	return envelope(root.H), st, err
}

// extractText returns the folded searchable text of a message.
func extractText(raw []byte) *text {
	t := new(text)
	parse(raw, t)
	return t
}

// errReaderAt keeps the first read error other than EOF, which the readers
// decoding text parts do not report.
type errReaderAt struct {
	r   io.ReaderAt
	err error
}

func (e *errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.r.ReadAt(p, off)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// The dates an envelope can hold: those of time.Time.UnixNano.
var (
	minDate = time.Unix(0, math.MinInt64)
	maxDate = time.Unix(0, math.MaxInt64)
)

func envelope(h textproto.Header) Envelope {
	mh := mail.Header{Header: message.Header{Header: h}}
	date, _ := mh.Date()
	if date.Before(minDate) || date.After(maxDate) {
		// A year such as 0000: beyond what the envelope codec (nanoseconds
		// since 1970 in an int64) holds. Clients still get the field as
		// written (DateRaw); sorting takes it as having no date.
		date = time.Time{}
	}
	subject, err := mh.Subject()
	if err != nil {
		subject = h.Get("Subject")
	}
	inReplyTo, _ := mh.MsgIDList("In-Reply-To")
	references, _ := mh.MsgIDList("References")
	id, _ := mh.MessageID()
	return Envelope{
		Date:       date,
		DateRaw:    unfold(h.Get("Date")),
		Subject:    subject,
		From:       addrs(mh, "From"),
		Sender:     addrs(mh, "Sender"),
		ReplyTo:    addrs(mh, "Reply-To"),
		To:         addrs(mh, "To"),
		Cc:         addrs(mh, "Cc"),
		Bcc:        addrs(mh, "Bcc"),
		InReplyTo:  inReplyTo,
		References: references,
		MessageID:  id,
	}
}

// addrs parses an address field, keeping RFC 5322 groups ("Undisclosed:;",
// "Team: a@x, b@y;") as start and end markers around their members, which
// net/mail would flatten. Addresses that do not parse are left out.
func addrs(mh mail.Header, key string) []Address {
	return parseAddrs(mh.Get(key))
}

// parseAddrs parses the value of an address field, as addrs.
func parseAddrs(v string) []Address {
	var out []Address
	routes := map[*mail.Address]string{}
	// parseEach parses a list net/mail refuses whole, one address at a time,
	// taking out what it does not know: comments inside an address
	// ("<user (x)@ (y) host>") and source routes ("<@relay:user@host>"),
	// which are kept in routes.
	parseEach := func(s string) []*mail.Address {
		var list []*mail.Address
		for _, item := range splitAddresses(s) {
			if a, err := mail.ParseAddress(item); err == nil {
				list = append(list, a)
				continue
			}
			clean, route := cleanAddress(item)
			if a, err := mail.ParseAddress(clean); err == nil {
				list = append(list, a)
				if route != "" {
					routes[a] = route
				}
			}
		}
		return list
	}
	plain := func(s string) {
		if strings.Trim(s, " \t\r\n,") == "" {
			return
		}
		list, err := mail.ParseAddressList(s)
		if err != nil {
			list = parseEach(s)
		}
		for _, a := range list {
			if mbox, host, ok := strings.Cut(a.Address, "@"); ok {
				out = append(out, Address{Name: a.Name, Mailbox: mbox, Host: host, Route: routes[a]})
			}
		}
	}
	// Scan for ':' and ';' outside quoted strings, comments and angle
	// brackets; text before a group's ':' back to the last ',' is its name.
	start, item := 0, 0 // where plain text and the current list item begin
	group := -1         // where the open group's members begin
	var name string
	for i := 0; i < len(v); i++ {
		if i = skipSpecial(v, i); i >= len(v) {
			break
		}
		switch v[i] {
		case ',':
			if group < 0 {
				item = i + 1
			}
		case ':':
			if group < 0 {
				plain(v[start:item])
				name = groupName(v[item:i])
				group = i + 1
			}
		case ';':
			if group >= 0 {
				out = append(out, Address{Mailbox: name})
				plain(v[group:i])
				out = append(out, Address{})
				group, start, item = -1, i+1, i+1
			}
		}
	}
	if group >= 0 { // an unterminated group still ends with the field
		out = append(out, Address{Mailbox: name})
		plain(v[group:])
		out = append(out, Address{})
	} else {
		plain(v[start:])
	}
	return out
}

// splitAddresses splits an address list at the commas outside quoted
// strings, comments and angle brackets.
func splitAddresses(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		if i = skipSpecial(v, i); i >= len(v) {
			break
		}
		if v[i] == ',' {
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// cleanAddress takes out of the angle brackets of one address the comments
// and white space around its parts, and the source route, which it returns.
func cleanAddress(v string) (clean, route string) {
	lt := strings.IndexByte(v, '<')
	gt := strings.LastIndexByte(v, '>')
	if lt < 0 || gt < lt {
		return v, ""
	}
	var spec strings.Builder
	inner := v[lt+1 : gt]
	for i := 0; i < len(inner); i++ {
		switch c := inner[i]; c {
		case '"':
			j := skipQuoted(inner, i)
			spec.WriteString(inner[i:min(j+1, len(inner))])
			i = j
		case '(':
			i = skipComment(inner, i)
		case ' ', '\t', '\r', '\n':
		default:
			spec.WriteByte(c)
		}
	}
	s := spec.String()
	if strings.HasPrefix(s, "@") {
		if colon := strings.IndexByte(s, ':'); colon > 0 {
			route, s = s[:colon], s[colon+1:]
		}
	}
	return v[:lt] + "<" + s + ">" + v[gt+1:], route
}

// skipSpecial returns where the quoted string, comment or angle-bracketed
// address that starts at v[i] ends (its last byte), or i if none starts there.
func skipSpecial(v string, i int) int {
	switch v[i] {
	case '"':
		return skipQuoted(v, i)
	case '(':
		return skipComment(v, i)
	case '<':
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return i + j
		}
	}
	return i
}

func skipQuoted(v string, i int) int {
	for i++; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return i
}

func skipComment(v string, i int) int {
	depth := 0
	for ; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return i
}

// groupName is a group's display name, unquoted and decoded.
func groupName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(s[1 : len(s)-1])
	}
	return decodeHeader(s)
}

// rawParams returns the parameters of a header value as written, when one of
// the decoded ones is not ASCII; nil otherwise.
func rawParams(v string, decoded map[string]string) map[string]string {
	ascii := true
	for _, d := range decoded {
		for i := 0; i < len(d); i++ {
			if d[i] >= 0x80 {
				ascii = false
			}
		}
	}
	if ascii {
		return nil
	}
	out := map[string]string{}
	v = unfold(v)
	// Parameters start after the first ';' outside quotes.
	for i, start := 0, -1; i <= len(v); i++ {
		if i < len(v) && v[i] == '"' {
			i = skipQuoted(v, i)
			continue
		}
		if i < len(v) && v[i] != ';' {
			continue
		}
		if start >= 0 {
			if k, val, ok := strings.Cut(v[start:i], "="); ok {
				k, val = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val)
				if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
					val = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(val[1 : len(val)-1])
				}
				if k != "" {
					out[k] = val
				}
			}
		}
		start = i + 1
	}
	return out
}

// unfold joins a folded header value into one line.
func unfold(v string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v))
}

func structure(n *mimetree.Node, t *text) (Part, error) {
	mh := message.Header{Header: n.H}
	p := Part{
		Type:        n.Type,
		Subtype:     n.Subtype,
		Params:      n.Params,
		ID:          n.H.Get("Content-Id"),
		Description: n.H.Get("Content-Description"),
		Encoding:    n.H.Get("Content-Transfer-Encoding"),
		Location:    n.H.Get("Content-Location"),
	}
	if disp, dp, err := mh.ContentDisposition(); err == nil && disp != "" {
		p.Disposition, p.DispositionParams = disp, dp
		p.RawDispositionParams = rawParams(n.H.Get("Content-Disposition"), dp)
	}
	p.RawParams = rawParams(n.H.Get("Content-Type"), p.Params)
	if lang := n.H.Get("Content-Language"); lang != "" {
		for _, l := range strings.Split(lang, ",") {
			p.Language = append(p.Language, strings.TrimSpace(l))
		}
	}
	if n.IsMultipart() && len(n.Children) > 0 {
		for _, c := range n.Children {
			cp, err := structure(c, t)
			if err != nil {
				return p, err
			}
			p.Children = append(p.Children, cp)
		}
		return p, nil
	}
	p.Size = n.BodySize()
	if n.Type == "text" || n.IsMessage() {
		var err error
		if p.Lines, err = n.Lines(); err != nil {
			return p, err
		}
	}
	switch {
	case n.IsMessage():
		env := envelope(n.Children[0].H)
		p.Envelope = &env
		c, err := structure(n.Children[0], t)
		p.Children = []Part{c}
		return p, err
	case t == nil:
	case n.Opaque || n.IsMultipart():
		// Nesting past the limits, or a multipart without a boundary: a
		// reader opening it sees its text as it is.
		if room := maxIndexedText - t.body.Len(); room > 0 {
			b, err := io.ReadAll(io.LimitReader(n.BodyReader(), int64(room)))
			if err != nil {
				return p, err
			}
			t.addBody(string(b))
		}
	case n.Type == "text" && p.Disposition != "attachment":
		t.addBody(decodeText(n.BodyReader(), p.Encoding, n.Params["charset"], n.Subtype == "html"))
	}
	return p, nil
}

func (t *text) addBody(s string) {
	if room := maxIndexedText - t.body.Len(); room > 0 {
		if len(s) > room {
			s = s[:room]
		}
		t.body.WriteString(Fold(s))
		t.body.WriteByte(' ')
	}
}

// decodeText undoes the transfer encoding and charset of a text part.
func decodeText(body io.Reader, enc, cs string, html bool) string {
	r, err := mimetree.DecodeReader(body, enc)
	if err != nil {
		r = body // an unknown encoding: its text as it is
	}
	if cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		if cr, err := charset.Reader(cs, r); err == nil {
			r = cr
		}
	}
	b, _ := io.ReadAll(io.LimitReader(r, maxIndexedText))
	s := string(b)
	if html {
		s = stripTags(s)
	}
	return s
}

// stripTags turns HTML into its text well enough for indexing.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// decodeHeader decodes RFC 2047 words, falling back to the raw value.
func decodeHeader(v string) string {
	d := mime.WordDecoder{CharsetReader: charset.Reader}
	if s, err := d.DecodeHeader(v); err == nil {
		return s
	}
	return v
}
