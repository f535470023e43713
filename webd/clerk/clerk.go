// Package clerk is the registry clerk's (văn thư) part of the web portal:
// the registers of documents sent and received (sổ đi, sổ đến) with the
// columns of Decree 30/2020 Appendix IV, filtered by year, agency, type and
// text; a document's status (its register lines, receipts, the evidence
// chain and a fresh verification of the original kept); and the registers
// as CSV, XLSX and the print-ready A4 book of the year (Art. 16.2.b,
// 22.3.b). Every page is read-only (GET): nothing here changes a register.
//
// Only accounts with the clerk role see anything, and only their own
// agency's (domain's) registers; any other account gets 403.
package clerk

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/registry/book"
	"sealmail/signing"
)

// Pages serves the clerk pages under /clerk/.
type Pages struct {
	Store    *mailstore.Store
	Registry *registry.Registry // verifies originals with its trust settings
	// Account returns the logged-in account of a request, false if none.
	Account func(*http.Request) (mailstore.Account, bool)
	// Render writes a page in the portal's layout: title and body in the
	// request's language. Nil writes a page of its own.
	Render func(w http.ResponseWriter, r *http.Request, status int, title string, body template.HTML)
	// Lang returns the request's language, "vi" or "en". Nil: "vi".
	Lang   func(*http.Request) string
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
}

//go:embed page.html style.css
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"tr": func(lang, vi, en string) string {
		if lang == "en" {
			return en
		}
		return vi
	},
	"date":  func(t time.Time) string { return t.In(registry.ICT).Format("02/01/2006 15:04:05") },
	"short": func(s string) string { return s[:min(len(s), 16)] },
}).ParseFS(files, "page.html"))

// Handler returns the routes under /clerk/.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /clerk/{$}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := p.clerk(w, r); ok {
			http.Redirect(w, r, "/clerk/out", http.StatusSeeOther)
		}
	})
	mux.HandleFunc("GET /clerk/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		http.ServeFileFS(w, r, files, "style.css")
	})
	mux.HandleFunc("GET /clerk/{dir}", p.register)
	mux.HandleFunc("GET /clerk/{dir}/export/{format}", p.export)
	mux.HandleFunc("GET /clerk/doc/{id}", p.status)
	mux.HandleFunc("/clerk/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := p.clerk(w, r); ok {
			p.fail(w, r, http.StatusNotFound, "Không có trang này.", "There is no such page.")
		}
	})
	return mux
}

func (p *Pages) lang(r *http.Request) string {
	if p.Lang != nil && p.Lang(r) == "en" {
		return "en"
	}
	return "vi"
}

func (p *Pages) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// clerk returns the logged-in clerk and the agency whose registers they
// keep, or writes 403 (401 without a login) and returns false.
func (p *Pages) clerk(w http.ResponseWriter, r *http.Request) (mailstore.Domain, bool) {
	a, ok := p.Account(r)
	if !ok {
		p.fail(w, r, http.StatusUnauthorized, "Hãy đăng nhập bằng tài khoản văn thư.", "Log in with a clerk's account.")
		return mailstore.Domain{}, false
	}
	if a.Role != mailstore.RoleClerk || a.Disabled {
		p.fail(w, r, http.StatusForbidden, "Trang này chỉ dành cho văn thư (tài khoản có vai trò clerk).",
			"This page is for registry clerks (accounts with the clerk role) only.")
		return mailstore.Domain{}, false
	}
	_, domain, _ := strings.Cut(a.Address, "@")
	d, err := p.Store.Domain(r.Context(), domain)
	if err != nil {
		p.internal(w, r, err)
		return mailstore.Domain{}, false
	}
	return d, true
}

// view is what every template gets.
type view struct {
	L string // language: vi or en
}

