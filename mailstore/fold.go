package mailstore

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Fold makes text comparable the way Vietnamese readers search it: lower case,
// tone and vowel marks removed, and đ/Đ (a letter of its own, not a d with a
// combining mark, so decomposition alone keeps it) turned into d. "Đà Nẵng" and
// "da nang" fold alike.
//
// It runs over every indexed body, so the common cases avoid Unicode
// normalization: ASCII is lowered in place, and precomposed Latin letters (all
// of Vietnamese) are looked up in a table built once from their
// decompositions. NUL becomes a space: SQLite's full-text tokenizer reads
// text as a C string, and the rest of a body after a NUL was never indexed.
func Fold(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			} else if c == 0 {
				c = ' '
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r < rune(len(latinFold)):
			switch f := latinFold[r]; f {
			case 0:
				b = utf8.AppendRune(b, unicode.ToLower(r))
			case drop:
			default:
				b = utf8.AppendRune(b, f)
			}
		case unicode.Is(unicode.Mn, r):
			// A combining mark after a base letter (windows-1258 text decodes so).
		default:
			for _, d := range norm.NFD.String(string(r)) {
				if !unicode.Is(unicode.Mn, d) {
					b = utf8.AppendRune(b, unicode.ToLower(d))
				}
			}
		}
	}
	return string(b)
}

// latinFold maps each character below U+1F00 (Latin-1, Latin Extended, the
// combining marks, and the Vietnamese block U+1EA0–U+1EF9) to its folded base
// letter; 0 means its plain lower case, drop a combining mark.
var latinFold = func() [0x1F00]rune {
	var t [0x1F00]rune
	for r := rune(0x80); r < 0x1F00; r++ {
		if unicode.Is(unicode.Mn, r) {
			t[r] = drop
			continue
		}
		if r == 'đ' || r == 'Đ' {
			t[r] = 'd'
			continue
		}
		d := []rune(norm.NFD.String(string(r)))
		if len(d) > 1 && !unicode.Is(unicode.Mn, d[0]) {
			rest := true
			for _, m := range d[1:] {
				rest = rest && unicode.Is(unicode.Mn, m)
			}
			if rest {
				t[r] = unicode.ToLower(d[0])
			}
		}
	}
	return t
}()

const drop = -1
