package signing

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// maxDepth bounds multipart nesting so a hostile message cannot exhaust the
// stack; real mail rarely nests more than three levels.
const maxDepth = 8

// lineLen is the longest base64 line RFC 2045 allows. Attachments already
// encoded this way travel unchanged through 7-bit SMTP, so Stamp keeps them.
const lineLen = 76

// part is one MIME entity of a message held in memory. Bodies alias the
// message bytes, so even a large attachment is never copied while parsing.
type part struct {
	header    textproto.Header
	mediaType string
	params    map[string]string
	body      []byte  // still transfer-encoded; nil for multiparts
	kids      []*part // set for multipart/*
	// write, when set, is how writePart writes the part: a PDF that Stamp
	// signs inside while it copies it into the message.
	write func(io.Writer) error
}

// parsePart parses raw, a CRLF-canonical entity, and its subparts.
func parsePart(raw []byte, depth int) (*part, error) {
	h, body, err := splitHeader(raw)
	if err != nil {
		return nil, err
	}
	p := &part{header: h}
	mh := message.Header{Header: h}
	if p.mediaType, p.params, err = mh.ContentType(); err != nil {
		return nil, fmt.Errorf("content-type: %w", err)
	}
	if !strings.HasPrefix(p.mediaType, "multipart/") {
		p.body = body
		return p, nil
	}
	if depth >= maxDepth {
		return nil, errors.New("multipart nested too deeply")
	}
	raws, err := splitMultipart(body, p.params["boundary"])
	if err != nil {
		return nil, err
	}
	for _, r := range raws {
		k, err := parsePart(r, depth+1)
		if err != nil {
			return nil, err
		}
		p.kids = append(p.kids, k)
	}
	return p, nil
}

// splitHeader separates a header from the body that follows the blank line.
func splitHeader(raw []byte) (textproto.Header, []byte, error) {
	n := 2 // an entity may have no header fields, only the blank line
	if !bytes.HasPrefix(raw, []byte("\r\n")) {
		i := bytes.Index(raw, []byte("\r\n\r\n"))
		if i < 0 {
			return textproto.Header{}, nil, errors.New("no blank line after header")
		}
		n = i + 4
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw[:n])))
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	return h, raw[n:], nil
}

// splitMultipart returns the raw parts of a multipart body (RFC 2046
// §5.1.1). The CRLF before each delimiter belongs to the delimiter, so every
// part is exactly the bytes an S/MIME signer hashed.
func splitMultipart(body []byte, boundary string) ([][]byte, error) {
	if boundary == "" {
		return nil, errors.New("multipart without boundary")
	}
	delim := []byte("\r\n--" + boundary)
	var parts [][]byte
	start := -1 // start of the current part; -1 in the preamble
	for i := 0; ; {
		at := -2 // the first delimiter may open the body, with no CRLF before it
		if i > 0 || !bytes.HasPrefix(body, delim[2:]) {
			var err error
			if at, err = indexDelimiter(body, i, delim); err != nil {
				return nil, err
			}
		}
		rest := body[at+len(delim):]
		last := bytes.HasPrefix(rest, []byte("--"))
		line := bytes.TrimLeft(rest, " \t") // transport padding
		if !last && !bytes.HasPrefix(line, []byte("\r\n")) {
			i = at + len(delim) // a longer line that merely starts with the boundary
			continue
		}
		if start >= 0 {
			parts = append(parts, body[start:max(at, start)])
		}
		if last {
			break
		}
		start = len(body) - len(line) + 2
		i = start - 2 // an empty part's delimiter shares this CRLF
	}
	if len(parts) == 0 {
		return nil, errors.New("multipart without parts")
	}
	return parts, nil
}

// indexDelimiter returns the index of the first delim at or after i. It
// looks for delim without its CRLF: a hyphen never occurs in base64, so
// the search skips through attachments instead of stopping at every line.
func indexDelimiter(body []byte, i int, delim []byte) (int, error) {
	for ; i+len(delim) <= len(body); i++ {
		j := bytes.Index(body[i+2:], delim[2:])
		if j < 0 {
			break
		}
		if i += j; bytes.HasPrefix(body[i:], delim[:2]) {
			return i, nil
		}
	}
	return 0, errors.New("multipart without close delimiter")
}

// cte is the part's Content-Transfer-Encoding, lower-cased.
func (p *part) cte() string {
	return strings.ToLower(strings.TrimSpace(p.header.Get("Content-Transfer-Encoding")))
}

// filename returns the decoded file name (RFC 2231 or RFC 2047), if any.
func (p *part) filename() string {
	h := mail.AttachmentHeader{Header: message.Header{Header: p.header}}
	name, _ := h.Filename()
	return name
}

// isAttachment tells which leaves the manifest lists: anything named or
// marked as an attachment, wherever it is nested.
func (p *part) isAttachment() bool {
	mh := message.Header{Header: p.header}
	disp, _, _ := mh.ContentDisposition()
	return p.kids == nil && (strings.EqualFold(disp, "attachment") || p.filename() != "")
}

