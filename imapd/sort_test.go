package imapd

import (
	"fmt"
	"mime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/mailstore"
)

func TestBaseSubject(t *testing.T) {
	for _, c := range []struct {
		in, base string
		reply    bool
	}{
		{"Công văn số 12", "Công văn số 12", false},
		{"Re: Công văn số 12", "Công văn số 12", true},
		{"RE: Fwd: re:  Họp   giao ban", "Họp giao ban", true},
		{"[sealmail] Re: [lists] Hello (fwd)", "Hello", true},
		{"Fw[x]: hi", "hi", true},
		{"[fwd: Re: Kế hoạch]", "Kế hoạch", true},
		{"[only a blob]", "[only a blob]", false},
		{"Reunion: tomorrow", "Reunion: tomorrow", false},
		{"  \t ", "", false},
		{"hello (FWD)  (fwd)", "hello", true},
	} {
		base, reply := baseSubject(c.in)
		if base != c.base || reply != c.reply {
			t.Errorf("baseSubject(%q) = %q, %v; want %q, %v", c.in, base, reply, c.base, c.reply)
		}
	}
}

// sortFixture delivers messages whose every key orders them differently.
func sortFixture(t *testing.T, e *env) {
	t.Helper()
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("", 7*3600))
	msgs := []struct{ from, to, cc, subject string }{
		{`"Trần Văn Bình" <binh@x.test>`, "lan@y.test", "zz@z.test", "Re: Đà Nẵng"}, // 1
		{`"An" <an@x.test>`, "minh@y.test", "aa@z.test", "Dự thảo quyết định"},      // 2
		{`"Đặng Thị Chi" <chi@x.test>`, "anh@y.test", "mm@z.test", "da nang"},       // 3
		{`<dung@x.test>`, "hoa@y.test", "", "[Văn thư] Ăn trưa"},                    // 4
		{`"Bảo" <bao@x.test>`, "binh@y.test", "bb@z.test", "An toàn thông tin"},     // 5
	}
	// Sent dates in the order 3, 1, 5, 2, 4; sizes grow with the body.
	sent := []int{2, 4, 1, 5, 3}
	for i, m := range msgs {
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\n", m.from, m.to)
		if m.cc != "" {
			raw += "Cc: " + m.cc + "\r\n"
		}
		raw += fmt.Sprintf("Subject: %s\r\nDate: %s\r\nMessage-ID: <m%d@x.test>\r\n\r\n%s\r\n",
			mimeWord(m.subject), base.Add(time.Duration(sent[i])*time.Hour).Format(time.RFC1123Z), i+1, strings.Repeat("x", 1000*(5-i)))
		// Arrival in delivery order, seconds apart (the internal date's precision).
		ds, err := e.store.Deliver(t.Context(), []byte(raw), base.Add(time.Duration(i)*time.Second), []mailstore.Target{{AccountID: e.accts[0].ID}})
		if err != nil || ds[0].Err != nil {
			t.Fatal(err, ds)
		}
	}
}

func mimeWord(s string) string { return mime.BEncoding.Encode("utf-8", s) }

