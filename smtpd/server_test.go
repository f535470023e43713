package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/internal/testwait"
	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/throttle"
)

func TestExtensions(t *testing.T) {
	e := start(t, &Server{MaxMessageSize: 1 << 20, MaxRecipients: 7})
	mustHave := []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"}
	check := func(name string, c *smtp.Client, starttls, auth bool) {
		t.Helper()
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		for _, ext := range mustHave {
			if ok, _ := c.Extension(ext); !ok {
				t.Errorf("%s: %s not advertised", name, ext)
			}
		}
		if _, p := c.Extension("SIZE"); p != "1048576" {
			t.Errorf("%s: SIZE %q", name, p)
		}
		if _, p := c.Extension("LIMITS"); p != "RCPTMAX=7" {
			t.Errorf("%s: LIMITS %q", name, p)
		}
		if ok, _ := c.Extension("DSN"); ok {
			t.Errorf("%s: DSN advertised without RFC 3461 behaviour", name)
		}
		if ok, _ := c.Extension("STARTTLS"); ok != starttls {
			t.Errorf("%s: STARTTLS advertised %v", name, ok)
		}
		ok, mechs := c.Extension("AUTH")
		if ok != auth || (auth && mechs != "PLAIN LOGIN") {
			t.Errorf("%s: AUTH %v %q", name, ok, mechs)
		}
	}
	check("mx", e.dialMX(t), true, false)

	mxTLS, err := smtp.DialStartTLS(e.mx, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer mxTLS.Close()
	check("mx after STARTTLS", mxTLS, false, false)

	plain, err := smtp.Dial(e.sub)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	check("587 before STARTTLS", plain, true, false)

	sub, err := smtp.DialStartTLS(e.sub, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	check("587 after STARTTLS", sub, false, true)

	subs, err := smtp.DialTLS(e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer subs.Close()
	check("465", subs, false, true)
}

func TestMXDeliver(t *testing.T) {
	e := start(t, &Server{})
	c := e.dialMX(t)
	msg := msgFrom("Sở Tài chính <vanthu@stc.gov.test>", "a@example.test", "Công văn số 12")
	if err := send(c, "vanthu@stc.gov.test", []string{"A@Example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	// A broken MIME message (unterminated multipart, bare LF, invalid UTF-8) is
	// stored byte for byte after the trace field. go-smtp's client would turn
	// the bare LFs into CRLF, so this one goes by hand.
	broken := "Subject: broken\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n\xff\xfe unterminated\r\n"
	r := dialRaw(t, e.mx)
	r.ok("EHLO raw.test")
	r.ok("MAIL FROM:<>")
	r.ok("RCPT TO:<a@example.test>")
	r.cmd("DATA")
	r.write(broken + ".\r\n")
	r.expect(250)

	items := e.inbox(t, "a@example.test")
	if len(items) != 2 {
		t.Fatalf("%d messages", len(items))
	}
	for i, want := range []struct{ helo, msg string }{{"localhost", msg}, {"raw.test", broken}} {
		got := string(items[i].Content)
		prefix := "Received: from " + want.helo + " ([127.0.0.1])\r\n\tby mail.example.test (sealmail) with ESMTP id "
		if !strings.HasPrefix(got, prefix) {
			t.Errorf("message %d: trace field: %q", i, got[:min(len(got), 120)])
		}
		if !strings.HasSuffix(got, want.msg) {
			t.Errorf("message %d altered:\n%q\nwant suffix\n%q", i, got, want.msg)
		}
		if n := strings.Count(got, "Received:"); n != 1 {
			t.Errorf("message %d has %d Received fields", i, n)
		}
	}
	if items[0].Envelope.Subject != "Công văn số 12" {
		t.Errorf("subject %q", items[0].Envelope.Subject)
	}
}

func TestMXRecipients(t *testing.T) {
	e := start(t, &Server{})
	ctx := context.Background()
	if err := e.store.SetDisabled(ctx, "b@example.test", true); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		addr  string
		quota int64
	}{{"full@example.test", 100}, {"small@example.test", 5000}} {
		acct, err := e.store.AddAccount(ctx, mailstore.NewAccount{Address: a.addr, Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Append(ctx, acct.ID, "INBOX", []byte("Subject: x\r\n\r\n"+strings.Repeat("x", 200)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.SetQuota(ctx, a.addr, a.quota); err != nil {
			t.Fatal(err)
		}
	}

	c := e.dialMX(t)
	if err := c.Mail("x@remote.test", &smtp.MailOptions{Size: 6000}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("nobody@example.test", nil), 550, "5.1.1")
	wantCode(t, c.Rcpt("b@example.test", nil), 550, "5.2.1")
	wantCode(t, c.Rcpt("full@example.test", nil), 552, "5.2.2")
	// small@ has room for some mail, not for the 6000 bytes declared.
	wantCode(t, c.Rcpt("small@example.test", nil), 552, "5.2.2")
	se := wantCode(t, c.Rcpt("victim@gmail.test", nil), 550, "5.7.1")
	if !strings.Contains(se.Message, "Relaying denied") {
		t.Errorf("relay refusal says %q", se.Message)
	}
	wantCode(t, c.Rcpt("a@sub.example.test", nil), 550, "5.7.1")
	wantCode(t, c.Rcpt("no-domain", nil), 501, "")
	if err := c.Rcpt("c@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	// Without SIZE, small@ takes a message that fits.
	if err := send(c, "x@remote.test", []string{"small@example.test"}, msgFrom("x@remote.test", "small@example.test", "fits")); err != nil {
		t.Fatal(err)
	}
	// One that does not fit is refused at the end of data, and not stored.
	big := msgFrom("x@remote.test", "small@example.test", "too big") + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 60)
	wantCode(t, send(c, "x@remote.test", []string{"small@example.test"}, big), 552, "5.2.2")
	if n := len(e.inbox(t, "small@example.test")); n != 2 {
		t.Errorf("small@ has %d messages, want 2", n)
	}
	// When others take it, the one 250 answers for all: small@ gets it too,
	// over quota, rather than lose a message its sender was told was delivered.
	if err := send(c, "x@remote.test", []string{"small@example.test", "c@example.test"}, big); err != nil {
		t.Fatal(err)
	}
	if n := len(e.inbox(t, "small@example.test")); n != 3 {
		t.Errorf("small@ has %d messages, want 3", n)
	}
	if st, _ := e.store.StorageStats(ctx); st.Refs != st.Messages {
		t.Errorf("storage %+v", st)
	}
}

// The MX port is no relay, whatever the client does: AUTH is refused in clear
// and over TLS alike, and a remote recipient stays refused.
func TestMXNoRelay(t *testing.T) {
	q := &fakeQueue{}
	e := start(t, &Server{Queue: q})
	r := dialRaw(t, e.mx)
	r.ok("EHLO spammer.test")
	plain := "AUTH PLAIN " + b64("\x00a@example.test\x00pw")
	if code, msg := r.cmd(plain); code != 502 || !strings.HasPrefix(msg, "5.5.1") {
		t.Errorf("AUTH on MX: %d %s", code, msg)
	}
	r.ok("MAIL FROM:<a@example.test> AUTH=a@example.test")
	if code, msg := r.cmd("RCPT TO:<victim@gmail.test>"); code != 550 || !strings.HasPrefix(msg, "5.7.1") {
		t.Errorf("relay in clear: %d %s", code, msg)
	}

	c, err := smtp.DialStartTLS(e.mx, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantCode(t, c.Auth(sasl.NewPlainClient("", "a@example.test", "pw")), 502, "5.5.1")
	if err := c.Mail("a@example.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("victim@gmail.test", nil), 550, "5.7.1")
	if len(e.queued(t)) != 0 || q.wakes.Load() != 0 {
		t.Error("something was queued")
	}
}

func TestMXAliases(t *testing.T) {
	ctx := context.Background()
	// Without a queue, a list with a remote member is refused for now, not
	// delivered to its local half.
	e := start(t, &Server{})
	if err := e.store.AddAlias(ctx, "all@example.test", []string{"a@example.test", "b@example.test", "partner@other.test"}); err != nil {
		t.Fatal(err)
	}
	c := e.dialMX(t)
	if err := c.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("all@example.test", nil), 451, "4.3.0")

	q := &fakeQueue{}
	e = start(t, &Server{Queue: q})
	must(t, e.store.AddAlias(ctx, "all@example.test", []string{"a@example.test", "team@example.test", "partner@other.test"}))
	must(t, e.store.AddAlias(ctx, "team@example.test", []string{"b@example.test", "c@example.test"}))
	must(t, e.store.SetDisabled(ctx, "c@example.test", true))
	c = e.dialMX(t)
	msg := msgFrom("x@remote.test", "all@example.test", "Thông báo chung")
	// b@ is named twice (directly and through the list): one copy each.
	if err := send(c, "x@remote.test", []string{"all@example.test", "b@example.test", "team@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]int{"a@example.test": 1, "b@example.test": 1} {
		if n := len(e.inbox(t, addr)); n != want {
			t.Errorf("%s has %d messages, want %d", addr, n, want)
		}
	}
	// One content for the two copies and the queue entry.
	if st, err := e.store.StorageStats(ctx); err != nil || st.Blobs != 1 || st.Refs != 3 {
		t.Errorf("storage %+v %v", st, err)
	}
	calls := e.queued(t)
	if len(calls) != 1 || !slices.Equal(calls[0].rcpts, []string{"partner@other.test"}) || calls[0].from != "x@remote.test" ||
		!bytes.HasSuffix(calls[0].msg, []byte(msg)) {
		t.Errorf("queued %+v", calls)
	}
	// A list whose only members are disabled takes nothing.
	must(t, e.store.AddAlias(ctx, "gone@example.test", []string{"c@example.test"}))
	if err := c.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("gone@example.test", nil), 550, "5.2.1")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSubmissionNeedsTLSAndAuth(t *testing.T) {
	e := start(t, &Server{})
	r := dialRaw(t, e.sub)
	r.ok("EHLO laptop.test")
	// No password in clear: AUTH is neither offered nor accepted before STARTTLS.
	if code, msg := r.cmd("AUTH PLAIN " + b64("\x00a@example.test\x00pw")); code < 500 || !strings.HasPrefix(msg, "5.7.") {
		t.Errorf("AUTH before TLS: %d %s", code, msg)
	}
	if code, msg := r.cmd("AUTH LOGIN"); code < 500 {
		t.Errorf("AUTH LOGIN before TLS: %d %s", code, msg)
	}
	// go-smtp lets MAIL through before AUTH; the session must not.
	if code, msg := r.cmd("MAIL FROM:<a@example.test>"); code != 530 || !strings.HasPrefix(msg, "5.7.0") {
		t.Errorf("MAIL before AUTH: %d %s", code, msg)
	}
	if code, msg := r.cmd("RCPT TO:<b@example.test>"); code < 500 {
		t.Errorf("RCPT before AUTH: %d %s", code, msg)
	}
	if code, msg := r.cmd("DATA"); code < 500 {
		t.Errorf("DATA before AUTH: %d %s", code, msg)
	}
	if code, msg := r.cmd("BDAT 5 LAST"); code < 500 {
		t.Errorf("BDAT before AUTH: %d %s", code, msg)
	}

	// Over TLS but not logged in: still 530.
	for _, c := range []*smtp.Client{dialStartTLS(t, e.sub, e.clientTLS), dialTLS(t, e.subs, e.clientTLS)} {
		wantCode(t, c.Mail("a@example.test", nil), 530, "5.7.0")
		wantCode(t, c.Auth(sasl.NewPlainClient("", "a@example.test", "wrong")), 535, "5.7.8")
		wantCode(t, c.Auth(sasl.NewPlainClient("b@example.test", "a@example.test", "pw")), 535, "5.7.8")
		wantCode(t, c.Mail("a@example.test", nil), 530, "5.7.0")
	}
	if n := len(e.inbox(t, "b@example.test")); n != 0 {
		t.Errorf("b@ got %d messages", n)
	}
}

func dialStartTLS(t testing.TB, addr string, cfg *tls.Config) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialTLS(t testing.TB, addr string, cfg *tls.Config) *smtp.Client {
	t.Helper()
	c, err := smtp.DialTLS(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSubmissionAuthMechanisms(t *testing.T) {
	e := start(t, &Server{})
	for name, client := range map[string]sasl.Client{
		"PLAIN": sasl.NewPlainClient("", "a@example.test", "pw"),
		"LOGIN": sasl.NewLoginClient("a@example.test", "pw"),
	} {
		for _, c := range []*smtp.Client{dialStartTLS(t, e.sub, e.clientTLS), dialTLS(t, e.subs, e.clientTLS)} {
			if err := c.Auth(client); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if err := send(c, "a@example.test", []string{"b@example.test"}, msgFrom("a@example.test", "b@example.test", name)); err != nil {
				t.Errorf("%s: send: %v", name, err)
			}
		}
	}
	// LOGIN without an initial response, by hand: "Username:", "Password:".
	conn, err := tls.Dial("tcp", e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	r := dialRawConn(t, conn)
	r.ok("EHLO phone.test")
	if msg := r.ok("AUTH LOGIN"); msg != b64("Username:") {
		t.Errorf("LOGIN first challenge %q", msg)
	}
	if msg := r.ok(b64("a@example.test")); msg != b64("Password:") {
		t.Errorf("LOGIN second challenge %q", msg)
	}
	if code, msg := r.cmd(b64("pw")); code != 235 {
		t.Errorf("LOGIN: %d %s", code, msg)
	}
	if n := len(e.inbox(t, "b@example.test")); n != 4 {
		t.Errorf("b@ has %d messages, want 4", n)
	}
	// A disabled account cannot log in, even with its password.
	must(t, e.store.SetDisabled(context.Background(), "c@example.test", true))
	c := dialTLS(t, e.subs, e.clientTLS)
	wantCode(t, c.Auth(sasl.NewPlainClient("", "c@example.test", "pw")), 535, "5.7.8")
}

// After the free failures further attempts fail at once (454) whatever the
// spelling of the name, and another account's success from the same address
// clears nothing.
func TestAuthThrottle(t *testing.T) {
	now := time.Unix(1e9, 0)
	logins := throttle.NewLogins()
	logins.Free, logins.Now = 3, func() time.Time { return now }
	e := start(t, &Server{Logins: logins})
	// go-smtp's client answers a failed AUTH with "*", which the server counts
	// as a bad command: a fresh connection per attempt keeps under the limit.
	auth := func(user, password string) error {
		return dialTLS(t, e.subs, e.clientTLS).Auth(sasl.NewPlainClient("", user, password))
	}
	for range 3 {
		wantCode(t, auth("a@example.test", "guess"), 535, "5.7.8")
	}
	for _, name := range []string{"a@example.test", " A@Example.Test", "a@EXAMPLE.TEST "} {
		se := wantCode(t, auth(name, "pw"), 454, "4.7.0")
		if !strings.Contains(se.Message, "Too many failed logins") {
			t.Errorf("throttled AUTH as %q: %q", name, se.Message)
		}
	}
	if err := auth("b@example.test", "pw"); err != nil {
		t.Fatalf("another account from the same address: %v", err)
	}
	wantCode(t, auth("a@example.test", "pw"), 454, "4.7.0")
	now = now.Add(time.Second)
	if err := auth("a@example.test", "pw"); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
}

func TestSubmissionSenderRules(t *testing.T) {
	ctx := context.Background()
	q := &fakeQueue{}
	e := start(t, &Server{Queue: q})
	must(t, e.store.AddAlias(ctx, "vanphong@example.test", []string{"a@example.test", "c@example.test"}))
	c := e.dialSubmit(t, "a@example.test")

	// Envelope sender not owned.
	se := wantCode(t, c.Mail("b@example.test", nil), 550, "5.7.1")
	if !strings.Contains(se.Message, "not an address of account a@example.test") {
		t.Errorf("refusal says %q", se.Message)
	}
	wantCode(t, c.Mail("", nil), 550, "5.7.1")
	// From: header not owned, in any of its addresses or fields.
	for _, from := range []string{
		"Giám đốc <b@example.test>",
		"a@example.test, b@example.test",
		"a@example.test\r\nFrom: b@example.test",
		"undisclosed",
	} {
		msg := msgFrom(from, "c@example.test", "giả mạo")
		se := wantCode(t, send(c, "a@example.test", []string{"c@example.test"}, msg), 550, "5.7.1")
		if !strings.Contains(se.Message, "From:") {
			t.Errorf("From %q: refusal says %q", from, se.Message)
		}
	}
	noFrom := "To: c@example.test\r\nSubject: no from\r\n\r\nbody\r\n"
	wantCode(t, send(c, "a@example.test", []string{"c@example.test"}, noFrom), 550, "5.7.1")
	if n := len(e.inbox(t, "c@example.test")); n != 0 {
		t.Fatalf("forged mail delivered: %d", n)
	}

	// A member may send as the list; Date and Message-ID are added when missing.
	bare := "From: =?windows-1258?Q?V=E0n_ph=F2ng?= <vanphong@example.test>\r\nTo: c@example.test\r\nSubject: bare\r\n\r\nnội dung\r\n"
	if err := send(c, "vanphong@example.test", []string{"c@example.test", "partner@other.test", "Partner@Other.test"}, bare); err != nil {
		t.Fatal(err)
	}
	items := e.inbox(t, "c@example.test")
	if len(items) != 1 {
		t.Fatalf("c@ has %d messages", len(items))
	}
	got := string(items[0].Content)
	head, _, _ := strings.Cut(got, bare)
	for _, want := range []string{"Received: from localhost ([127.0.0.1])", "with ESMTPSA id ", "(using TLS 1.3 with cipher ", "\r\nDate: ", "\r\nMessage-ID: <"} {
		if !strings.Contains(head, want) {
			t.Errorf("added header lacks %q:\n%s", want, head)
		}
	}
	if !strings.HasSuffix(got, bare) {
		t.Error("message body altered")
	}
	if items[0].Envelope.MessageID == "" || items[0].Envelope.Date.IsZero() {
		t.Errorf("envelope %+v", items[0].Envelope)
	}
	calls := e.queued(t)
	if len(calls) != 1 || !slices.Equal(calls[0].rcpts, []string{"partner@other.test"}) || string(calls[0].msg) != got || q.wakes.Load() != 1 {
		t.Errorf("queued %+v, relay woken %d times", calls, q.wakes.Load())
	}
	// One content for the local copy and the queue, stored in one go.
	if st, _ := e.store.StorageStats(ctx); st.Blobs != 1 || st.Refs != 2 {
		t.Errorf("storage %+v", st)
	}
	// A message with its own Date and Message-ID keeps them, alone.
	full := msgFrom("a@example.test", "b@example.test", "đủ")
	if err := send(c, "a@example.test", []string{"b@example.test"}, full); err != nil {
		t.Fatal(err)
	}
	got = string(e.inbox(t, "b@example.test")[0].Content)
	if strings.Count(got, "Date:") != 1 || strings.Count(got, "Message-ID:") != 1 || !strings.HasSuffix(got, full) {
		t.Errorf("message with Date and Message-ID changed:\n%s", got)
	}
	// Nothing is saved to Sent: clients APPEND it themselves.
	if n := len(e.mailbox(t, "a@example.test", "Sent")); n != 0 {
		t.Errorf("Sent has %d messages", n)
	}
}

func TestSubmissionWithoutQueue(t *testing.T) {
	e := start(t, &Server{})
	c := e.dialSubmit(t, "a@example.test")
	if err := c.Mail("a@example.test", nil); err != nil {
		t.Fatal(err)
	}
	se := wantCode(t, c.Rcpt("partner@other.test", nil), 451, "4.3.0")
	if !strings.Contains(se.Message, "not available yet") {
		t.Errorf("refusal says %q", se.Message)
	}
	wantCode(t, c.Rcpt("nobody@example.test", nil), 550, "5.1.1")
	if err := c.Rcpt("b@example.test", nil); err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	e := start(t, &Server{MaxMessageSize: 10000, MaxRecipients: 3})
	c := e.dialMX(t)
	if err := c.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		if err := c.Rcpt(to, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, c.Rcpt("a@example.test", nil), 452, "4.5.3")
	must(t, c.Reset())

	// Declared too big: refused at MAIL.
	wantCode(t, c.Mail("x@remote.test", &smtp.MailOptions{Size: 10001}), 552, "5.3.4")
	// Declared small, sent big: refused at the end of data, nothing stored.
	r := dialRaw(t, e.mx)
	r.ok("EHLO liar.test")
	r.ok("MAIL FROM:<x@remote.test> SIZE=100")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	r.write("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 20) + ".\r\n")
	if code, msg := r.reply(); code != 552 || !strings.HasPrefix(msg, "5.3.4") {
		t.Errorf("oversize DATA: %d %s", code, msg)
	}
	// The connection is still in step.
	r.ok("NOOP")
	// The same with BDAT, in chunks.
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	chunk := strings.Repeat(strings.Repeat("z", 98)+"\r\n", 60)
	r.write(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	r.expect(250)
	r.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	if code, msg := r.reply(); code != 552 || !strings.HasPrefix(msg, "5.3.4") {
		t.Errorf("oversize BDAT: %d %s", code, msg)
	}
	r.ok("NOOP")
	if n := len(e.inbox(t, "a@example.test")); n != 0 {
		t.Errorf("oversize message stored: %d", n)
	}
	// A message just under the limit passes.
	ok := "Subject: ok\r\n\r\n" + strings.Repeat(strings.Repeat("o", 88)+"\r\n", 100)
	if err := send(e.dialMX(t), "x@remote.test", []string{"a@example.test"}, ok); err != nil {
		t.Fatal(err)
	}
}

func TestChunkingAndPipelining(t *testing.T) {
	e := start(t, &Server{})
	r := dialRaw(t, e.mx)
	r.ok("EHLO chunky.test")
	// BDAT carries binary data, dots and bare CRs untouched.
	part1 := "Subject: chunks\r\n\r\n.leading dot\r\n"
	part2 := "bare\rCR and \x00 NUL\r\n.\r\n"
	r.write("MAIL FROM:<x@remote.test>\r\nRCPT TO:<a@example.test>\r\n")
	r.expect(250)
	r.expect(250)
	r.write(fmt.Sprintf("BDAT %d\r\n%sBDAT %d LAST\r\n%s", len(part1), part1, len(part2), part2))
	r.expect(250)
	r.expect(250)
	// Pipelined transaction with DATA: all the commands in one write (RFC 2920).
	body := "Subject: pipelined\r\n\r\n..dot-stuffed line\r\n"
	r.write("RSET\r\nMAIL FROM:<x@remote.test> BODY=8BITMIME\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
	for _, want := range []int{250, 250, 250, 550, 250, 354} {
		if code, msg := r.reply(); code != want {
			t.Fatalf("pipelined reply %d %s, want %d", code, msg, want)
		}
	}
	r.write(body + ".\r\nQUIT\r\n")
	r.expect(250)
	r.expect(221)

	got := string(e.inbox(t, "a@example.test")[0].Content)
	if !strings.HasSuffix(got, part1+part2) {
		t.Errorf("BDAT content altered: %q", got)
	}
	for _, addr := range []string{"b@example.test", "c@example.test"} {
		got := string(e.inbox(t, addr)[0].Content)
		if !strings.HasSuffix(got, "Subject: pipelined\r\n\r\n.dot-stuffed line\r\n") {
			t.Errorf("%s: %q", addr, got)
		}
	}
}

// TestDataTransparency: DATA removes a dot only at the start of a CRLF line
// and keeps every other byte, however the client's writes split the stream
// (go-smtp is patched to read DATA a line at a time: third_party/go-smtp).
func TestDataTransparency(t *testing.T) {
	e := start(t, &Server{})
	long := strings.Repeat("x", 5000)
	wire := "Subject: dots\r\n\r\n..one\r\n.two\r\nbare\nlf\n.kept\r\nmid\rcr\r\n...three\r\n\r\n.\r\r\ncr\r\r\n..cr\r\n" + long + "\r\n.\r\n"
	want := "Subject: dots\r\n\r\n.one\r\ntwo\r\nbare\nlf\n.kept\r\nmid\rcr\r\n..three\r\n\r\n\r\r\ncr\r\r\n.cr\r\n" + long + "\r\n"
	splits := []int{1, 3, 7, 4095, len(wire)}
	for _, n := range splits {
		r := dialRaw(t, e.mx)
		r.ok("EHLO dots.test")
		r.ok("MAIL FROM:<x@remote.test>")
		r.ok("RCPT TO:<a@example.test>")
		r.write("DATA\r\n")
		r.expect(354)
		for s := wire; s != ""; {
			k := min(n, len(s))
			r.write(s[:k])
			s = s[k:]
		}
		r.expect(250)
	}
	items := e.inbox(t, "a@example.test")
	if len(items) != len(splits) {
		t.Fatalf("%d messages stored, want %d", len(items), len(splits))
	}
	for i, it := range items {
		if got := string(it.Content); !strings.HasSuffix(got, "\r\n"+want) {
			t.Errorf("written %d bytes at a time: stored %q", splits[i], got[max(0, len(got)-len(want)-20):])
		}
	}
}

func TestSMTPUTF8(t *testing.T) {
	e := start(t, &Server{})
	c := e.dialMX(t)
	msg := "From: Người gửi <gửi@bộ.test>\r\nTo: a@example.test\r\nSubject: Tiếng Việt không mã hoá\r\n\r\nxin chào\r\n"
	if err := send(c, "gửi@bộ.test", []string{"a@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	items := e.inbox(t, "a@example.test")
	if len(items) != 1 || !strings.Contains(string(items[0].Content), "with UTF8SMTP id") {
		t.Fatalf("%d items", len(items))
	}
	if items[0].Envelope.Subject != "Tiếng Việt không mã hoá" {
		t.Errorf("subject %q", items[0].Envelope.Subject)
	}
}

func TestMalformed(t *testing.T) {
	e := start(t, &Server{})
	r := dialRaw(t, e.mx)
	if code, _ := r.cmd("MAIL FROM:<x@remote.test>"); code < 500 {
		t.Errorf("MAIL before EHLO: %d", code)
	}
	r.ok("EHLO bad.test")
	for _, c := range []struct {
		line string
		code int
	}{
		{"MAIL FROM:x@remote.test>", 500},
		{"MAIL FROM:<x@remote.test", 501},
		{"MAIL FROM:<x@remote.test> SIZE=abc", 501},
		{"MAIL FROM:<x@remote.test> RET=FULL", 504}, // no DSN
		{"RCPT TO:<a@example.test>", 502},           // no MAIL yet
	} {
		if code, msg := r.cmd(c.line); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.line, code, msg, c.code)
		}
	}
	r = dialRaw(t, e.mx)
	r.ok("EHLO bad.test")
	r.ok("MAIL FROM:<x@remote.test>")
	for _, c := range []struct {
		line string
		code int
	}{
		{"MAIL FROM:<y@remote.test>", 503},
		{"RCPT TO:<a@example.test> NOTIFY=NEVER", 504},
		{"RCPT TO:<a@example.test", 501},
		{"DATA", 502}, // no recipient yet
		{"BDAT x", 501},
	} {
		if code, msg := r.cmd(c.line); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.line, code, msg, c.code)
		}
	}
	// Too many bad commands end the session.
	r = dialRaw(t, e.mx)
	for range 4 {
		r.cmd("XYZZY")
	}
	if code, _ := r.reply(); code != 500 {
		t.Errorf("after 4 bad commands: %d", code)
	}
	// An over-long line ends it too, in a command or in a message.
	long := strings.Repeat("A", maxLineLength+10)
	r = dialRaw(t, e.mx)
	r.write(long + "\r\n")
	if code, _ := r.reply(); code != 500 {
		t.Errorf("over-long line: %d", code)
	}
	r = dialRaw(t, e.mx)
	r.ok("EHLO long.test")
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	r.write("Subject: long\r\n\r\n" + long + "\r\n.\r\n")
	if code, msg := r.reply(); code != 554 || !strings.HasPrefix(msg, "5.6.0") {
		t.Errorf("over-long line in DATA: %d %s", code, msg)
	}
}

func TestConnectionLimits(t *testing.T) {
	e := start(t, &Server{ConnLimits: throttle.ConnLimits{PerAddress: 2}, CommandTimeout: 300 * time.Millisecond})
	a, b := dialRaw(t, e.mx), dialRaw(t, e.sub)
	c, err := net.Dial("tcp", e.mx)
	if err != nil {
		t.Fatal(err)
	}
	r := dialRawConnNoGreeting(t, c)
	if code, msg := r.reply(); code != 421 || !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("third connection: %d %s", code, msg)
	}
	// On implicit TLS the refusal comes inside TLS.
	tc, err := tls.Dial("tcp", e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	r = dialRawConnNoGreeting(t, tc)
	if code, msg := r.reply(); code != 421 || !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("third connection over TLS: %d %s", code, msg)
	}
	// An idle client is dropped after the command timeout, freeing its slot.
	if code, msg := a.reply(); code != 421 {
		t.Errorf("idle client: %d %s", code, msg)
	}
	b.reply()
	testwait.For(t, "the idle client's slot", func() bool {
		c, err := net.Dial("tcp", e.mx)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := dialRawConnNoGreeting(t, c).reply()
		return code == 220
	})
}

// A client sending slowly but steadily is not cut off: the timeout is for
// silence, not for the whole message.
// TestSlowClient: a message that keeps coming at MinDataRate is taken however
// long past CommandTimeout it lasts.
func TestSlowClient(t *testing.T) {
	e := start(t, &Server{CommandTimeout: 300 * time.Millisecond, MinDataRate: 50})
	r := dialRaw(t, e.mx)
	r.ok("EHLO slow.test")
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	r.write("Subject: slow\r\n\r\n")
	for range 6 {
		time.Sleep(100 * time.Millisecond)
		r.write("a line\r\n")
	}
	r.write(".\r\n")
	r.expect(250)
}

type checker struct {
	verdict mailauth.Verdict
	seen    []byte
}

func (c *checker) Check(_ context.Context, ip net.IP, helo, from string, msg io.Reader) (string, mailauth.Verdict, string) {
	c.seen, _ = io.ReadAll(msg)
	return fmt.Sprintf("Authentication-Results: mail.example.test; spf=pass smtp.mailfrom=%s (ip %s, helo %s)\r\n", from, ip, helo),
		c.verdict, "DMARC policy of remote.test says reject"
}

func TestInbound(t *testing.T) {
	ck := &checker{}
	e := start(t, &Server{Inbound: ck})
	msg := msgFrom("x@remote.test", "a@example.test", "checked")
	c := e.dialMX(t)
	for _, v := range []mailauth.Verdict{mailauth.Accept, mailauth.Quarantine} {
		ck.verdict = v
		if err := send(c, "x@remote.test", []string{"a@example.test"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	ck.verdict = mailauth.Reject
	se := wantCode(t, send(c, "x@remote.test", []string{"a@example.test"}, msg), 550, "5.7.1")
	if !strings.Contains(se.Message, "DMARC") {
		t.Errorf("rejection says %q", se.Message)
	}
	if string(ck.seen) != msg {
		t.Error("checker did not see the message as sent")
	}
	inbox, junk := e.inbox(t, "a@example.test"), e.mailbox(t, "a@example.test", "Junk")
	if len(inbox) != 1 || len(junk) != 1 {
		t.Fatalf("inbox %d junk %d", len(inbox), len(junk))
	}
	got := string(inbox[0].Content)
	if !strings.HasPrefix(got, "Authentication-Results: mail.example.test; spf=pass smtp.mailfrom=x@remote.test (ip 127.0.0.1, helo localhost)\r\nReceived: ") ||
		!strings.HasSuffix(got, msg) {
		t.Errorf("checked message: %q", got)
	}
	// Submission is not checked: staff mail is authenticated.
	ck.seen = nil
	if err := send(e.dialSubmit(t, "a@example.test"), "a@example.test", []string{"b@example.test"}, msgFrom("a@example.test", "b@example.test", "x")); err != nil {
		t.Fatal(err)
	}
	if ck.seen != nil {
		t.Error("submitted mail went through the inbound checker")
	}
}

func TestShutdown(t *testing.T) {
	e := start(t, &Server{})
	idle := dialRaw(t, e.mx)
	idle.ok("EHLO idle.test")
	c := e.dialMX(t)
	if err := send(c, "x@remote.test", []string{"a@example.test"}, msgFrom("x@remote.test", "a@example.test", "before")); err != nil {
		t.Fatal(err)
	}
	// Without a deadline: Shutdown must end by itself.
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := idle.reply(); code != 421 {
		t.Errorf("idle client told %d", code)
	}
	if _, err := net.Dial("tcp", e.mx); err == nil {
		t.Error("still accepting after Shutdown")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.ServeMX(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeMX after Shutdown: %v", err)
	}
}