// show renders the named template into the layout.
func (p *Pages) show(w http.ResponseWriter, r *http.Request, status int, name, titleVi, titleEn string, data any) {
	var body bytes.Buffer
	if err := pages.ExecuteTemplate(&body, name, data); err != nil {
		p.internal(w, r, err)
		return
	}
	title := titleVi
	if p.lang(r) == "en" {
		title = titleEn
	}
	if p.Render != nil {
		p.Render(w, r, status, title, template.HTML(body.String())) // our own template's output
		return
	}
	var page bytes.Buffer
	if err := pages.ExecuteTemplate(&page, "layout", struct {
		view
		Title string
		Body  template.HTML
	}{view{p.lang(r)}, title, template.HTML(body.String())}); err != nil {
		p.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(page.Bytes())
}

// fail shows a page that says only what went wrong.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, status int, vi, en string) {
	titleVi, titleEn := "Lỗi", "Error"
	switch status {
	case http.StatusForbidden:
		titleVi, titleEn = "Không được phép", "Forbidden"
	case http.StatusNotFound:
		titleVi, titleEn = "Không tìm thấy", "Not found"
	case http.StatusUnauthorized:
		titleVi, titleEn = "Chưa đăng nhập", "Not logged in"
	}
	p.show(w, r, status, "error", titleVi, titleEn, struct {
		view
		Status   int
		Vi, En   string
		LoggedIn bool
	}{view{p.lang(r)}, status, vi, en, status != http.StatusUnauthorized})
}

func (p *Pages) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.Logger.Error("web: clerk page", "path", r.URL.Path, "err", err)
	p.fail(w, r, http.StatusInternalServerError, "Lỗi máy chủ; hãy thử lại sau.", "Server error; try again later.")
}

// selection is a register and the lines a request selects in it.
type selection struct {
	Dir          mailstore.Direction
	Year         int
	Confidential bool
	Filter       book.Filter
	Book         *book.Book
	All          []mailstore.DocEntry // the year's register
}

// query is the selection's URL query, for links to the same selection.
func (s *selection) query(withFilter bool) string {
	v := url.Values{"year": {strconv.Itoa(s.Year)}}
	if s.Confidential {
		v.Set("mat", "1")
	}
	if withFilter {
		for k, x := range map[string]string{"agency": s.Filter.Agency, "type": s.Filter.Type, "q": s.Filter.Text} {
			if x != "" {
				v.Set(k, x)
			}
		}
	}
	return v.Encode()
}

// selectDocs reads the register and the filter a request names, or writes
// an error page and returns nil.
func (p *Pages) selectDocs(w http.ResponseWriter, r *http.Request) (*mailstore.Domain, *selection) {
	d, ok := p.clerk(w, r)
	if !ok {
		return nil, nil
	}
	sel := &selection{Year: p.now().In(registry.ICT).Year()}
	switch r.PathValue("dir") {
	case "out":
		sel.Dir = mailstore.DocOut
	case "in":
		sel.Dir = mailstore.DocIn
	default:
		p.fail(w, r, http.StatusNotFound, "Không có sổ này: chỉ có sổ văn bản đi (out) và sổ văn bản đến (in).",
			"No such register: there are the outgoing (out) and incoming (in) ones.")
		return nil, nil
	}
	q := r.URL.Query()
	if y := q.Get("year"); y != "" {
		n, err := strconv.Atoi(y)
		if err != nil || n < 1 || n > 9999 {
			p.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Năm %q không hợp lệ.", y), fmt.Sprintf("%q is not a year.", y))
			return nil, nil
		}
		sel.Year = n
	}
	sel.Confidential = q.Get("mat") != ""
	sel.Filter = book.Filter{Agency: q.Get("agency"), Type: q.Get("type"), Text: q.Get("q")}
	all, err := p.Store.Docs(r.Context(), mailstore.DocQuery{Domain: d.Name, Direction: sel.Dir, Year: sel.Year})
	if err != nil {
		p.internal(w, r, err)
		return nil, nil
	}
	series := mailstore.SeriesOrdinary
	if sel.Confidential {
		series = mailstore.SeriesConfidential
	}
	for _, e := range all {
		if e.Series == series {
			sel.All = append(sel.All, e)
		}
	}
	agency := d.OrganName
	if agency == "" {
		agency = d.Name
	}
	sel.Book = &book.Book{Agency: agency, Direction: sel.Dir, Year: sel.Year, Confidential: sel.Confidential,
		Entries: sel.Filter.Select(sel.All), Location: registry.ICT}
	return &d, sel
}

