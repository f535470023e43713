package registry

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/signing"
)

// TestEdXMLRoundTrip sends a document from A to B as an edXML package
// instead of mail: A exports what it released, B imports it, verifies the
// PDFs inside, registers and delivers it, and A's register gets B's
// receipt.
func TestEdXMLRoundTrip(t *testing.T) {
	ctx := t.Context()
	x := newExchange(t)
	a, b := x.a, x.b
	main, annex := signedPDF(t, 1, 30<<10), signedPDF(t, 2, 10<<10)
	msg := docMessage(t, a.domain.OfficialAddress, b.domain.OfficialAddress, subject,
		file{"Công văn 01.pdf", main}, file{"Phụ lục.pdf", annex})
	// Released over the exchange axis, not mail: what A queued is dropped.
	x.held(t, func() { x.submit(t, a, a.clerk, []string{b.domain.OfficialAddress}, msg) })
	sent := docs(t, a, mailstore.DocOut)[0]

	pkgData, err := a.reg.ExportEdXML(ctx, sent, false)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := edxml.Parse(pkgData)
	if err != nil {
		t.Fatal(err)
	}
	h := pkg.Envelope.Header.MessageHeader
	if h.DocumentID != sent.DocumentID || h.Code.CodeNumber != "01" || h.Code.CodeNotation != "STTTT-VP" || h.Subject != subject ||
		h.From.OrganID != a.domain.OrganID || h.From.Email != a.domain.OfficialAddress || h.PromulgationInfo.PromulgationDate != "2026/11/28" ||
		h.SignerInfo.FullName != "Nguyễn Văn An" || len(h.To) != 1 || h.To[0].OrganID != b.domain.OrganID ||
		len(h.OtherInfo.Appendixes) != 1 || h.OtherInfo.Appendixes[0] != "Phụ lục.pdf" {
		t.Errorf("exported header: %+v", h)
	}
	if len(pkg.Attachments) != 2 || pkg.Attachments[0].AttachmentName != "Công văn 01.pdf" || !bytes.HasPrefix(pkg.Attachments[0].Data, main) ||
		sum(pkg.Attachments[0].Data) != sent.Files[0].SHA256 {
		t.Fatalf("exported files do not match the sealed ones")
	}

	imp, err := b.reg.ImportEdXML(ctx, pkgData, []string{b.staff.Address})
	if err != nil {
		t.Fatal(err)
	}
	if !imp.Result.OK || len(imp.Entries) != 1 {
		t.Fatalf("import: %+v\n%s", imp.Entries, imp.Result)
	}
	in := imp.Entries[0]
	if in.Number != 1 || in.DocumentID != sent.DocumentID || in.Notation != "01/STTTT-VP" || in.Organ != a.domain.OrganName ||
		in.DocDate != "2026-11-28" || in.Subject != subject || in.Status != StatusReceived || len(in.Files) != 2 ||
		in.Files[1].SHA256 != sent.Files[1].SHA256 || !strings.Contains(in.Notes, "Nguyễn Văn An") {
		t.Errorf("incoming entry: %+v", in)
	}
	got := folder(t, b, b.staff, mailstore.Inbox)
	if len(got) != 1 {
		t.Fatalf("recipient's INBOX holds %d messages", len(got))
	}
	if v := header(t, got[0], "Official-Document"); !strings.HasPrefix(v, "pass; organ=000.00.12.H10") {
		t.Errorf("delivered with Official-Document: %q", v)
	}
	if !bytes.Equal(attachment(t, got[0], "Công văn 01.pdf"), pkg.Attachments[0].Data) {
		t.Error("the delivered PDF is not the one sent")
	}
	if n := len(folder(t, b, b.clerk, InFolder)); n != 1 {
		t.Errorf("B's Văn bản đến holds %d messages", n)
	}
	// A has B's receipt, matched to what it released.
	if acks := docs(t, a, mailstore.DocOut)[0].Acks; len(acks) != 1 || acks[0].Party != b.domain.OfficialAddress || acks[0].StatusCode != "03" {
		t.Errorf("A's acknowledgements: %+v", acks)
	}
	// The same package again: nothing more.
	again, err := b.reg.ImportEdXML(ctx, pkgData, []string{b.staff.Address})
	if err != nil || !again.Before {
		t.Errorf("second import: %+v, %v", again, err)
	}
	if n := len(docs(t, b, mailstore.DocIn)); n != 1 {
		t.Errorf("B's incoming register has %d lines after importing twice", n)
	}
	// B exports what it imported as the package that arrived.
	back, err := b.reg.ExportEdXML(ctx, docs(t, b, mailstore.DocIn)[0], false)
	if err != nil || !bytes.Equal(back, pkgData) {
		t.Errorf("export of the imported document: %v", err)
	}
}

