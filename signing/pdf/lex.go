package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// maxNesting bounds arrays and dictionaries inside each other, so a hostile
// file cannot exhaust the stack.
const maxNesting = 64

// parser reads objects from data starting at pos.
type parser struct {
	data  []byte
	pos   int
	depth int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("pdf: offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// skip passes white space and comments.
func (p *parser) skip() {
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if isSpace(c) {
			p.pos++
			continue
		}
		if c == '%' {
			for p.pos < len(p.data) && p.data[p.pos] != '\r' && p.data[p.pos] != '\n' {
				p.pos++
			}
			continue
		}
		return
	}
}

// keyword reads a run of regular characters (a number, true, obj, R, …).
func (p *parser) keyword() []byte {
	p.skip()
	start := p.pos
	for p.pos < len(p.data) && !isSpace(p.data[p.pos]) && !isDelim(p.data[p.pos]) {
		p.pos++
	}
	return p.data[start:p.pos]
}

// object reads one object. A number followed by another and R is a reference.
func (p *parser) object() (Object, error) {
	p.skip()
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of data")
	}
	switch c := p.data[p.pos]; c {
	case '/':
		return p.name()
	case '(':
		return p.literal()
	case '<':
		if p.pos+1 < len(p.data) && p.data[p.pos+1] == '<' {
			return p.dict()
		}
		return p.hex()
	case '[':
		return p.array()
	case ']', '>', ')', '{', '}':
		return nil, p.errorf("unexpected %q", c)
	}
	kw := p.keyword()
	switch string(kw) {
	case "":
		return nil, p.errorf("unexpected %q", p.data[p.pos])
	case "null":
		return nil, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if bytes.ContainsAny(kw, ".") {
		f, err := strconv.ParseFloat(string(kw), 64)
		if err != nil {
			return nil, p.errorf("bad number %q", kw)
		}
		return f, nil
	}
	n, err := strconv.ParseInt(string(kw), 10, 64)
	if err != nil {
		return nil, p.errorf("unexpected %q", kw)
	}
	// n g R?
	save := p.pos
	g := p.keyword()
	if gen, err := strconv.Atoi(string(g)); err == nil && len(g) > 0 && g[0] != '+' && g[0] != '-' {
		if r := p.keyword(); string(r) == "R" {
			return Ref{Num: int(n), Gen: gen}, nil
		}
	}
	p.pos = save
	return n, nil
}

func (p *parser) name() (Object, error) {
	p.pos++ // '/'
	var b []byte
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if isSpace(c) || isDelim(c) {
			break
		}
		if c == '#' && p.pos+2 < len(p.data) {
			if v, err := strconv.ParseUint(string(p.data[p.pos+1:p.pos+3]), 16, 8); err == nil {
				b = append(b, byte(v))
				p.pos += 3
				continue
			}
		}
		b = append(b, c)
		p.pos++
	}
	return Name(b), nil
}

func (p *parser) literal() (Object, error) {
	p.pos++ // '('
	var b []byte
	depth := 1
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		p.pos++
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return String(b), nil
			}
		case '\r':
			// An end of line in a string reads as LF.
			if p.pos < len(p.data) && p.data[p.pos] == '\n' {
				p.pos++
			}
			c = '\n'
		case '\\':
			if p.pos >= len(p.data) {
				break
			}
			e := p.data[p.pos]
			p.pos++
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if p.pos < len(p.data) && p.data[p.pos] == '\n' {
					p.pos++
				}
				continue
			case '\n':
				continue
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for i := 0; i < 2 && p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '7'; i++ {
						v = v*8 + int(p.data[p.pos]-'0')
						p.pos++
					}
					c = byte(v)
				} else {
					c = e
				}
			}
		}
		b = append(b, c)
	}
	return nil, p.errorf("unterminated string")
}

func (p *parser) hex() (Object, error) {
	p.pos++ // '<'
	var b []byte
	var hi int = -1
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		p.pos++
		if c == '>' {
			if hi >= 0 {
				b = append(b, byte(hi<<4))
			}
			return String(b), nil
		}
		if isSpace(c) {
			continue
		}
		v := unhex(c)
		if v < 0 {
			return nil, p.errorf("bad hex string")
		}
		if hi < 0 {
			hi = v
		} else {
			b = append(b, byte(hi<<4|v))
			hi = -1
		}
	}
	return nil, p.errorf("unterminated hex string")
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func (p *parser) array() (Object, error) {
	p.pos++ // '['
	if p.depth++; p.depth > maxNesting {
		return nil, p.errorf("nested too deeply")
	}
	defer func() { p.depth-- }()
	a := Array{}
	for {
		p.skip()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated array")
		}
		if p.data[p.pos] == ']' {
			p.pos++
			return a, nil
		}
		o, err := p.object()
		if err != nil {
			return nil, err
		}
		a = append(a, o)
	}
}

func (p *parser) dict() (Object, error) {
	p.pos += 2 // '<<'
	if p.depth++; p.depth > maxNesting {
		return nil, p.errorf("nested too deeply")
	}
	defer func() { p.depth-- }()
	d := Dict{}
	for {
		p.skip()
		if p.pos+1 < len(p.data) && p.data[p.pos] == '>' && p.data[p.pos+1] == '>' {
			p.pos += 2
			return d, nil
		}
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated dictionary")
		}
		if p.data[p.pos] != '/' {
			return nil, p.errorf("dictionary key is not a name")
		}
		k, _ := p.name()
		v, err := p.object()
		if err != nil {
			return nil, err
		}
		if v != nil { // a null value is the same as no entry
			d[k.(Name)] = v
		}
	}
}

var errNotObject = errors.New("not an indirect object")

// indirect reads "num gen obj … endobj" at p.pos. A stream's length comes
// from length, which resolves an indirect /Length; when that is wrong, the
// stream ends at the first endstream.
func (p *parser) indirect(length func(Object) (int, bool)) (Ref, Object, error) {
	num, err1 := strconv.Atoi(string(p.keyword()))
	gen, err2 := strconv.Atoi(string(p.keyword()))
	if err1 != nil || err2 != nil || string(p.keyword()) != "obj" {
		return Ref{}, nil, errNotObject
	}
	ref := Ref{num, gen}
	o, err := p.object()
	if err != nil {
		return ref, nil, err
	}
	d, ok := o.(Dict)
	if !ok {
		return ref, o, nil
	}
	save := p.pos
	if string(p.keyword()) != "stream" {
		p.pos = save
		return ref, o, nil
	}
	// The keyword is followed by CRLF or LF (a lone CR is tolerated).
	if p.pos < len(p.data) && p.data[p.pos] == '\r' {
		p.pos++
	}
	if p.pos < len(p.data) && p.data[p.pos] == '\n' {
		p.pos++
	}
	start := p.pos
	if n, ok := length(d["Length"]); ok && n >= 0 && start+n <= len(p.data) {
		rest := p.data[start+n:]
		rest = bytes.TrimLeft(rest, "\r\n \t")
		if bytes.HasPrefix(rest, []byte("endstream")) {
			p.pos = start + n
			return ref, &Stream{Dict: d, Data: p.data[start : start+n]}, nil
		}
	}
	end := bytes.Index(p.data[start:], []byte("endstream"))
	if end < 0 {
		return ref, nil, p.errorf("stream without endstream")
	}
	data := p.data[start : start+end]
	// The end-of-line marker before endstream is not data.
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	p.pos = start + end
	return ref, &Stream{Dict: d, Data: data}, nil
}