type registerView struct {
	view
	Dir                string
	Title              string
	Agency             string
	Year               int
	Years              []int
	Confidential       bool
	Filter             book.Filter
	Agencies, Types    []string
	NoType             string
	Columns            []book.Column
	Rows               []registerRow
	Total              int
	Query, YearQuery   template.URL // url.Values.Encode's: safe in an href
	Filtered           bool
	OtherDir, OtherTit string
}

type registerRow struct {
	ID    int64
	Cells []string
}

func (p *Pages) register(w http.ResponseWriter, r *http.Request) {
	d, sel := p.selectDocs(w, r)
	if sel == nil {
		return
	}
	years, err := p.Store.DocYears(r.Context(), d.Name, sel.Dir)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, y := range []int{p.now().In(registry.ICT).Year(), sel.Year} {
		if !slices.Contains(years, y) {
			years = append(years, y)
		}
	}
	slices.Sort(years)
	slices.Reverse(years)
	v := registerView{view: view{p.lang(r)}, Dir: string(sel.Dir), Title: sel.Book.Title(), Agency: sel.Book.Agency,
		Year: sel.Year, Years: years, Confidential: sel.Confidential, Filter: sel.Filter,
		Agencies: book.Agencies(sel.All), Types: book.Types(sel.All), NoType: book.NoType, Columns: sel.Book.Columns(),
		Total: len(sel.All), Query: template.URL(sel.query(true)), YearQuery: template.URL(sel.query(false)),
		Filtered: sel.Filter != (book.Filter{})}
	for i, cells := range sel.Book.Rows() {
		v.Rows = append(v.Rows, registerRow{ID: sel.Book.Entries[i].ID, Cells: cells})
	}
	titleEn := "Outgoing register"
	if sel.Dir == mailstore.DocIn {
		titleEn = "Incoming register"
	}
	p.show(w, r, http.StatusOK, "register", sel.Book.Title(), titleEn, v)
}