func TestSort(t *testing.T) {
	e := newEnv(t)
	sortFixture(t, e)
	c := e.dial(t, "nam", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all := &imap.SearchCriteria{}
	for _, tc := range []struct {
		keys []imapclient.SortCriterion
		want []uint32
	}{
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeyArrival}}, []uint32{1, 2, 3, 4, 5}},
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeyArrival, Reverse: true}}, []uint32{5, 4, 3, 2, 1}},
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeyDate}}, []uint32{3, 1, 5, 2, 4}},
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeySize}}, []uint32{5, 4, 3, 2, 1}},
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeyFrom}}, []uint32{2, 5, 1, 3, 4}},
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeyTo}}, []uint32{3, 5, 4, 1, 2}},
		// A missing Cc sorts as the empty string, first.
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeyCc}}, []uint32{4, 2, 5, 3, 1}},
		// Base subjects: "Đà Nẵng" and "da nang" fold alike, then the
		// Vietnamese collation puts d before đ; "[Văn thư] Ăn trưa" is "Ăn trưa",
		// between "An toàn" and "da nang" as folded text.
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeySubject}}, []uint32{5, 4, 3, 1, 2}},
		{[]imapclient.SortCriterion{{Key: imapclient.SortKeySubject, Reverse: true}, {Key: imapclient.SortKeyDate}}, []uint32{2, 1, 3, 4, 5}},
		{[]imapclient.SortCriterion{{Key: "DISPLAYFROM"}}, []uint32{2, 5, 3, 4, 1}},
		{[]imapclient.SortCriterion{{Key: "DISPLAYTO"}}, []uint32{3, 5, 4, 1, 2}},
	} {
		got, err := c.Sort(&imapclient.SortOptions{SearchCriteria: all, SortCriteria: tc.keys}).Wait()
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SORT %v = %v, %v; want %v", tc.keys, got, err, tc.want)
		}
	}
	// With search keys, and UID SORT after an expunge shifted the numbers.
	got, err := c.Sort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{Text: []string{"da nang"}},
		SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeyDate}}}).Wait()
	if err != nil || !slices.Equal(got, []uint32{3, 1}) {
		t.Errorf("SORT (DATE) TEXT \"da nang\" = %v, %v", got, err)
	}
	if _, err := c.Move(imap.SeqSetNum(1), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	got, err = c.UIDSort(&imapclient.SortOptions{SearchCriteria: all, SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeyDate}}}).Wait()
	if err != nil || !slices.Equal(got, []uint32{3, 5, 2, 4}) {
		t.Errorf("UID SORT (DATE) = %v, %v", got, err)
	}
	got, err = c.Sort(&imapclient.SortOptions{SearchCriteria: all, SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeyDate}}}).Wait()
	if err != nil || !slices.Equal(got, []uint32{2, 4, 1, 3}) {
		t.Errorf("SORT (DATE) after expunge = %v, %v", got, err)
	}

	// The wire: errors a client can make.
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	for cmd, want := range map[string]string{
		"SORT (ARRIVAL) UTF-8 ALL":       "OK",
		"SORT (REVERSE) UTF-8 ALL":       "BAD",
		"SORT (COLOUR) UTF-8 ALL":        "BAD",
		"SORT (ARRIVAL) KOI8-R ALL":      "NO [BADCHARSET]",
		"THREAD SHUFFLE UTF-8 ALL":       "BAD",
		"SORT (REVERSE DATE) US-ASCII 1": "OK",
	} {
		_, st := r.cmd(cmd)
		if !strings.HasPrefix(st, want) {
			t.Errorf("%s: %s, want %s", cmd, st, want)
		}
	}
	lines, _ := r.cmd("SORT (REVERSE SIZE) UTF-8 ALL")
	if len(lines) != 1 || lines[0] != "* SORT 1 2 3 4" {
		t.Errorf("SORT on the wire: %q", lines)
	}
	lines, _ = r.cmd("SORT (SIZE) UTF-8 SUBJECT nothing-like-this")
	if len(lines) != 1 || lines[0] != "* SORT" {
		t.Errorf("empty SORT: %q", lines)
	}
}

func TestThread(t *testing.T) {
	e := newEnv(t)
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	add := func(n int, subject, id, refs, inReplyTo string) {
		raw := fmt.Sprintf("From: a@x.test\r\nSubject: %s\r\nDate: %s\r\n", mimeWord(subject), base.Add(time.Duration(n)*time.Minute).Format(time.RFC1123Z))
		if id != "" {
			raw += "Message-ID: <" + id + ">\r\n"
		}
		if refs != "" {
			raw += "References: " + refs + "\r\n"
		}
		if inReplyTo != "" {
			raw += "In-Reply-To: " + inReplyTo + "\r\n"
		}
		e.deliver(t, e.accts[0], "", []byte(raw+"\r\nx\r\n"))
	}
	add(1, "Kế hoạch năm", "a@x", "", "")                // 1
	add(2, "Re: Kế hoạch năm", "b@x", "<a@x>", "<a@x>")  // 2
	add(3, "Họp", "c@x", "", "")                         // 3
	add(4, "Re: Kế hoạch năm", "d@x", "<a@x> <b@x>", "") // 4
	add(5, "Re: Kế hoạch năm", "e@x", "", "<a@x>")       // 5
	add(6, "Re: Ngân sách", "f@x", "<lost@x>", "")       // 6: parent not here
	add(7, "Re: Ngân sách", "g@x", "<lost@x>", "")       // 7: sibling under the missing parent
	add(8, "Re: Họp", "h@x", "<other@x>", "")            // 8: joins 3 by subject
	add(9, "Báo cáo", "", "", "")                        // 9: no Message-ID
	c := e.dial(t, "nam", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	for cmd, want := range map[string]string{
		"THREAD REFERENCES UTF-8 ALL":     "* THREAD (1 (2 4)(5))(3 8)((6)(7))(9)",
		"THREAD ORDEREDSUBJECT UTF-8 ALL": "* THREAD (1 (2)(4)(5))(3 8)(6 7)(9)",
		"UID THREAD REFERENCES UTF-8 9":   "* THREAD (9)",
		"THREAD REFERENCES UTF-8 NOT ALL": "* THREAD",
	} {
		lines, st := r.cmd(cmd)
		if !strings.HasPrefix(st, "OK") || len(lines) != 1 || lines[0] != want {
			t.Errorf("%s: %q %s\nwant %s", cmd, lines, st, want)
		}
	}
	threads, err := c.UIDThread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences, SearchCriteria: &imap.SearchCriteria{Text: []string{"ke hoach"}}}).Wait()
	if err != nil || len(threads) != 1 || !slices.Equal(threads[0].Chain, []uint32{1}) || len(threads[0].SubThreads) != 2 {
		t.Errorf("UID THREAD REFERENCES TEXT: %+v %v", threads, err)
	}
}
