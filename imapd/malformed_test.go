package imapd

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestFetchMalformedHeaders: broken headers hide nothing (issue 15 defect
// 9). Every expectation is what Dovecot 2.3 answers for the same message
// (checked by hand with /usr/lib/dovecot/imap): the header ends at the
// first empty line, a line without a colon is part of it, fields after it
// still count.
func TestFetchMalformedHeaders(t *testing.T) {
	e := newEnv(t)
	type section struct {
		item *imap.FetchItemBodySection
		want string
	}
	hdr := func(part []int, spec imap.PartSpecifier, fields ...string) *imap.FetchItemBodySection {
		return &imap.FetchItemBodySection{Part: part, Specifier: spec, HeaderFields: fields, Peek: true}
	}
	deep := "Content-Type: text/plain\r\n\r\nzeta words\r\n"
	var deepPath []int
	for i := range 60 {
		deep = "Content-Type: multipart/mixed; boundary=b" + string(rune('A'+i%26)) + strings.Repeat("x", i) + "\r\n\r\n--b" +
			string(rune('A'+i%26)) + strings.Repeat("x", i) + "\r\n" + deep + "\r\n--b" + string(rune('A'+i%26)) + strings.Repeat("x", i) + "--\r\n"
		deepPath = append(deepPath, 1)
	}
	for _, c := range []struct {
		name     string
		raw      string
		from     string // ENVELOPE's From mailbox
		sections []section
	}{{
		name: "line without a colon",
		raw:  "Subject: hello\r\nThis line has no colon\r\nFrom: a@b.test\r\n\r\nbody text here\r\n",
		from: "a",
		sections: []section{
			{hdr(nil, imap.PartSpecifierHeader), "Subject: hello\r\nThis line has no colon\r\nFrom: a@b.test\r\n\r\n"},
			{hdr(nil, imap.PartSpecifierText), "body text here\r\n"},
			{hdr(nil, imap.PartSpecifierHeader, "From"), "From: a@b.test\r\n\r\n"},
			{hdr(nil, imap.PartSpecifierHeader, "Nothing"), "\r\n"},
			{&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject"}, Peek: true},
				"This line has no colon\r\nFrom: a@b.test\r\n\r\n"},
			{hdr([]int{1}, imap.PartSpecifierNone), "body text here\r\n"},
		},
	}, {
		name: "white space first, a name with spaces",
		raw:  " leading space line\r\nX Bad Key: v\r\nSubject: s3\r\nFrom: c@d.test\r\n\r\nbody3 alpha\r\n",
		from: "c",
		sections: []section{
			{hdr(nil, imap.PartSpecifierHeader), " leading space line\r\nX Bad Key: v\r\nSubject: s3\r\nFrom: c@d.test\r\n\r\n"},
			{hdr(nil, imap.PartSpecifierText), "body3 alpha\r\n"},
		},
	}, {
		name: "no empty line: all header",
		raw:  "Subject: s4\r\nFrom: e@f.test\r\nno colon and no body",
		from: "e",
		sections: []section{
			{hdr(nil, imap.PartSpecifierHeader), "Subject: s4\r\nFrom: e@f.test\r\nno colon and no body"},
			{hdr(nil, imap.PartSpecifierText), ""},
		},
	}, {
		name: "broken part header, attached message",
		raw: "Subject: s6\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\npre\r\n--X\r\nContent-Type: text/plain\r\nbroken line\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8g\r\nd29ybGQ=\r\n--X\r\nContent-Type: message/rfc822\r\n\r\n" +
			"From: g@h.test\r\nno colon\r\nX-A: 1\r\n\r\ninner body\r\n--X--\r\nepilogue\r\n",
		sections: []section{
			{hdr([]int{1}, imap.PartSpecifierMIME), "Content-Type: text/plain\r\nbroken line\r\nContent-Transfer-Encoding: base64\r\n\r\n"},
			{hdr([]int{1}, imap.PartSpecifierNone), "aGVsbG8g\r\nd29ybGQ="},
			{hdr([]int{1}, imap.PartSpecifierHeader), ""},
			{hdr([]int{1}, imap.PartSpecifierText), ""},
			{hdr([]int{1, 1}, imap.PartSpecifierNone), "aGVsbG8g\r\nd29ybGQ="},
			{hdr([]int{2}, imap.PartSpecifierHeader), "From: g@h.test\r\nno colon\r\nX-A: 1\r\n\r\n"},
			{hdr([]int{2}, imap.PartSpecifierHeader, "X-A"), "X-A: 1\r\n\r\n"},
			{&imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"X-A"}, Peek: true},
				"From: g@h.test\r\nno colon\r\n\r\n"},
			{hdr([]int{2}, imap.PartSpecifierText), "inner body"},
			{hdr([]int{2}, imap.PartSpecifierNone), "From: g@h.test\r\nno colon\r\nX-A: 1\r\n\r\ninner body"},
			{hdr([]int{2, 1}, imap.PartSpecifierNone), "inner body"},
			{hdr([]int{2, 1}, imap.PartSpecifierMIME), "From: g@h.test\r\nno colon\r\nX-A: 1\r\n\r\n"},
			{hdr([]int{2, 2}, imap.PartSpecifierNone), ""},
			{hdr([]int{3}, imap.PartSpecifierNone), ""},
		},
	}, {
		name:     "nested 60 deep",
		raw:      "Subject: deep\r\n" + deep,
		sections: []section{{hdr(deepPath, imap.PartSpecifierNone), "zeta words\r\n"}},
	}} {
		t.Run(c.name, func(t *testing.T) {
			uid := e.deliver(t, e.accts[0], "", []byte(c.raw))
			cl := e.dial(t, "nam", nil)
			must[*imap.SelectData](t)(cl.Select("INBOX", nil).Wait())
			opts := &imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
			for _, s := range c.sections {
				opts.BodySection = append(opts.BodySection, s.item)
			}
			msgs := must[[]*imapclient.FetchMessageBuffer](t)(cl.Fetch(imap.UIDSetNum(imap.UID(uid)), opts).Collect())
			if len(msgs) != 1 || len(msgs[0].BodySection) != len(opts.BodySection) {
				t.Fatalf("fetch: %+v", msgs)
			}
			m := msgs[0]
			if got := string(m.BodySection[0].Bytes); got != c.raw {
				t.Errorf("BODY[] = %q, want the message", got)
			}
			for i, s := range c.sections {
				if got := string(m.BodySection[i+1].Bytes); got != s.want {
					t.Errorf("BODY[%v %s %v] = %q, want %q", s.item.Part, s.item.Specifier, s.item.HeaderFields, got, s.want)
				}
			}
			if c.from != "" && (m.Envelope == nil || len(m.Envelope.From) != 1 || m.Envelope.From[0].Mailbox != c.from) {
				t.Errorf("ENVELOPE From = %+v, want %s", m.Envelope, c.from)
			}
		})
	}
}

