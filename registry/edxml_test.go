package registry

import (
	"bytes"
	"errors"
	"strings"
	"testing"

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
		"recall":         {func(p *edxml.Package) { p.Envelope.Header.Trace.Bussiness.BussinessDocType = edxml.DocRecall }, b.staff.Address, "not imported yet"},
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
