// Package mimetree splits a raw message into its MIME parts, as byte ranges
// of the message, leniently, the way a reader (and Dovecot) sees it.
//
// Mail in the wild breaks the rules: header lines without a colon, field
// names with spaces, a first line that starts with white space, LF line
// ends, parts without a header. A strict parser (go-message's, net/mail's)
// gives up at the first such line, and what follows — the rest of the
// header, the body — disappears from FETCH and SEARCH although the client
// downloading the message sees it. Here the header ends at the first empty
// line and nowhere else, a line without a colon is a field whose name is the
// whole line (Dovecot's lib-mail does the same), and nothing is ever
// dropped: every byte of the message belongs to some part's header or body.
//
// Parse takes a message in memory, whose parts are slices of it (nothing is
// copied); ParseAt reads one from an io.ReaderAt, holding in memory only
// part headers, so a 50 MiB attachment costs a few buffers. Both give the
// same tree.
package mimetree

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// MaxDepth bounds MIME nesting (multiparts and message/rfc822 inside each
// other), as Dovecot does (100). A part deeper than that is not opened: it
// is application/octet-stream with its parameters, and Opaque.
const MaxDepth = 100

// MaxParts bounds the number of parts of one message (Dovecot: 10,000);
// past it the rest of a multipart is not split, and its last part is Opaque.
const MaxParts = 10000

// Node is one part of a message: the message itself, a part of a
// multipart, or the message inside a message/rfc822 part.
type Node struct {
	// Header is the part's header as written, with the empty line that ends
	// it (if the part has one): BODY[HEADER] of a message, BODY[n.MIME] of a
	// part; from ParseAt, its first MaxHeader bytes. Body is everything after
	// it, from Parse only (BodyReader reads it either way).
	Header, Body []byte
	// BodyStart and End are where the body starts and ends in the message.
	BodyStart, End int64
	// Fields are Header's fields in order; H is the same as go-message's
	// header (fields without a colon left out), for decoding values.
	Fields []Field
	H      textproto.Header
	// Type and Subtype are lower case; a part without a Content-Type, or with
	// one that does not parse, is text/plain (RFC 2045 §5.2), or
	// message/rfc822 inside a multipart/digest (RFC 2046 §5.1.5).
	Type, Subtype string
	Params        map[string]string
	// Children are a multipart's parts, or for message/rfc822 (and
	// message/global) the one message inside.
	Children []*Node
	// Opaque marks a part the limits kept from being opened: its Body may
	// hold parts that were not split.
	Opaque bool

	src io.ReaderAt // the message
}

// BodySize returns the length of the body.
func (n *Node) BodySize() int64 { return n.End - n.BodyStart }

// BodyReader reads the body.
func (n *Node) BodyReader() io.Reader {
	if n.Body != nil {
		return bytes.NewReader(n.Body)
	}
	return io.NewSectionReader(n.src, n.BodyStart, n.BodySize())
}

// Lines counts the body's lines (its LF bytes), as IMAP's BODYSTRUCTURE
// gives them for text and message parts.
func (n *Node) Lines() (int64, error) {
	if n.Body != nil || n.BodySize() == 0 {
		return int64(bytes.Count(n.Body, []byte("\n"))), nil
	}
	var lines int64
	buf := make([]byte, 32<<10)
	r := n.BodyReader()
	for {
		k, err := r.Read(buf)
		lines += int64(bytes.Count(buf[:k], []byte("\n")))
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
	}
}

// IsMultipart reports whether n is a multipart/*.
func (n *Node) IsMultipart() bool { return n.Type == "multipart" }

// IsMessage reports whether n encapsulates a message (message/rfc822 or
// message/global, RFC 6532).
func (n *Node) IsMessage() bool {
	return n.Type == "message" && (n.Subtype == "rfc822" || n.Subtype == "global")
}

// Parse splits a raw message into its tree of parts.
func Parse(raw []byte) *Node {
	p := parser{raw: raw, src: bytes.NewReader(raw)}
	return p.node(0, int64(len(raw)), "", 0)
}

// ParseAt splits the message of size bytes that r holds into its tree of
// parts, as Parse does but reading r, never holding a body in memory: only
// part headers (up to MaxHeader bytes each) and a 64 KiB line buffer. The
// bodies stay in r (Node.BodyReader). It fails only if r does.
func ParseAt(r io.ReaderAt, size int64) (*Node, error) {
	p := parser{src: r}
	n := p.node(0, size, "", 0)
	return n, p.err
}

