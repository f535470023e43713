package portal_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/throttle"
	"sealmail/webd/portal"
)

const (
	staff    = "an.nguyen@so.example"
	clerk    = "vanthu@so.example"
	staffPW  = "mật khẩu cũ 1"
	clerkPW  = "văn thư 2026!"
	newPW    = "Mới-toanh-2026"
	otherPW2 = "thứ ba 3333"
)

type env struct {
	t     *testing.T
	store *mailstore.Store
	srv   *portal.Server
	ts    *httptest.Server

	mu  sync.Mutex
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := mailstore.Open(t.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AddDomain(ctx, mailstore.Domain{Name: "so.example"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []mailstore.NewAccount{
		{Address: staff, Name: "Nguyễn Văn An", Password: staffPW, Role: mailstore.RoleStaff, Quota: 100 << 20},
		{Address: clerk, Name: "Trần Thị Thư", Password: clerkPW, Role: mailstore.RoleClerk},
	} {
		if _, err := st.AddAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, store: st, now: time.Now()}
	// The throttle runs on the test's clock, which stands still unless
	// moved: its waits do not pass while a loaded machine runs the test.
	logins := throttle.NewLogins()
	logins.Now = e.clock
	e.srv = &portal.Server{Store: st, Logins: logins, Now: e.clock}
	e.srv.AddNav("/clerk/", portal.Text{VI: "Sổ văn bản", EN: "Registers"}, mailstore.RoleClerk)
	e.srv.Handle("GET /clerk/", e.srv.RequireRole(mailstore.RoleClerk, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := portal.Account(r)
		io.WriteString(w, "register of "+a.Address+" "+portal.T(r, "sổ", "book"))
	})))
	e.srv.Handle("POST /clerk/", e.srv.RequireRole(mailstore.RoleClerk, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "posted "+r.PostForm.Get("x"))
	})))
	e.ts = httptest.NewTLSServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// browser is a client with its own cookies that does not follow redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := e.ts.Client()
	c = &http.Client{Transport: c.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{e: e, c: c}
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) (int, http.Header, string) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.ts.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	s, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(s)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func token(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf token in\n%s", page)
	}
	return m[1]
}

// login logs in and returns the code of the answer to the POST.
func (b *browser) login(addr, pw string) (int, string) {
	_, _, page := b.do("GET", "/login", nil)
	code, _, body := b.do("POST", "/login", url.Values{"csrf": {token(b.e.t, page)}, "address": {addr}, "password": {pw}, "next": {"/"}})
	return code, body
}

func (b *browser) mustLogin(addr, pw string) {
	b.e.t.Helper()
	if code, body := b.login(addr, pw); code != http.StatusSeeOther {
		b.e.t.Fatalf("login %s: %d\n%s", addr, code, body)
	}
}

// csrf returns the token of the session's forms.
func (b *browser) csrf() string {
	b.e.t.Helper()
	code, _, page := b.do("GET", "/password", nil)
	if code != 200 {
		b.e.t.Fatalf("GET /password: %d\n%s", code, page)
	}
	return token(b.e.t, page)
}

