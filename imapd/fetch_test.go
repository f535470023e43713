package imapd

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestFetchEnvelopes checks that envelopes come out as the headers said,
// whatever was encoded on the way: names the server hands to imapserver
// already Q-encoded must not be encoded twice, a sender's cached address list
// must not leak into another message, and absent fields stay absent.
func TestFetchEnvelopes(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("Sở Nội vụ tỉnh Quảng Nam ", 4) // several encoded words
	msgs := []struct {
		raw  string
		want imap.Envelope
	}{{
		raw: "From: =?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@so.gov.vn>\r\n" +
			"Sender: =?UTF-8?B?VsSDbiB0aMawIA==?= <vt@so.gov.vn>\r\n" +
			"Reply-To: Phòng Tổ chức <tc@so.gov.vn>\r\n" +
			"To: Các phòng ban: b@x.test, \"Lê C\" <c@x.test>;, Đ <d@x.test>\r\n" +
			"Cc: " + long + " <l@x.test>\r\n" +
			"Subject: =?utf-8?b?VsSDbiBi4bqjbiB24buBIMSQw6AgTuG6tW5n?=\r\n" +
			"Date: Sat, 28 Nov 2026 10:00:00 +0700\r\n" +
			"In-Reply-To: <p1@x.test> <p2@x.test>\r\n" +
			"Message-ID: <m1@so.gov.vn>\r\n\r\nbody\r\n",
		want: imap.Envelope{
			Date:    time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("", 7*3600)),
			Subject: "Văn bản về Đà Nẵng",
			From:    []imap.Address{{Name: "Nguyễn Văn A", Mailbox: "a", Host: "so.gov.vn"}},
			Sender:  []imap.Address{{Name: "Văn thư ", Mailbox: "vt", Host: "so.gov.vn"}},
			ReplyTo: []imap.Address{{Name: "Phòng Tổ chức", Mailbox: "tc", Host: "so.gov.vn"}},
			// The group keeps its start (name, no host) and end markers.
			To: []imap.Address{{Mailbox: "=?utf-8?q?C=C3=A1c_ph=C3=B2ng_ban?="}, {Mailbox: "b", Host: "x.test"},
				{Name: "Lê C", Mailbox: "c", Host: "x.test"}, {}, {Name: "Đ", Mailbox: "d", Host: "x.test"}},
			Cc:        []imap.Address{{Name: strings.TrimSpace(long), Mailbox: "l", Host: "x.test"}},
			InReplyTo: []string{"p1@x.test", "p2@x.test"},
			MessageID: "m1@so.gov.vn",
		},
	}, {
		// Nothing but a body: every field NIL.
		raw: "\r\nbody\r\n",
	}, {
		// The first message's sender again, now without Sender and Reply-To,
		// which then repeat From.
		raw: "From: =?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@so.gov.vn>\r\nTo: b@x.test\r\nSubject: Re: =?utf-8?q?V=C4=83n_b=E1=BA=A3n?=\r\n\r\nbody\r\n",
		want: imap.Envelope{
			Subject: "Re: Văn bản",
			From:    []imap.Address{{Name: "Nguyễn Văn A", Mailbox: "a", Host: "so.gov.vn"}},
			Sender:  []imap.Address{{Name: "Nguyễn Văn A", Mailbox: "a", Host: "so.gov.vn"}},
			ReplyTo: []imap.Address{{Name: "Nguyễn Văn A", Mailbox: "a", Host: "so.gov.vn"}},
			To:      []imap.Address{{Mailbox: "b", Host: "x.test"}},
		},
	}, {
		// The same mailbox under another name, and a name that reads like an
		// encoded word but is plain text.
		raw: "From: Trần A <a@so.gov.vn>\r\nTo: \"=?x?\" <b@x.test>\r\n\r\nbody\r\n",
		want: imap.Envelope{
			From:    []imap.Address{{Name: "Trần A", Mailbox: "a", Host: "so.gov.vn"}},
			Sender:  []imap.Address{{Name: "Trần A", Mailbox: "a", Host: "so.gov.vn"}},
			ReplyTo: []imap.Address{{Name: "Trần A", Mailbox: "a", Host: "so.gov.vn"}},
			To:      []imap.Address{{Name: "=?x?", Mailbox: "b", Host: "x.test"}},
		},
	}}
	for _, m := range msgs {
		e.deliver(t, e.accts[0], "", []byte(m.raw))
	}
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	// Twice: the second FETCH meets every sender in the cache's place.
	for range 2 {
		got := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect())
		if len(got) != len(msgs) {
			t.Fatalf("%d messages, want %d", len(got), len(msgs))
		}
		for i, m := range msgs {
			env := got[i].Envelope
			if env == nil {
				t.Fatalf("message %d: no envelope", i+1)
			}
			if !env.Date.Equal(m.want.Date) {
				t.Errorf("message %d: date %v, want %v", i+1, env.Date, m.want.Date)
			}
			g, w := *env, m.want
			g.Date, w.Date = time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("message %d:\n got %+v\nwant %+v", i+1, g, w)
			}
		}
	}
}

// TestFetchAttachedEnvelope checks the envelope of a forwarded message inside
// BODYSTRUCTURE, which takes the same conversion.
func TestFetchAttachedEnvelope(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", []byte("From: b@x.test\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nxem\r\n"+
		"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: =?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@so.gov.vn>\r\nSubject: =?utf-8?q?C=C3=B4ng_v=C4=83n?=\r\n\r\ngốc\r\n"+
		"--b--\r\n"))
	c := e.dial(t, "nam", nil)
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	got := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect())
	mp, ok := got[0].BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 {
		t.Fatalf("bodystructure %#v", got[0].BodyStructure)
	}
	sp, ok := mp.Children[1].(*imap.BodyStructureSinglePart)
	if !ok || sp.MessageRFC822 == nil || sp.MessageRFC822.Envelope == nil {
		t.Fatalf("attached message %#v", mp.Children[1])
	}
	env := sp.MessageRFC822.Envelope
	want := []imap.Address{{Name: "Nguyễn Văn A", Mailbox: "a", Host: "so.gov.vn"}}
	if env.Subject != "Công văn" || !reflect.DeepEqual(env.From, want) || !reflect.DeepEqual(env.Sender, want) {
		t.Errorf("attached envelope %+v", env)
	}
}
