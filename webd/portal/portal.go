// Package portal is sealmail's self-service web portal, served on the HTTPS
// listener: staff log in with their mail address and password to see their
// quota use, change their password and set an out-of-office reply; pages of
// other packages (the clerk's registers) plug into the same sessions, layout
// and Vietnamese/English text.
//
// Sessions live in the store (mailstore.WebSession): the cookie carries a
// random token, the store its SHA-256, with the session's CSRF token. Every
// POST carries that token (the login form a pre-session one, paired with a
// cookie); http.CrossOriginProtection refuses cross-site POSTs besides. Cookies
// are __Host- prefixed (Secure, Path=/, no Domain), HttpOnly, SameSite=Lax for
// the session (a link in a mail to a register page arrives logged in; nothing
// a GET does changes anything) and Strict for the login token. Pages need no
// JavaScript and the listener's Content-Security-Policy allows none.
//
// Passwords are checked through the same throttle.Logins as IMAP and SMTP, so
// guessing on the web costs the same allowance; no password is ever logged.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"sealmail/mailstore"
	"sealmail/throttle"
)

// Server is the portal. Set its fields, register extra pages with Handle,
// then serve Handler.
type Server struct {
	Store  *mailstore.Store
	Logins *throttle.Logins // shared with IMAP and SMTP; nil gets its own
	Logger *slog.Logger
	// IdleTimeout ends a session that made no request for this long
	// (default 30 minutes); MaxAge ends it anyway (default 12 hours).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// Now is the clock (nil: time.Now); tests move it to expire sessions.
	Now func() time.Time

	once    sync.Once
	mux     *http.ServeMux
	nav     []navItem
	handler http.Handler
	logins  *throttle.Logins
}

const (
	sessionCookie = "__Host-sealmail-session"
	loginCookie   = "__Host-sealmail-login"
	langCookie    = "sealmail-lang"
	csrfField     = "csrf"
	// maxFormBytes bounds a request's body: the forms are small.
	maxFormBytes = 64 << 10
	// touchEvery bounds the writes a busy session makes to record activity.
	touchEvery = time.Minute
)

func (s *Server) init() {
	s.once.Do(func() {
		if s.IdleTimeout == 0 {
			s.IdleTimeout = 30 * time.Minute
		}
		if s.MaxAge == 0 {
			s.MaxAge = 12 * time.Hour
		}
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		s.logins = s.Logins
		if s.logins == nil {
			s.logins = throttle.NewLogins()
		}
		s.mux = http.NewServeMux()
		s.routes()
	})
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handle registers a handler on the portal, as http.ServeMux.Handle does.
// Wrap h in RequireLogin or RequireRole unless the page is for everyone
// (like the client setup help): the portal does not guess. Call it before
// the first request.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.init()
	s.mux.Handle(pattern, h)
}

// AddNav adds a link to the navigation bar of accounts with role ("" for
// every account). Call it before the first request.
func (s *Server) AddNav(path string, title Text, role mailstore.Role) {
	s.init()
	s.nav = append(s.nav, navItem{Path: path, Title: title, Role: role})
}

// Handler returns the portal's routes, and those registered with Handle.
func (s *Server) Handler() http.Handler {
	s.init()
	if s.handler == nil {
		// Browsers say where a POST comes from (Sec-Fetch-Site, Origin):
		// a cross-site one is refused before the CSRF token is even read.
		s.handler = http.NewCrossOriginProtection().Handler(s.withRequest(s.mux))
	}
	return s.handler
}

type ctxKey int

const reqKey ctxKey = 0

// request is what the portal knows of a request, in its context.
type request struct {
	srv     *Server
	lang    string
	session *mailstore.WebSession // nil: not logged in
	expired bool                  // a session cookie came, for a session that is over
}

func reqOf(r *http.Request) *request {
	if q, ok := r.Context().Value(reqKey).(*request); ok {
		return q
	}
	return &request{lang: "vi"}
}

// withRequest finds the language and the session of every request.
func (s *Server) withRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The listener bounds bodies already; the portal does not rely on it.
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		q := &request{srv: s, lang: "vi"}
		if c, err := r.Cookie(langCookie); err == nil && c.Value == "en" {
			q.lang = "en"
		}
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			ws, err := s.session(r.Context(), c.Value)
			switch {
			case err != nil:
				s.Logger.Error("web: session lookup", "err", err)
				Error(w, r.WithContext(context.WithValue(r.Context(), reqKey, q)), http.StatusServiceUnavailable, busy)
				return
			case ws == nil:
				q.expired = true
				clearCookie(w, sessionCookie)
			default:
				q.session = ws
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqKey, q)))
	})
}

