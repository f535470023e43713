package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
)

// decodeChunk is how many decoded bytes decodeBase64 hands to its writer
// at a time: small enough to stay in cache until the writer has used them.
const decodeChunk = 48 << 10

// decodeBase64 writes the decoded body to w in chunks. Lines of whole
// quanta, as every encoder writes them, decode straight from src about
// three times faster than encoding/base64 manages; from the first line
// that is anything else (padding, a quantum split across lines, a bad
// character) the rest goes through encoding/base64, so both accept and
// reject the same input.
func decodeBase64(w io.Writer, src []byte) error {
	_, err := decodeBase64Lines(w, nil, src)
	return err
}

// decodeBase64Lines is decodeBase64, also finding the longest start of src
// made of whole lines exactly as writeBase64 writes them: lineLen base64
// characters and CRLF. Such lines are the encoding of what they decode to,
// character for character, so a writer of the same bytes may copy them
// instead of encoding again. It returns how many there are. If lines is
// not nil, it copies them there as it goes, each chunk once its decoded
// bytes are written to w, while the chunk is still in cache; the last
// line's CRLF is left for writeBase64After, since writeBase64 ends without
// one.
func decodeBase64Lines(w, lines io.Writer, src []byte) (canon int, err error) {
	t, _ := w.(taker)
	var out []byte
	if t != nil {
		out = t.take(nil)
	} else {
		out = make([]byte, 0, decodeChunk)
	}
	whole := src
	copied := 0 // bytes of whole copied to lines
	flush := func() error {
		if t != nil {
			out = t.take(out)
		} else {
			_, err := w.Write(out)
			out = out[:0]
			if err != nil {
				return err
			}
		}
		n := canon*(lineLen+2) - 2
		if lines == nil || n <= copied {
			return nil
		}
		_, err := lines.Write(whole[copied:n])
		copied = n
		return err
	}
	width := -1       // length of the last line, which the next one usually shares
	canonical := true // every line so far
	for len(src) > 0 {
		var line []byte
		next := width + 2
		if width >= 0 && len(src) >= next && src[width] == '\r' && src[width+1] == '\n' {
			line = src[:width]
		} else {
			next = len(src)
			if i := bytes.IndexByte(src, '\n'); i >= 0 {
				next = i + 1
			}
			line = bytes.TrimSuffix(bytes.TrimSuffix(src[:next], []byte("\n")), []byte("\r"))
			width = len(line)
		}
		for done := 0; done < len(line); {
			if cap(out)-len(out) < 3 {
				if err := flush(); err != nil {
					return canon, err
				}
			}
			read, written := decodeQuanta(out[len(out):cap(out)], line[done:])
			out, done = out[:len(out)+written], done+read
			if done < len(line) && cap(out)-len(out) >= 3 {
				if err := flush(); err != nil {
					return canon, err
				}
				return canon, decodeBase64Std(w, src[done:])
			}
		}
		// Decoded whole above, the line held only base64 characters.
		if canonical = canonical && len(line) == lineLen && next == lineLen+2 && src[lineLen] == '\r'; canonical {
			canon++
		}
		src = src[next:]
	}
	return canon, flush()
}

// A taker is a writer that can take a buffer instead of copying it: b is
// the buffer it returned last, filled, and it returns an empty buffer (of
// room for at least 8 bytes) to fill next; take(nil) returns the first.
type taker interface {
	take(b []byte) []byte
}

// decodeTable maps each base64 character to its six bits at the four
// positions of a quantum; anything else, padding included, sets bit 31.
var decodeTable = func() (t [4][256]uint32) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		for c := range t[i] {
			t[i][c] = 1 << 31
		}
		for v, c := range []byte(alphabet) {
			t[i][c] = uint32(v) << (18 - 6*i)
		}
	}
	return t
}()

// decodeQuanta decodes whole quanta of src into dst while they hold only
// base64 characters and fit, and returns how many bytes it read and wrote.
func decodeQuanta(dst, src []byte) (read, written int) {
	t := &decodeTable
	for len(src)-read >= 8 && len(dst)-written >= 8 {
		s := src[read : read+8]
		a := t[0][s[0]] | t[1][s[1]] | t[2][s[2]] | t[3][s[3]]
		b := t[0][s[4]] | t[1][s[5]] | t[2][s[6]] | t[3][s[7]]
		if (a|b)&(1<<31) != 0 {
			break
		}
		// Writes two bytes past the six decoded ones; the next quanta
		// overwrite them, and len(dst) >= 8 keeps them in bounds.
		binary.BigEndian.PutUint64(dst[written:], uint64(a)<<40|uint64(b)<<16)
		read += 8
		written += 6
	}
	for len(src)-read >= 4 && len(dst)-written >= 3 {
		s := src[read : read+4]
		a := t[0][s[0]] | t[1][s[1]] | t[2][s[2]] | t[3][s[3]]
		if a&(1<<31) != 0 {
			break
		}
		d := dst[written : written+3]
		d[0], d[1], d[2] = byte(a>>16), byte(a>>8), byte(a)
		read += 4
		written += 3
	}
	return read, written
}

// decodeBase64Std is decodeBase64 for any input, with encoding/base64. It
// drops line breaks itself because encoding/base64 decodes about half as
// fast when it has to skip them.
func decodeBase64Std(w io.Writer, src []byte) error {
	in := make([]byte, 0, decodeChunk/3*4) // a multiple of 4, so only the last chunk has padding
	out := make([]byte, decodeChunk)
	flush := func() error {
		n, err := base64.StdEncoding.Decode(out, in)
		if err != nil {
			return fmt.Errorf("base64: %w", err)
		}
		in = in[:0]
		_, err = w.Write(out[:n])
		return err
	}
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		for len(line) > 0 {
			k := min(len(line), cap(in)-len(in))
			in, line = append(in, line[:k]...), line[k:]
			if len(in) == cap(in) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// writeBase64 writes src as base64 in 76-character lines joined by CRLF.
func writeBase64(w io.Writer, src []byte) error {
	const perLine = lineLen / 4 * 3 // 57 bytes make 76 characters
	buf := make([]byte, 0, 256*(lineLen+2))
	for len(src) > 0 {
		n := min(len(src), perLine)
		buf = base64.StdEncoding.AppendEncode(buf, src[:n])
		if src = src[n:]; len(src) > 0 {
			buf = append(buf, '\r', '\n')
		}
		if len(src) == 0 || cap(buf)-len(buf) < lineLen+2 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// writeBase64After writes the rest of src as writeBase64 writes it, after
// its first lines lines, which are written already without their last
// CRLF (see decodeBase64Lines).
func writeBase64After(w io.Writer, lines int, src []byte) error {
	rest := src[lines*(lineLen/4*3):]
	if lines > 0 && len(rest) > 0 {
		if _, err := io.WriteString(w, "\r\n"); err != nil {
			return err
		}
	}
	return writeBase64(w, rest)
}

// base64Size is the length of n bytes as writeBase64 writes them: 76
// characters a line, CRLF between lines.
func base64Size(n int) int {
	if n == 0 {
		return 0
	}
	const perLine = lineLen / 4 * 3
	lines := (n + perLine - 1) / perLine
	return (n+2)/3*4 + 2*(lines-1)
}

// decodedSize bounds the size of p's body once decoded, so that the buffer
// it is decoded into is allocated once.
func decodedSize(p *part) int {
	if p.cte() == "base64" {
		return len(p.body)/4*3 + 3
	}
	return len(p.body)
}
