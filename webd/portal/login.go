package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"sealmail/mailstore"
	"sealmail/throttle"
)

func (s *Server) routes() {
	s.mux.HandleFunc("GET /portal.css", serveCSS)
	s.mux.HandleFunc("GET /login", s.getLogin)
	s.mux.HandleFunc("POST /login", s.postLogin)
	s.mux.HandleFunc("GET /lang", s.setLang)
	s.mux.Handle("POST /logout", s.RequireLogin(http.HandlerFunc(s.logout)))
	s.mux.HandleFunc("GET /{$}", s.home)
	s.mux.Handle("GET /password", s.RequireLogin(http.HandlerFunc(s.getPassword)))
	s.mux.Handle("POST /password", s.RequireLogin(http.HandlerFunc(s.postPassword)))
	s.mux.Handle("GET /vacation", s.RequireLogin(http.HandlerFunc(s.getVacation)))
	s.mux.Handle("POST /vacation", s.RequireLogin(http.HandlerFunc(s.postVacation)))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		Error(w, r, http.StatusNotFound, Text{"Không có trang này.", "There is no such page."})
	})
}

type loginForm struct {
	Address string
	Next    string
	Token   string // the login form's CSRF token, paired with its cookie
}

var loginPage = NewPage(Text{"Đăng nhập", "Log in"}, `
<div class="card">
<form method="post" action="/login" class="stack">
<input type="hidden" name="csrf" value="{{.Data.Token}}">
<input type="hidden" name="next" value="{{.Data.Next}}">
<label>{{.T "Địa chỉ thư" "Mail address"}}
<input type="email" name="address" value="{{.Data.Address}}" required autocomplete="username" autofocus></label>
<label>{{.T "Mật khẩu" "Password"}}
<input type="password" name="password" required autocomplete="current-password"></label>
<button>{{.T "Đăng nhập" "Log in"}}</button>
</form>
</div>
<p><a href="/setup">{{.T "Cài đặt Thunderbird, Outlook, điện thoại và chứng thư của máy chủ" "Set up Thunderbird, Outlook, phones and the server's certificate"}}</a></p>
`)

// loginPage writes the login form, with its token (a cookie set when absent)
// and msg (nil: none).
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, f loginForm, msg *Message) {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) >= 20 {
		f.Token = c.Value
	} else {
		f.Token = randomToken()
		http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: f.Token, Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteStrictMode})
	}
	loginPage.render(w, r, status, msg, f)
}

func (s *Server) getLogin(w http.ResponseWriter, r *http.Request) {
	if reqOf(r).session != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.loginPage(w, r, http.StatusOK, loginForm{Next: safeNext(r.URL.Query().Get("next"))}, nil)
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	f := loginForm{Address: strings.TrimSpace(r.PostForm.Get("address")), Next: safeNext(r.PostForm.Get("next"))}
	c, err := r.Cookie(loginCookie)
	if err != nil || !tokenEqual(r.PostForm.Get(csrfField), c.Value) {
		s.loginError(w, r, http.StatusForbidden, f, Text{
			"Biểu mẫu đăng nhập thiếu mã bảo vệ hoặc đã cũ (trình duyệt cần cho phép cookie). Hãy thử lại.",
			"The login form's security token is missing or stale (the browser must accept cookies). Try again."})
		return
	}
	password := r.PostForm.Get("password")
	if f.Address == "" || password == "" {
		s.loginError(w, r, http.StatusBadRequest, f, Text{"Hãy nhập địa chỉ thư và mật khẩu.", "Enter your mail address and password."})
		return
	}
	acct, status, msg := s.checkPassword(w, r, f.Address, password)
	if status != 0 {
		s.loginError(w, r, status, f, msg)
		return
	}
	if _, err := s.startSession(r.Context(), w, acct); err != nil {
		s.Logger.Error("web: start session", "account", acct.Address, "err", err)
		s.loginError(w, r, http.StatusServiceUnavailable, f, busy)
		return
	}
	s.Logger.Info("web login", "account", acct.Address, "ip", clientAddr(r))
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}

var busy = Text{"Máy chủ đang bận, xin thử lại sau.", "The server is busy, try again later."}

func (s *Server) loginError(w http.ResponseWriter, r *http.Request, status int, f loginForm, msg Text) {
	s.loginPage(w, r, status, f, &Message{msg, true})
}

// checkPassword checks an account's password through the login throttle, as
// IMAP and SMTP do. It returns the account, or the status and message of
// the refusal.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, address, password string) (mailstore.Account, int, Text) {
	try, err := s.logins.Begin(mailstore.LoginName(address), clientAddr(r))
	if err != nil {
		var te *throttle.ThrottledError
		secs := 60
		if errors.As(err, &te) {
			secs = int(te.RetryAfter.Seconds()) + 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return mailstore.Account{}, http.StatusTooManyRequests, Text{
			"Quá nhiều lần nhập sai mật khẩu: hãy thử lại sau " + strconv.Itoa(secs) + " giây.",
			"Too many wrong passwords: try again in " + strconv.Itoa(secs) + " s."}
	}
	acct, err := s.Store.Authenticate(r.Context(), address, password)
	switch {
	case errors.Is(err, mailstore.ErrAuthFailed):
		try.Fail()
		s.Logger.Info("web login failed", "user", address, "ip", clientAddr(r))
		return acct, http.StatusUnauthorized, Text{"Sai địa chỉ thư hoặc mật khẩu.", "Wrong mail address or password."}
	case errors.Is(err, mailstore.ErrDisabled):
		try.Cancel()
		return acct, http.StatusForbidden, Text{"Tài khoản đã bị khoá: hãy liên hệ quản trị viên.",
			"The account is disabled: contact the administrator."}
	case err != nil:
		try.Cancel()
		s.Logger.Error("web: authenticate", "user", address, "err", err)
		return acct, http.StatusServiceUnavailable, busy
	}
	try.Succeed()
	return acct, 0, Text{}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	if err := s.Store.DeleteWebSession(r.Context(), q.session.ID); err != nil {
		s.Logger.Error("web: logout", "err", err)
		Error(w, r, http.StatusServiceUnavailable, busy)
		return
	}
	clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// setLang switches the language (a cookie) and goes back to the page.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := "vi"
	if r.URL.Query().Get("to") == "en" {
		lang = "en"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}
