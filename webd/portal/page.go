package portal

import (
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"sealmail/mailstore"
)

// Text is a text in Vietnamese (the default) and English.
type Text struct{ VI, EN string }

// In returns the text in lang ("en" or anything else for Vietnamese).
func (t Text) In(lang string) string {
	if lang == "en" && t.EN != "" {
		return t.EN
	}
	return t.VI
}

// Lang returns the request's language: "vi" unless the browser switched
// to "en" (a cookie set by /lang).
func Lang(r *http.Request) string { return reqOf(r).lang }

// T returns vi or en, in the request's language.
func T(r *http.Request, vi, en string) string { return Text{vi, en}.In(Lang(r)) }

type navItem struct {
	Path  string
	Title Text
	Role  mailstore.Role
}

// View is what a page's template gets as dot: the page's own Data, and
// what the layout needs. Its methods are for the templates:
// {{.T "Sổ đi" "Outgoing register"}}, {{.CSRFField}} in every POST form,
// {{.Size 1234}}, {{.Date t}}.
type View struct {
	Lang    string
	Title   string
	Account *mailstore.Account // nil: not logged in
	CSRF    string             // the session's form token ("" when not logged in)
	Path    string             // this page, for the language switch
	Nav     []navItem
	Message *Message
	Data    any
}

// Message is a notice shown above a page's content.
type Message struct {
	Text  Text
	Error bool // an error, not a confirmation
}

// T returns vi or en, in the page's language.
func (v *View) T(vi, en string) string { return Text{vi, en}.In(v.Lang) }

// CSRFField is the hidden input every POST form of a logged-in page needs.
func (v *View) CSRFField() template.HTML {
	return template.HTML(`<input type="hidden" name="` + csrfField + `" value="` + template.HTMLEscapeString(v.CSRF) + `">`)
}

// Size writes a byte count for people: 1,5 MB in Vietnamese, 1.5 MB in English.
func (v *View) Size(n int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := fmt.Sprintf("%.0f %s", f, units[i])
	if i > 0 && f < 100 {
		s = fmt.Sprintf("%.1f %s", f, units[i])
	}
	if v.Lang != "en" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// Date writes a day as people write it in the page's language (02/01/2006
// in Vietnamese, 2006-01-02 in English); the zero time is "".
func (v *View) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if v.Lang == "en" {
		return t.Format(time.DateOnly)
	}
	return t.Format("02/01/2006")
}

//go:embed layout.html
var layoutHTML string

var layout = template.Must(template.New("layout").Parse(layoutHTML))

// Page is a page in the portal's layout.
type Page struct {
	title Text
	t     *template.Template
}

// NewPage makes a page titled title whose content, inside the layout, is
// the html/template text content, executed with a *View as dot. It panics
// if content does not parse (call it at package level, like template.Must).
func NewPage(title Text, content string) *Page {
	t := template.Must(layout.Clone())
	template.Must(t.New("content").Parse(content))
	return &Page{title: title, t: t}
}

// Render writes the page with status and data (View.Data).
func (p *Page) Render(w http.ResponseWriter, r *http.Request, status int, data any) {
	p.render(w, r, status, nil, data)
}

// RenderMessage is Render with a notice above the content.
func (p *Page) RenderMessage(w http.ResponseWriter, r *http.Request, status int, msg Message, data any) {
	p.render(w, r, status, &msg, data)
}

func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, msg *Message, data any) {
	q := reqOf(r)
	v := &View{Lang: q.lang, Title: p.title.In(q.lang), Path: r.URL.RequestURI(), Message: msg, Data: data}
	if q.session != nil {
		a := q.session.Account
		v.Account, v.CSRF = &a, q.session.CSRF
		if q.srv != nil {
			for _, n := range q.srv.nav {
				if n.Role == "" || n.Role == a.Role {
					v.Nav = append(v.Nav, n)
				}
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", q.lang)
	w.WriteHeader(status)
	if err := p.t.ExecuteTemplate(w, "layout", v); err != nil {
		logger(q).Error("web: writing a page", "page", p.title.EN, "err", err)
	}
}

func logger(q *request) *slog.Logger {
	if q.srv != nil {
		return q.srv.Logger
	}
	return slog.Default()
}

var errorPage = NewPage(Text{"Không thực hiện được", "Not done"},
	`<p><a href="/">{{.T "Về trang chính" "Back to the home page"}}</a></p>`)

// Error writes a page saying msg, with status.
func Error(w http.ResponseWriter, r *http.Request, status int, msg Text) {
	errorPage.RenderMessage(w, r, status, Message{Text: msg, Error: true}, nil)
}

//go:embed portal.css
var css []byte

func serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(css)
}
