package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"sealmail/mailstore"
	"sealmail/vacation"
)

// vacationPair is pair with out-of-office replies on both sides, wired as
// 'sealmail serve' wires them; replies counts what A's responder sent (the
// metric's hook).
func vacationPair(t *testing.T, aUsers ...string) (a, b *instance, replies *atomic.Int64) {
	t.Helper()
	a, b = newInstance(t, "agency-a.test", aUsers...), newInstance(t, "agency-b.test", "lan", "tin")
	replies = new(atomic.Int64)
	for _, x := range []*instance{a, b} {
		r := &vacation.Responder{Store: x.store, Queue: x.queue, Hostname: "mail." + x.domain,
			Logger: testLogger(t).With("instance", x.domain, "server", "vacation")}
		if x == a {
			r.Sent = func() { replies.Add(1) }
		}
		x.smtp.Delivered = r.Delivered
	}
	a.peer(t, b)
	b.peer(t, a)
	a.start(t)
	b.start(t)
	return a, b, replies
}

func setVacation(t *testing.T, x *instance, addr string, v *mailstore.Vacation) {
	t.Helper()
	if err := x.store.SetVacation(context.Background(), addr, v); err != nil {
		t.Fatal(err)
	}
}

// mailWith is letter with extra header fields and a Message-ID of its own.
func mailWith(from, to, subject, extra string) (msg, id string) {
	id = fmt.Sprintf("<%d.vacation@agency-b.test>", time.Now().UnixNano())
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n%s"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nXin chào.\r\n",
		from, to, subject, time.Now().Format(time.RFC1123Z), id, extra), id
}