// TestFetchBinaryMalformed: BINARY decodes a part whose header has a line
// without a colon, and leaves the charset alone (RFC 3516: only the
// transfer encoding is undone).
func TestFetchBinaryMalformed(t *testing.T) {
	e := newEnv(t)
	raw := "Subject: s\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain; charset=windows-1258\r\nbroken line\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8g\r\nd29ybGTS\r\n--X--\r\n"
	uid := e.deliver(t, e.accts[0], "", []byte(raw))
	cl := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(cl.Select("INBOX", nil).Wait())
	msgs := must[[]*imapclient.FetchMessageBuffer](t)(cl.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
		BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}},
	}).Collect())
	if len(msgs) != 1 || len(msgs[0].BinarySection) != 1 || len(msgs[0].BinarySectionSize) != 1 {
		t.Fatalf("fetch: %+v", msgs)
	}
	if got, want := string(msgs[0].BinarySection[0].Bytes), "hello world\xd2"; got != want {
		t.Errorf("BINARY[1] = %q, want %q", got, want)
	}
	if got := msgs[0].BinarySectionSize[0].Size; got != 12 {
		t.Errorf("BINARY.SIZE[1] = %d, want 12", got)
	}
}

// TestNULBody: a body with NUL bytes is found by SEARCH (the text after
// them too) and FETCH sends NUL as 0x80 in BODY[] (a literal may not carry
// NUL, RFC 3501), as Dovecot does, and as is in BINARY[] (literal8).
func TestNULBody(t *testing.T) {
	e := newEnv(t)
	raw := "Subject: nul\r\n\r\nabc\x00\x00def gamma\x00delta\r\n"
	e.deliver(t, e.accts[0], "", []byte("Subject: other\r\n\r\nnothing\r\n"))
	uid := e.deliver(t, e.accts[0], "", []byte(raw))
	cl := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(cl.Select("INBOX", nil).Wait())
	for _, q := range []string{"gamma", "delta", "def"} {
		got := must[*imap.SearchData](t)(cl.UIDSearch(&imap.SearchCriteria{Body: []string{q}}, nil).Wait()).AllUIDs()
		if len(got) != 1 || got[0] != imap.UID(uid) {
			t.Errorf("SEARCH BODY %s = %v, want [%d]", q, got, uid)
		}
	}
	msgs := must[[]*imapclient.FetchMessageBuffer](t)(cl.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
		BodySection:   []*imap.FetchItemBodySection{{Peek: true}},
		BinarySection: []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}},
	}).Collect())
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 || len(msgs[0].BinarySection) != 1 {
		t.Fatalf("fetch: %+v", msgs)
	}
	if got, want := string(msgs[0].BodySection[0].Bytes), strings.ReplaceAll(raw, "\x00", "\x80"); got != want {
		t.Errorf("BODY[] = %q, want %q", got, want)
	}
	if got, want := string(msgs[0].BinarySection[0].Bytes), "abc\x00\x00def gamma\x00delta\r\n"; got != want {
		t.Errorf("BINARY[1] = %q, want %q", got, want)
	}
}
