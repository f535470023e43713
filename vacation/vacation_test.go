package vacation

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"sealmail/mailstore"
)

func header(t *testing.T, raw string) gomail.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return gomail.Header{Header: message.Header{Header: h}}
}

func TestSkip(t *testing.T) {
	for _, c := range []struct {
		from, header string
		skip         bool
	}{
		{"lan@b.test", "Subject: x\r\n", false},
		{"lan@b.test", "Auto-Submitted: no\r\n", false},
		{"lan@b.test", "Auto-Submitted: No (sent by a person)\r\n", false},
		{"lan@b.test", "Precedence: first-class\r\n", false},
		{"lan@b.test", "Content-Type: multipart/mixed; boundary=x\r\n", false},
		{"", "Subject: x\r\n", true},
		{"lan@b.test", "Auto-Submitted: auto-replied\r\n", true},
		{"lan@b.test", "Auto-Submitted: auto-generated\r\n", true},
		{"lan@b.test", "Auto-Submitted: auto-notified; owner-email=\"x@b.test\"\r\n", true},
		{"lan@b.test", "Precedence: bulk\r\n", true},
		{"lan@b.test", "Precedence: LIST\r\n", true},
		{"lan@b.test", "Precedence: junk\r\n", true},
		{"lan@b.test", "List-Id: <a.b.test>\r\n", true},
		{"lan@b.test", "List-Unsubscribe: <mailto:u@b.test>\r\n", true},
		{"lan@b.test", "List-Post: <mailto:a@b.test>\r\n", true},
		{"lan@b.test", "X-Auto-Response-Suppress: All\r\n", true},
		{"lan@b.test", "X-Auto-Response-Suppress: DR, OOF\r\n", true},
		{"lan@b.test", "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", true},
		{"MAILER-DAEMON@b.test", "Subject: x\r\n", true},
		{"owner-list@b.test", "Subject: x\r\n", true},
		{"list-request@b.test", "Subject: x\r\n", true},
		{"not an address", "Subject: x\r\n", true},
	} {
		why := Skip(c.from, header(t, c.header))
		if (why != "") != c.skip {
			t.Errorf("Skip(%q, %q) = %q, want skip=%v", c.from, c.header, why, c.skip)
		}
	}
}

func TestReply(t *testing.T) {
	a := mailstore.Account{Address: "nam@a.test", Name: "Nguyễn Văn Nam"}
	until := time.Date(2027, 1, 4, 0, 0, 0, 0, time.Local)
	v := &mailstore.Vacation{Until: until}
	long := strings.Repeat("Về việc triển khai hệ thống thư điện tử ", 5)
	h := header(t, "Subject: =?utf-8?q?H=E1=BB=8Dp?= giao ban\r\nMessage-ID: <m3@b.test>\r\nReferences: <m1@b.test>\r\n <m2@b.test>\r\nIn-Reply-To: <m2@b.test>\r\n")
	raw, err := Reply(a, v, "nguyễn@b.test", h, "mail.a.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	gh := gomail.HeaderFromMap(m.Header)
	subj, _ := gh.Subject()
	if subj != "Auto: Họp giao ban" {
		t.Errorf("Subject %q: the original's, decoded, after \"Auto: \"", subj)
	}
	if got := m.Header.Get("References"); got != "<m1@b.test> <m2@b.test> <m3@b.test>" {
		t.Errorf("References %q", got)
	}
	if got := m.Header.Get("In-Reply-To"); got != "<m3@b.test>" {
		t.Errorf("In-Reply-To %q", got)
	}
	if got := m.Header.Get("To"); got != "<nguyễn@b.test>" {
		t.Errorf("To %q", got)
	}
	from, err := gh.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != a.Name || from[0].Address != a.Address {
		t.Errorf("From %v (%v)", from, err)
	}
	mid, err := gh.MessageID()
	if err != nil || !strings.HasSuffix(mid, "@mail.a.test") {
		t.Errorf("Message-ID %q (%v)", mid, err)
	}
	if m.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted %q", m.Header.Get("Auto-Submitted"))
	}
	body := decode(t, raw)
	for _, want := range []string{"đến hết ngày 03/01/2027", "until 3 January 2027 inclusive", "Nguyễn Văn Nam <nam@a.test>"} {
		if !strings.Contains(body, want) {
			t.Errorf("default text lacks %q:\n%s", want, body)
		}
	}

	// The owner's subject and text; a long subject is folded, not cut.
	v = &mailstore.Vacation{Subject: long, Body: "Dòng một\nDòng hai"}
	raw, err = Reply(a, v, "lan@b.test", header(t, "Subject: x\r\n"), "mail.a.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	m, _ = mail.ReadMessage(bytes.NewReader(raw))
	gh = gomail.HeaderFromMap(m.Header)
	if subj, _ := gh.Subject(); subj != "Auto: "+long {
		t.Errorf("Subject %q", subj)
	}
	if m.Header.Get("In-Reply-To") != "" || m.Header.Get("References") != "" {
		t.Error("In-Reply-To/References made up for a message without Message-ID")
	}
	if body := decode(t, raw); body != "Dòng một\r\nDòng hai\r\n" {
		t.Errorf("text %q", body)
	}
}

func decode(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(e.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type waker struct{ n int }

func (w *waker) Wake() { w.n++ }

// TestQueuedWithNullSender: a remote sender's reply waits in the outbound
// queue (the relay signs and sends it) with the null envelope sender.
func TestQueuedWithNullSender(t *testing.T) {
	ctx := context.Background()
	s, err := mailstore.Open(t.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddDomain(ctx, mailstore.Domain{Name: "a.test"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.AddAccount(ctx, mailstore.NewAccount{Address: "nam@a.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetVacation(ctx, a.Address, &mailstore.Vacation{Subject: "Vắng mặt"}); err != nil {
		t.Fatal(err)
	}
	w := &waker{}
	sent := 0
	r := &Responder{Store: s, Queue: w, Hostname: "mail.a.test", Logger: slog.New(slog.DiscardHandler), Sent: func() { sent++ }}
	hdr := []byte("From: lan@b.test\r\nTo: nam@a.test\r\nSubject: x\r\nMessage-ID: <1@b.test>\r\n\r\n")
	r.Delivered(ctx, "lan@b.test", hdr, []mailstore.Account{a})
	r.Delivered(ctx, "LAN@b.test", hdr, []mailstore.Account{a})
	q, err := s.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].From != "" || len(q[0].Rcpts) != 1 || q[0].Rcpts[0].Addr != "lan@b.test" {
		t.Fatalf("queue %+v, want one entry from <> to lan@b.test", q)
	}
	if w.n != 1 || sent != 1 {
		t.Fatalf("relay woken %d times, %d replies counted; want 1 and 1", w.n, sent)
	}
	content, err := s.QueueContent(ctx, q[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(content, []byte("\r\nAuto-Submitted: auto-replied\r\n")) || !bytes.HasPrefix(content, []byte("From: <nam@a.test>\r\n")) {
		t.Fatalf("queued reply:\n%s", content)
	}
}
