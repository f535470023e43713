package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/internal/browsertest"
)

const vacationText = "Kính gửi quý anh chị,\n\nTôi nghỉ phép đến hết tuần sau; việc gấp xin liên hệ chị Lan (lan.pham@agency.example).\n\n" +
	"I am on leave until the end of next week; for urgent matters please write to lan.pham@agency.example.\n"

// imapLogin reports whether IMAPS accepts user's password.
func imapLogin(t *testing.T, srv *server, data, user, password string) bool {
	t.Helper()
	c, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: clientTLS(t, data)})
	if err != nil {
		t.Fatalf("imaps: %v", err)
	}
	defer c.Close()
	return c.Login(user, password).Wait() == nil
}

// TestPortalBrowser drives the portal in headless Chromium as a staff member
// would: log in, see the quota, change the password (the mail clients logged
// in with the old one are disconnected, then IMAP takes the new one only). With SEALMAIL_SCREENSHOTS=docs it writes the documentation's
// screenshots.
func TestPortalBrowser(t *testing.T) {
	const (
		addr  = "hoa.tran@agency.example"
		oldPW = "Hoa-cũ-2025"
		newPW = "Mùa thu Hà Nội 2026"
	)
	data := setupData(t)
	ok(t, oldPW+"\n", "user", "add", addr, "--name", "Trần Thị Hoa", "--quota", "2GiB", "--password-stdin", "--data", data)
	srv := startServe(t, data)
	defer srv.stop(t)
	// Some mail, for the quota to show.
	c, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: clientTLS(t, data)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(addr, oldPW).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := "From: a@agency.example\r\nTo: " + addr + "\r\nSubject: =?UTF-8?B?QsOhbyBjw6Fv?=\r\n\r\n" +
		strings.Repeat("Nội dung báo cáo quý III.\r\n", 40000)
	app := c.Append("INBOX", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	site := "https://" + srv.addrs["https-addr"]
	b := browsertest.New(t, readAll(t, filepath.Join(data, "tls/cert.pem")))

	// Logged out, the home page is the login form, in Vietnamese.
	if code := browsertest.Load(t, b, chromedp.Navigate(site+"/")); code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	if h := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("h1"))); h != "Đăng nhập" {
		t.Fatalf("login page heading %q", h)
	}
	browsertest.Screenshot(t, b, "portal-login")

	// The setup help, linked from there.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`main a[href="/setup"]`))); code != 200 {
		t.Fatalf("setup page: %d", code)
	}
	if txt := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(txt, "Cài đặt ứng dụng thư") ||
		!strings.Contains(txt, host+"-ca.pem") || !strings.Contains(txt, "STARTTLS") {
		t.Fatalf("setup page:\n%s", txt)
	}
	browsertest.Screenshot(t, b, "portal-setup")
	if code := browsertest.Load(t, b, chromedp.Navigate(site+"/")); code != 200 {
		t.Fatalf("GET /: %d", code)
	}

	// A wrong password: the form again, saying so.
	browsertest.Do(t, b,
		chromedp.SendKeys(chromedp.CSS(`input[name=address]`), addr),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "sai-mật-khẩu"))
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS("main button"))); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if msg := browsertest.Run(t, b, chromedp.Text(chromedp.CSS(".error"))); !strings.Contains(msg, "Sai địa chỉ thư hoặc mật khẩu") {
		t.Fatalf("wrong password said %q", msg)
	}
	browsertest.Do(t, b,
		chromedp.SetValue(chromedp.CSS(`input[name=address]`), addr),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), oldPW))
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS("main button"))); code != 200 {
		t.Fatalf("login: %d", code)
	}
	home := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{addr, "Trần Thị Hoa", "1,2 MB / 2,0 GB (0%)"} {
		if !strings.Contains(home, want) {
			t.Errorf("home page lacks %q:\n%s", want, home)
		}
	}
	browsertest.Screenshot(t, b, "portal-home")

	// Change the password, while a mail client logged in with the old one
	// waits for mail and another is sending.
	im := imapSession(t, srv, data, addr, oldPW)
	sm, reply := smtpSession(t, srv, data, addr, oldPW)
	if !strings.HasPrefix(reply, "235 ") {
		t.Fatalf("SMTP AUTH: %s", reply)
	}
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`nav a[href="/password"]`))); code != 200 {
		t.Fatalf("password page: %d", code)
	}
	browsertest.Do(t, b,
		chromedp.SendKeys(chromedp.CSS(`input[name=old]`), oldPW),
		chromedp.SendKeys(chromedp.CSS(`input[name=new]`), newPW),
		chromedp.SendKeys(chromedp.CSS(`input[name=confirm]`), newPW))
	browsertest.Screenshot(t, b, "portal-password")
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS("main button"))); code != 200 {
		t.Fatalf("change password: %d", code)
	}
	if msg := browsertest.Run(t, b, chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(msg, "Đã đổi mật khẩu") {
		t.Fatalf("change password said %q", msg)
	}
	checkEndedByPasswordChange(t, im, sm)
	if imapLogin(t, srv, data, addr, oldPW) {
		t.Error("IMAP still takes the old password")
	}
	if !imapLogin(t, srv, data, addr, newPW) {
		t.Error("IMAP refuses the new password")
	}

	// Set an out-of-office reply from tomorrow to a week later.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`nav a[href="/vacation"]`))); code != 200 {
		t.Fatalf("out-of-office page: %d", code)
	}
	from, until := time.Now().AddDate(0, 0, 1), time.Now().AddDate(0, 0, 7)
	browsertest.Do(t, b,
		chromedp.Click(chromedp.CSS(`input[name=on]`)),
		chromedp.SetValue(chromedp.CSS(`input[name=subject]`), "Nghỉ phép năm"),
		chromedp.SetValue(chromedp.CSS(`textarea[name=body]`), vacationText),
		chromedp.SetValue(chromedp.CSS(`input[name=from]`), from.Format(time.DateOnly)),
		chromedp.SetValue(chromedp.CSS(`input[name=until]`), until.Format(time.DateOnly)))
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS("main button"))); code != 200 {
		t.Fatalf("save out-of-office: %d", code)
	}
	browsertest.Screenshot(t, b, "portal-vacation")
	if msg := browsertest.Run(t, b, chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(msg, "Đã lưu") {
		t.Fatalf("save out-of-office said %q", msg)
	}
	if st := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("main p.card"))); !strings.Contains(st, "sẽ bắt đầu ngày "+from.Format("02/01/2006")) {
		t.Errorf("out-of-office status %q", st)
	}
	// The store has it as the page said, as the responder will read it.
	st := openStore(t, data)
	v, err := st.Vacation(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := from.Date()
	wantFrom := time.Date(y, m, d, 0, 0, 0, 0, time.Local)
	y, m, d = until.AddDate(0, 0, 1).Date()
	wantUntil := time.Date(y, m, d, 0, 0, 0, 0, time.Local)
	if v == nil || v.Subject != "Nghỉ phép năm" || v.Body != vacationText || !v.From.Equal(wantFrom) || !v.Until.Equal(wantUntil) {
		t.Errorf("stored out-of-office %+v, want from %v until %v", v, wantFrom, wantUntil)
	}

	// Still logged in here; English on request.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`a[hreflang=en]`))); code != 200 {
		t.Fatalf("switch to English: %d", code)
	}
	if h := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("h1"))); h != "Out-of-office reply" {
		t.Errorf("English heading %q", h)
	}

	// Logging out.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`))); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if h := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("h1"))); h != "Log in" {
		t.Errorf("after logout: %q", h)
	}
	// The log tells of the logins and the change, never of a password.
	logs := srv.logs()
	for _, want := range []string{"web login failed", "web login", "web password changed", "web vacation set"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, pw := range []string{oldPW, newPW, "sai-mật-khẩu"} {
		if strings.Contains(logs, pw) {
			t.Errorf("the log has the password %q:\n%s", pw, logs)
		}
	}
}

