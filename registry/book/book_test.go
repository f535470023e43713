package book

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"sealmail/internal/testtool"
	"sealmail/mailstore"
)

var ict = time.FixedZone("ICT", 7*60*60)

// testBook is an outgoing register of n documents, electronic and paper,
// with long Vietnamese abstracts: enough for several pages.
func testBook(n int) *Book {
	b := &Book{Agency: "Sở Thông tin và Truyền thông", Direction: mailstore.DocOut, Year: 2026, Location: ict}
	for i := 1; i <= n; i++ {
		e := mailstore.DocEntry{Number: i, Notation: fmt.Sprintf("%02d/STTTT-VP", i), DocDate: "2026-11-28",
			Time: time.Date(2026, 11, 28, 9, 30, 0, 0, ict), Medium: mailstore.MediumElectronic, Copies: 2,
			Subject: fmt.Sprintf("Về việc triển khai hệ thống thư điện tử công vụ và quản lý văn bản điều hành đợt %d năm 2026", i),
			Signer:  "Giám đốc Nguyễn Văn An", Recipients: []string{"vanthu@stc.example.gov.vn", "vanthu@snv.example.gov.vn"},
			FiledWith: "Phòng Hành chính",
			Acks:      []mailstore.DocAck{{Party: "vanthu@stc.example.gov.vn", StatusCode: "01", Time: time.Date(2026, 11, 28, 9, 31, 0, 0, ict)}},
		}
		if i%3 == 0 {
			e.Medium, e.DocType, e.Acks = mailstore.MediumPaper, "Quyết định", nil
		}
		b.Entries = append(b.Entries, e)
	}
	return b
}

func TestCSV(t *testing.T) {
	b := testBook(5)
	var buf bytes.Buffer
	if err := b.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || recs[0][0] != "Số, ký hiệu văn bản" || recs[0][9] != "Ghi chú" || len(recs[0]) != 10 {
		t.Fatalf("CSV head: %q", recs[0])
	}
	if r := recs[3]; r[0] != "03/STTTT-VP" || r[1] != "28/11/2026" || !strings.HasPrefix(r[2], "Quyết định: Về việc") ||
		r[5] != "Phòng Hành chính" || r[6] != "2" || r[8] != "" || r[9] != "Văn bản giấy" {
		t.Errorf("paper line: %q", r)
	}
	if r := recs[1]; !strings.HasPrefix(r[8], "01 vanthu@stc.example.gov.vn 28/11/2026 09:31") || r[9] != "Văn bản điện tử" {
		t.Errorf("electronic line: %q", r)
	}
	in := &Book{Agency: "Sở Tài chính", Direction: mailstore.DocIn, Year: 2026, Location: ict, Entries: []mailstore.DocEntry{{
		Number: 7, Organ: "UBND thành phố Hà Nội", Notation: "4567/UBND-KGVX", DocDate: "2026-11-20", Subject: "Về việc tổng kết",
		Time: time.Date(2026, 11, 28, 14, 5, 0, 0, ict), Medium: mailstore.MediumPaper, Recipients: []string{"Phòng Kế hoạch"}}}}
	buf.Reset()
	if err := in.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err = csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"28/11/2026 14:05", "7", "UBND thành phố Hà Nội", "4567/UBND-KGVX", "20/11/2026", "Về việc tổng kết",
		"Phòng Kế hoạch", "", "Văn bản giấy"}; len(recs) != 2 || strings.Join(recs[1], "|") != strings.Join(want, "|") {
		t.Errorf("incoming CSV: %q", recs)
	}
}

func TestXLSX(t *testing.T) {
	b := testBook(4)
	var buf bytes.Buffer
	if err := b.WriteXLSX(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("2026")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 9 || rows[0][0] != "SỞ THÔNG TIN VÀ TRUYỀN THÔNG" || rows[1][0] != "SỔ ĐĂNG KÝ VĂN BẢN ĐI" || rows[2][0] != "Năm 2026" {
		t.Fatalf("XLSX heading: %q", rows)
	}
	if rows[4][2] != "Tên loại và trích yếu nội dung văn bản" || rows[5][0] != "01/STTTT-VP" || rows[7][2] != b.Rows()[2][2] {
		t.Errorf("XLSX table: %q", rows[4:])
	}
	layout, err := f.GetPageLayout("2026")
	if err != nil || layout.Orientation == nil || *layout.Orientation != "landscape" || layout.Size == nil || *layout.Size != 9 {
		t.Errorf("page layout: %+v, %v", layout, err)
	}
}

// TestPDF: the register prints on A4 landscape pages that qpdf finds sound,
// and pdftotext reads back the Vietnamese text of every line.
func TestPDF(t *testing.T) {
	pdftotext := testtool.Path(t, "pdftotext", "poppler-utils")
	pdfinfo := testtool.Path(t, "pdfinfo", "poppler-utils")
	qpdf := testtool.Path(t, "qpdf", "qpdf")
	b := testBook(60)
	var buf bytes.Buffer
	if err := b.WritePDF(&buf, time.Date(2026, 12, 31, 17, 0, 0, 0, ict)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "so-di.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(qpdf, "--check", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors found") {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
	info, err := exec.Command(pdfinfo, path).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "841.89 x 595.28 pts (A4)") {
		t.Fatalf("pdfinfo: %v\n%s", err, info)
	}
	var pages int
	for _, l := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			fmt.Sscan(v, &pages)
		}
	}
	if pages < 3 {
		t.Errorf("%d pages for 60 documents", pages)
	}
	// -raw keeps the order of the content streams, where each cell's lines
	// follow one another; spaces are dropped, as wrapping moves them.
	out, err := exec.Command(pdftotext, "-raw", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	text := strings.Join(strings.Fields(string(out)), "")
	for _, want := range []string{"SỞ THÔNG TIN VÀ TRUYỀN THÔNG", "SỔ ĐĂNG KÝ VĂN BẢN ĐI", "Năm 2026", "Số, ký hiệu văn", "Ghi chú",
		"01/STTTT-VP", "60/STTTT-VP", "Giám đốc Nguyễn Văn An", "Quyết định: Về việc triển khai", "Văn bản giấy",
		"vanthu@snv.example.gov.vn", fmt.Sprintf("Trang %d/%d", pages, pages), "(10)"} {
		if !strings.Contains(text, strings.ReplaceAll(want, " ", "")) {
			t.Errorf("pdftotext lacks %q", want)
		}
	}
	// Every line is there once, on some page.
	for i := 1; i <= 60; i++ {
		if n := strings.Count(text, fmt.Sprintf("%02d/STTTT-VP", i)); n != 1 {
			t.Errorf("%02d/STTTT-VP appears %d times", i, n)
		}
	}
	// The column heads repeat on every page.
	if n := strings.Count(text, "(10)"); n != pages {
		t.Errorf("column heads on %d of %d pages", n, pages)
	}
	if dir := os.Getenv("SEALMAIL_RENDER_DIR"); dir != "" {
		// go test ./registry/book -run TestPDF with this set renders the
		// first page as docs/ shows it.
		cmd := exec.Command(testtool.Path(t, "pdftoppm", "poppler-utils"), "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
			path, filepath.Join(dir, "register-outgoing"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pdftoppm: %v\n%s", err, out)
		}
	}
}