// MaxHeader bounds what ParseAt holds of a part's header: its fields are
// those of the first MaxHeader bytes (smtpd refuses a longer message header).
const MaxHeader = 1 << 20

// parser splits a message in memory (raw), or in src only.
type parser struct {
	parts int
	raw   []byte
	src   io.ReaderAt
	lines *lineReader // for src
	err   error       // src's first error
}

// node parses the part between off and end; parent is the enclosing
// multipart's subtype.
func (p *parser) node(off, end int64, parent string, depth int) *Node {
	p.parts++
	n := &Node{src: p.src, End: end}
	n.Header, n.BodyStart = p.splitHeader(off, end)
	if p.raw != nil {
		n.Body = p.raw[n.BodyStart:end]
	}
	n.Fields = Fields(n.Header)
	n.H = Header(n.Fields)
	mh := message.Header{Header: n.H}
	mediaType, params, err := mh.ContentType()
	switch {
	case !n.H.Has("Content-Type") && parent == "digest":
		mediaType, params = "message/rfc822", map[string]string{}
	case err != nil || mediaType == "" || !n.H.Has("Content-Type") || !strings.Contains(mediaType, "/"):
		mediaType, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	n.Type, n.Subtype, _ = strings.Cut(mediaType, "/")
	n.Params = params
	if depth >= MaxDepth && (n.IsMultipart() || n.IsMessage()) {
		n.Type, n.Subtype, n.Opaque = "application", "octet-stream", true
		return n
	}
	switch {
	case n.IsMultipart() && params["boundary"] != "":
		parts := p.splitMultipart(n.BodyStart, end, params["boundary"])
		for _, b := range parts {
			if p.parts >= MaxParts {
				// The rest is not split: it stays in the last part.
				if len(n.Children) == 0 {
					n.Opaque = true
					break
				}
				last := n.Children[len(n.Children)-1]
				last.End = parts[len(parts)-1][1]
				if p.raw != nil {
					last.Body = p.raw[last.BodyStart:last.End]
				}
				last.Opaque = true
				break
			}
			n.Children = append(n.Children, p.node(b[0], b[1], n.Subtype, depth+1))
		}
	case n.IsMessage():
		n.Children = []*Node{p.node(n.BodyStart, end, "", depth+1)}
	}
	return n
}

// splitHeader returns the header of the part between off and end, and where
// its body starts.
func (p *parser) splitHeader(off, end int64) ([]byte, int64) {
	if p.raw != nil {
		h, _ := SplitHeader(p.raw[off:end])
		return h, off + int64(len(h))
	}
	l := p.lineReader(off, end, 0)
	body := end
	for {
		start, head, n, _, ok := l.next()
		if !ok {
			break
		}
		if n == 1 && head[0] == '\n' || n == 2 && head[0] == '\r' && head[1] == '\n' {
			body = start + n
			break
		}
	}
	h := make([]byte, min(body-off, MaxHeader))
	if k, err := p.src.ReadAt(h, off); k < len(h) && p.err == nil {
		p.err = fmt.Errorf("reading a header: %w", err)
	}
	return h, body
}

// splitMultipart returns where the parts of the multipart body between off
// and end start and end (SplitMultipart).
func (p *parser) splitMultipart(off, end int64, boundary string) [][2]int64 {
	var out [][2]int64
	if p.raw != nil {
		body := p.raw[off:end]
		for _, part := range SplitMultipart(body, boundary) {
			at := off + int64(offset(body, part))
			out = append(out, [2]int64{at, at + int64(len(part))})
		}
		return out
	}
	l := p.lineReader(off, end, len(boundary)+8)
	start := int64(-1) // where the current part began
	var prevEnd int64  // the length of the previous line's line end
	for {
		at, head, n, restBlank, ok := l.next()
		if !ok {
			break
		}
		if head[0] == '-' && restBlank {
			if close, ok := delimiter(head, boundary); ok {
				if start >= 0 {
					out = append(out, [2]int64{start, max(start, at-prevEnd)})
				}
				if close {
					return out
				}
				start = at + n
			}
		}
		prevEnd = l.lineEnd
	}
	if start >= 0 {
		out = append(out, [2]int64{start, end})
	}
	return out
}

// lineBuffer is the size of ParseAt's line buffer (tests make it small).
var lineBuffer = 64 << 10

// lineReader reads the lines of a part of a message parsed from a reader.
type lineReader struct {
	p       *parser
	br      *bufio.Reader
	at      int64  // where the next line starts
	scratch []byte // the head of a line longer than br's buffer
	// lineEnd is the length of the last line's line end: 0, 1 (LF) or 2 (CRLF).
	lineEnd int64
}

// lineReader returns the parser's line reader set to read between off and
// end, with room for lines of at least minBuf bytes (a delimiter line).
// Parts are split one after the other, so one reader serves them all.
func (p *parser) lineReader(off, end int64, minBuf int) *lineReader {
	size := max(lineBuffer, minBuf)
	if p.lines == nil || p.lines.br.Size() < size {
		p.lines = &lineReader{p: p, br: bufio.NewReaderSize(nil, size)}
	}
	l := p.lines
	l.br.Reset(io.NewSectionReader(p.src, off, end-off))
	l.at = off
	return l
}

// next returns the next line: where it starts, its first bytes (all of it
// if it fits the buffer; valid until the next call), its length with its
// line end, and whether its bytes past head are all white space or line
// ends. ok is false at the end, or when the reader failed (p.err).
func (l *lineReader) next() (start int64, head []byte, n int64, restBlank, ok bool) {
	line, err := l.br.ReadSlice('\n')
	start, head, n, restBlank = l.at, line, int64(len(line)), true
	var before byte // the byte before line, in a line longer than the buffer
	if err == bufio.ErrBufferFull {
		l.scratch = append(l.scratch[:0], line...)
		head = l.scratch
		for err == bufio.ErrBufferFull {
			before = line[len(line)-1]
			line, err = l.br.ReadSlice('\n')
			n += int64(len(line))
			if restBlank && len(bytes.Trim(line, " \t\r\n")) != 0 {
				restBlank = false
			}
		}
	}
	if err != nil && err != io.EOF && l.p.err == nil {
		l.p.err = err
	}
	if n == 0 || err != nil && err != io.EOF {
		return 0, nil, 0, false, false
	}
	l.at += n
	l.lineEnd = 0
	if k := len(line); k > 0 && line[k-1] == '\n' {
		l.lineEnd = 1
		if k >= 2 && line[k-2] == '\r' || k == 1 && before == '\r' {
			l.lineEnd = 2
		}
	}
	return start, head, n, restBlank, true
}

// offset is where sub, a slice of b, starts in b.
func offset(b, sub []byte) int {
	return cap(b) - cap(sub)
}

// Part finds the part a section path names, the way IMAP numbers them (RFC
// 3501 §6.4.5): the parts of a multipart are 1, 2, ...; a part that is not
// a multipart has the single part 1 (itself); the parts of an encapsulated
// message are numbered under the number of the message/rfc822 part. It
// returns nil for a path that names no part.
func (n *Node) Part(path []int) *Node {
	p := n
	for i, k := range path {
		if i > 0 && p.IsMessage() && len(p.Children) > 0 {
			p = p.Children[0]
		}
		switch {
		case p.IsMultipart() && len(p.Children) > 0:
			if k < 1 || k > len(p.Children) {
				return nil
			}
			p = p.Children[k-1]
		case k != 1:
			return nil
		}
	}
	return p
}

// SplitHeader splits a message (or part) at the first empty line: header
// holds the fields and the empty line, body the rest. Without an empty line
// all is header (as Dovecot has it).
func SplitHeader(raw []byte) (header, body []byte) {
	for i := 0; i < len(raw); {
		end := bytes.IndexByte(raw[i:], '\n')
		if end < 0 {
			break
		}
		line := raw[i : i+end]
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return raw[:i+end+1], raw[i+end+1:]
		}
		i += end + 1
	}
	return raw, raw[len(raw):]
}

