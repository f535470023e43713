package clerk

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/xuri/excelize/v2"

	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/signing"
	"sealmail/signing/signingtest"
	"sealmail/webd/portal"
)

// agencies is a store hosting two agencies, a.test and b.test, each with a
// clerk and a staff member; a.test has released one electronic document to
// b.test (registered in both, with b.test's receipt and the evidence) and
// registered paper documents in both of its registers.
type agencies struct {
	store *mailstore.Store
	reg   *registry.Registry
	srv   *httptest.Server
	// clients are logged-in browsers, by account and language.
	clients map[string]*http.Client
	// out is a.test's line of the electronic document, in b.test's.
	out, in mailstore.DocEntry
}

func newAgencies(t *testing.T) *agencies {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reg := &registry.Registry{Store: s, DataDir: dir, Hostname: "mail.test", Logger: slog.New(slog.DiscardHandler),
		PDF: registry.PDFPolicy{AllowUnsigned: true}}
	for _, d := range []mailstore.Domain{
		{Name: "a.test", OrganID: "000.00.12.H10", OrganName: "Sở Thông tin và Truyền thông", Code: "STTTT-VP", OfficialAddress: "vanthu@a.test"},
		{Name: "b.test", OrganID: "000.00.13.H10", OrganName: "Sở Tài chính", Code: "STC-VP", OfficialAddress: "vanthu@b.test"},
	} {
		if err := s.AddDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddAccounts(ctx, []mailstore.NewAccount{
			{Address: "clerk@" + d.Name, Password: "pw", Role: mailstore.RoleClerk, Name: "Văn thư"},
			{Address: "nam@" + d.Name, Password: "pw", Role: mailstore.RoleStaff, Name: "Nguyễn Văn Nam"},
			{Address: "admin@" + d.Name, Password: "pw", Role: mailstore.RoleAdmin, Name: "Quản trị"},
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddAlias(ctx, d.OfficialAddress, []string{"clerk@" + d.Name}); err != nil {
			t.Fatal(err)
		}
		if _, err := registry.InitSeal(dir, d, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	clerkA, err := s.Account(ctx, "clerk@a.test")
	if err != nil {
		t.Fatal(err)
	}
	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Name: "Văn thư", Address: "vanthu@a.test"}})
	h.SetAddressList("To", []*mail.Address{{Address: "vanthu@b.test"}})
	h.SetSubject("Về việc triển khai hệ thống thư điện tử công vụ")
	h.SetMessageID("doc1@a.test")
	h.Set("Official-Document-Signer", "Giám đốc; Đặng Văn Đức")
	msg := signingtest.Message(t, h, "Kính gửi Sở Tài chính,\nSở gửi kèm công văn.\n",
		signingtest.File{Name: "cong-van.pdf", Type: "application/pdf", Data: signingtest.Doc(1, 0, "Cong van so 01\nVe viec trien khai")})
	if out, err := reg.Outgoing(ctx, clerkA, "vanthu@a.test", []string{"vanthu@b.test"}, nil, msg); err != nil || out == nil {
		t.Fatalf("releasing a document: %v", err)
	}
	for _, p := range []registry.Paper{
		{Domain: "a.test", Direction: mailstore.DocOut, DocType: "Quyết định", Subject: "Quyết định khen thưởng năm 2026",
			Signer: "Giám đốc Đặng Văn Đức", Recipients: []string{"Phòng Tổ chức cán bộ"}, FiledWith: "Văn phòng"},
		{Domain: "a.test", Direction: mailstore.DocIn, Organ: "Ủy ban nhân dân tỉnh Đồng Nai", Notation: "345/UBND-KGVX",
			Date: time.Now(), DocType: "Công văn", Subject: "Đề nghị báo cáo tình hình chuyển đổi số", Recipients: []string{"Giám đốc"}},
		{Domain: "a.test", Direction: mailstore.DocIn, Organ: "Sở Nội vụ", Notation: "12/SNV-TCBC",
			Date: time.Now(), DocType: "Giấy mời", Subject: "Mời họp giao ban quý IV"},
		{Domain: "a.test", Direction: mailstore.DocOut, Confidential: true, DocType: "Báo cáo", Subject: "Báo cáo mật số liệu"},
	} {
		if _, err := reg.RegisterPaper(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	x := &agencies{store: s, reg: reg}
	outs, err := s.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut})
	if err != nil || len(outs) != 3 || outs[0].Medium != mailstore.MediumElectronic {
		t.Fatalf("a.test's line of the document: %v %v", outs, err)
	}
	x.out = outs[0]
	ins, err := s.Docs(ctx, mailstore.DocQuery{Domain: "b.test", Direction: mailstore.DocIn, DocumentID: x.out.DocumentID})
	if err != nil || len(ins) != 1 {
		t.Fatalf("b.test's line of the document: %v %v", ins, err)
	}
	x.in = ins[0]
	ps := &portal.Server{Store: s, Logger: slog.New(slog.DiscardHandler)}
	(&Pages{Store: s, Registry: reg, Logger: slog.New(slog.DiscardHandler)}).Register(ps)
	x.srv = httptest.NewTLSServer(ps.Handler())
	t.Cleanup(x.srv.Close)
	x.clients = map[string]*http.Client{}
	return x
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// client returns a browser logged in as account (none if "") that reads
// pages in lang.
func (x *agencies) client(t *testing.T, account, lang string) *http.Client {
	t.Helper()
	if c := x.clients[account+" "+lang]; c != nil {
		return c
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: x.srv.Client().Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	x.clients[account+" "+lang] = c
	do := func(method, path string, form url.Values) string {
		var resp *http.Response
		var err error
		if form == nil {
			resp, err = c.Get(x.srv.URL + path)
		} else {
			resp, err = c.PostForm(x.srv.URL+path, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			t.Fatalf("%s %s: %s\n%s", method, path, resp.Status, b)
		}
		return string(b)
	}
	if lang != "" {
		do("GET", "/lang?to="+lang, nil)
	}
	if account != "" {
		m := csrfRE.FindStringSubmatch(do("GET", "/login", nil))
		if m == nil {
			t.Fatal("no login form")
		}
		do("POST", "/login", url.Values{"csrf": {m[1]}, "address": {account}, "password": {"pw"}, "next": {"/"}})
	}
	return c
}

// get fetches path as account (none if "").
func (x *agencies) get(t *testing.T, account, path string) (*http.Response, []byte) {
	t.Helper()
	lang := ""
	if strings.Contains(path, "lang=en") {
		lang = "en"
	}
	resp, err := x.client(t, account, lang).Get(x.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (x *agencies) page(t *testing.T, account, path string) string {
	t.Helper()
	resp, b := x.get(t, account, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as %s: %s\n%s", path, account, resp.Status, b)
	}
	return string(b)
}

func TestOnlyClerks(t *testing.T) {
	x := newAgencies(t)
	paths := []string{"/clerk/", "/clerk/out", "/clerk/in?year=2026", fmt.Sprintf("/clerk/doc/%d", x.out.ID),
		"/clerk/out/export/xlsx", "/clerk/in/export/csv", "/clerk/out/export/pdf", "/clerk/nothing/here"}
	for _, acct := range []string{"", "nam@a.test", "admin@a.test"} {
		want := http.StatusForbidden
		if acct == "" {
			want = http.StatusSeeOther // to the login page, and back after
		}
		for _, p := range paths {
			resp, b := x.get(t, acct, p)
			if resp.StatusCode != want || (want == http.StatusForbidden && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")) ||
				(want == http.StatusSeeOther && resp.Header.Get("Location") != "/login?next="+url.QueryEscape(p)) {
				t.Errorf("GET %s as %q: %s %s, want %d and a page", p, acct, resp.Status, resp.Header.Get("Content-Type"), want)
			}
			for _, secret := range []string{x.out.Subject, x.out.Notation, "Đồng Nai", "Số, ký hiệu"} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("GET %s as %q shows %q", p, acct, secret)
				}
			}
			if want == http.StatusForbidden && !bytes.Contains(b, []byte("chỉ dành cho tài khoản có vai trò Văn thư")) {
				t.Errorf("GET %s as %q: the page does not say why:\n%s", p, acct, b)
			}
		}
	}
	// A disabled clerk is no clerk: the session ends.
	if resp, _ := x.get(t, "clerk@a.test", "/clerk/out"); resp.StatusCode != http.StatusOK {
		t.Fatalf("clerk: %s", resp.Status)
	}
	if err := x.store.SetDisabled(context.Background(), "clerk@a.test", true); err != nil {
		t.Fatal(err)
	}
	if resp, b := x.get(t, "clerk@a.test", "/clerk/out"); resp.StatusCode != http.StatusUnauthorized || bytes.Contains(b, []byte(x.out.Subject)) {
		t.Errorf("a disabled clerk: %s", resp.Status)
	}
}

func TestRegisterPages(t *testing.T) {
	x := newAgencies(t)
	year := time.Now().In(registry.ICT).Year()
	out := x.page(t, "clerk@a.test", "/clerk/out")
	for _, want := range []string{
		// Appendix IV's columns of the outgoing register.
		"Số, ký hiệu văn bản", "Ngày tháng văn bản", "Tên loại và trích yếu nội dung văn bản", "Người ký", "Nơi nhận văn bản",
		"Đơn vị, người nhận bản lưu", "Số lượng bản", "Ngày chuyển", "Ký nhận", "Ghi chú",
		"SỔ ĐĂNG KÝ VĂN BẢN ĐI", fmt.Sprintf("năm %d", year), "Sở Thông tin và Truyền thông",
		x.out.Notation, x.out.Subject, "vanthu@b.test", "Quyết định: Quyết định khen thưởng năm 2026", "Phòng Tổ chức cán bộ",
		"Văn bản giấy", "Văn bản điện tử", fmt.Sprintf(`href="/clerk/doc/%d"`, x.out.ID), "2 / 2 văn bản",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("outgoing register lacks %q", want)
		}
	}
	if strings.Contains(out, "Báo cáo mật") {
		t.Error("the ordinary register shows a confidential document")
	}
	if mat := x.page(t, "clerk@a.test", "/clerk/out?mat=1"); !strings.Contains(mat, "Báo cáo mật số liệu") || !strings.Contains(mat, "SỔ ĐĂNG KÝ VĂN BẢN ĐI MẬT") ||
		strings.Contains(mat, x.out.Subject) {
		t.Error("the confidential register is not its own")
	}
	// b.test's register is not a.test's clerk's, and the other way round.
	if strings.Contains(x.page(t, "clerk@b.test", "/clerk/out"), "khen thưởng") {
		t.Error("b.test's clerk sees a.test's register")
	}
	in := x.page(t, "clerk@b.test", "/clerk/in")
	for _, want := range []string{"Ngày đến", "Số đến", "Tác giả", "Số, ký hiệu", "Ngày tháng", "Tên loại và trích yếu nội dung",
		"Đơn vị hoặc người nhận", "Ký nhận", "Ghi chú", "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN", "Sở Thông tin và Truyền thông", x.in.Notation, x.in.Subject} {
		if !strings.Contains(in, want) {
			t.Errorf("incoming register lacks %q", want)
		}
	}
	// The filters: agency, type, text without marks, each alone and together.
	for _, c := range []struct {
		query      string
		want, not_ []string
	}{
		{"q=dong+nai", []string{"Đề nghị báo cáo tình hình chuyển đổi số", "1 / 2"}, []string{"Mời họp"}},
		{"q=%C4%90%E1%BB%92NG+NAI", []string{"chuyển đổi số"}, []string{"Mời họp"}}, // ĐỒNG NAI
		{"q=giao+ban+quy", []string{"Mời họp giao ban"}, []string{"chuyển đổi số"}},
		{"agency=so+noi+vu", []string{"Mời họp giao ban"}, []string{"chuyển đổi số"}},
		{"agency=" + url.QueryEscape("Sở Nội vụ"), []string{"Mời họp giao ban"}, []string{"chuyển đổi số"}},
		{"type=" + url.QueryEscape("Công văn"), []string{"chuyển đổi số"}, []string{"Mời họp"}},
		{"type=cong+van&q=moi+hop", []string{"Không có văn bản nào", "0 / 2"}, []string{"Mời họp giao", "chuyển đổi số"}},
		{"year=2001", []string{"Không có văn bản nào", "năm 2001", `<option value="2001" selected>`}, []string{"chuyển đổi số"}},
	} {
		body := x.page(t, "clerk@a.test", "/clerk/in?"+c.query)
		table := body[strings.Index(body, `id="count"`):]
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("/clerk/in?%s lacks %q", c.query, w)
			}
		}
		for _, w := range c.not_ {
			if strings.Contains(table, w) {
				t.Errorf("/clerk/in?%s shows %q", c.query, w)
			}
		}
	}
	// The form offers what the register holds, and keeps the choice.
	body := x.page(t, "clerk@a.test", "/clerk/in?agency=so+noi+vu&type=Gi%E1%BA%A5y+m%E1%BB%9Di")
	for _, want := range []string{`<option value="Sở Nội vụ">`, `<option value="Ủy ban nhân dân tỉnh Đồng Nai">`,
		`<option value="Giấy mời" selected>`, `href="/clerk/in/export/xlsx?agency=so+noi+vu&type=Gi%E1%BA%A5y+m%E1%BB%9Di&year=`} {
		if !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("filter form lacks %q:\n%s", want, body)
		}
	}
	// English.
	en := x.page(t, "clerk@a.test", "/clerk/out?lang=en")
	for _, want := range []string{"Number and notation", "Filed copy kept by", "Download", "Sent to"} {
		if !strings.Contains(en, want) {
			t.Errorf("English page lacks %q", want)
		}
	}
	// Bad input: a clear page, nothing else.
	for _, c := range []struct {
		path string
		code int
	}{
		{"/clerk/out?year=abc", http.StatusBadRequest}, {"/clerk/out?year=0", http.StatusBadRequest},
		{"/clerk/sideways", http.StatusNotFound}, {"/clerk/out/export/docx", http.StatusNotFound},
		{"/clerk/doc/abc", http.StatusNotFound}, {"/clerk/doc/999999", http.StatusNotFound},
		// Another agency's document is not found either.
		{fmt.Sprintf("/clerk/doc/%d", x.in.ID), http.StatusNotFound},
	} {
		resp, b := x.get(t, "clerk@a.test", c.path)
		if resp.StatusCode != c.code || !bytes.Contains(b, []byte(`role="alert"`)) {
			t.Errorf("GET %s: %s, want %d with an error page", c.path, resp.Status, c.code)
		}
		if bytes.Contains(b, []byte(x.in.Subject)) {
			t.Errorf("GET %s shows the document", c.path)
		}
	}
}

func TestExports(t *testing.T) {
	x := newAgencies(t)
	year := time.Now().In(registry.ICT).Year()

	resp, b := x.get(t, "clerk@a.test", "/clerk/in/export/xlsx?q=dong+nai")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" ||
		resp.Header.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="so-van-ban-den-%d.xlsx"`, year) {
		t.Fatalf("xlsx: %s %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.GetRows(fmt.Sprint(year))
	if err != nil {
		t.Fatal(err)
	}
	// Heading (3 lines), an empty line, the titles, then the one line found.
	if len(rows) != 6 || rows[1][0] != "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN" || rows[4][2] != "Tác giả" ||
		rows[5][2] != "Ủy ban nhân dân tỉnh Đồng Nai" || rows[5][3] != "345/UBND-KGVX" {
		t.Errorf("xlsx rows: %q", rows)
	}

	resp, b = x.get(t, "clerk@a.test", "/clerk/out/export/csv")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %s", resp.Status)
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0][0] != "Số, ký hiệu văn bản" || recs[1][0] != x.out.Notation || !strings.Contains(recs[2][2], "khen thưởng") {
		t.Errorf("csv: %q", recs)
	}
	// The receipt b.test returned fills the acknowledgement column.
	if !strings.Contains(recs[1][8], "vanthu@b.test") && !strings.Contains(recs[1][8], "b.test") {
		t.Errorf("csv acknowledgement column: %q", recs[1][8])
	}

	resp, b = x.get(t, "clerk@a.test", "/clerk/out/export/pdf?mat=1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(b, []byte("%PDF-")) ||
		resp.Header.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="so-van-ban-di-mat-%d.pdf"`, year) {
		t.Errorf("pdf: %s %q %.8q", resp.Status, resp.Header.Get("Content-Disposition"), b)
	}
}