// session returns the live session of a cookie value, nil if there is none
// (unknown, expired, idle too long, the account disabled).
func (s *Server) session(ctx context.Context, token string) (*mailstore.WebSession, error) {
	id := sessionID(token)
	ws, err := s.Store.WebSession(ctx, id)
	if errors.Is(err, mailstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(ws.Expires) || now.Sub(ws.Seen) >= s.IdleTimeout || ws.Account.Disabled {
		if err := s.Store.DeleteWebSession(ctx, id); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if now.Sub(ws.Seen) >= touchEvery {
		// A failed write (a full disk) must not lock staff out of reading
		// their pages: the session may then end a minute early, no more.
		if err := s.Store.TouchWebSession(ctx, id, now); err != nil {
			s.Logger.Warn("web: recording a session's activity", "err", err)
		} else {
			ws.Seen = now
		}
	}
	return &ws, nil
}

// sessionID is the store's key of a session cookie value.
func sessionID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// randomToken is 128 random bits, as text.
func randomToken() string { return rand.Text() }

// startSession logs the browser in as acct: a new session, its cookie set.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, acct mailstore.Account) (*mailstore.WebSession, error) {
	now := s.now()
	// Sessions nobody presents again are swept here, at the next login of
	// anyone: the table stays as small as the staff.
	if _, err := s.Store.DeleteWebSessions(ctx, now, now.Add(-s.IdleTimeout)); err != nil {
		return nil, err
	}
	token := randomToken()
	ws := mailstore.WebSession{ID: sessionID(token), CSRF: randomToken(), Created: now, Seen: now, Expires: now.Add(s.MaxAge)}
	if err := s.Store.CreateWebSession(ctx, acct.Address, ws); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.MaxAge / time.Second)})
	ws.Account = acct
	return &ws, nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
}

// Account returns the logged-in account of a request that passed
// RequireLogin or RequireRole, as the store has it now.
func Account(r *http.Request) (mailstore.Account, bool) {
	q := reqOf(r)
	if q.session == nil {
		return mailstore.Account{}, false
	}
	return q.session.Account, true
}

// RequireLogin serves h to logged-in browsers only, after checking the CSRF
// token of every request other than GET and HEAD (and reading its form: an
// oversize one gets 413). Others get the login page: 401, saying when the
// session has expired; a plain GET of a page is sent to log in first, and
// back after.
func (s *Server) RequireLogin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := reqOf(r)
		if q.session == nil {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !q.expired {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			msg := Text{"Hãy đăng nhập trước. Không có gì thay đổi.", "Log in first. Nothing was changed."}
			if q.expired {
				msg = Text{"Phiên làm việc đã hết hạn: hãy đăng nhập lại. Không có gì thay đổi.",
					"Your session has expired: log in again. Nothing was changed."}
			}
			next := "/"
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				next = safeNext(r.URL.RequestURI())
			}
			s.loginError(w, r, http.StatusUnauthorized, loginForm{Next: next}, msg)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !readForm(w, r) {
				return
			}
			if !tokenEqual(r.PostForm.Get(csrfField), q.session.CSRF) {
				Error(w, r, http.StatusForbidden, Text{
					"Biểu mẫu thiếu mã bảo vệ hoặc đã cũ: không có gì thay đổi. Hãy mở lại trang và gửi lại.",
					"The form's security token is missing or stale: nothing was changed. Open the page again and resubmit."})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// RequireRole is RequireLogin for accounts with role only; others get a 403
// page and nothing of h.
func (s *Server) RequireRole(role mailstore.Role, h http.Handler) http.Handler {
	return s.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, _ := Account(r); a.Role != role {
			Error(w, r, http.StatusForbidden, Text{
				"Trang này chỉ dành cho tài khoản có vai trò " + roleName(role).VI + ".",
				"This page is for accounts with the role " + roleName(role).EN + " only."})
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// readForm parses a POST's form; on error it writes the page (413 for an
// oversize body, 400 otherwise) and returns false.
func readForm(w http.ResponseWriter, r *http.Request) bool {
	err := r.ParseForm()
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		Error(w, r, http.StatusRequestEntityTooLarge, Text{
			"Nội dung gửi lên quá lớn: không có gì thay đổi.",
			"What was sent is too large: nothing was changed."})
		return false
	}
	Error(w, r, http.StatusBadRequest, Text{"Biểu mẫu không đọc được.", "The form could not be read."})
	return false
}

func tokenEqual(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// clientAddr is the address the throttle counts a request against.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// safeNext returns u if it is a path on this server to go back to after
// logging in, "/" otherwise: never another site.
func safeNext(u string) string {
	if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") || strings.HasPrefix(u, "/\\") ||
		strings.HasPrefix(u, "/login") || strings.ContainsAny(u, "\r\n") {
		return "/"
	}
	return u
}
