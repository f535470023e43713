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
	_ "embed"
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

	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/registry/book"
	"sealmail/signing"
	"sealmail/webd/portal"
)

// Pages serves the clerk pages under /clerk/, inside the portal: its
// login, layout and language.
type Pages struct {
	Store    *mailstore.Store
	Registry *registry.Registry // verifies originals with its trust settings
	Logger   *slog.Logger
	Now      func() time.Time // nil: time.Now
}

// Register adds the pages to the portal, for clerks only (anyone else gets
// the portal's 403 page), with a link in clerks' navigation bar.
func (p *Pages) Register(s *portal.Server) {
	s.AddNav("/clerk/out", portal.Text{VI: "Sổ văn bản", EN: "Registers"}, mailstore.RoleClerk)
	s.Handle("GET /clerk/", s.RequireRole(mailstore.RoleClerk, p.handler()))
}

//go:embed style.css
var style []byte

var (
	//go:embed register.html
	registerHTML string
	//go:embed status.html
	statusHTML string

	outPage    = portal.NewPage(portal.Text{VI: "Sổ văn bản đi", EN: "Outgoing register"}, registerHTML)
	inPage     = portal.NewPage(portal.Text{VI: "Sổ văn bản đến", EN: "Incoming register"}, registerHTML)
	statusPage = portal.NewPage(portal.Text{VI: "Tình trạng văn bản", EN: "Document status"}, statusHTML)
)

// handler routes what Register guards.
func (p *Pages) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /clerk/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/clerk/out", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /clerk/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(style)
	})
	mux.HandleFunc("GET /clerk/{dir}", p.register)
	mux.HandleFunc("GET /clerk/{dir}/export/{format}", p.export)
	mux.HandleFunc("GET /clerk/doc/{id}", p.status)
	mux.HandleFunc("/clerk/", func(w http.ResponseWriter, r *http.Request) {
		portal.Error(w, r, http.StatusNotFound, portal.Text{VI: "Không có trang này.", EN: "There is no such page."})
	})
	return mux
}

func (p *Pages) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// agency returns the agency (domain) of the logged-in clerk, whose
// registers are the only ones they see.
func (p *Pages) agency(w http.ResponseWriter, r *http.Request) (mailstore.Domain, bool) {
	a, _ := portal.Account(r) // RequireRole let only a clerk in
	_, domain, _ := strings.Cut(a.Address, "@")
	d, err := p.Store.Domain(r.Context(), domain)
	if err != nil {
		p.internal(w, r, err)
		return mailstore.Domain{}, false
	}
	return d, true
}

func (p *Pages) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.Logger.Error("web: clerk page", "path", r.URL.Path, "err", err)
	portal.Error(w, r, http.StatusInternalServerError, portal.Text{VI: "Lỗi máy chủ; hãy thử lại sau.", EN: "Server error; try again later."})
}