// export writes the selected lines as CSV or XLSX, or as the A4 book to
// print (PDF).
func (p *Pages) export(w http.ResponseWriter, r *http.Request) {
	format := r.PathValue("format")
	if _, sel := p.selectDocs(w, r); sel != nil {
		var buf bytes.Buffer
		var err error
		var ctype string
		switch format {
		case "csv":
			ctype, err = "text/csv; charset=utf-8", sel.Book.WriteCSV(&buf)
		case "xlsx":
			ctype, err = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", sel.Book.WriteXLSX(&buf)
		case "pdf":
			ctype, err = "application/pdf", sel.Book.WritePDF(&buf, p.now().In(registry.ICT))
		default:
			p.fail(w, r, http.StatusNotFound, "Chỉ tải được CSV, XLSX và PDF.", "Downloads are CSV, XLSX and PDF.")
			return
		}
		if err != nil {
			p.internal(w, r, err)
			return
		}
		name := "so-van-ban-di"
		if sel.Dir == mailstore.DocIn {
			name = "so-van-ban-den"
		}
		if sel.Confidential {
			name += "-mat"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d.%s"`, name, sel.Year, format))
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Header().Set("Cache-Control", "no-store")
		w.Write(buf.Bytes())
	}
}

type statusView struct {
	view
	Entry     mailstore.DocEntry
	In        bool
	Fields    []field
	Acks      []ack
	Evidence  []evidence
	ChainOK   bool
	ChainRows int
	ChainHead string
	ChainErr  string
	Verified  *signing.Result
	NoOrig    bool
	VerifyErr string
	Back      string
}

type field struct{ Vi, En, Value string }

type ack struct {
	mailstore.DocAck
	Vi, En string
}

type evidence struct {
	mailstore.Evidence
	Vi, En string
}

// statusNames are the edXML status codes (QCVN 102:2016) of receipts.
var statusNames = map[string][2]string{
	"01": {"Đã đến", "arrived"},
	"02": {"Từ chối tiếp nhận", "refused"},
	"03": {"Đã tiếp nhận, vào sổ", "registered"},
	"04": {"Đã phân công xử lý", "assigned"},
	"05": {"Đang xử lý", "being processed"},
	"06": {"Hoàn thành", "done"},
	"13": {"Yêu cầu lấy lại", "retrieval requested"},
	"15": {"Đồng ý lấy lại, cập nhật", "retrieval or update accepted"},
	"16": {"Từ chối lấy lại, cập nhật", "retrieval or update refused"},
}

func statusName(code string) (vi, en string) {
	if n, ok := statusNames[code]; ok {
		return n[0], n[1]
	}
	return code, code
}

// status is a document's page: its register line, the receipts, the
// evidence recorded for it, the state of the evidence chain and the
// original checked again now.
func (p *Pages) status(w http.ResponseWriter, r *http.Request) {
	d, ok := p.clerk(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var es []mailstore.DocEntry
	if err == nil && id > 0 {
		es, err = p.Store.Docs(r.Context(), mailstore.DocQuery{ID: id, Domain: d.Name})
		if err != nil {
			p.internal(w, r, err)
			return
		}
	}
	if len(es) != 1 {
		// Another agency's line is not found either: nothing tells it exists.
		p.fail(w, r, http.StatusNotFound, "Không có văn bản này trong sổ của cơ quan.", "No such document in the agency's registers.")
		return
	}
	e := es[0]
	v := statusView{view: view{p.lang(r)}, Entry: e, In: e.Direction == mailstore.DocIn}
	b := &book.Book{Direction: e.Direction, Entries: es, Location: registry.ICT}
	for i, c := range b.Columns() {
		v.Fields = append(v.Fields, field{c.Title, c.En, b.Rows()[0][i]})
	}
	for _, a := range e.Acks {
		vi, en := statusName(a.StatusCode)
		v.Acks = append(v.Acks, ack{a, vi, en})
	}
	back := url.Values{"year": {strconv.Itoa(e.Year)}}
	if e.Series == mailstore.SeriesConfidential {
		back.Set("mat", "1")
	}
	v.Back = "/clerk/" + string(e.Direction) + "?" + back.Encode()
	if e.DocumentID != "" {
		evs, err := p.Store.Evidence(r.Context(), mailstore.EvidenceQuery{Domain: d.Name, DocumentID: e.DocumentID})
		if err != nil {
			p.internal(w, r, err)
			return
		}
		for _, ev := range evs {
			vi, en := signing.Event(ev.Event).Title()
			v.Evidence = append(v.Evidence, evidence{ev, vi, en})
		}
	}
	rows, head, err := p.Store.VerifyEvidence(r.Context())
	switch {
	case err == nil:
		v.ChainOK, v.ChainRows, v.ChainHead = true, rows, head
	case errors.Is(err, mailstore.ErrEvidenceBroken):
		v.ChainErr = err.Error()
	default:
		p.internal(w, r, err)
		return
	}
	v.Verified, v.NoOrig, v.VerifyErr = p.verify(r.Context(), e.ID)
	title := fmt.Sprintf("%s %s", e.Notation, e.Subject)
	p.show(w, r, http.StatusOK, "status", title, title, v)
}

// verify checks the original a register line keeps as on arrival, with
// today's trust settings, certificates and revocation lists. none reports
// a line without one (a paper document).
func (p *Pages) verify(ctx context.Context, id int64) (res *signing.Result, none bool, problem string) {
	orig, err := p.Store.DocOriginal(ctx, id)
	if errors.Is(err, mailstore.ErrNotFound) {
		return nil, true, ""
	}
	if err != nil {
		p.Logger.Error("web: reading a document's original", "id", id, "err", err)
		return nil, false, err.Error()
	}
	m, err := mail.ReadMessage(bytes.NewReader(orig))
	if err != nil {
		return nil, false, err.Error()
	}
	from, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return nil, false, "From: " + err.Error()
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	opts, err := p.Registry.VerifyOptions(ctx, domain)
	if err != nil {
		return nil, false, err.Error()
	}
	// A failure is in the result, check by check.
	res, _ = signing.Verify(orig, opts)
	return res, false, ""
}