// attachments lists the attachments under parts in document order.
func attachments(parts []*part) []*part {
	var out []*part
	for _, p := range parts {
		if p.isAttachment() {
			out = append(out, p)
		}
		out = append(out, attachments(p.kids)...)
	}
	return out
}

// digest describes an attachment as the manifest lists it. Stamp and Verify
// both use it, so both sides decode the bytes the same way.
func digest(p *part) (Attachment, error) {
	h := newHasher(len(p.body))
	err := decodeBody(p.cte(), p.body, h)
	a := describe(p, h)
	if err != nil {
		return Attachment{}, fmt.Errorf("attachment %q: %w", p.filename(), err)
	}
	return a, nil
}

// describe is the manifest's entry for p, decoded through h.
func describe(p *part, h *hasher) Attachment {
	sum, n := h.Sum()
	return Attachment{
		FileName:    p.filename(),
		ContentType: p.mediaType,
		Size:        n,
		SHA256:      hex.EncodeToString(sum),
	}
}

// decodeFile decodes an attachment into buf, or a new buffer of its size
// if buf has not the room, and hashes it on another core on the way. If
// lines is not nil, the start of the body that is already as writeBase64
// would write the file gets copied there as it is decoded (see
// decodeBase64Lines).
func decodeFile(p *part, buf []byte, lines io.Writer) (*decoded, error) {
	if cap(buf) < decodedSize(p) {
		buf = make([]byte, 0, decodedSize(p))
	}
	s := &fileSink{data: buf[:0], h: newHasher(len(p.body))}
	var canon int
	var err error
	if p.cte() == "base64" {
		canon, err = decodeBase64Lines(s, lines, p.body)
	} else {
		err = decodeBody(p.cte(), p.body, s)
	}
	s.h.share(s.data[s.shared:])
	s.h.state()
	if err != nil {
		return nil, err
	}
	return &decoded{data: s.data, hashed: s.h, lines: canon}, nil
}

// decoded is an attachment as decodeFile decoded it.
type decoded struct {
	data []byte
	// hashed is stopped: it has the file's digest, and states to finish
	// the digest of any prefix of it from.
	hashed *hasher
	// lines is how many lines at the start of the body are data's start
	// as writeBase64 writes it, copied to decodeFile's lines if not nil.
	lines int
}

// A fileSink is where decodeFile decodes to: the decoder fills the file's
// buffer in place, and each piece is shared with the hasher, not copied.
type fileSink struct {
	data   []byte
	shared int // how much of data went to h
	h      *hasher
}

// take gets b, the piece it returned last, filled.
func (s *fileSink) take(b []byte) []byte {
	s.data = s.data[:len(s.data)+len(b)]
	s.share()
	if cap(s.data)-len(s.data) < 8 {
		// More than decodedSize: the pieces shared so far stay valid in
		// the old array.
		s.data = slices.Grow(s.data, decodeChunk)
	}
	n := len(s.data)
	return s.data[n:n:min(n+decodeChunk, cap(s.data))]
}

func (s *fileSink) Write(p []byte) (int, error) {
	s.data = append(s.data, p...)
	s.share()
	return len(p), nil
}

// share hands the new bytes to the hasher once there are enough.
func (s *fileSink) share() {
	if len(s.data)-s.shared >= sharePiece {
		s.h.share(s.data[s.shared:])
		s.shared = len(s.data)
	}
}

// decodeBody writes the body with its transfer encoding removed.
func decodeBody(cte string, body []byte, w io.Writer) error {
	switch cte {
	case "base64":
		return decodeBase64(w, body)
	case "quoted-printable":
		_, err := io.Copy(w, quotedprintable.NewReader(bytes.NewReader(body)))
		return err
	case "", "7bit", "8bit", "binary":
		_, err := w.Write(body)
		return err
	}
	return fmt.Errorf("unknown transfer encoding %q", cte)
}

// shortLines reports whether no line of b is longer than n octets. It
// first looks for the next line end where the last line's length puts it,
// which for a base64 body saves a search per line: a line end at most n+1
// octets on means the lines up to there are short, whichever ends first.
func shortLines(b []byte, n int) bool {
	width := n + 1
	for len(b) > n {
		if width < len(b) && b[width] == '\n' {
			b = b[width+1:]
			continue
		}
		i := bytes.IndexByte(b[:n+2], '\n')
		if i < 0 {
			return false
		}
		b, width = b[i+1:], i
	}
	return true
}

// is7bit reports whether b passes 7-bit SMTP unchanged: ASCII without NUL,
// CRLF line ends, lines of at most 998 octets and no trailing white space,
// which some relays strip.
func is7bit(b []byte) bool {
	start := 0
	for i, c := range b {
		switch {
		case c == 0 || c >= 0x80:
			return false
		case c == '\r':
			if i+1 == len(b) || b[i+1] != '\n' {
				return false
			}
		case c == '\n':
			if i == 0 || b[i-1] != '\r' || !goodLine(b[start:i-1]) {
				return false
			}
			start = i + 1
		}
	}
	return goodLine(b[start:])
}

