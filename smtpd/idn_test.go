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