func TestStatusPage(t *testing.T) {
	x := newAgencies(t)
	out := x.page(t, "clerk@a.test", fmt.Sprintf("/clerk/doc/%d", x.out.ID))
	for _, want := range []string{
		x.out.Notation, x.out.Subject, x.out.DocumentID, "cong-van.pdf", "SHA-256 " + x.out.Files[0].SHA256,
		"Số đi", "Nơi nhận văn bản", // the register line, in Appendix IV's words
		`id="acks"`, "vanthu@b.test", // b.test's receipt
		`id="evidence"`, "Hệ thống đã nhận văn bản để chuyển đi", // the evidence of a.test
		"Chuỗi chứng cứ nguyên vẹn", `id="verify" class="ok">HỢP LỆ`, `<tr class="pass"><td>Chữ ký số của cơ quan</td>`,
		`<tr class="pass"><td>Chuỗi chứng thư</td>`, `<tr class="pass"><td>Danh mục tệp đính kèm</td>`, "Đã đóng dấu và gửi đi",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status page of the document sent lacks %q", want)
		}
	}
	in := x.page(t, "clerk@b.test", fmt.Sprintf("/clerk/doc/%d", x.in.ID))
	for _, want := range []string{x.in.Subject, "Số đến", "Sở Thông tin và Truyền thông", `id="verify" class="ok">HỢP LỆ`,
		"Văn bản đã được chuyển vào hộp thư nơi nhận", "03 Đã tiếp nhận, vào sổ"} {
		if !strings.Contains(in, want) {
			t.Errorf("status page of the document received lacks %q", want)
		}
	}
	// A paper document has nothing to verify, and says so.
	ps, err := x.store.Docs(context.Background(), mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocIn})
	if err != nil || len(ps) == 0 {
		t.Fatal(err)
	}
	if p := x.page(t, "clerk@a.test", fmt.Sprintf("/clerk/doc/%d", ps[0].ID)); !strings.Contains(p, "văn bản giấy") {
		t.Error("a paper document's status page does not say it has no electronic original")
	}
	if en := x.page(t, "clerk@b.test", fmt.Sprintf("/clerk/doc/%d?lang=en", x.in.ID)); !strings.Contains(en, `id="verify" class="ok">VALID`) ||
		!strings.Contains(en, "Evidence chain intact") || !strings.Contains(en, "delivered to the recipient&#39;s mailbox") {
		t.Error("the English status page is not in English")
	}

	// The original is checked with today's trust: once a.test's seal CA is
	// another, the document b.test received no longer verifies, and the page
	// says which check failed.
	other, _, err := signing.NewLocalCA("Cơ quan khác", "000.00.99.H10", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(registry.SealDir(x.reg.DataDir, "a.test"), registry.CACertFile), signing.EncodeCertsPEM(other), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := x.page(t, "clerk@b.test", fmt.Sprintf("/clerk/doc/%d", x.in.ID))
	if !strings.Contains(bad, `id="verify" class="error">KHÔNG HỢP LỆ`) || !strings.Contains(bad, `<tr class="fail"><td>Chuỗi chứng thư</td><td>không đạt [untrusted-issuer]`) {
		t.Errorf("the status page of a document that no longer verifies:\n%s", bad)
	}
}
