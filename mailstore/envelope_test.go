package mailstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
)

func header(t *testing.T, raw string) textproto.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestEnvelopeGroups(t *testing.T) {
	e := envelope(header(t, "Date: Mon, 7 Feb 1994 21:52:25\r\n -0800 (PST)\r\n"+
		"To: Undisclosed recipients:;\r\n"+
		"Cc: \"Phòng: TC\" <tc@x.test>, =?utf-8?q?Ph=C3=B2ng_H=C3=A0nh_ch=C3=ADnh?=: a@x.test,\r\n \"Bình, Lê\" <b@y.test> (Kế toán);, c@z.test\r\n"+
		"Bcc: Team: a@x.test\r\n"))
	if e.DateRaw != "Mon, 7 Feb 1994 21:52:25 -0800 (PST)" || e.Date.IsZero() {
		t.Errorf("date %q %v", e.DateRaw, e.Date)
	}
	if want := []Address{{Mailbox: "Undisclosed recipients"}, {}}; !reflect.DeepEqual(e.To, want) {
		t.Errorf("To %+v, want %+v", e.To, want)
	}
	want := []Address{
		{Name: "Phòng: TC", Mailbox: "tc", Host: "x.test"},
		{Mailbox: "Phòng Hành chính"},
		{Mailbox: "a", Host: "x.test"},
		{Name: "Bình, Lê", Mailbox: "b", Host: "y.test"},
		{},
		{Mailbox: "c", Host: "z.test"},
	}
	if !reflect.DeepEqual(e.Cc, want) {
		t.Errorf("Cc %+v,\nwant %+v", e.Cc, want)
	}
	// An unterminated group ends with the field.
	if want := []Address{{Mailbox: "Team"}, {Mailbox: "a", Host: "x.test"}, {}}; !reflect.DeepEqual(e.Bcc, want) {
		t.Errorf("Bcc %+v", e.Bcc)
	}
	got, err := decodeEnvelope(encodeEnvelope(&e))
	if err != nil || got.DateRaw != e.DateRaw || !reflect.DeepEqual(got.Cc, e.Cc) {
		t.Errorf("codec: %+v %v", got, err)
	}
}

// Addresses net/mail refuses whole: comments inside the address, an obsolete
// source route; the others of the list still parse. imaptest's
// fetch-envelope and search-addresses.
func TestEnvelopeObsoleteAddresses(t *testing.T) {
	e := envelope(header(t, "From: <user-from (comment)@ (comment) domain.org>\r\n"+
		"To: <@route:user@domain>, \"Lê Bình\" <b@y.test>, <@r1,@r2:c@z.test> (Kế toán)\r\n"))
	if want := []Address{{Mailbox: "user-from", Host: "domain.org"}}; !reflect.DeepEqual(e.From, want) {
		t.Errorf("From %+v", e.From)
	}
	want := []Address{
		{Mailbox: "user", Host: "domain", Route: "@route"},
		{Name: "Lê Bình", Mailbox: "b", Host: "y.test"},
		{Mailbox: "c", Host: "z.test", Route: "@r1,@r2"},
	}
	if !reflect.DeepEqual(e.To, want) {
		t.Errorf("To %+v,\nwant %+v", e.To, want)
	}
	got, err := decodeEnvelope(encodeEnvelope(&e))
	if err != nil || !reflect.DeepEqual(got.To, e.To) || !reflect.DeepEqual(got.From, e.From) {
		t.Errorf("codec: %+v %v", got, err)
	}
	// The text index has the addresses as they are, for FROM/TO searches.
	tx := extractText([]byte("From: <user-from (comment)@ (comment) domain.org>\r\n\r\nx\r\n"))
	if !strings.Contains(tx.from, "user-from@domain.org") {
		t.Errorf("indexed From %q", tx.from)
	}
}

// v1 is the envelope encoding before version 2 added the raw date and
// version 3 References.
func v1(e *Envelope) []byte {
	b := encodeEnvelope(&Envelope{Date: e.Date, Subject: e.Subject, To: e.To})
	n := 1
	for range 2 {
		_, k := binary.Varint(b[n:])
		n += k
	}
	// Without the raw date's empty string, and without References' count.
	return append([]byte{1}, append(append([]byte(nil), b[1:n]...), b[n+1:len(b)-1]...)...)
}

func TestEnvelopeUpgrade(t *testing.T) {
	s, err := Open(t.TempDir(), Options{PasswordParams: &CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.AddDomain(ctx, Domain{Name: "x.test"}); err != nil {
		t.Fatal(err)
	}
	acct, err := s.AddAccount(ctx, NewAccount{Address: "a@x.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	raw := "Date: Tue, 1 Dec 2026 09:00:00 +0700\r\nTo: Undisclosed:;\r\nSubject: Công văn\r\nReferences: <a@x> <b@x>\r\n\r\nx\r\n"
	ds, err := s.Deliver(ctx, []byte(raw), time.Time{}, []Target{{AccountID: acct.ID}})
	if err != nil || ds[0].Err != nil {
		t.Fatal(err, ds)
	}
	// Make the row what an older sealmail stored: no raw date, groups flattened.
	old := &Envelope{Date: time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("", 7*3600)), Subject: "Công văn"}
	if _, err := s.wdb.Exec(`UPDATE blobs SET envelope=?`, v1(old)); err != nil {
		t.Fatal(err)
	}
	s.envelopesCurrent.Store(false)
	fetch := func() *Envelope {
		var env *Envelope
		err := s.Fetch(ctx, ds[0].MailboxID, nil, FetchEnvelope, func(it Item) error { env = it.Envelope; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	// Until upgraded (the indexer may be at it already), a row reads as before.
	if e, err := decodeEnvelope(v1(old)); err != nil || e.DateRaw != "" || e.Subject != "Công văn" || !e.Date.Equal(old.Date) || e.To != nil {
		t.Fatalf("v1 row read as %+v, %v", e, err)
	}
	if more, err := s.upgradeEnvelopes(ctx); more || err != nil {
		t.Fatal(more, err)
	}
	if e := fetch(); e.DateRaw != "Tue, 1 Dec 2026 09:00:00 +0700" || !reflect.DeepEqual(e.To, []Address{{Mailbox: "Undisclosed"}, {}}) ||
		!reflect.DeepEqual(e.References, []string{"a@x", "b@x"}) {
		t.Errorf("upgraded row %+v", e)
	}
	if more, err := s.upgradeEnvelopes(ctx); more || err != nil || !s.envelopesCurrent.Load() {
		t.Errorf("nothing left to upgrade, yet %v %v", more, err)
	}
}
