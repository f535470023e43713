package smtpd

import (
	"strings"
	"testing"
)

func TestStripAuthResults(t *testing.T) {
	const host = "mail.example.test"
	for _, c := range []struct{ in, want string }{
		{"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Authentication-Results: mail.example.test; dkim=pass\r\nSubject: x\r\n\r\nAuthentication-Results: mail.example.test; body\r\n",
			"Subject: x\r\n\r\nAuthentication-Results: mail.example.test; body\r\n"},
		{"Subject: x\r\nAUTHENTICATION-RESULTS: MAIL.Example.TEST;\r\n\tdkim=pass header.d=example.test\r\nTo: a@example.test\r\n\r\nb\r\n",
			"Subject: x\r\nTo: a@example.test\r\n\r\nb\r\n"},
		{"Authentication-Results:\r\n mail.example.test; spf=pass\r\nSubject: x\r\n\r\n", "Subject: x\r\n\r\n"},
		{"Authentication-Results : (forged) mail.example.test 1; none\r\nSubject: x\r\n\r\n", "Subject: x\r\n\r\n"},
		{"Authentication-Results: mail.example.test.evil; dkim=pass\r\nAuthentication-Results: other.test; dkim=pass\r\n\r\n",
			"Authentication-Results: mail.example.test.evil; dkim=pass\r\nAuthentication-Results: other.test; dkim=pass\r\n\r\n"},
		{"Received: a\r\n b\r\nAuthentication-Results: mail.example.test; x\r\n y\r\nX-A: 1\r\n  2\r\n\r\nz", "Received: a\r\n b\r\nX-A: 1\r\n  2\r\n\r\nz"},
		{"Authentication-Results: mail.example.test; only", ""},
		{"Subject: bare LF\nAuthentication-Results: mail.example.test; dkim=pass\n\nbody\n", "Subject: bare LF\n\nbody\n"},
	} {
		buf := []byte(strings.Repeat("#", 10) + c.in)
		at := stripAuthResults(buf, 10, host)
		if got := string(buf[at:]); got != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestForgedAuthResults: an Authentication-Results field in the name of this
// server, sent from outside, does not reach the mailbox; the server's own
// verdict does, and so does another server's field.
func TestForgedAuthResults(t *testing.T) {
	e := start(t, &Server{Inbound: &checker{}})
	forged := "Authentication-Results: mail.example.test; dkim=pass header.d=bank.test\r\n" +
		"Authentication-Results: relay.other.test; spf=pass\r\n" +
		"From: boss@bank.test\r\nTo: a@example.test\r\nSubject: transfer\r\n\r\nPlease pay.\r\n"
	if err := send(e.dialMX(t), "x@remote.test", []string{"a@example.test"}, forged); err != nil {
		t.Fatal(err)
	}
	got := string(e.inbox(t, "a@example.test")[0].Content)
	if strings.Contains(got, "dkim=pass") || strings.Count(got, "Authentication-Results: mail.example.test;") != 1 ||
		!strings.HasPrefix(got, "Authentication-Results: mail.example.test; spf=pass smtp.mailfrom=x@remote.test") ||
		!strings.Contains(got, "\r\nAuthentication-Results: relay.other.test; spf=pass\r\nFrom: boss@bank.test\r\n") {
		t.Errorf("stored:\n%s", got)
	}
}
