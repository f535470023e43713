// Package webd is sealmail's web listener: over HTTPS, what mail clients fetch
// to configure themselves (Thunderbird autoconfig, Outlook Autodiscover, an
// Apple profile), the local CA staff import, and the MTA-STS policy other
// servers fetch; over plain HTTP only autoconfig (Thunderbird asks there) and
// redirects to HTTPS.
package webd

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"sealmail/autoconfig"
	"sealmail/mailstore"
	"sealmail/tlslog"
	"sealmail/webd/portal"
)

// CA offers the local CA when it issued the served certificate.
type CA interface {
	CAPEM() ([]byte, bool)
}

// Server serves the web listeners.
type Server struct {
	Store     *mailstore.Store
	TLSConfig *tls.Config
	Client    autoconfig.Server // where clients find IMAP and submission
	CA        CA
	Logger    *slog.Logger
	// TLSFailures is told of failed TLS handshakes (nil: they are not reported).
	TLSFailures *tlslog.Reporter
	// Portal serves every HTTPS path not listed in Handler, and Setup at
	// /setup (nil: Setup at / and /setup, and nothing else).
	Portal http.Handler

	mu      sync.Mutex
	servers []*http.Server
}

// Limits of every request: these pages take small forms, nothing more.
const (
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 64 << 10
	// handshakeTimeout bounds a client's TLS handshake.
	handshakeTimeout = 30 * time.Second
)