// when writes a time as the register does, in Vietnam's time.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(registry.ICT).Format("02/01/2006 15:04:05")
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
	d, ok := p.agency(w, r)
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
		portal.Error(w, r, http.StatusNotFound, portal.Text{VI: "Không có sổ này: chỉ có sổ văn bản đi (out) và sổ văn bản đến (in).",
			EN: "No such register: there are the outgoing (out) and incoming (in) ones."})
		return nil, nil
	}
	q := r.URL.Query()
	if y := q.Get("year"); y != "" {
		n, err := strconv.Atoi(y)
		if err != nil || n < 1 || n > 9999 {
			portal.Error(w, r, http.StatusBadRequest, portal.Text{VI: fmt.Sprintf("Năm %q không hợp lệ.", y), EN: fmt.Sprintf("%q is not a year.", y)})
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
	Dir              string
	Title            string
	Agency           string
	Year             int
	Years            []int
	Confidential     bool
	Filter           book.Filter
	Agencies, Types  []string
	NoType           string
	Columns          []book.Column
	Rows             []registerRow
	Total            int
	Query, YearQuery template.URL // url.Values.Encode's: safe in an href
	Filtered         bool
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
	v := registerView{Dir: string(sel.Dir), Title: sel.Book.Title(), Agency: sel.Book.Agency,
		Year: sel.Year, Years: years, Confidential: sel.Confidential, Filter: sel.Filter,
		Agencies: book.Agencies(sel.All), Types: book.Types(sel.All), NoType: book.NoType, Columns: sel.Book.Columns(),
		Total: len(sel.All), Query: template.URL(sel.query(true)), YearQuery: template.URL(sel.query(false)),
		Filtered: sel.Filter != (book.Filter{})}
	for i, cells := range sel.Book.Rows() {
		v.Rows = append(v.Rows, registerRow{ID: sel.Book.Entries[i].ID, Cells: cells})
	}
	page := outPage
	if sel.Dir == mailstore.DocIn {
		page = inPage
	}
	page.Render(w, r, http.StatusOK, v)
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
			portal.Error(w, r, http.StatusNotFound, portal.Text{VI: "Chỉ tải được CSV, XLSX và PDF.", EN: "Downloads are CSV, XLSX and PDF."})
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
	Entry     mailstore.DocEntry
	In        bool
	Fields    []field
	Acks      []ack
	Evidence  []evidence
	ChainOK   bool
	ChainRows int
	ChainHead string
	ChainErr  string
	// The original checked again: Verified is nil when it could not be
	// (NoOrig: a paper document has none; VerifyErr: why not).
	Verified  *signing.Result
	SealedAt  string
	Checks    []check
	NoOrig    bool
	VerifyErr string
	Back      template.URL
	// State is the register's status, in Vietnamese and English.
	State, StateEn string
}

type field struct{ Vi, En, Value string }

type ack struct {
	mailstore.DocAck
	Vi, En, When string
}

type evidence struct {
	mailstore.Evidence
	Vi, En, When, Short string
}

// check is a line of the verification: a check of the S/MIME seal, or a
// signature inside one of the PDFs.
type check struct {
	Vi, En, Status, Reason, Detail string
}

// states name the register's statuses; one this version does not know is
// shown as it is.
var states = map[string][2]string{
	registry.StatusNumbered: {"Đã lấy số, chưa đóng dấu", "numbered, not sealed yet"},
	registry.StatusSent:     {"Đã đóng dấu và gửi đi", "sealed and sent"},
	registry.StatusVoid:     {"Không đóng dấu được; số đã dùng", "could not be sealed; the number stays used"},
	registry.StatusReceived: {"Đã kiểm tra, vào sổ và chuyển", "verified, registered and delivered"},
	registry.StatusPaper:    {"Văn bản giấy", "paper document"},
	// After release (registry/lifecycle.go).
	registry.StatusRecalling:  {"Đang thu hồi", "recall sent, not withdrawn everywhere yet"},
	registry.StatusRecalled:   {"Đã thu hồi", "recalled: withdrawn by every recipient"},
	registry.StatusReturned:   {"Bị trả lại / đã trả lại", "returned"},
	registry.StatusWithdrawn:  {"Đã hủy theo yêu cầu thu hồi", "withdrawn at the sender's request"},
	registry.StatusAssigned:   {"Đã phân công xử lý", "assigned"},
	registry.StatusProcessing: {"Đang xử lý", "in progress"},
	registry.StatusDone:       {"Đã xử lý xong", "done"},
}

// checkNames name signing's checks for clerks.
var checkNames = map[string][2]string{
	signing.CheckStructure:  {"Cấu trúc (S/MIME)", "structure (S/MIME)"},
	signing.CheckSignature:  {"Chữ ký số của cơ quan", "the agency's signature"},
	signing.CheckTimestamp:  {"Dấu thời gian", "time-stamp"},
	signing.CheckChain:      {"Chuỗi chứng thư", "certificate chain"},
	signing.CheckValidity:   {"Hiệu lực chứng thư", "certificate validity"},
	signing.CheckEmail:      {"Địa chỉ thư của chứng thư", "certificate's address"},
	signing.CheckManifest:   {"Danh mục tệp đính kèm", "manifest of attachments"},
	signing.CheckEvidence:   {"Chứng cứ", "evidence"},
	signing.CheckRevocation: {"Thu hồi chứng thư", "revocation"},
	signing.CheckPDF:        {"Chữ ký trong các tệp PDF", "signatures inside the PDFs"},
}

// named returns names[key] or key twice.
func named(names map[string][2]string, key string) (vi, en string) {
	if n, ok := names[key]; ok {
		return n[0], n[1]
	}
	return key, key
}

// status is a document's page: its register line, the receipts, the
// evidence recorded for it, the state of the evidence chain and the
// original checked again now.
func (p *Pages) status(w http.ResponseWriter, r *http.Request) {
	d, ok := p.agency(w, r)
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
		portal.Error(w, r, http.StatusNotFound, portal.Text{VI: "Không có văn bản này trong sổ của cơ quan.", EN: "No such document in the agency's registers."})
		return
	}
	e := es[0]
	v := statusView{Entry: e, In: e.Direction == mailstore.DocIn}
	v.State, v.StateEn = named(states, e.Status)
	b := &book.Book{Direction: e.Direction, Entries: es, Location: registry.ICT}
	for i, c := range b.Columns() {
		v.Fields = append(v.Fields, field{c.Title, c.En, b.Rows()[0][i]})
	}
	for _, a := range e.Acks {
		vi, en := named(edxml.StatusNames, a.StatusCode)
		v.Acks = append(v.Acks, ack{a, vi, en, when(a.Time)})
	}
	back := url.Values{"year": {strconv.Itoa(e.Year)}}
	if e.Series == mailstore.SeriesConfidential {
		back.Set("mat", "1")
	}
	v.Back = template.URL("/clerk/" + string(e.Direction) + "?" + back.Encode())
	if e.DocumentID != "" {
		evs, err := p.Store.Evidence(r.Context(), mailstore.EvidenceQuery{Domain: d.Name, DocumentID: e.DocumentID})
		if err != nil {
			p.internal(w, r, err)
			return
		}
		for _, ev := range evs {
			vi, en := signing.Event(ev.Event).Title()
			v.Evidence = append(v.Evidence, evidence{ev, vi, en, when(ev.Time), ev.Hash[:min(len(ev.Hash), 16)]})
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
	if res := v.Verified; res != nil {
		v.SealedAt = when(res.SigningTime)
		if !res.Timestamp.IsZero() {
			v.SealedAt = when(res.Timestamp)
		}
		for _, c := range res.Checks {
			vi, en := named(checkNames, c.Name)
			v.Checks = append(v.Checks, check{vi, en, string(c.Status), string(c.Reason), c.Detail})
		}
		for _, f := range res.PDFs {
			if f.Err != "" {
				v.Checks = append(v.Checks, check{"Tệp " + f.File, "File " + f.File, string(signing.Fail), "", f.Err})
			}
			for _, sig := range f.Signatures {
				c := check{Vi: "Chữ ký trong " + f.File, En: "Signature in " + f.File, Status: string(signing.Pass), Detail: sig.Signer}
				if sig.Organization != "" {
					c.Detail += ", " + sig.Organization
				}
				if t := when(sig.SigningTime); t != "" {
					c.Detail += ", " + t
				}
				if !sig.OK {
					c.Status = string(signing.Fail)
					if i := slices.IndexFunc(sig.Checks, func(sc signing.Check) bool { return sc.Status == signing.Fail }); i >= 0 {
						c.Reason, c.Detail = string(sig.Checks[i].Reason), c.Detail+": "+sig.Checks[i].Name+" "+sig.Checks[i].Detail
					}
				}
				v.Checks = append(v.Checks, c)
			}
		}
	}
	statusPage.Render(w, r, http.StatusOK, v)
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
