package main

import (
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
)

// TestRegisterAdd: paper documents take numbers in the same series as
// electronic ones; confidential ones in their own; incoming ones keep
// their organ's notation and date.
func TestRegisterAdd(t *testing.T) {
	data := agencyData(t)
	sendDocument(t, data, 1) // electronic: 01/STTTT-VP
	year := time.Now().In(time.FixedZone("ICT", 7*3600)).Year()
	out := ok(t, "", "doc", "register", "add", "--outgoing", "--domain", "agency.example", "--data", data,
		"--type", "Quyết định", "--subject", "Về việc thành lập Tổ công tác", "--signer", "Giám đốc Nguyễn Văn An",
		"--to", "Sở Nội vụ", "--to", "Lưu: VT", "--filed-with", "Văn phòng")
	if !strings.Contains(out, "số 02/STTTT-VP") {
		t.Errorf("add outgoing: %s", out)
	}
	out = ok(t, "", "doc", "register", "add", "--outgoing", "--confidential", "--domain", "agency.example", "--data", data,
		"--subject", "Kế hoạch bảo vệ bí mật nhà nước")
	if !strings.Contains(out, "số 01/STTTT-VP") || !strings.Contains(out, "văn bản mật") {
		t.Errorf("add confidential: %s", out)
	}
	out = ok(t, "", "doc", "register", "add", "--incoming", "--domain", "agency.example", "--data", data,
		"--organ", "UBND thành phố Hà Nội", "--notation", "4567/UBND-KGVX", "--date", "2026-11-20",
		"--subject", "Về việc tổng kết năm", "--to", "Phòng Kế hoạch")
	// The electronic document was delivered to nam@ locally: số đến 1.
	if !strings.Contains(out, "as số đến 2") {
		t.Errorf("add incoming: %s", out)
	}
	rows := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--outgoing", "--json", "--data", data))
	if len(rows) != 3 || rows[0].Medium != "electronic" || rows[1].Medium != "paper" || rows[1].Number != 2 ||
		rows[1].DocType != "Quyết định" || rows[1].FiledWith != "Văn phòng" || rows[1].Copies != 2 || rows[1].Year != year ||
		rows[2].Series != "mat" || rows[2].Number != 1 {
		t.Errorf("outgoing register: %+v", rows)
	}
	fails(t, "", []string{"doc", "register", "add", "--outgoing", "--domain", "agency.example", "--data", data}, "missing --subject")
	fails(t, "", []string{"doc", "register", "add", "--incoming", "--domain", "agency.example", "--subject", "x", "--data", data},
		"--organ, --notation and --date")
	fails(t, "", []string{"doc", "register", "add", "--incoming", "--domain", "agency.example", "--subject", "x", "--organ", "o",
		"--notation", "1/X", "--date", "20/11/2026", "--data", data}, "want YYYY-MM-DD")
	fails(t, "", []string{"doc", "register", "add", "--outgoing", "--domain", "agency.example", "--subject", "x", "--date", "2026-11-20",
		"--data", data}, "for incoming documents")
	fails(t, "", []string{"doc", "register", "add", "--outgoing", "--domain", "nowhere.example", "--subject", "x", "--data", data},
		"not hosted here")
}

// TestRegisterExport: 'doc register export' writes the year's register in
// each format, and each reads back: CSV, XLSX (excelize), PDF (pdftotext).
func TestRegisterExport(t *testing.T) {
	data := agencyData(t)
	sendDocument(t, data, 1)
	ok(t, "", "doc", "register", "add", "--outgoing", "--domain", "agency.example", "--data", data,
		"--type", "Quyết định", "--subject", "Về việc thành lập Tổ công tác", "--to", "Sở Nội vụ")
	ok(t, "", "doc", "register", "add", "--outgoing", "--confidential", "--domain", "agency.example", "--data", data,
		"--subject", "Kế hoạch bảo vệ bí mật nhà nước")
	year := fmt.Sprint(time.Now().In(time.FixedZone("ICT", 7*3600)).Year())
	dir := t.TempDir()
	export := func(format string, extra ...string) string {
		t.Helper()
		path := filepath.Join(dir, "so."+format)
		ok(t, "", append([]string{"doc", "register", "export", "--outgoing", "--domain", "agency.example", "--year", year,
			"--format", format, "--output", path, "--data", data}, extra...)...)
		return path
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(readString(t, export("csv")), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[1][0] != "01/STTTT-VP" || recs[2][0] != "02/STTTT-VP" || recs[2][2] != "Quyết định: Về việc thành lập Tổ công tác" ||
		recs[2][9] != "Văn bản giấy" || recs[1][9] != "Văn bản điện tử" {
		t.Errorf("CSV: %q", recs)
	}
	// The confidential register holds only its own.
	recs, err = csv.NewReader(strings.NewReader(strings.TrimPrefix(readString(t, export("csv", "--confidential")), "\ufeff"))).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][2] != "Kế hoạch bảo vệ bí mật nhà nước" {
		t.Errorf("confidential CSV: %q, %v", recs, err)
	}
	x, err := excelize.OpenFile(export("xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(year)
	if err != nil || len(rows) != 7 || rows[1][0] != "SỔ ĐĂNG KÝ VĂN BẢN ĐI" || rows[6][0] != "02/STTTT-VP" {
		t.Errorf("XLSX: %q, %v", rows, err)
	}
	pdf := export("pdf")
	out, err := exec.Command(testtool.Path(t, "pdftotext", "poppler-utils"), "-raw", pdf, "-").CombinedOutput()
	text := strings.Join(strings.Fields(string(out)), "")
	if err != nil || !strings.Contains(text, "SỔĐĂNGKÝVĂNBẢNĐI") || !strings.Contains(text, "SỞTHÔNGTINVÀTRUYỀNTHÔNG") ||
		!strings.Contains(text, "02/STTTT-VP") || !strings.Contains(text, "Quyếtđịnh:VềviệcthànhlậpTổcôngtác") {
		t.Errorf("pdftotext: %v\n%s", err, out)
	}
	fails(t, "", []string{"doc", "register", "export", "--outgoing", "--domain", "agency.example", "--data", data}, "missing --format")
	fails(t, "", []string{"doc", "register", "export", "--outgoing", "--domain", "agency.example", "--format", "doc", "--data", data},
		"want pdf, csv or xlsx")
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
