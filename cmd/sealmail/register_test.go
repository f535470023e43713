package main

import (
	"strings"
	"testing"
	"time"
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