func (e *env) checkPassword(addr, pw string, want bool) {
	e.t.Helper()
	_, err := e.store.Authenticate(context.Background(), addr, pw)
	if got := err == nil; got != want {
		e.t.Errorf("password %q of %s works: %v, want %v (%v)", pw, addr, got, want, err)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()

	code, hdr, page := b.do("GET", "/", nil)
	if code != 200 || !strings.Contains(page, `action="/login"`) || !strings.Contains(page, `lang="vi"`) ||
		!strings.Contains(page, "Đăng nhập") || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("home, logged out: %d %v\n%s", code, hdr, page)
	}
	var loginCookie *http.Cookie
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "__Host-sealmail-login" {
			loginCookie = c
		}
	}
	if loginCookie == nil || !loginCookie.Secure || !loginCookie.HttpOnly || loginCookie.SameSite != http.SameSiteStrictMode || loginCookie.Path != "/" {
		t.Fatalf("login cookie: %+v", loginCookie)
	}

	// A page needing a login sends there, and back after.
	code, hdr, _ = b.do("GET", "/password", nil)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/login?next=%2Fpassword" {
		t.Fatalf("GET /password logged out: %d %s", code, hdr.Get("Location"))
	}

	// Wrong password, unknown address, missing token: the form again, no session.
	if code, body := b.login(staff, "sai mật khẩu"); code != http.StatusUnauthorized || !strings.Contains(body, "Sai địa chỉ thư hoặc mật khẩu") {
		t.Fatalf("wrong password: %d\n%s", code, body)
	}
	if code, _ := b.login("nobody@so.example", staffPW); code != http.StatusUnauthorized {
		t.Fatalf("unknown address: %d", code)
	}
	code, _, body := b.do("POST", "/login", url.Values{"address": {staff}, "password": {staffPW}})
	if code != http.StatusForbidden || !strings.Contains(body, "mã bảo vệ") {
		t.Fatalf("login without token: %d\n%s", code, body)
	}
	if code, _, _ := b.do("GET", "/password", nil); code != http.StatusSeeOther {
		t.Fatalf("logged in after failures: %d", code)
	}

	// Another site's form is refused whatever it carries.
	_, _, page = b.do("GET", "/login", nil)
	code, _, _ = b.do("POST", "/login", url.Values{"csrf": {token(t, page)}, "address": {staff}, "password": {staffPW}},
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if code != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", code)
	}

	// The right one, with the address spelled differently, goes to next.
	_, _, page = b.do("GET", "/login?next=/password", nil)
	code, hdr, body = b.do("POST", "/login", url.Values{"csrf": {token(t, page)}, "address": {" An.Nguyen@SO.example "},
		"password": {staffPW}, "next": {"/password"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/password" {
		t.Fatalf("login: %d %s\n%s", code, hdr.Get("Location"), body)
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "__Host-sealmail-session" {
			sess = c
		}
	}
	if sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Domain != "" {
		t.Fatalf("session cookie: %+v", sess)
	}
	code, _, page = b.do("GET", "/", nil)
	if code != 200 || !strings.Contains(page, staff) || !strings.Contains(page, "Nguyễn Văn An") ||
		!strings.Contains(page, "<meter") || !strings.Contains(page, "0 B / 100 MB") || strings.Contains(page, "/clerk/") {
		t.Fatalf("home: %d\n%s", code, page)
	}

	// next never leaves the server.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		b := e.browser()
		_, _, page = b.do("GET", "/login", nil)
		_, hdr, _ = b.do("POST", "/login", url.Values{"csrf": {token(t, page)}, "address": {staff}, "password": {staffPW}, "next": {next}})
		if hdr.Get("Location") != "/" {
			t.Errorf("next=%s: went to %q", next, hdr.Get("Location"))
		}
	}

	// Logging out ends the session in the store: the old cookie is worth nothing.
	code, _, _ = b.do("POST", "/logout", url.Values{"csrf": {b.csrf()}})
	if code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(e.ts.URL)
	jar.SetCookies(u, []*http.Cookie{sess})
	b.c.Jar = jar
	if code, _, page := b.do("GET", "/password", nil); code != http.StatusUnauthorized || !strings.Contains(page, "hết hạn") {
		t.Fatalf("the cookie of a logged out session: %d\n%s", code, page)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	// The throttle answers before the password is checked: once it has
	// seen enough wrong ones, the right one waits too.
	var throttled bool
	for range 10 {
		code, body := b.login(staff, "đoán mò 123")
		if code == http.StatusTooManyRequests {
			if !strings.Contains(body, "Quá nhiều lần nhập sai") {
				t.Fatalf("throttled page:\n%s", body)
			}
			throttled = true
			break
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d\n%s", code, body)
		}
	}
	if !throttled {
		t.Fatal("10 wrong passwords in a row were all checked")
	}
	_, _, page := b.do("GET", "/login", nil)
	code, hdr, _ := b.do("POST", "/login", url.Values{"csrf": {token(t, page)}, "address": {staff}, "password": {staffPW}})
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("right password right after the guesses: %d, Retry-After %q", code, hdr.Get("Retry-After"))
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	a, other := e.browser(), e.browser()
	a.mustLogin(staff, staffPW)
	other.mustLogin(staff, staffPW)
	clerkB := e.browser()
	clerkB.mustLogin(clerk, clerkPW)
	tok := a.csrf()

	refused := []struct {
		name string
		form url.Values
		code int
		say  string
	}{
		{"no token", url.Values{"old": {staffPW}, "new": {newPW}, "confirm": {newPW}}, 403, "mã bảo vệ"},
		{"another session's token", url.Values{"csrf": {clerkB.csrf()}, "old": {staffPW}, "new": {newPW}, "confirm": {newPW}}, 403, "mã bảo vệ"},
		{"wrong old", url.Values{"csrf": {tok}, "old": {"không phải"}, "new": {newPW}, "confirm": {newPW}}, 401, "Mật khẩu hiện tại không đúng"},
		{"mismatch", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {newPW}, "confirm": {newPW + "x"}}, 400, "không khớp"},
		{"short", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {"ngắn 1"}, "confirm": {"ngắn 1"}}, 400, "quá ngắn"},
		{"letters only", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {"chỉcóchữcáithôi"}, "confirm": {"chỉcóchữcáithôi"}}, 400, "chữ cái và chữ số"},
		{"mailbox name", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {"an.nguyen2026"}, "confirm": {"an.nguyen2026"}}, 400, "tên hộp thư"},
		{"same", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {staffPW}, "confirm": {staffPW}}, 400, "phải khác"},
	}
	for _, c := range refused {
		code, _, body := a.do("POST", "/password", c.form)
		if code != c.code || !strings.Contains(body, c.say) {
			t.Errorf("%s: %d\n%s", c.name, code, body)
		}
		e.checkPassword(staff, staffPW, true)
	}
	// An oversize form is refused before anything is read.
	big := url.Values{"csrf": {tok}, "old": {staffPW}, "new": {newPW}, "confirm": {newPW}, "pad": {strings.Repeat("x", 100<<10)}}
	if code, _, body := a.do("POST", "/password", big); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "quá lớn") {
		t.Errorf("oversize form: %d\n%s", code, body)
	}
	e.checkPassword(staff, staffPW, true)

	code, _, body := a.do("POST", "/password", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {newPW}, "confirm": {newPW}})
	if code != 200 || !strings.Contains(body, "Đã đổi mật khẩu") {
		t.Fatalf("change: %d\n%s", code, body)
	}
	e.checkPassword(staff, staffPW, false)
	e.checkPassword(staff, newPW, true)
	// This browser has a new session (and token); the other is logged out,
	// and what it sends changes nothing; the clerk's session is untouched.
	if code, _, page := a.do("GET", "/", nil); code != 200 || !strings.Contains(page, staff) {
		t.Fatalf("the browser that changed it: %d\n%s", code, page)
	}
	if tok2 := a.csrf(); tok2 == tok {
		t.Error("the session kept its token across the change")
	}
	code, _, body = other.do("POST", "/password", url.Values{"csrf": {tok}, "old": {newPW}, "new": {otherPW2}, "confirm": {otherPW2}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "hết hạn") {
		t.Fatalf("the other session: %d\n%s", code, body)
	}
	e.checkPassword(staff, newPW, true)
	if code, _, _ := clerkB.do("GET", "/password", nil); code != 200 {
		t.Fatalf("another account's session: %d", code)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustLogin(staff, staffPW)
	tok := b.csrf()
	// Activity keeps it alive past the idle timeout...
	for range 3 {
		e.advance(20 * time.Minute)
		if code, _, _ := b.do("GET", "/password", nil); code != 200 {
			t.Fatalf("an active session ended: %d", code)
		}
	}
	// ...idleness ends it, and a form sent then changes nothing.
	e.advance(31 * time.Minute)
	code, _, body := b.do("POST", "/password", url.Values{"csrf": {tok}, "old": {staffPW}, "new": {newPW}, "confirm": {newPW}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "Phiên làm việc đã hết hạn") {
		t.Fatalf("idle session: %d\n%s", code, body)
	}
	e.checkPassword(staff, staffPW, true)

	// However active, a session ends after MaxAge.
	b.mustLogin(staff, staffPW)
	var lived time.Duration
	for lived < 13*time.Hour {
		e.advance(29 * time.Minute)
		lived += 29 * time.Minute
		code, _, _ := b.do("GET", "/password", nil)
		if code == 200 {
			continue
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("an old session: %d", code)
		}
		break
	}
	if lived <= 12*time.Hour || lived > 12*time.Hour+29*time.Minute {
		t.Fatalf("an active session lived %v, want 12h", lived)
	}
}

func TestRequireRole(t *testing.T) {
	e := newEnv(t)
	s, c := e.browser(), e.browser()
	s.mustLogin(staff, staffPW)
	c.mustLogin(clerk, clerkPW)
	if code, _, body := s.do("GET", "/clerk/", nil); code != http.StatusForbidden || strings.Contains(body, "register of") ||
		!strings.Contains(body, "Văn thư") {
		t.Errorf("staff on a clerk page: %d\n%s", code, body)
	}
	if code, _, body := s.do("POST", "/clerk/", url.Values{"csrf": {s.csrf()}, "x": {"1"}}); code != http.StatusForbidden || strings.Contains(body, "posted") {
		t.Errorf("staff posting to a clerk page: %d\n%s", code, body)
	}
	if code, _, body := c.do("GET", "/clerk/", nil); code != 200 || body != "register of "+clerk+" sổ" {
		t.Errorf("clerk: %d %q", code, body)
	}
	if code, _, body := c.do("POST", "/clerk/", url.Values{"x": {"1"}}); code != http.StatusForbidden || strings.Contains(body, "posted") {
		t.Errorf("clerk posting without token: %d\n%s", code, body)
	}
	if code, _, body := c.do("POST", "/clerk/", url.Values{"csrf": {c.csrf()}, "x": {"1"}}); code != 200 || body != "posted 1" {
		t.Errorf("clerk posting: %d %q", code, body)
	}
	if _, _, page := c.do("GET", "/", nil); !strings.Contains(page, `href="/clerk/"`) {
		t.Errorf("the clerk's navigation has no register link:\n%s", page)
	}
	if code, _, _ := e.browser().do("GET", "/clerk/", nil); code != http.StatusSeeOther {
		t.Errorf("logged out on a clerk page: %d", code)
	}
	// A disabled account's sessions end.
	if err := e.store.SetDisabled(context.Background(), clerk, true); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c.do("GET", "/clerk/", nil); code != http.StatusUnauthorized {
		t.Errorf("disabled clerk: %d", code)
	}
	if _, err := e.store.WebSession(context.Background(), "x"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("unknown session: %v", err)
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustLogin(clerk, clerkPW)
	code, hdr, _ := b.do("GET", "/lang?to=en&next=/password", nil)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/password" {
		t.Fatalf("switch: %d %s", code, hdr.Get("Location"))
	}
	_, hdr, page := b.do("GET", "/password", nil)
	if !strings.Contains(page, `lang="en"`) || !strings.Contains(page, "Change the password") || !strings.Contains(page, "Tiếng Việt") ||
		hdr.Get("Content-Language") != "en" {
		t.Fatalf("English page:\n%s", page)
	}
	if _, _, body := b.do("GET", "/clerk/", nil); body != "register of "+clerk+" book" {
		t.Errorf("T in English: %q", body)
	}
	if _, hdr, _ := b.do("GET", "/lang?to=vi&next=//evil.example", nil); hdr.Get("Location") != "/" {
		t.Errorf("language switch to another site: %s", hdr.Get("Location"))
	}
	if _, _, page := b.do("GET", "/password", nil); !strings.Contains(page, "Đổi mật khẩu") {
		t.Errorf("back in Vietnamese:\n%s", page)
	}
	if code, _, page := b.do("GET", "/no/such/page", nil); code != 404 || !strings.Contains(page, "Không có trang này") {
		t.Errorf("404: %d\n%s", code, page)
	}
}

func TestVacation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.mustLogin(staff, staffPW)
	stored := func() *mailstore.Vacation {
		t.Helper()
		v, err := e.store.Vacation(ctx, staff)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	code, _, page := b.do("GET", "/vacation", nil)
	if code != 200 || !strings.Contains(page, "đang tắt") || !strings.Contains(page, "Tôi đang vắng mặt") {
		t.Fatalf("vacation page: %d\n%s", code, page)
	}
	tok := token(t, page)
	today := e.clock().In(time.Local)
	day := func(d int) string { return today.AddDate(0, 0, d).Format(time.DateOnly) }
	midnight := func(d int) time.Time {
		y, m, dd := today.AddDate(0, 0, d).Date()
		return time.Date(y, m, dd, 0, 0, 0, 0, time.Local)
	}
	form := func(mod func(url.Values)) url.Values {
		f := url.Values{"csrf": {tok}, "on": {"1"}, "subject": {"Nghỉ phép"},
			"body": {"Tôi nghỉ phép đến thứ Hai.\r\nI am on leave until Monday."}, "from": {day(1)}, "until": {day(7)}}
		if mod != nil {
			mod(f)
		}
		return f
	}

	// Bad input: a clear page, nothing stored.
	for _, c := range []struct {
		name string
		mod  func(url.Values)
		code int
		say  string
	}{
		{"no token", func(f url.Values) { f.Del("csrf") }, 403, "mã bảo vệ"},
		{"end before start", func(f url.Values) { f.Set("until", day(0)) }, 400, "trước ngày bắt đầu"},
		{"end past", func(f url.Values) { f.Set("from", ""); f.Set("until", day(-1)) }, 400, "đã qua"},
		{"not a date", func(f url.Values) { f.Set("from", "31/12/2026") }, 400, "không hợp lệ"},
		{"no text", func(f url.Values) { f.Set("body", " \r\n") }, 400, "nội dung"},
		{"two-line subject", func(f url.Values) { f.Set("subject", "a\r\nBcc: x@evil.example") }, 400, "một dòng"},
		{"long text", func(f url.Values) { f.Set("body", strings.Repeat("ư", 10000)) }, 400, "quá dài"},
		{"oversize form", func(f url.Values) { f.Set("body", strings.Repeat("x", 70<<10)) }, 413, "quá lớn"},
	} {
		code, _, body := b.do("POST", "/vacation", form(c.mod))
		if code != c.code || !strings.Contains(body, c.say) {
			t.Errorf("%s: %d\n%s", c.name, code, body)
		}
		if v := stored(); v != nil {
			t.Fatalf("%s: stored %+v", c.name, v)
		}
	}

	code, _, body := b.do("POST", "/vacation", form(nil))
	if code != 200 || !strings.Contains(body, "Đã lưu") || !strings.Contains(body, "sẽ bắt đầu ngày "+today.AddDate(0, 0, 1).Format("02/01/2006")) {
		t.Fatalf("save: %d\n%s", code, body)
	}
	want := mailstore.Vacation{Subject: "Nghỉ phép", Body: "Tôi nghỉ phép đến thứ Hai.\nI am on leave until Monday.",
		From: midnight(1), Until: midnight(8)}
	if v := stored(); v == nil || v.Subject != want.Subject || v.Body != want.Body || !v.From.Equal(want.From) || !v.Until.Equal(want.Until) {
		t.Fatalf("stored %+v, want %+v", v, want)
	}
	// The page shows what is stored: the last day away, included.
	_, _, page = b.do("GET", "/vacation", nil)
	for _, s := range []string{`value="` + day(1) + `"`, `value="` + day(7) + `"`, "Nghỉ phép", " checked"} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %q:\n%s", s, page)
		}
	}
	// Open ends, no subject (replies say "Auto: " and what they answer); then off.
	if code, _, body := b.do("POST", "/vacation", form(func(f url.Values) { f.Set("from", ""); f.Set("until", ""); f.Set("subject", "") })); code != 200 ||
		!strings.Contains(body, "đến khi tắt") {
		t.Fatalf("open-ended: %d\n%s", code, body)
	}
	if v := stored(); v == nil || !v.From.IsZero() || !v.Until.IsZero() || v.Subject != "" {
		t.Fatalf("open-ended: stored %+v", v)
	}
	if code, _, body := b.do("POST", "/vacation", form(func(f url.Values) { f.Del("on") })); code != 200 || !strings.Contains(body, "đang tắt") {
		t.Fatalf("off: %d\n%s", code, body)
	}
	if v := stored(); v != nil {
		t.Fatalf("off: stored %+v", v)
	}
	// Off, the form keeps the text for next time, unticked.
	_, _, page = b.do("GET", "/vacation", nil)
	if !strings.Contains(page, "Tôi nghỉ phép đến thứ Hai.") || strings.Contains(page, " checked") || !strings.Contains(page, "đang tắt") {
		t.Errorf("the page of a reply turned off:\n%s", page)
	}
}