func (s *Server) newHTTPServer(h http.Handler, https bool) *http.Server {
	hs := &http.Server{
		Handler:           securityHeaders(h, https),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	return hs
}

// ServeHTTPS serves everything over TLS on l until Shutdown.
func (s *Server) ServeHTTPS(l net.Listener) error {
	// A copy: the mail listeners share s.TLSConfig, and ALPN http/1.1 added
	// to theirs would refuse a client offering "imap" ("no application
	// protocol"), which net/http's ServeTLS did to the shared one.
	cfg := s.TLSConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	hs := s.newHTTPServer(s.Handler(), true)
	err := hs.Serve(s.TLSFailures.Listener(l, cfg, "https", handshakeTimeout))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServePlain serves autoconfig over plain HTTP on l and redirects the rest to
// HTTPS on httpsPort (443 drops the port from the address; 0, HTTPS off, 404s).
func (s *Server) ServePlain(l net.Listener, httpsPort int) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", s.thunderbird)
	mux.HandleFunc("GET /mail/config-v1.1.xml", s.thunderbird)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if host == "" || httpsPort == 0 {
			http.NotFound(w, r)
			return
		}
		if httpsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(httpsPort))
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	hs := s.newHTTPServer(mux, false)
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listeners and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, hs := range s.servers {
		errs = append(errs, hs.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Handler returns the HTTPS routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", s.thunderbird)
	mux.HandleFunc("GET /mail/config-v1.1.xml", s.thunderbird)
	// Outlook's spelling varies between versions.
	mux.HandleFunc("POST /autodiscover/autodiscover.xml", s.autodiscover)
	mux.HandleFunc("POST /Autodiscover/Autodiscover.xml", s.autodiscover)
	mux.HandleFunc("GET /.well-known/mta-sts.txt", s.mtaSTS)
	mux.HandleFunc("GET /ca.pem", s.caPEM)
	mux.HandleFunc("GET /sealmail.mobileconfig", s.mobileConfig)
	if s.Portal != nil {
		mux.Handle("/", s.Portal)
	} else {
		mux.HandleFunc("GET /setup", s.Setup)
		mux.HandleFunc("GET /{$}", s.Setup)
	}
	return mux
}

// domainOf returns the hosted domain of an address, or "" with a 404 written.
func (s *Server) hosted(w http.ResponseWriter, r *http.Request, domain string) bool {
	domain = strings.ToLower(strings.TrimSpace(domain))
	ok, err := s.Store.IsLocalDomain(r.Context(), domain)
	if err != nil {
		s.Logger.Error("web: domain lookup", "err", err)
		http.Error(w, "temporary failure, try again later", http.StatusServiceUnavailable)
		return false
	}
	if !ok {
		http.Error(w, "this server does not host "+domain, http.StatusNotFound)
	}
	return ok
}

// thunderbird answers autoconfig, for the domain of ?emailaddress= or, on the
// autoconfig.DOMAIN host, for DOMAIN.
func (s *Server) thunderbird(w http.ResponseWriter, r *http.Request) {
	domain := ""
	if _, d, ok := strings.Cut(r.URL.Query().Get("emailaddress"), "@"); ok {
		domain = d
	} else if d, ok := strings.CutPrefix(hostOnly(r.Host), "autoconfig."); ok {
		domain = d
	}
	if domain == "" {
		http.Error(w, "emailaddress parameter required", http.StatusBadRequest)
		return
	}
	if !s.hosted(w, r, domain) {
		return
	}
	b, err := autoconfig.Thunderbird(strings.ToLower(domain), strings.ToLower(domain), s.Client)
	s.reply(w, "application/xml; charset=utf-8", b, err)
}

func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	addr, err := autoconfig.AutodiscoverAddress(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Logins are case-insensitive: Outlook gets the spelling that works.
	addr = mailstore.LoginName(addr)
	_, domain, _ := strings.Cut(addr, "@")
	if !s.hosted(w, r, domain) {
		return
	}
	name := ""
	if a, err := s.Store.Account(r.Context(), addr); err == nil {
		name = a.Name
	}
	b, err := autoconfig.Autodiscover(addr, name, s.Client)
	s.reply(w, "application/xml; charset=utf-8", b, err)
}

func (s *Server) mtaSTS(w http.ResponseWriter, r *http.Request) {
	domain, ok := strings.CutPrefix(hostOnly(r.Host), "mta-sts.")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !s.hosted(w, r, domain) {
		return
	}
	_, local := s.CA.CAPEM()
	policy := autoconfig.MTASTSPolicy(s.Client.Host, autoconfig.MTASTSMode(!local))
	s.reply(w, "text/plain; charset=utf-8", []byte(policy), nil)
}

func (s *Server) caPEM(w http.ResponseWriter, r *http.Request) {
	ca, ok := s.CA.CAPEM()
	if !ok {
		http.Error(w, "this server's certificate is from a public CA: nothing to install", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+s.Client.Host+`-ca.pem"`)
	s.reply(w, "application/x-pem-file", ca, nil)
}

func (s *Server) mobileConfig(w http.ResponseWriter, r *http.Request) {
	addr := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("email")))
	_, domain, ok := strings.Cut(addr, "@")
	if !ok {
		http.Error(w, "email parameter required", http.StatusBadRequest)
		return
	}
	if !s.hosted(w, r, domain) {
		return
	}
	name := ""
	if a, err := s.Store.Account(r.Context(), addr); err == nil {
		name = a.Name
	}
	ca, _ := s.CA.CAPEM()
	b, err := autoconfig.MobileConfig(addr, name, s.Client, ca)
	w.Header().Set("Content-Disposition", `attachment; filename="sealmail.mobileconfig"`)
	s.reply(w, "application/x-apple-aspen-config", b, err)
}

var setupPage = portal.NewPage(portal.Text{VI: "Cài đặt ứng dụng thư", EN: "Setting up mail apps"}, `
{{with .Data}}<div class="card">
<p>{{$.T "Thunderbird, Outlook và Apple Mail tự cấu hình: chỉ cần nhập địa chỉ thư và mật khẩu." "Thunderbird, Outlook and Apple Mail configure themselves: enter your address and password."}}</p>
<table>
<tr><th>IMAP</th><td>{{.Host}}{{if .IMAPS}}, {{$.T "cổng" "port"}} {{.IMAPS}} (SSL/TLS){{end}}{{if .IMAP}}, {{.IMAP}} (STARTTLS){{end}}</td></tr>
<tr><th>SMTP</th><td>{{.Host}}{{if .Submissions}}, {{$.T "cổng" "port"}} {{.Submissions}} (SSL/TLS){{end}}{{if .Submission}}, {{.Submission}} (STARTTLS){{end}}</td></tr>
<tr><th>{{$.T "Tên đăng nhập" "User name"}}</th><td>{{$.T "địa chỉ thư đầy đủ" "the whole mail address"}}</td></tr>
</table>
</div>
{{if .CA}}<h2>{{$.T "Chứng thư gốc của máy chủ" "The server's root certificate"}}</h2>
<p><a href="/ca.pem">{{.Host}}-ca.pem</a> — {{$.T "cài một lần để máy tính và điện thoại tin cậy máy chủ." "install it once so that your devices trust the server."}}</p>{{end}}
<h2>iPhone, iPad, Mac</h2>
<form method="get" action="/sealmail.mobileconfig" class="stack">
<label>{{$.T "Địa chỉ thư" "Mail address"}} <input type="email" name="email" required placeholder="ten@coquan.gov.vn"></label>
<button>{{$.T "Tải cấu hình" "Download the profile"}}</button>
</form>
{{if and .Portal (not $.Account)}}<p><a href="/">{{$.T "Đăng nhập: đổi mật khẩu, trả lời tự động" "Log in: change the password, out-of-office reply"}}</a></p>{{end}}
{{end}}`)

// Setup tells staff how to set up their mail clients. Handler serves it
// at /setup without a portal; with one, register it on the portal (which
// adds the language switch and the logged-in layout).
func (s *Server) Setup(w http.ResponseWriter, r *http.Request) {
	_, ca := s.CA.CAPEM()
	setupPage.Render(w, r, http.StatusOK, struct {
		autoconfig.Server
		CA, Portal bool
	}{s.Client, ca, s.Portal != nil})
}

func (s *Server) reply(w http.ResponseWriter, contentType string, body []byte, err error) {
	if err != nil {
		s.Logger.Error("web: building a response", "err", err)
		http.Error(w, "server configuration error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// securityHeaders adds the headers every response carries: no scripts, no
// framing, no sniffing, no referrer; HSTS over TLS.
func securityHeaders(h http.Handler, https bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		if https {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

// hostOnly returns the lower-case host of a Host header, without port.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
