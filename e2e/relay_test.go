package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"sealmail/internal/testwait"
	"sealmail/mailstore"
)

// letter is a message as a mail client writes it.
func letter(from, to, subject, body string) string {
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Sat, 28 Nov 2026 10:00:00 +0700\r\n"+
		"Message-ID: <%d@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n",
		from, to, mime.QEncoding.Encode("utf-8", subject), time.Now().UnixNano(), body)
}

// delivered waits until x's queue is empty: every recipient was accepted by
// the next hop, or bounced.
func (x *instance) delivered(t testing.TB) {
	t.Helper()
	testwait.For(t, x.domain+"'s queue to empty", func() bool { return len(x.queued(t)) == 0 })
}

// deferred waits until x's queue holds one entry whose recipients are all
// pending after a failed attempt, and returns their last errors.
func (x *instance) deferred(t testing.TB) []string {
	t.Helper()
	var errs []string
	testwait.For(t, "a deferred message on "+x.domain, func() bool {
		es := x.queued(t)
		if len(es) != 1 {
			return false
		}
		errs = errs[:0]
		for _, r := range es[0].Rcpts {
			if r.Status != mailstore.RcptPending || r.Attempts == 0 || r.LastError == "" {
				return false
			}
			errs = append(errs, r.LastError)
		}
		return true
	})
	return errs
}

// checkAuthenticated checks that msg arrived with its body intact and B's
// verdict that A signed it.
func checkAuthenticated(t *testing.T, msg []byte, body string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("received message: %v\n%s", err, msg)
	}
	ar := m.Header.Get("Authentication-Results")
	if !strings.HasPrefix(ar, "mail.agency-b.test;") || !strings.Contains(ar, "dkim=pass") || !strings.Contains(ar, "header.d=agency-a.test") {
		t.Errorf("Authentication-Results: %q, want dkim=pass for agency-a.test by mail.agency-b.test", ar)
	}
	if !strings.Contains(m.Header.Get("DKIM-Signature"), "d=agency-a.test") {
		t.Errorf("DKIM-Signature: %q", m.Header.Get("DKIM-Signature"))
	}
	b, _ := io.ReadAll(m.Body)
	if string(b) != body+"\r\n" {
		t.Errorf("body %q, want %q", b, body+"\r\n")
	}
}

// TestTwoInstances: a user of A submits to a user of B, who reads it over IMAP
// with B's DKIM verdict on A's signature; and the reply goes the other way.
func TestTwoInstances(t *testing.T) {
	a, b := pair(t)
	body := "Kính gửi Sở B: đề nghị phối hợp triển khai văn bản số 12/STTTT-VP."
	a.submit(t, "nam", []string{"lan@agency-b.test"}, letter("nam@agency-a.test", "lan@agency-b.test", "Công văn số 12", body))
	a.delivered(t)
	got := b.inbox(t, "lan")
	if len(got) != 1 {
		t.Fatalf("lan's INBOX holds %d messages, want 1", len(got))
	}
	checkAuthenticated(t, got[0], body)

	b.submit(t, "lan", []string{"nam@agency-a.test"}, letter("lan@agency-b.test", "nam@agency-a.test", "Re: Công văn số 12", "Đã nhận."))
	b.delivered(t)
	got = a.inbox(t, "nam")
	if len(got) != 1 || !strings.Contains(string(got[0]), "dkim=pass header.d=agency-b.test") {
		t.Fatalf("nam's INBOX: %d messages, want the reply with dkim=pass for agency-b.test:\n%s", len(got), bytes.Join(got, []byte("\n----\n")))
	}
}

// TestPeerDown: with B's MX down the message waits in A's queue with the
// reason; once B is back, a retry delivers it.
func TestPeerDown(t *testing.T) {
	a, b := pair(t)
	b.stopMX(t)
	body := "Thư gửi khi máy chủ B đang tắt."
	a.submit(t, "nam", []string{"lan@agency-b.test"}, letter("nam@agency-a.test", "lan@agency-b.test", "Gửi lại sau", body))
	errs := a.deferred(t)
	if !strings.Contains(errs[0], b.mx) || !strings.Contains(errs[0], "refused") {
		t.Errorf("deferred with %q, want the refused connection to %s", errs[0], b.mx)
	}
	if n := len(b.inbox(t, "lan")); n != 0 {
		t.Fatalf("lan's INBOX holds %d messages while B's MX was down", n)
	}

	b.serveMX(t)
	// What 'sealmail queue retry' does, so the test need not wait out the backoff.
	if err := a.store.RetryQueueAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.queue.Wake()
	a.delivered(t)
	got := b.inbox(t, "lan")
	if len(got) != 1 {
		t.Fatalf("lan's INBOX holds %d messages after the retry, want 1", len(got))
	}
	checkAuthenticated(t, got[0], body)
}

