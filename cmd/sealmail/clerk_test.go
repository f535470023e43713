package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"sealmail/internal/browsertest"
	"sealmail/registry"
)

// TestClerkBrowser drives the clerk's pages in headless Chromium against
// `sealmail serve`: a clerk logs in, opens the incoming register, filters it
// by typing without Vietnamese marks, downloads the selection as XLSX and
// opens a document's status; a staff member gets 403. With
// SEALMAIL_SCREENSHOTS=docs it writes the documentation's screenshots.
func TestClerkBrowser(t *testing.T) {
	const clerkPW, staffPW = "Văn thư 2026!", "Cán bộ 2026!"
	data := agencyData(t)
	ok(t, clerkPW+"\n", "user", "passwd", "clerk@agency.example", "--password-stdin", "--data", data)
	ok(t, staffPW+"\n", "user", "passwd", "nam@agency.example", "--password-stdin", "--data", data)
	// An electronic document, sent and received here, and paper ones in the
	// incoming register.
	sendDocument(t, data, 1)
	today := time.Now().In(registry.ICT).Format(time.DateOnly)
	for _, p := range [][]string{
		{"--organ", "Ủy ban nhân dân tỉnh Đồng Nai", "--notation", "345/UBND-KGVX", "--type", "Công văn",
			"--subject", "Đề nghị báo cáo tình hình chuyển đổi số năm 2026", "--to", "Giám đốc"},
		{"--organ", "Sở Nội vụ", "--notation", "12/SNV-TCBC", "--type", "Giấy mời", "--subject", "Mời họp giao ban quý IV"},
		{"--organ", "Ủy ban nhân dân tỉnh Đồng Nai", "--notation", "350/QĐ-UBND", "--type", "Quyết định",
			"--subject", "Phê duyệt kế hoạch đào tạo cán bộ", "--to", "Phòng Tổ chức"},
	} {
		ok(t, "", append([]string{"doc", "register", "add", "--incoming", "--domain", "agency.example", "--date", today, "--data", data}, p...)...)
	}
	srv := startServe(t, data)
	defer srv.stop(t)
	site := "https://" + srv.addrs["https-addr"]
	cert := readAll(t, filepath.Join(data, "tls/cert.pem"))
	year := time.Now().In(registry.ICT).Year()

	login := func(b context.Context, addr, pw, next string) {
		t.Helper()
		if code := browsertest.Load(t, b, chromedp.Navigate(site+next)); code != 200 {
			t.Fatalf("GET %s: %d", next, code)
		}
		browsertest.Do(t, b,
			chromedp.SendKeys(chromedp.CSS(`input[name=address]`), addr),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw))
	}

	// A staff member who opens a register's address is refused, and sees
	// nothing of it.
	staff := browsertest.New(t, cert)
	login(staff, "nam@agency.example", staffPW, "/clerk/in")
	if code := browsertest.Load(t, staff, chromedp.Click(chromedp.CSS("main button"))); code != 403 {
		t.Errorf("staff opening the register: %d, want 403", code)
	}
	if main := browsertest.Run(t, staff, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(main, "chỉ dành cho tài khoản có vai trò Văn thư") ||
		strings.Contains(main, "Đồng Nai") {
		t.Errorf("staff's 403 page:\n%s", main)
	}

	b := browsertest.New(t, cert)
	login(b, "clerk@agency.example", clerkPW, "/login")
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS("main button"))); code != 200 {
		t.Fatalf("login: %d", code)
	}
	// The clerk's navigation bar leads to the registers.
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`nav a[href="/clerk/out"]`))); code != 200 {
		t.Fatalf("registers: %d", code)
	}
	if h := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("main h2"))); h != fmt.Sprintf("SỔ ĐĂNG KÝ VĂN BẢN ĐI — năm %d", year) {
		t.Errorf("outgoing register heading %q", h)
	}
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`.clerk-nav a[href^="/clerk/in"]`))); code != 200 {
		t.Fatalf("incoming register: %d", code)
	}
	if n := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("#count"))); !strings.Contains(n, "4 / 4") {
		t.Errorf("incoming register before filtering: %q", n)
	}

	// Filter: the issuing organ typed without marks, and a type chosen.
	browsertest.Do(t, b,
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "dong nai"),
		chromedp.SetValue(chromedp.CSS(`select[name=type]`), "Công văn"))
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS("#apply"))); code != 200 {
		t.Fatalf("filter: %d", code)
	}
	table := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("#register tbody")))
	if n := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("#count"))); !strings.Contains(n, "1 / 4") ||
		!strings.Contains(table, "Đề nghị báo cáo tình hình chuyển đổi số") || strings.Contains(table, "đào tạo") ||
		strings.Contains(table, "giao ban") {
		t.Errorf("filtered register (%s):\n%s", n, table)
	}
	browsertest.Screenshot(t, b, "clerk-register")

	// Download the selection as XLSX.
	dir := t.TempDir()
	dctx, cancel := context.WithTimeout(b, time.Minute)
	defer cancel()
	progress := chromedp.Events(dctx, browser.DownloadProgress)
	browsertest.Do(t, b,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			events := true
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events})
			return err
		}),
		chromedp.Click(chromedp.CSS("#xlsx")))
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("downloading the XLSX: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the XLSX download was cancelled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
	}
	x, err := excelize.OpenFile(file)
	if err != nil {
		t.Fatalf("the downloaded XLSX: %v", err)
	}
	defer x.Close()
	rows, err := x.GetRows(fmt.Sprint(year))
	if err != nil || len(rows) != 6 || rows[0][0] != "SỞ THÔNG TIN VÀ TRUYỀN THÔNG" || rows[1][0] != "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN" ||
		rows[4][2] != "Tác giả" || rows[5][2] != "Ủy ban nhân dân tỉnh Đồng Nai" || rows[5][3] != "345/UBND-KGVX" ||
		rows[5][5] != "Công văn: Đề nghị báo cáo tình hình chuyển đổi số năm 2026" {
		t.Errorf("downloaded XLSX: %q, %v", rows, err)
	}

	// The electronic document's status: receipts, evidence, verification.
	browsertest.Do(t, b, chromedp.Navigate(site+"/clerk/out"))
	if code := browsertest.Load(t, b, chromedp.Click(chromedp.CSS(`#register a[href^="/clerk/doc/"]`))); code != 200 {
		t.Fatalf("status page: %d", code)
	}
	if v := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("#verify"))); !strings.HasPrefix(v, "HỢP LỆ") {
		t.Errorf("verification: %q", v)
	}
	if c := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("#chain"))); !strings.HasPrefix(c, "Chuỗi chứng cứ nguyên vẹn") {
		t.Errorf("evidence chain: %q", c)
	}
	if a := browsertest.Run(t, b, chromedp.Text(chromedp.CSS("#acks"))); !strings.Contains(a, "03 Đã tiếp nhận, vào sổ") {
		t.Errorf("receipts: %q", a)
	}
	browsertest.Screenshot(t, b, "clerk-document")
}
