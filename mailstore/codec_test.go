package mailstore

import (
	"reflect"
	"testing"
	"time"
)

func TestEnvelopeCodec(t *testing.T) {
	for _, e := range []Envelope{
		{},
		{
			Date:      time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("", 7*3600)),
			Subject:   "Công văn về Đà Nẵng",
			From:      []Address{{Name: "Nguyễn Văn A", Mailbox: "a", Host: "so.gov.vn"}},
			To:        []Address{{Mailbox: "b", Host: "x"}, {Mailbox: "c", Host: "y"}},
			InReplyTo: []string{"<1@x>"},
			MessageID: "2@x",
		},
		{
			// An offset of no real zone, and every list filled.
			Date:      time.Date(1999, 1, 2, 3, 4, 5, 0, time.FixedZone("", -(3*3600+7*60+9))),
			Subject:   "=?utf-8?q?not_decoded_twice?=",
			From:      []Address{{Name: "Phòng Tổ chức", Mailbox: "tc", Host: "so.gov.vn"}},
			Sender:    []Address{{Mailbox: "s", Host: "so.gov.vn"}},
			ReplyTo:   []Address{{Name: "Văn thư", Mailbox: "vt", Host: "so.gov.vn"}, {Mailbox: "r", Host: "x"}},
			To:        []Address{{Name: "Ban", Mailbox: "b", Host: "x"}},
			Cc:        []Address{{Mailbox: "c", Host: "x"}},
			Bcc:       []Address{{Name: "Đ", Mailbox: "d", Host: "x"}},
			InReplyTo: []string{"<1@x>", "<2@x>"},
			MessageID: "3@x",
		},
	} {
		got, err := decodeEnvelope(encodeEnvelope(&e))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Date.Equal(e.Date) {
			t.Errorf("date %v, want %v", got.Date, e.Date)
		}
		_, gotOff := got.Date.Zone()
		_, wantOff := e.Date.Zone()
		if gotOff != wantOff {
			t.Errorf("zone offset %d, want %d", gotOff, wantOff)
		}
		got.Date, e.Date = time.Time{}, time.Time{}
		if !reflect.DeepEqual(*got, e) {
			t.Errorf("got %+v, want %+v", *got, e)
		}
	}
	enc := encodeEnvelope(&Envelope{Subject: "x", From: []Address{{Mailbox: "a", Host: "b"}}})
	for i := 0; i < len(enc); i++ {
		if _, err := decodeEnvelope(enc[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	enc := encodeEnvelope(&Envelope{
		Date:      time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("", 7*3600)),
		Subject:   "Công văn số 1234",
		From:      []Address{{Name: "Trần Văn B", Mailbox: "b", Host: "example.test"}},
		To:        []Address{{Mailbox: "nam", Host: "example.test"}},
		MessageID: "1234@test",
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEnvelope(enc); err != nil {
			b.Fatal(err)
		}
	}
}