// Field is one header field as written.
type Field struct {
	// Name is the text before the colon, trimmed of white space; a line
	// without a colon is all name (Dovecot's reading); white-space lines at
	// the start of a header, continuing nothing, are a field without a name.
	Name string
	// Raw is the field's lines with their line ends, continuations included.
	Raw []byte
	// Colon reports whether the field has a colon, i.e. a value.
	Colon bool
}

// maxFields bounds the fields of one header parsed (Dovecot's parser has
// no such limit, but a 50 MiB header of two-byte lines would take gigabytes
// as fields); lines past it stay in the last field's Raw.
const maxFields = 10000

// Fields returns the fields of a header (as SplitHeader gives it).
func Fields(header []byte) []Field {
	var out []Field
	for i := 0; i < len(header); {
		if len(out) == maxFields {
			f := &out[len(out)-1]
			f.Raw = header[offset(header, f.Raw):]
			break
		}
		end := bytes.IndexByte(header[i:], '\n')
		next := i + end + 1
		if end < 0 {
			next = len(header)
		}
		line := header[i:next]
		if bytes.HasSuffix(line, []byte("\n")) {
			line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		}
		switch {
		case len(line) == 0:
			// the empty line that ends the header
		case line[0] == ' ' || line[0] == '\t':
			if len(out) > 0 {
				f := &out[len(out)-1]
				f.Raw = header[offset(header, f.Raw):next]
			} else {
				out = append(out, Field{Raw: header[i:next]})
			}
		default:
			f := Field{Raw: header[i:next]}
			if c := bytes.IndexByte(line, ':'); c >= 0 {
				f.Name, f.Colon = string(bytes.TrimSpace(line[:c])), true
			} else {
				f.Name = string(bytes.TrimSpace(line))
			}
			out = append(out, f)
		}
		i = next
	}
	return out
}

