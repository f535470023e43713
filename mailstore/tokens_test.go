package mailstore

import (
	"slices"
	"strings"
	"testing"
)

// FuzzTokens checks the byte-wise tokenizer against the rune-wise rule it
// replaces: FTS4's simple tokenizer splits at ASCII characters other than
// letters and digits, and nowhere else.
func FuzzTokens(f *testing.F) {
	for _, s := range []string{
		"", " ", "a", "da nang", "  Đà Nẵng,  công-văn số 28/UBND ", "x\x80y\xffz", "tab\tnew\r\nline",
		"nguyen van a <a@x.vn> (phong tc)", "\xe1\xba", "abc\x00def", "…—«»", "end.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.FieldsFunc(s, func(r rune) bool {
			return r < 0x80 && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z')
		})
		if got := tokens(s); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("tokens(%q) = %q, want %q", s, got, want)
		}
	})
}

func TestDistinctWords(t *testing.T) {
	if got, want := distinctWords("da nang, da  lat; nang"), "da nang lat"; got != want {
		t.Fatalf("distinctWords = %q, want %q", got, want)
	}
}
