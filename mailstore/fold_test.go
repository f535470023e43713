package mailstore

import (
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Đà Nẵng":                      "da nang",
		"ĐỒNG Ý":                       "dong y",
		"Sở Thông tin và Truyền thông": "so thong tin va truyen thong",
		"Văn bản đến":                  "van ban den",
		"plain ASCII":                  "plain ascii",
		// windows-1258 text decodes to base letters followed by combining marks.
		"Ha\u0300 No\u0323i": "ha noi",
		"ŒUVRE Ǆ Ἀθῆναι":     "œuvre ǆ αθηναι",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkFold(b *testing.B) {
	s := strings.Repeat("Kính gửi Sở Tài chính thành phố Đà Nẵng, về việc meeting notes 2026. ", 1000)
	b.SetBytes(int64(len(s)))
	for i := 0; i < b.N; i++ {
		Fold(s)
	}
}