// Header returns the fields that have a name and a value as go-message's
// header, to decode them (addresses, dates, Content-Type).
func Header(fields []Field) textproto.Header {
	var h textproto.Header
	// AddRaw puts a field on top: add them last first.
	for i := len(fields) - 1; i >= 0; i-- {
		if f := fields[i]; f.Colon && f.Name != "" {
			h.AddRaw(f.Raw)
		}
	}
	return h
}

// Value returns the unfolded value of a field, without the name and colon.
func (f Field) Value() string {
	_, v, _ := bytes.Cut(f.Raw, []byte{':'})
	v = bytes.ReplaceAll(bytes.ReplaceAll(v, []byte("\r\n"), nil), []byte("\n"), nil)
	return string(bytes.TrimSpace(v))
}

// SplitMultipart returns the parts of a multipart body (RFC 2046 §5.1.1):
// the text between delimiter lines "--boundary", up to the close delimiter
// "--boundary--" or the end. A delimiter line may have white space after the
// boundary (transport padding) and LF for CRLF; the line end before a
// delimiter belongs to it, not to the part. Preamble and epilogue are not
// parts.
func SplitMultipart(body []byte, boundary string) [][]byte {
	var parts [][]byte
	dash := []byte("--" + boundary)
	start := -1 // where the current part began
	for i := 0; i < len(body); {
		j := bytes.Index(body[i:], dash)
		if j < 0 {
			break
		}
		at := i + j
		end := bytes.IndexByte(body[at:], '\n')
		next := at + end + 1
		if end < 0 {
			next = len(body)
		}
		if at > 0 && body[at-1] != '\n' {
			i = at + len(dash) // not at the start of a line
			continue
		}
		if close, ok := delimiter(body[at:next], boundary); ok {
			if start >= 0 {
				parts = append(parts, body[start:trimLineEnd(body, start, at)])
			}
			if close {
				return parts
			}
			start = next
		}
		i = next
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	return parts
}

// trimLineEnd is where a part that runs from start to the delimiter line at
// i ends: before the line end that precedes the delimiter.
func trimLineEnd(body []byte, start, i int) int {
	if i > start && body[i-1] == '\n' {
		i--
		if i > start && body[i-1] == '\r' {
			i--
		}
	}
	return i
}

// delimiter reports whether line is a delimiter line of boundary, and
// whether it is the close delimiter.
func delimiter(line []byte, boundary string) (close, ok bool) {
	if len(line) < 2+len(boundary) || line[0] != '-' || line[1] != '-' || string(line[2:2+len(boundary)]) != boundary {
		return false, false
	}
	rest := line[2+len(boundary):]
	if bytes.HasPrefix(rest, []byte("--")) {
		close, rest = true, rest[2:]
	}
	if len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return false, false // "--boundaryX": a longer boundary, or text
	}
	return close, true
}

// Decode undoes a body's Content-Transfer-Encoding. Base64 is read
// leniently: line breaks and other bytes outside the alphabet are skipped,
// as real mail has them. An encoding it does not know is an error (IMAP's
// UNKNOWN-CTE).
func Decode(body []byte, encoding string) (io.Reader, error) {
	return DecodeReader(bytes.NewReader(body), encoding)
}

// DecodeReader is Decode of a body read from r.
func DecodeReader(r io.Reader, encoding string) (io.Reader, error) {
	switch e := strings.ToLower(strings.TrimSpace(encoding)); e {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &lenientBase64{r: r}), nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	default:
		return nil, fmt.Errorf("unknown Content-Transfer-Encoding %q", e)
	}
}

// lenientBase64 drops line breaks and other bytes outside the alphabet.
type lenientBase64 struct{ r io.Reader }

func (l *lenientBase64) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