// TestVacationReply: an account away answers a remote sender once, through
// the queue, DKIM-signed, as RFC 3834 wants the reply; the sender's later
// messages get none; lists, automatic mail, mail not naming the account and
// the account's own mail get none; a colleague gets the reply in the INBOX.
func TestVacationReply(t *testing.T) {
	a, b, replies := vacationPair(t, "nam", "hoa", "binh")
	ctx := context.Background()
	if err := a.store.AddAlias(ctx, "nam.nguyen@agency-a.test", []string{"nam@agency-a.test"}); err != nil {
		t.Fatal(err)
	}
	if err := a.store.AddAlias(ctx, "phongban@agency-a.test", []string{"nam@agency-a.test", "binh@agency-a.test"}); err != nil {
		t.Fatal(err)
	}
	v := &mailstore.Vacation{Subject: "Nghỉ phép cuối năm", Body: "Tôi nghỉ phép đến hết 3/1/2027.\nI am on leave until 3 January 2027.\n",
		From: time.Now().Add(-time.Hour), Until: time.Now().Add(7 * 24 * time.Hour)}
	setVacation(t, a, "nam@agency-a.test", v)

	// lan (agency B) writes twice: one reply.
	first, firstID := mailWith("Trần Thị Lan <lan@agency-b.test>", "nam@agency-a.test", "Họp giao ban", "")
	b.submit(t, "lan", []string{"nam@agency-a.test"}, first)
	b.delivered(t) // A said 250: its responder has queued the reply
	a.delivered(t)
	second, _ := mailWith("lan@agency-b.test", "nam@agency-a.test", "Họp giao ban (nhắc lại)", "")
	b.submit(t, "lan", []string{"nam@agency-a.test"}, second)
	b.delivered(t)
	a.delivered(t)
	if got := a.inbox(t, "nam"); len(got) != 2 {
		t.Fatalf("nam's INBOX holds %d messages, want 2", len(got))
	}
	got := b.inbox(t, "lan")
	if len(got) != 1 {
		t.Fatalf("lan's INBOX holds %d messages, want exactly one out-of-office reply:\n%s", len(got), bytes.Join(got, []byte("\n----\n")))
	}
	reply := got[0]
	m, err := mail.ReadMessage(bytes.NewReader(reply))
	if err != nil {
		t.Fatal(err)
	}
	h := gomail.HeaderFromMap(m.Header)
	subj, _ := h.Subject()
	for _, c := range []struct{ field, got, want string }{
		{"Auto-Submitted", m.Header.Get("Auto-Submitted"), "auto-replied"},
		{"Subject", subj, "Auto: Nghỉ phép cuối năm"},
		{"In-Reply-To", m.Header.Get("In-Reply-To"), firstID},
		{"References", m.Header.Get("References"), firstID},
		{"To", m.Header.Get("To"), "<lan@agency-b.test>"},
	} {
		if c.got != c.want {
			t.Errorf("reply's %s: %q, want %q", c.field, c.got, c.want)
		}
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "nam@agency-a.test" || from[0].Name != "Nguyễn nam" {
		t.Errorf("reply's From: %v (%v), want Nguyễn nam <nam@agency-a.test>", from, err)
	}
	// Sent through the outbound path: signed by A, verified by B.
	ar := m.Header.Get("Authentication-Results")
	if !strings.Contains(ar, "dkim=pass") || !strings.Contains(ar, "header.d=agency-a.test") {
		t.Errorf("reply's Authentication-Results at B: %q, want dkim=pass for agency-a.test", ar)
	}
	if sig := strings.ToLower(strings.Join(strings.Fields(m.Header.Get("DKIM-Signature")), "")); !strings.Contains(sig, "auto-submitted") {
		t.Errorf("reply's DKIM-Signature does not cover Auto-Submitted: %q", m.Header.Get("DKIM-Signature"))
	}
	if rp := m.Header.Get("Return-Path"); rp != "" && rp != "<>" {
		t.Errorf("reply's Return-Path %q: an automatic reply goes with the null sender (RFC 3834 3.3)", rp)
	}
	if !strings.Contains(decodedBody(t, reply), "Tôi nghỉ phép đến hết 3/1/2027.") {
		t.Errorf("reply's text:\n%s", decodedBody(t, reply))
	}

	// None of these may be answered, each from a sender never answered yet.
	for _, c := range []struct{ name, from, to, extra string }{
		{"list", "dsthu@agency-b.test", "nam@agency-a.test", "List-Id: Thong bao <thongbao.agency-b.test>\r\n"},
		{"bulk", "bantin@agency-b.test", "nam@agency-a.test", "Precedence: bulk\r\n"},
		{"junk precedence", "qc@agency-b.test", "nam@agency-a.test", "Precedence: junk\r\n"},
		{"auto-replied", "lan2@agency-b.test", "nam@agency-a.test", "Auto-Submitted: auto-replied\r\n"},
		{"auto-generated", "robot@agency-b.test", "nam@agency-a.test", "Auto-Submitted: auto-generated\r\n"},
		{"Exchange suppression", "ex@agency-b.test", "nam@agency-a.test", "X-Auto-Response-Suppress: OOF, DR\r\n"},
		{"not addressed (Bcc'd by the sender's server)", "bcc@agency-b.test", "someone@agency-b.test", ""},
		{"group alias", "group@agency-b.test", "phongban@agency-a.test", ""},
		{"mailer daemon", "MAILER-DAEMON@agency-b.test", "nam@agency-a.test", ""},
		{"list request address", "thongbao-request@agency-b.test", "nam@agency-a.test", ""},
	} {
		msg, _ := mailWith(c.from, c.to, "Thông báo "+c.name, c.extra)
		inject(t, a, c.from, "nam@agency-a.test", []byte(msg))
		if n := replies.Load(); n != 1 {
			t.Fatalf("%s: %d replies sent in all, want still 1", c.name, n)
		}
	}
	// A null sender (a bounce) reaches the INBOX and is not answered.
	msg, _ := mailWith("MAILER-DAEMON@agency-b.test", "nam@agency-a.test", "Undelivered", "")
	inject(t, a, "", "nam@agency-a.test", []byte(msg))
	// A personal alias names the account.
	msg, _ = mailWith("tin@agency-b.test", "nam.nguyen@agency-a.test", "Qua địa chỉ khác", "")
	inject(t, a, "tin@agency-b.test", "nam.nguyen@agency-a.test", []byte(msg))
	if n := replies.Load(); n != 2 {
		t.Fatalf("%d replies sent after mail to a personal alias, want 2", n)
	}
	a.delivered(t)
	if got := b.inbox(t, "tin"); len(got) != 1 || !strings.Contains(string(got[0]), "Auto-Submitted: auto-replied") {
		t.Fatalf("tin's INBOX holds %d messages, want the reply", len(got))
	}

	// A colleague gets the reply in the INBOX, through the store (no queue);
	// nam writing to himself does not.
	a.submit(t, "hoa", []string{"nam@agency-a.test"}, letter("hoa@agency-a.test", "nam@agency-a.test", "Báo cáo tuần", "Gửi anh báo cáo."))
	a.submit(t, "nam", []string{"nam@agency-a.test"}, letter("nam@agency-a.test", "nam@agency-a.test", "Ghi chú", "Nhớ gọi điện."))
	if n := replies.Load(); n != 3 {
		t.Fatalf("%d replies sent after a colleague's and nam's own message, want 3", n)
	}
	got = a.inbox(t, "hoa")
	if len(got) != 1 || !strings.Contains(string(got[0]), "Auto-Submitted: auto-replied") {
		t.Fatalf("hoa's INBOX holds %d messages, want the reply", len(got))
	}
	if q := a.queued(t); len(q) != 0 {
		t.Fatalf("A's queue holds %d entries after local replies", len(q))
	}

	// Turned off: nobody is answered.
	setVacation(t, a, "nam@agency-a.test", nil)
	msg, _ = mailWith("moi@agency-b.test", "nam@agency-a.test", "Sau kỳ nghỉ", "")
	inject(t, a, "moi@agency-b.test", "nam@agency-a.test", []byte(msg))
	if n := replies.Load(); n != 3 {
		t.Fatalf("%d replies sent after the vacation ended, want 3", n)
	}
}

// TestVacationDates: replies go out only between the start and the end.
func TestVacationDates(t *testing.T) {
	a, _, replies := vacationPair(t, "nam")
	now := time.Now()
	send := func(sender string) {
		t.Helper()
		msg, _ := mailWith(sender, "nam@agency-a.test", "Hỏi việc", "")
		inject(t, a, sender, "nam@agency-a.test", []byte(msg))
	}
	setVacation(t, a, "nam@agency-a.test", &mailstore.Vacation{Subject: "Vắng mặt", From: now.Add(24 * time.Hour)})
	send("s1@agency-b.test")
	if n := replies.Load(); n != 0 {
		t.Fatalf("%d replies before the vacation starts", n)
	}
	setVacation(t, a, "nam@agency-a.test", &mailstore.Vacation{Subject: "Vắng mặt", From: now.Add(-48 * time.Hour), Until: now.Add(-24 * time.Hour)})
	send("s2@agency-b.test")
	if n := replies.Load(); n != 0 {
		t.Fatalf("%d replies after the vacation ended", n)
	}
	setVacation(t, a, "nam@agency-a.test", &mailstore.Vacation{From: now.Add(-time.Hour), Until: now.Add(time.Hour)})
	send("s1@agency-b.test")
	if n := replies.Load(); n != 1 {
		t.Fatalf("%d replies during the vacation, want 1", n)
	}
}

// decodedBody returns a message's text, quoted-printable decoded.
func decodedBody(t *testing.T, msg []byte) string {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(p.Body)
	return b.String()
}
