package smtpd

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"sealmail/mailstore"
)

// A Vietnamese internationalised domain, and its punycode (A-label) spelling.
const (
	idnDomain   = "sở-tc.việt.vn"
	idnASCIIDom = "xn--s-tc-0z5a.xn--vit-5kz.vn"
)

// TestSMTPUTF8IDN delivers over MX with SMTPUTF8 (RFC 6531) to an agency whose
// domain is internationalised: the domain in Unicode or in punycode names the
// same accounts, and UTF-8 local parts arrive.
func TestSMTPUTF8IDN(t *testing.T) {
	e := start(t, &Server{})
	ctx := context.Background()
	// The admin types the domain in Vietnamese; the store keeps the A-labels.
	if err := e.store.AddDomain(ctx, mailstore.Domain{Name: idnDomain}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Domain(ctx, idnASCIIDom); err != nil {
		t.Fatalf("the domain by its punycode: %v", err)
	}
	for _, a := range []string{"anna@" + idnASCIIDom, "nguyễn@" + idnDomain} {
		if _, err := e.store.AddAccount(ctx, mailstore.NewAccount{Address: a, Password: "pw"}); err != nil {
			t.Fatal(err)
		}
	}

	c := e.dialMX(t)
	msg := "From: =?UTF-8?Q?Tr=E1=BA=A7n?= <trần@ngoài.example.vn>\r\nTo: anna@" + idnDomain + "\r\nSubject: Thư quốc tế\r\n\r\nXin chào.\r\n"
	if err := c.Mail("trần@ngoài.example.vn", &smtp.MailOptions{UTF8: true}); err != nil {
		t.Fatalf("MAIL FROM SMTPUTF8: %v", err)
	}
	for _, rcpt := range []string{"anna@" + idnDomain, "nguyễn@" + idnASCIIDom} {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(msg))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	for _, a := range []string{"anna@" + idnDomain, "nguyễn@" + idnDomain} {
		items := e.inbox(t, a)
		if len(items) != 1 {
			t.Fatalf("%s: %d messages, want 1", a, len(items))
		}
		if got := string(items[0].Content); !strings.HasSuffix(got, msg) || !strings.Contains(got, "UTF8SMTP") {
			t.Errorf("%s got:\n%s", a, got)
		}
	}

	// An unknown user of the IDN domain is refused as any unknown user is.
	c = e.dialMX(t)
	if err := c.Mail("", &smtp.MailOptions{UTF8: true}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("không-có@"+idnDomain, nil), 550, "5.1.1")
}

func TestASCIIDomain(t *testing.T) {
	for in, want := range map[string]string{
		"nguyễn@" + idnDomain:      "nguyễn@" + idnASCIIDom,
		"Anna@Example.Test":        "Anna@example.test",
		"":                         "",
		"@" + strings.ToUpper("Ở"): "@xn--fmg",
	} {
		if got := mailstore.ASCIIDomain(in); got != want {
			t.Errorf("ASCIIDomain(%q) = %q, want %q", in, got, want)
		}
	}
	if got := mailstore.UnicodeDomain(idnASCIIDom); got != idnDomain {
		t.Errorf("UnicodeDomain(%q) = %q, want %q", idnASCIIDom, got, idnDomain)
	}
}

// TestNonASCIIWithoutSMTPUTF8: a non-ASCII address in a transaction that did
// not give SMTPUTF8 gets 553 5.6.7 (RFC 6531 3.4), at MAIL or RCPT, on MX and
// submission alike; ASCII and punycode spellings pass.
func TestNonASCIIWithoutSMTPUTF8(t *testing.T) {
	e := start(t, &Server{Queue: &fakeQueue{}})
	idnAccounts(t, e)
	c := e.dialMX(t)
	wantCode(t, c.Mail("trần@ngoài.example.vn", nil), 553, "5.6.7")
	if err := c.Mail("tran@example.vn", nil); err != nil {
		t.Fatalf("MAIL after a refused one: %v", err)
	}
	wantCode(t, c.Rcpt("nguyễn@"+idnASCIIDom, nil), 553, "5.6.7")
	wantCode(t, c.Rcpt("anna@"+idnDomain, nil), 553, "5.6.7")
	if err := c.Rcpt("anna@"+idnASCIIDom, nil); err != nil {
		t.Fatalf("RCPT in punycode: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("From: tran@example.vn\r\nTo: anna@" + idnASCIIDom + "\r\nSubject: ASCII\r\n\r\nHi.\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if n := len(e.inbox(t, "anna@"+idnASCIIDom)); n != 1 {
		t.Fatalf("anna has %d messages, want 1", n)
	}

	s := e.dialSubmit(t, "a@example.test")
	if err := s.Mail("a@example.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.Rcpt("nguyễn@"+idnDomain, nil), 553, "5.6.7")
	wantCode(t, s.Rcpt("trần@ngoài.example.vn", nil), 553, "5.6.7")
	s = e.dialSubmit(t, "nguyễn@"+idnDomain)
	wantCode(t, s.Mail("nguyễn@"+idnDomain, nil), 553, "5.6.7")
}

// TestSubmissionSMTPUTF8: a member of staff whose address is Vietnamese sends
// over submission with SMTPUTF8 (as Thunderbird does) to a colleague, by the
// Unicode and punycode spellings, and to a UTF-8 address elsewhere (queued).
func TestSubmissionSMTPUTF8(t *testing.T) {
	e := start(t, &Server{Queue: &fakeQueue{}})
	idnAccounts(t, e)
	c := e.dialSubmit(t, "nguyễn@"+idnASCIIDom) // the login, in either spelling
	from := "nguyễn@" + idnDomain
	msg := "From: Nguyễn <" + from + ">\r\nTo: anna@" + idnDomain + ", trần@ngoài.example.vn\r\nSubject: Thư tiếng Việt\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nXin chào.\r\n"
	if err := c.Mail(from, &smtp.MailOptions{UTF8: true, Body: smtp.Body8BitMIME}); err != nil {
		t.Fatalf("MAIL FROM SMTPUTF8: %v", err)
	}
	for _, r := range []string{"anna@" + idnDomain, "trần@ngoài.example.vn"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(msg))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	items := e.inbox(t, "anna@"+idnASCIIDom)
	if len(items) != 1 || !strings.Contains(string(items[0].Content), "with UTF8SMTPSA") || !strings.HasSuffix(string(items[0].Content), "Xin chào.\r\n") {
		t.Fatalf("anna's INBOX: %d messages, want the message with the UTF8SMTPSA trace", len(items))
	}
	q := e.queued(t)
	if len(q) != 1 || q[0].from != from || len(q[0].rcpts) != 1 || q[0].rcpts[0] != "trần@ngoài.example.vn" {
		t.Fatalf("queue %+v, want the message from %s to trần@ngoài.example.vn", q, from)
	}
}

// idnAccounts adds the domain idnDomain, as an admin types it in Vietnamese,
// with the accounts anna (ASCII) and nguyễn (a UTF-8 local part).
func idnAccounts(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	if err := e.store.AddDomain(ctx, mailstore.Domain{Name: idnDomain}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"anna@" + idnASCIIDom, "nguyễn@" + idnDomain} {
		if _, err := e.store.AddAccount(ctx, mailstore.NewAccount{Address: a, Password: "pw"}); err != nil {
			t.Fatal(err)
		}
	}
}