func goodLine(l []byte) bool {
	return len(l) <= 998 && (len(l) == 0 || l[len(l)-1] != ' ' && l[len(l)-1] != '\t')
}

// crlf returns b with every bare LF turned into CRLF, the form that S/MIME
// signs (RFC 8551 §3.1.1). Mail stores and OpenSSL write LF line ends,
// which SMTP turns into CRLF on the wire. Canonical input is returned as
// it is. A binary (BINARYMIME) body with bare LFs would be altered too.
func crlf(b []byte) []byte {
	i := firstBareLF(b)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/64)
	last := 0
	for ; i >= 0; i = bareLF(b, i+1) {
		out = append(out, b[last:i]...)
		out = append(out, '\r')
		last = i
	}
	return append(out, b[last:]...)
}

// firstBareLF is bareLF(b, 0). It searches the halves of a large message on
// two cores, because every stamp and verification waits for it.
func firstBareLF(b []byte) int {
	if len(b) < 1<<20 {
		return bareLF(b, 0)
	}
	mid := len(b) / 2
	second := make(chan int, 1)
	go func() { second <- bareLF(b, mid) }()
	if i := bareLF(b[:mid], 0); i >= 0 {
		return i
	}
	return <-second
}

// bareLF returns the index of the first LF at or after i that no CR
// precedes, or -1.
func bareLF(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		if i += j; i == 0 || b[i-1] != '\r' {
			return i
		}
		i++
	}
}

// newBoundary returns a random boundary. It cannot occur in base64 text,
// and in other text only by chance of one in 2^130.
func newBoundary() string {
	return "sealmail-" + rand.Text()
}

// writeField writes one header field, folded as go-message folds new fields.
func writeField(w io.Writer, k, v string) error {
	var h textproto.Header
	h.Set(k, v)
	f := h.Fields()
	f.Next()
	raw, err := f.Raw()
	if err != nil {
		return fmt.Errorf("header %s: %w", k, err)
	}
	_, err = w.Write(raw)
	return err
}

// encodeWord encodes s for an unstructured header field (RFC 2047); ASCII
// comes back unchanged.
func encodeWord(s string) string {
	return mime.QEncoding.Encode("utf-8", s)
}

// writeMultipart writes a multipart entity: header h with Content-Type t,
// params and a fresh boundary, then one part per writer.
func writeMultipart(w io.Writer, h textproto.Header, t string, params map[string]string, parts []func(io.Writer) error) error {
	b := newBoundary()
	p := map[string]string{"boundary": b}
	for k, v := range params {
		if k != "boundary" {
			p[k] = v
		}
	}
	h.Del("Content-Transfer-Encoding")
	h.Set("Content-Type", mime.FormatMediaType(t, p))
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	for _, write := range parts {
		fmt.Fprintf(w, "--%s\r\n", b)
		if err := write(w); err != nil {
			return err
		}
		io.WriteString(w, "\r\n")
	}
	fmt.Fprintf(w, "--%s--", b)
	return nil
}

// writeTextPart writes a text/plain part, quoted-printable so that 7-bit
// relays leave the signed bytes alone.
func writeTextPart(w io.Writer, text string) error {
	if _, err := io.WriteString(w, "Content-Type: text/plain; charset=utf-8\r\n"+
		"Content-Transfer-Encoding: quoted-printable\r\n"+
		"Content-Disposition: inline\r\n\r\n"); err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, text); err != nil {
		return err
	}
	return qp.Close()
}

// writeXMLPart writes v as an application/xml attachment called name.
func writeXMLPart(w io.Writer, name string, v any) error {
	data, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := writeField(w, "Content-Type", "application/xml; charset=utf-8"); err != nil {
		return err
	}
	if err := writeField(w, "Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name})); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "Content-Transfer-Encoding: base64\r\n\r\n"); err != nil {
		return err
	}
	return writeBase64(w, append([]byte(xml.Header), data...))
}

// xmlPart finds the XML attachment called name that closes a
// multipart/mixed root, where writeXMLPart puts it, and the parts before it.
func xmlPart(root *part, name string) (*part, []*part, error) {
	if root.mediaType != "multipart/mixed" {
		return nil, nil, fmt.Errorf("signed part is %s, not multipart/mixed", root.mediaType)
	}
	n := len(root.kids)
	p := root.kids[n-1]
	if p.mediaType != "application/xml" || p.filename() != name {
		return nil, nil, fmt.Errorf("last signed part is not %s", name)
	}
	return p, root.kids[:n-1], nil
}

// decodeXML decodes an XML part into v.
func decodeXML(p *part, v any) error {
	var buf bytes.Buffer
	if err := decodeBody(p.cte(), p.body, &buf); err != nil {
		return err
	}
	return xml.Unmarshal(buf.Bytes(), v)
}
