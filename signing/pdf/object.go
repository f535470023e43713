// Package pdf reads the structure of a PDF file (ISO 32000-1: objects,
// cross-reference tables and streams, object streams, revisions) and appends
// incremental updates to it, which is all that signing a PDF needs. It does
// not render, and it never rewrites a byte of an earlier revision, so every
// signature made before an update stays valid.
package pdf

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
)

// Object is a PDF object: nil (null), bool, int64, float64, String, Name,
// Array, Dict, Ref or *Stream.
type Object any

// Name is a PDF name, without the slash.
type Name string

// String is a PDF string's bytes, whatever syntax it was written in.
type String []byte

// Array is a PDF array.
type Array []Object

// Dict is a PDF dictionary.
type Dict map[Name]Object

// Ref is an indirect reference.
type Ref struct {
	Num int
	Gen int
}

func (r Ref) String() string { return fmt.Sprintf("%d %d R", r.Num, r.Gen) }

// Stream is a stream object: its dictionary and its raw (still encoded) data.
type Stream struct {
	Dict Dict
	Data []byte
}

// Name returns d[key] if it is a name, else "".
func (d Dict) Name(key Name) Name {
	n, _ := d[key].(Name)
	return n
}

// Raw is bytes written as they are: what a writer uses for an object it
// lays out itself, such as a signature dictionary with placeholders.
type Raw []byte

// Append writes o in PDF syntax. Dictionaries are written with sorted keys,
// so the same object always gives the same bytes.
func Append(b []byte, o Object) []byte {
	switch v := o.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case Name:
		b = append(b, '/')
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c <= ' ' || c >= 0x7f || c == '#' || isDelim(c) {
				b = append(b, '#', hexDigits[c>>4], hexDigits[c&15])
			} else {
				b = append(b, c)
			}
		}
		return b
	case String:
		b = append(b, '<')
		for _, c := range v {
			b = append(b, hexDigits[c>>4], hexDigits[c&15])
		}
		return append(b, '>')
	case Array:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ' ')
			}
			b = Append(b, e)
		}
		return append(b, ']')
	case Dict:
		b = append(b, "<<"...)
		keys := make([]Name, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = Append(b, k)
			b = append(b, ' ')
			b = Append(b, v[k])
		}
		return append(b, ">>"...)
	case Ref:
		return fmt.Appendf(b, "%d %d R", v.Num, v.Gen)
	case *Stream:
		d := maps(v.Dict)
		d["Length"] = int64(len(v.Data))
		b = Append(b, d)
		b = append(b, "\nstream\n"...)
		b = append(b, v.Data...)
		return append(b, "\nendstream"...)
	case Raw:
		return append(b, v...)
	}
	panic(fmt.Sprintf("pdf: cannot write %T", o))
}

// maps returns a shallow copy of d.
func maps(d Dict) Dict {
	c := make(Dict, len(d)+1)
	for k, v := range d {
		c[k] = v
	}
	return c
}

// Copy returns a shallow copy of d, to change before writing it back.
func (d Dict) Copy() Dict { return maps(d) }

// Equal reports whether a and b are the same object, comparing by their
// canonical syntax.
func Equal(a, b Object) bool {
	return bytes.Equal(Append(nil, a), Append(nil, b))
}

const hexDigits = "0123456789ABCDEF"

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', 0:
		return true
	}
	return false
}

// TextString encodes a PDF text string: ASCII as is, anything else as
// UTF-16BE with a byte order mark (ISO 32000-1 §7.9.2.2).
func TextString(s string) String {
	ascii := true
	for i := 0; i < len(s); i++ {
		ascii = ascii && s[i] < 0x80
	}
	if ascii {
		return String(s)
	}
	out := []byte{0xfe, 0xff}
	for _, c := range utf16.Encode([]rune(s)) {
		out = append(out, byte(c>>8), byte(c))
	}
	return String(out)
}
