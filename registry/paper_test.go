package registry

import (
	"context"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
)

// TestRegisterSeries: the outgoing register numbers electronic and paper
// documents in one series from 01 each year, confidential documents in a
// series of their own, and starts again at 01 on 1 January in Hanoi; the
// incoming register likewise.
func TestRegisterSeries(t *testing.T) {
	ctx := context.Background()
	x := newExchange(t)
	a := x.a
	code := a.domain.Code
	release := func() mailstore.DocEntry {
		t.Helper()
		msg := docMessage(t, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 1000)})
		x.submit(t, a, a.clerk, []string{x.b.staff.Address}, msg)
		var last mailstore.DocEntry
		for _, e := range docs(t, a, mailstore.DocOut) {
			if e.ID > last.ID {
				last = e
			}
		}
		return last
	}
	paper := func(p Paper) mailstore.DocEntry {
		t.Helper()
		p.Domain = a.domain.Name
		e, err := a.reg.RegisterPaper(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	want := func(e mailstore.DocEntry, year, number int, series, medium, notation string) {
		t.Helper()
		if e.Year != year || e.Number != number || e.Series != series || e.Medium != medium || e.Notation != notation {
			t.Errorf("entry %d/%d series %q %s %q, want %d/%d series %q %s %q", e.Year, e.Number, e.Series, e.Medium, e.Notation,
				year, number, series, medium, notation)
		}
	}
	// 31 December, 23:58 in Hanoi (16:58 UTC).
	x.clock.Set(time.Date(2026, 12, 31, 23, 58, 0, 0, ICT))
	want(release(), 2026, 1, "", mailstore.MediumElectronic, signing.Notation(1, code))
	out := Paper{Direction: mailstore.DocOut, DocType: "Quyết định", Subject: "Về việc thành lập Tổ công tác chuyển đổi số",
		Signer: "Nguyễn Văn An", Recipients: []string{"Sở Nội vụ", "Lưu: VT"}, FiledWith: "Văn phòng", Copies: 3}
	p := paper(out)
	want(p, 2026, 2, "", mailstore.MediumPaper, signing.Notation(2, code))
	if p.DocDate != "2026-12-31" || p.DocType != "Quyết định" || p.FiledWith != "Văn phòng" || p.Copies != 3 ||
		p.DocumentID != signing.DocumentID(a.domain.OrganID, time.Date(2026, 12, 31, 0, 0, 0, 0, ICT), 2, code) {
		t.Errorf("paper entry: %+v", p)
	}
	secret := out
	secret.Confidential = true
	want(paper(secret), 2026, 1, mailstore.SeriesConfidential, mailstore.MediumPaper, signing.Notation(1, code))
	want(release(), 2026, 3, "", mailstore.MediumElectronic, signing.Notation(3, code))
	want(paper(secret), 2026, 2, mailstore.SeriesConfidential, mailstore.MediumPaper, signing.Notation(2, code))

	// 1 January, 00:01 in Hanoi: still 31 December in UTC.
	x.clock.Set(time.Date(2027, 1, 1, 0, 1, 0, 0, ICT))
	want(paper(out), 2027, 1, "", mailstore.MediumPaper, signing.Notation(1, code))
	want(release(), 2027, 2, "", mailstore.MediumElectronic, signing.Notation(2, code))
	want(paper(secret), 2027, 1, mailstore.SeriesConfidential, mailstore.MediumPaper, signing.Notation(1, code))

	// Incoming: B's register numbers A's electronic documents and a paper
	// letter in one series.
	b := x.b
	in := docs(t, b, mailstore.DocIn)
	if len(in) != 3 || in[2].Year != 2027 || in[2].Number != 1 || in[1].Year != 2026 || in[1].Number != 2 {
		t.Fatalf("B's incoming register: %+v", in)
	}
	e, err := b.reg.RegisterPaper(ctx, Paper{Domain: b.domain.Name, Direction: mailstore.DocIn, Organ: "UBND thành phố Hà Nội",
		Notation: "4567/UBND-KGVX", Date: time.Date(2026, 12, 29, 0, 0, 0, 0, ICT), DocType: "Công văn",
		Subject: "Về việc tổng kết năm 2026", Recipients: []string{"Phòng Kế hoạch"}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Year != 2027 || e.Number != 2 || e.Notation != "4567/UBND-KGVX" || e.DocDate != "2026-12-29" || e.Organ != "UBND thành phố Hà Nội" {
		t.Errorf("incoming paper entry: %+v", e)
	}
	if _, err := b.reg.RegisterPaper(ctx, Paper{Domain: b.domain.Name, Direction: mailstore.DocIn, Subject: "x"}); err == nil {
		t.Error("an incoming paper document without organ, notation and date was registered")
	}
	if _, err := a.reg.RegisterPaper(ctx, Paper{Domain: a.domain.Name, Direction: mailstore.DocOut}); err == nil {
		t.Error("a paper document without a subject was registered")
	}
}
