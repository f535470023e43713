package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/imapd"
	"sealmail/internal/testtool"
	"sealmail/mailstore"
)

// swaks runs the swaks SMTP client (Debian package swaks) against a server at
// addr and returns its transcript and whether it reported success.
func swaks(t *testing.T, addr string, args ...string) (string, bool) {
	t.Helper()
	path := testtool.Path(t, "swaks", "swaks")
	host, port, _ := net.SplitHostPort(addr)
	// --server and --helo keep swaks off DNS: no MX lookup, no host name lookup.
	args = append([]string{"--server", host, "--port", port, "--helo", "swaks.test", "--timeout", "30"}, args...)
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err == nil
}

func TestSwaks(t *testing.T) {
	e := start(t, &Server{MaxMessageSize: 50000})
	ctx := context.Background()
	auth := []string{"--auth", "PLAIN", "--auth-user", "a@example.test", "--auth-password", "pw"}
	count := func(addr string) int { return len(e.inbox(t, addr)) }

	t.Run("STARTTLS", func(t *testing.T) {
		out, ok := swaks(t, e.sub, append(auth, "--tls", "--from", "a@example.test", "--to", "b@example.test",
			"--header", "Subject: qua STARTTLS", "--header", "From: a@example.test")...)
		if !ok || !strings.Contains(out, "235 2.0.0") || !strings.Contains(out, "250 2.0.0") {
			t.Fatalf("swaks failed:\n%s", out)
		}
	})
	t.Run("ImplicitTLS", func(t *testing.T) {
		out, ok := swaks(t, e.subs, append(auth, "--tls-on-connect", "--from", "a@example.test", "--to", "b@example.test",
			"--header", "From: a@example.test")...)
		if !ok || !strings.Contains(out, "235 2.0.0") {
			t.Fatalf("swaks failed:\n%s", out)
		}
		// Also with LOGIN.
		login := []string{"--auth", "LOGIN", "--auth-user", "a@example.test", "--auth-password", "pw"}
		out, ok = swaks(t, e.subs, append(login, "--tls-on-connect", "--from", "a@example.test", "--to", "b@example.test",
			"--header", "From: a@example.test")...)
		if !ok || !strings.Contains(out, "235 2.0.0") {
			t.Fatalf("swaks LOGIN failed:\n%s", out)
		}
		if n := count("b@example.test"); n != 3 {
			t.Errorf("b@ has %d messages, want 3", n)
		}
	})
	t.Run("NoAuthWithoutTLS", func(t *testing.T) {
		// AUTH is not advertised in clear, so swaks gives up rather than send the password.
		out, ok := swaks(t, e.sub, append(auth, "--from", "a@example.test", "--to", "c@example.test")...)
		if ok || strings.Contains(out, "235 ") || strings.Contains(out, "AUTH PLAIN") {
			t.Fatalf("authenticated in clear:\n%s", out)
		}
		// Without AUTH, nothing is accepted.
		out, ok = swaks(t, e.sub, "--from", "a@example.test", "--to", "c@example.test")
		if ok || !strings.Contains(out, "530 5.7.0") {
			t.Fatalf("sent without AUTH:\n%s", out)
		}
		if n := count("c@example.test"); n != 0 {
			t.Errorf("c@ has %d messages", n)
		}
	})
	t.Run("OpenRelay", func(t *testing.T) {
		for _, tls := range [][]string{nil, {"--tls"}} {
			out, ok := swaks(t, e.mx, append(tls, "--from", "a@example.test", "--to", "victim@gmail.test")...)
			if ok || !strings.Contains(out, "550 5.7.1") {
				t.Fatalf("relayed:\n%s", out)
			}
		}
		// Not even after logging in, which the MX port does not offer.
		out, ok := swaks(t, e.mx, append(auth, "--tls", "--from", "a@example.test", "--to", "victim@gmail.test")...)
		if ok || strings.Contains(out, "235 ") {
			t.Fatalf("MX port authenticated:\n%s", out)
		}
	})
	t.Run("SpoofedFrom", func(t *testing.T) {
		out, ok := swaks(t, e.subs, append(auth, "--tls-on-connect", "--from", "a@example.test", "--to", "c@example.test",
			"--header", "From: Giám đốc <b@example.test>")...)
		if ok || !strings.Contains(out, "550 5.7.1") || !strings.Contains(out, "not an address of account a@example.test") {
			t.Fatalf("spoofed From accepted:\n%s", out)
		}
		out, ok = swaks(t, e.subs, append(auth, "--tls-on-connect", "--from", "b@example.test", "--to", "c@example.test")...)
		if ok || !strings.Contains(out, "550 5.7.1") {
			t.Fatalf("spoofed envelope sender accepted:\n%s", out)
		}
		if n := count("c@example.test"); n != 0 {
			t.Errorf("c@ has %d messages", n)
		}
	})
	t.Run("UnknownUser", func(t *testing.T) {
		out, ok := swaks(t, e.mx, "--from", "x@remote.test", "--to", "nobody@example.test")
		if ok || !strings.Contains(out, "550 5.1.1") {
			t.Fatalf("unknown user accepted:\n%s", out)
		}
	})
	t.Run("Oversize", func(t *testing.T) {
		body := filepath.Join(t.TempDir(), "body.txt")
		must(t, os.WriteFile(body, []byte(strings.Repeat(strings.Repeat("x", 76)+"\r\n", 1000)), 0o600))
		out, ok := swaks(t, e.mx, "--from", "x@remote.test", "--to", "c@example.test", "--body", body)
		if ok || !strings.Contains(out, "552 5.3.4") {
			t.Fatalf("oversize accepted:\n%s", out)
		}
	})
	t.Run("FiveHundredRecipients", func(t *testing.T) {
		before, err := e.store.StorageStats(ctx)
		must(t, err)
		var accts []mailstore.NewAccount
		var to []string
		for i := range 500 {
			addr := fmt.Sprintf("nv%03d@example.test", i)
			accts = append(accts, mailstore.NewAccount{Address: addr, Password: "pw"})
			to = append(to, addr)
		}
		_, err = e.store.AddAccounts(ctx, accts)
		must(t, err)
		out, ok := swaks(t, e.mx, "--from", "vanthu@stc.gov.test", "--to", strings.Join(to, ","),
			"--header", "Subject: Thông báo toàn cơ quan")
		if !ok {
			t.Fatalf("swaks failed:\n%s", out)
		}
		after, err := e.store.StorageStats(ctx)
		must(t, err)
		if after.Blobs-before.Blobs != 1 || after.Refs-before.Refs != 500 || after.Messages-before.Messages != 500 {
			t.Errorf("500 recipients stored as %+v (before %+v)", after, before)
		}
		for _, addr := range []string{to[0], to[499]} {
			if n := count(addr); n != 1 {
				t.Errorf("%s has %d messages", addr, n)
			}
		}
	})
	t.Run("ReadOverIMAP", func(t *testing.T) {
		out, ok := swaks(t, e.sub, append(auth, "--tls", "--from", "a@example.test", "--to", "c@example.test",
			"--header", "From: a@example.test", "--header", "Subject: Gửi qua SMTP, đọc qua IMAP",
			"--body", "Nội dung thử nghiệm.")...)
		if !ok {
			t.Fatalf("swaks failed:\n%s", out)
		}
		stored := e.inbox(t, "c@example.test")
		if len(stored) != 1 {
			t.Fatalf("c@ has %d messages", len(stored))
		}
		got := readIMAP(t, e, "c@example.test")
		if !bytes.Equal(got, stored[0].Content) || !bytes.Contains(got, []byte("Nội dung thử nghiệm.")) {
			t.Errorf("IMAP returned:\n%s\nstore has:\n%s", got, stored[0].Content)
		}
	})
}

// readIMAP logs in over IMAPS to the lead's imapd and returns BODY[] of the
// first INBOX message.
func readIMAP(t *testing.T, e *env, user string) []byte {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &imapd.Server{Store: e.store, TLSConfig: e.srv.TLSConfig, Logger: e.srv.Logger}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-done
	}()
	c, err := imapclient.DialTLS(l.Addr().String(), &imapclient.Options{TLSConfig: e.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(mailstore.Inbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v, %d messages", err, len(msgs))
	}
	return msgs[0].FindBodySection(section)
}
