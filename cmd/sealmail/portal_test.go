package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/internal/browsertest"
)

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
// would: log in, see the quota, change the password (then IMAP takes the new
// one only). With SEALMAIL_SCREENSHOTS=docs it writes the documentation's
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

	// Change the password.
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
	if imapLogin(t, srv, data, addr, oldPW) {
		t.Error("IMAP still takes the old password")
	}
	if !imapLogin(t, srv, data, addr, newPW) {
		t.Error("IMAP refuses the new password")
	}

	// Still logged in here; English on request.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`a[hreflang=en]`))); code != 200 {
		t.Fatalf("switch to English: %d", code)
	}
	if h := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("h1"))); h != "Change the password" {
		t.Errorf("English heading %q", h)
	}

	// Logging out.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`))); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if h := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("h1"))); h != "Log in" {
		t.Errorf("after logout: %q", h)
	}
}
