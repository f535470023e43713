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
	} {
		got, err := decodeEnvelope(encodeEnvelope(&e))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Date.Equal(e.Date) {
			t.Errorf("date %v, want %v", got.Date, e.Date)
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