// TestEdXMLImportRefuses: a package whose PDF was changed after signing is
// quarantined and answered 02; packages that cannot be taken are refused
// with the reason.
func TestEdXMLImportRefuses(t *testing.T) {
	ctx := t.Context()
	x := newExchange(t)
	a, b := x.a, x.b
	msg := docMessage(t, a.domain.OfficialAddress, b.domain.OfficialAddress, subject, file{"cv.pdf", signedPDF(t, 1, 20<<10)})
	x.held(t, func() { x.submit(t, a, a.clerk, []string{b.domain.OfficialAddress}, msg) })
	good, err := a.reg.ExportEdXML(ctx, docs(t, a, mailstore.DocOut)[0], false)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := edxml.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	pkg.Attachments[0].Data[3000] ^= 1
	tampered, err := edxml.Marshal(pkg)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := b.reg.ImportEdXML(ctx, tampered, []string{b.staff.Address})
	if err != nil {
		t.Fatal(err)
	}
	if imp.Result.OK || len(imp.Entries) != 0 || len(docs(t, b, mailstore.DocIn)) != 0 {
		t.Fatalf("tampered package registered: %+v\n%s", imp.Entries, imp.Result)
	}
	if q := folder(t, b, b.staff, QuarantineFolder); len(q) != 1 {
		t.Errorf("quarantine holds %d notices", len(q))
	}
	if acks := docs(t, a, mailstore.DocOut)[0].Acks; len(acks) != 1 || acks[0].StatusCode != "02" || acks[0].Reason == "" {
		t.Errorf("A's acknowledgements: %+v", acks)
	}

	for name, tc := range map[string]struct {
		edit func(p *edxml.Package)
		to   string
		want string
	}{
		"unknown agency": {func(p *edxml.Package) { p.Envelope.Header.MessageHeader.From.Email = "vanthu@x.test" }, b.staff.Address, "not a known agency"},
		"other organ":    {func(p *edxml.Package) { p.Envelope.Header.MessageHeader.From.OrganID = "000.00.99.H10" }, b.staff.Address, "is not a.test's organ"},
		"not hosted":     {func(p *edxml.Package) {}, "someone@c.test", "not hosted here"},
		"recall of a document not received": {func(p *edxml.Package) { p.Envelope.Header.Trace.Bussiness.BussinessDocType = edxml.DocRecall },
			b.staff.Address, "which this server did not receive"},
		"update of nothing": {func(p *edxml.Package) { p.Envelope.Header.Trace.Bussiness.BussinessDocType = edxml.DocUpdate },
			b.staff.Address, "names no document it corrects"},
		"replacement of another organ's document": {func(p *edxml.Package) {
			p.Envelope.Header.Trace.Bussiness = edxml.Bussiness{BussinessDocType: edxml.DocReplace,
				ReplacementInfoList: []edxml.ReplacementInfo{{DocumentID: "000.00.99.H10,2026/11/27,07/UBND-VP"}}}
		}, b.staff.Address, "is not another document of 000.00.12.H10's"},
	} {
		p, err := edxml.Parse(good)
		if err != nil {
			t.Fatal(err)
		}
		tc.edit(p)
		data, err := edxml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.reg.ImportEdXML(ctx, data, []string{tc.to})
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := b.reg.ImportEdXML(ctx, []byte("<edXML/>"), []string{b.staff.Address}); !errors.Is(err, ErrRejected) {
		t.Errorf("not edXML: %v", err)
	}
}

// TestEdXMLSigned: a package A exports signed (XML-DSig with its seal)
// imports at B with the signature verified; the same package changed after
// signing, though its PDFs are intact, is quarantined and answered 02; an
// unsigned one is taken only while documents.require-edxml-signature is
// off.
func TestEdXMLSigned(t *testing.T) {
	ctx := t.Context()
	x := newExchange(t)
	a, b := x.a, x.b
	for i := range 3 {
		msg := docMessage(t, a.domain.OfficialAddress, b.domain.OfficialAddress, subject, file{"cv.pdf", signedPDF(t, byte(i+1), 20<<10)})
		x.held(t, func() { x.submit(t, a, a.clerk, []string{b.domain.OfficialAddress}, msg) })
	}
	sent := docs(t, a, mailstore.DocOut)
	export := func(e mailstore.DocEntry, sign bool) []byte {
		t.Helper()
		data, err := a.reg.ExportEdXML(ctx, e, sign)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	signed := export(sent[0], true)
	if !bytes.Contains(signed, []byte(`<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">`)) {
		t.Fatal("the exported package is not signed")
	}
	imp, err := b.reg.ImportEdXML(ctx, signed, []string{b.staff.Address})
	if err != nil {
		t.Fatal(err)
	}
	if c := imp.Result.Check(signing.CheckXMLSignature); !imp.Result.OK || len(imp.Entries) != 1 || c == nil || c.Status != signing.Pass {
		t.Fatalf("signed package: %+v\n%s", imp.Entries, imp.Result)
	}
	// What B keeps, and exports again, is the package as signed.
	if back, err := b.reg.ExportEdXML(ctx, imp.Entries[0], false); err != nil || !bytes.Equal(back, signed) {
		t.Errorf("B's export of the signed package: %v", err)
	}
	if _, err := b.reg.ExportEdXML(ctx, imp.Entries[0], true); err == nil || !strings.Contains(err.Error(), "not signed again") {
		t.Errorf("B signing A's package: %v", err)
	}

	tampered := bytes.Replace(export(sent[1], true), []byte("<Subject>"), []byte("<Subject>Khẩn: "), 1)
	imp, err = b.reg.ImportEdXML(ctx, tampered, []string{b.staff.Address})
	if err != nil {
		t.Fatal(err)
	}
	if c := imp.Result.Check(signing.CheckXMLSignature); imp.Result.OK || len(imp.Entries) != 0 || c == nil || c.Reason != signing.ReasonBadSignature {
		t.Fatalf("package changed after signing: %+v\n%s", imp.Entries, imp.Result)
	}
	if acks := docs(t, a, mailstore.DocOut)[1].Acks; len(acks) != 1 || acks[0].StatusCode != "02" || !strings.Contains(acks[0].Reason, "xmldsig") {
		t.Errorf("A's acknowledgements of the changed package: %+v", acks)
	}

	b.reg.RequireEdXMLSignature = true
	imp, err = b.reg.ImportEdXML(ctx, export(sent[2], false), []string{b.staff.Address})
	if err != nil {
		t.Fatal(err)
	}
	if c := imp.Result.Check(signing.CheckXMLSignature); imp.Result.OK || c == nil || c.Reason != signing.ReasonNotSigned {
		t.Fatalf("unsigned package under require-edxml-signature: %s", imp.Result)
	}
	if n := len(docs(t, b, mailstore.DocIn)); n != 1 {
		t.Errorf("B's incoming register has %d lines", n)
	}
}

// TestEdXMLStatus: the statuses B exports as edXML (01, 03 and 04, none of
// which reached A by mail) are recorded in A's outgoing register when A
// imports them, once each; a recall (13) A exports makes B withdraw its
// copy; statuses about documents A did not send, from an agency it did not
// send to, or changed after signing are refused.
func TestEdXMLStatus(t *testing.T) {
	ctx := t.Context()
	x := newExchange(t)
	a, b := x.a, x.b
	msg := docMessage(t, a.domain.OfficialAddress, b.domain.OfficialAddress, subject, file{"cv.pdf", signedPDF(t, 1, 20<<10)})
	x.held(t, func() { x.submit(t, a, a.clerk, []string{b.domain.OfficialAddress}, msg) })
	sent := docs(t, a, mailstore.DocOut)[0]
	pkgData, err := a.reg.ExportEdXML(ctx, sent, false)
	if err != nil {
		t.Fatal(err)
	}
	x.held(t, func() {
		if _, err := b.reg.ImportEdXML(ctx, pkgData, []string{b.staff.Address}); err != nil {
			t.Fatal(err)
		}
		x.clock.Set(x.clock.Now().Add(time.Minute))
		if _, err := b.reg.SetState(ctx, "", sent.DocumentID, StatusAssigned); err != nil {
			t.Fatal(err)
		}
	})
	if acks := docs(t, a, mailstore.DocOut)[0].Acks; len(acks) != 0 {
		t.Fatalf("A heard from B by mail: %+v", acks)
	}
	msgs, err := b.reg.StatusMessages(ctx, docs(t, b, mailstore.DocIn)[0])
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, m := range msgs {
		codes = append(codes, m.Status.Code)
	}
	if strings.Join(codes, " ") != "01 03 04" {
		t.Fatalf("B's statuses: %v", codes)
	}
	for _, m := range msgs {
		imp, err := a.reg.ImportEdXML(ctx, m.Data, nil)
		if err != nil {
			t.Fatalf("status %s: %v", m.Status.Code, err)
		}
		if imp.Before || imp.Status == nil || imp.Status.StatusCode != m.Status.Code || len(imp.Entries) != 1 || imp.Entries[0].ID != sent.ID {
			t.Errorf("status %s imported as %+v", m.Status.Code, imp)
		}
	}
	again, err := a.reg.ImportEdXML(ctx, msgs[2].Data, nil)
	if err != nil || !again.Before {
		t.Errorf("status 04 again: %+v, %v", again, err)
	}
	e := docs(t, a, mailstore.DocOut)[0]
	if len(e.Acks) != 1 || e.Acks[0].StatusCode != "04" || e.Acks[0].Party != b.domain.OfficialAddress {
		t.Errorf("A's acknowledgements: %+v", e.Acks)
	}
	// A's own export lists them as B said them.
	back, err := a.reg.StatusMessages(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	codes = codes[:0]
	for _, m := range back {
		codes = append(codes, m.Status.Code)
	}
	if strings.Join(codes, " ") != "01 03 04" {
		t.Errorf("A's statuses after the import: %v", codes)
	}
	// The status went to the clerk who sent the document, package attached.
	if got := folder(t, a, a.clerk, mailstore.Inbox); !slices.ContainsFunc(got, func(m []byte) bool {
		return bytes.Contains(m, []byte(StatusFile)) && bytes.Contains(m, []byte("Content-Type: application/xml"))
	}) {
		t.Error("no status message in the clerk's INBOX")
	}

	refuse := func(name string, data []byte, want string) {
		t.Helper()
		if _, err := a.reg.ImportEdXML(ctx, data, nil); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	edit := func(data []byte, f func(s *edxml.Status)) []byte {
		p, err := edxml.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		f(p.Envelope.Header.Status)
		out, err := edxml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	refuse("unknown document", edit(msgs[2].Data, func(s *edxml.Status) {
		s.ResponseFor.DocumentID = "000.00.12.H10,2026/11/28,99/STTTT-VP"
		s.Timestamp = "2026/11/28 10:00:00"
	}), "did not send")
	refuse("unknown agency", edit(msgs[2].Data, func(s *edxml.Status) { s.From.Email = "vanthu@x.test" }), "not a known agency")
	// C is known to A but was not sent the document.
	c := x.newSide(t, mailstore.Domain{Name: "c.test", OrganID: "000.00.14.H10", OrganName: "Sở Giáo dục", Code: "SGD-VP"})
	x.trust(t, a, c)
	refuse("not a recipient", edit(msgs[2].Data, func(s *edxml.Status) {
		s.From = edxml.Organ{OrganID: c.domain.OrganID, OrganName: c.domain.OrganName, Email: c.domain.OfficialAddress}
	}), "was not sent to c.test")
	signed, err := b.reg.SignEdXML(b.domain.Name, edit(msgs[2].Data, func(s *edxml.Status) { s.Timestamp = "2026/11/28 11:00:00" }))
	if err != nil {
		t.Fatal(err)
	}
	refuse("changed after signing", bytes.Replace(signed, []byte(">04<"), []byte(">06<"), 1), "bad-signature")
	a.reg.RequireEdXMLSignature = true
	refuse("unsigned under the policy", edit(msgs[2].Data, func(s *edxml.Status) { s.Timestamp = "2026/11/28 12:00:00" }), "not-signed")
	if imp, err := a.reg.ImportEdXML(ctx, signed, nil); err != nil || imp.Before || imp.Result.Check(signing.CheckXMLSignature).Status != signing.Pass {
		t.Errorf("signed status: %+v, %v", imp, err)
	}
	a.reg.RequireEdXMLSignature = false

	// A recalls the document; its recall (13), exported as edXML, makes B
	// withdraw its copy and answer 15.
	x.held(t, func() {
		if _, err := a.reg.Recall(ctx, "", sent.DocumentID, "Sai nơi nhận"); err != nil {
			t.Fatal(err)
		}
	})
	out, err := a.reg.StatusMessages(ctx, docs(t, a, mailstore.DocOut)[0])
	if err != nil {
		t.Fatal(err)
	}
	recall := out[len(out)-1]
	if recall.Status.Code != edxml.StatusRecallRequest {
		t.Fatalf("A's last status is %s, not the recall", recall.Status.Code)
	}
	imp, err := b.reg.ImportEdXML(ctx, recall.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in := docs(t, b, mailstore.DocIn)[0]; len(imp.Entries) != 1 || in.Status != StatusWithdrawn || !strings.Contains(in.Notes, "Sai nơi nhận") {
		t.Errorf("B's line after the recall: %+v", in)
	}
	if got := docs(t, a, mailstore.DocOut)[0]; got.Status != StatusRecalled {
		t.Errorf("A's line after B withdrew it: %s", got.Status)
	}
}
