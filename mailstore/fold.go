package mailstore

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Fold makes text comparable the way Vietnamese readers search it: lower case,
// tone and vowel marks removed, and đ/Đ (a letter of its own, not a d with a
// combining mark, so decomposition alone keeps it) turned into d. "Đà Nẵng" and
// "da nang" fold alike.
func Fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r == 'đ' || r == 'Đ':
			r = 'd'
		default:
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
