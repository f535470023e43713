package book

import (
	"slices"
	"testing"

	"sealmail/mailstore"
)

func TestFilter(t *testing.T) {
	in := []mailstore.DocEntry{
		{Direction: mailstore.DocIn, Number: 1, Organ: "Sở Tài chính", Notation: "12/STC-NS", DocType: "Công văn",
			Subject: "Về việc quyết toán ngân sách đợt 1", DocDate: "2026-03-02"},
		{Direction: mailstore.DocIn, Number: 2, Organ: "Ủy ban nhân dân tỉnh Đồng Nai", Notation: "345/QĐ-UBND", DocType: "Quyết định",
			Subject: "Phê duyệt đề án chuyển đổi số", Signer: "Chủ tịch Đặng Văn Đức"},
		{Direction: mailstore.DocIn, Number: 3, Organ: "SỞ TÀI CHÍNH", Notation: "13/STC-NS",
			Subject: "Giấy mời họp", Recipients: []string{"nam@a.test"}},
	}
	for _, c := range []struct {
		f    Filter
		want []int
	}{
		{Filter{}, []int{1, 2, 3}},
		{Filter{Agency: "so tai chinh"}, []int{1, 3}},
		{Filter{Agency: "Sở Tài chính"}, []int{1, 3}},
		{Filter{Agency: "Sở Tài"}, nil}, // an agency is named whole
		{Filter{Type: "cong van"}, []int{1}},
		{Filter{Type: NoType}, []int{3}},
		{Filter{Text: "dong nai"}, []int{2}},
		{Filter{Text: "đức chuyen"}, []int{2}}, // đ→d, every word, any column, any order
		{Filter{Text: "DUC  ngan"}, nil},
		{Filter{Text: "02/03/2026"}, []int{1}}, // the date as printed
		{Filter{Text: "nam@a"}, []int{3}},
		{Filter{Agency: "sở tài chính", Text: "moi"}, []int{3}},
	} {
		var got []int
		for _, e := range c.f.Select(in) {
			got = append(got, e.Number)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v selects %v, want %v", c.f, got, c.want)
		}
	}
	if got := Agencies(in); !slices.Equal(got, []string{"Sở Tài chính", "Ủy ban nhân dân tỉnh Đồng Nai"}) {
		t.Errorf("agencies %q", got)
	}
	if got := Types(in); !slices.Equal(got, []string{"Công văn", "Quyết định"}) {
		t.Errorf("types %q", got)
	}
	out := []mailstore.DocEntry{{Direction: mailstore.DocOut, Number: 1, Recipients: []string{"vanthu@b.test", "Sở Nội vụ"}}}
	if got := Agencies(out); !slices.Equal(got, []string{"Sở Nội vụ", "vanthu@b.test"}) {
		t.Errorf("outgoing agencies %q", got)
	}
	if len((Filter{Agency: "so noi vu"}).Select(out)) != 1 {
		t.Error("an outgoing document is not found by a place it was sent to")
	}
}