// webSession is a client of the portal of srv with its own cookies.
func webSession(t *testing.T, srv *server, data string) *http.Client {
	t.Helper()
	web := webClient(t, data, srv.addrs["https-addr"])
	web.Jar, _ = cookiejar.New(nil)
	return web
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// webLogin posts the portal's login form as a browser does and returns the
// answer (its body read and closed).
func webLogin(t *testing.T, web *http.Client, addr, password string) *http.Response {
	t.Helper()
	site := "https://" + host
	_, page := get(t, web, "GET", site+"/login", "")
	m := tokenRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no token in the login page:\n%s", page)
	}
	form := url.Values{"csrf": {string(m[1])}, "address": {addr}, "password": {password}}
	req, _ := http.NewRequest("POST", site+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := web.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestPortalThrottleShared: wrong passwords on the portal count in the same
// login throttle as IMAP's, so guessing cannot move to the web for a fresh
// allowance.
func TestPortalThrottleShared(t *testing.T) {
	const addr, pw = "an@agency.example", "Đúng-mật-khẩu-1"
	data := setupData(t)
	ok(t, pw+"\n", "user", "add", addr, "--password-stdin", "--data", data)
	srv := startServe(t, data)
	defer srv.stop(t)
	web := webSession(t, srv, data)
	// guess sends wrong passwords on the web until the throttle answers
	// 429, and returns when and for how long it said to wait.
	guess := func() (time.Time, time.Duration) {
		for range 10 {
			resp := webLogin(t, web, addr, "đoán-mò")
			if resp.StatusCode == http.StatusTooManyRequests {
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				return time.Now(), time.Duration(secs-1) * time.Second
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password on the web: %s", resp.Status)
			}
		}
		t.Fatal("the portal checked 10 wrong passwords in a row")
		return time.Time{}, 0
	}
	// IMAP, right after, from the same address: the right password waits
	// too. Each round's wait is twice the last, so a round whose wait
	// passed before IMAP asked (a loaded machine) is followed by one with a
	// longer wait; an IMAP login accepted within the wait is the failure.
	for round := 0; ; round++ {
		at, wait := guess()
		c, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: clientTLS(t, data)})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(addr, pw).Wait()
		c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeUnavailable {
			return
		}
		if err != nil {
			t.Fatalf("IMAP login after guesses on the web: %v, want NO [UNAVAILABLE]", err)
		}
		if time.Since(at) < wait || round == 5 {
			t.Fatalf("IMAP took the password %v after the web's guesses were told to wait %v", time.Since(at), wait)
		}
	}
}