// TestPeerRejects: B refuses an unknown user; A returns a bounce to the
// sender's INBOX (multipart/report, Vietnamese and English) and delivers to
// the recipient B knows.
func TestPeerRejects(t *testing.T) {
	a, b := pair(t)
	a.submit(t, "nam", []string{"nobody@agency-b.test", "lan@agency-b.test"},
		letter("nam@agency-a.test", "nobody@agency-b.test, lan@agency-b.test", "Thông báo họp", "Mời họp lúc 8 giờ."))
	a.delivered(t)
	if n := len(b.inbox(t, "lan")); n != 1 {
		t.Errorf("lan's INBOX holds %d messages, want 1", n)
	}
	got := a.inbox(t, "nam")
	if len(got) != 1 {
		t.Fatalf("nam's INBOX holds %d messages, want the bounce", len(got))
	}
	m, err := mail.ReadMessage(bytes.NewReader(got[0]))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if subject != "Thư không gửi được / Undelivered mail returned to sender" {
		t.Errorf("bounce subject %q", subject)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("bounce Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p) // quoted-printable is decoded by NextPart
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(b)
	}
	human := parts["text/plain"]
	for _, want := range []string{"KHÔNG THỂ chuyển đến", "could NOT be", "Thông báo họp", "<nobody@agency-b.test>", "5.1.1"} {
		if !strings.Contains(human, want) {
			t.Errorf("the bounce's text lacks %q:\n%s", want, human)
		}
	}
	if strings.Contains(human, "lan@agency-b.test") {
		t.Errorf("the bounce names lan, who got the message:\n%s", human)
	}
	status := parts["message/delivery-status"]
	for _, want := range []string{"Reporting-MTA: dns; mail.agency-a.test", "Final-Recipient: rfc822; nobody@agency-b.test", "Action: failed", "Status: 5.1.1"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "lan@agency-b.test") {
		t.Errorf("delivery-status reports lan, who got the message:\n%s", status)
	}
	orig, err := mail.ReadMessage(strings.NewReader(parts["text/rfc822-headers"]))
	if err != nil {
		t.Fatalf("the original header: %v\n%s", err, parts["text/rfc822-headers"])
	}
	if subject, _ := new(mime.WordDecoder).DecodeHeader(orig.Header.Get("Subject")); subject != "Thông báo họp" {
		t.Errorf("the original header returned has Subject %q", subject)
	}
}

// TestPeerWrongCA: when B's certificate does not chain to the CA configured
// for B, A sends nothing (no fallback to clear text or to an unverified
// certificate) and keeps the message; with the right CA it goes.
func TestPeerWrongCA(t *testing.T) {
	ctx := context.Background()
	a, b := newInstance(t, "agency-a.test", "nam"), newInstance(t, "agency-b.test", "lan")
	a.peer(t, b)
	b.peer(t, a)
	// What 'sealmail peer remove' and 'peer add --tls-ca' do, as A runs.
	trust := func(ca string) {
		t.Helper()
		if err := a.store.RemovePeer(ctx, b.domain); err != nil {
			t.Fatal(err)
		}
		if err := a.store.AddPeer(ctx, mailstore.Peer{Domain: b.domain, Relay: b.mx, TLSCA: ca}); err != nil {
			t.Fatal(err)
		}
	}
	// Another local CA that issued a certificate for the very same names:
	// only the keys tell it apart.
	wrong, _ := localCA(t, t.TempDir(), "mail.agency-b.test")
	trust(wrong)
	a.start(t)
	b.start(t)
	body := "Nội dung mật: không được gửi khi chưa xác thực máy chủ nhận."
	a.submit(t, "nam", []string{"lan@agency-b.test"}, letter("nam@agency-a.test", "lan@agency-b.test", "Tài liệu mật", body))
	errs := a.deferred(t)
	if !strings.Contains(errs[0], "TLS") || !strings.Contains(errs[0], "certificate") {
		t.Errorf("deferred with %q, want a certificate verification failure", errs[0])
	}
	if n := len(b.inbox(t, "lan")); n != 0 {
		t.Fatalf("B received %d messages over TLS it should not have trusted", n)
	}

	trust(b.certPEM)
	if err := a.store.RetryQueueAll(ctx); err != nil {
		t.Fatal(err)
	}
	a.queue.Wake()
	a.delivered(t)
	if got := b.inbox(t, "lan"); len(got) != 1 {
		t.Fatalf("lan's INBOX holds %d messages once the CA is right, want 1", len(got))
	}
}
