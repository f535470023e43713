package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// lineConn is a raw client connection read a line at a time.
type lineConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLines(t *testing.T, addr string, cfg *tls.Config) *lineConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// No deadline: a connection the server never ends is go test's
	// -timeout to end (testwait).
	return &lineConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (l *lineConn) send(line string) {
	l.t.Helper()
	if _, err := l.c.Write([]byte(line + "\r\n")); err != nil {
		l.t.Fatal(err)
	}
}

// expect reads lines until one starts with prefix and returns it.
func (l *lineConn) expect(prefix string) string {
	l.t.Helper()
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(line, prefix) {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

// ended reads to the end of the connection and returns the lines read. A
// reset is an end too: the server closed with the client's bytes unread.
func (l *lineConn) ended() []string {
	l.t.Helper()
	var lines []string
	for {
		line, err := l.r.ReadString('\n')
		if line != "" {
			lines = append(lines, strings.TrimRight(line, "\r\n"))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				l.t.Logf("connection ended with %v", err)
			}
			return lines
		}
	}
}

func plain(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// imapSession logs user in over IMAPS and starts IDLE, as a mail client
// waiting for new mail does.
func imapSession(t *testing.T, srv *server, data, user, password string) *lineConn {
	t.Helper()
	c := dialLines(t, srv.addrs["imaps-addr"], clientTLS(t, data))
	c.expect("* OK")
	c.send("a AUTHENTICATE PLAIN " + plain(user, password))
	if line := c.expect("a "); !strings.HasPrefix(line, "a OK") {
		t.Fatalf("IMAP login of %s: %s", user, line)
	}
	c.send("b IDLE")
	c.expect("+ ")
	return c
}

// smtpSession authenticates user on the submissions port and returns the
// connection and the reply to AUTH.
func smtpSession(t *testing.T, srv *server, data, user, password string) (*lineConn, string) {
	t.Helper()
	c := dialLines(t, srv.addrs["submissions-addr"], clientTLS(t, data))
	c.expect("220 ")
	c.send("EHLO client.agency.example")
	c.expect("250 ")
	c.send("AUTH PLAIN " + plain(user, password))
	return c, c.expect("")
}

// checkEndedByPasswordChange checks that the server ended an IMAP session
// (an untagged BYE, then the end of the connection) and an SMTP one (421).
func checkEndedByPasswordChange(t *testing.T, im, sm *lineConn) {
	t.Helper()
	lines := im.ended()
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE ") || !strings.Contains(lines[len(lines)-1], "password") {
		t.Errorf("the IMAP session ended with %q, want an untagged BYE about the password", lines)
	}
	lines = sm.ended()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "421 4.7.0 ") || !strings.Contains(lines[0], "password") {
		t.Errorf("the SMTP session ended with %q, want 421 4.7.0 about the password", lines)
	}
}

// TestPasswordChangeEndsSessions: 'sealmail user passwd', another process,
// ends the IMAP and SMTP sessions that logged in with the old password,
// not another account's; then only the new password logs in. The log,
// at debug level, tells of IMAP, SMTP and portal logins that failed and
// succeeded and of the sessions ended, never of a password.
func TestPasswordChangeEndsSessions(t *testing.T) {
	const (
		addr, other           = "binh@agency.example", "chi@agency.example"
		oldPW, newPW, otherPW = "Bình-cũ-2025", "Bình-mới-2026", "Chị-2026!"
		wrongIMAP, wrongSMTP  = "Sai-mật-khẩu-IMAP", "Sai-mật-khẩu-SMTP"
		wrongWeb, pw          = "Sai-mật-khẩu-web", "--password-stdin"
	)
	data := setupData(t)
	ok(t, oldPW+"\n", "user", "add", addr, pw, "--data", data)
	ok(t, otherPW+"\n", "user", "add", other, pw, "--data", data)
	conf := filepath.Join(data, "sealmail.toml")
	b := strings.Replace(string(readAll(t, conf)), `log-level = "info"`, `log-level = "debug"`, 1)
	if err := os.WriteFile(conf, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, data)
	defer srv.stop(t)

	if imapLogin(t, srv, data, addr, wrongIMAP) {
		t.Fatal("IMAP took a wrong password")
	}
	if _, reply := smtpSession(t, srv, data, addr, wrongSMTP); !strings.HasPrefix(reply, "535 ") {
		t.Fatalf("SMTP AUTH with a wrong password: %s", reply)
	}
	im := imapSession(t, srv, data, addr, oldPW)
	sm, reply := smtpSession(t, srv, data, addr, oldPW)
	if !strings.HasPrefix(reply, "235 ") {
		t.Fatalf("SMTP AUTH: %s", reply)
	}
	bystander := imapSession(t, srv, data, other, otherPW)

	ok(t, newPW+"\n", "user", "passwd", addr, pw, "--data", data)
	checkEndedByPasswordChange(t, im, sm)
	// The other account's session goes on.
	bystander.send("DONE")
	if line := bystander.expect("b "); !strings.HasPrefix(line, "b OK") {
		t.Errorf("another account's IDLE: %s", line)
	}
	bystander.send("c NOOP")
	if line := bystander.expect("c "); !strings.HasPrefix(line, "c OK") {
		t.Errorf("another account's session after the change: %s", line)
	}

	if imapLogin(t, srv, data, addr, oldPW) {
		t.Error("IMAP still takes the old password")
	}
	if !imapLogin(t, srv, data, addr, newPW) {
		t.Error("IMAP refuses the new password")
	}
	if _, reply := smtpSession(t, srv, data, addr, oldPW); !strings.HasPrefix(reply, "535 ") {
		t.Errorf("SMTP AUTH with the old password: %s", reply)
	}
	if _, reply := smtpSession(t, srv, data, addr, newPW); !strings.HasPrefix(reply, "235 ") {
		t.Errorf("SMTP AUTH with the new password: %s", reply)
	}
	// The portal, likewise.
	web := webSession(t, srv, data)
	if resp := webLogin(t, web, addr, wrongWeb); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("web login with a wrong password: %s", resp.Status)
	}
	if resp := webLogin(t, web, addr, newPW); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("web login: %s", resp.Status)
	}

	// The log is read as the server writes it: wait for each line.
	for _, want := range []string{"imap login failed", "smtp auth failed", "web login failed", `msg="web login"`,
		"imap session ended", "smtp session ended"} {
		srv.waitLog(t, want)
	}
	logs := srv.logs()
	for _, secret := range []string{oldPW, newPW, otherPW, wrongIMAP, wrongSMTP, wrongWeb, url.QueryEscape(wrongWeb), url.QueryEscape(newPW),
		plain(addr, oldPW), plain(addr, newPW), plain(addr, wrongSMTP), plain(other, otherPW)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log has the password (or its SASL form) %q:\n%s", secret, logs)
		}
	}
}
