package signing

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sealmail/internal/testtool"
	pdfpkg "sealmail/signing/pdf"
	"sealmail/signing/signingtest"
)

type nationalCA struct{ *signingtest.CA }

func newNationalCA(t testing.TB, now time.Time) nationalCA {
	return nationalCA{signingtest.NewCA(t, now)}
}

// person returns a signer's personal certificate and key as a Seal.
func (ca nationalCA) person(t testing.TB, name, organ string, now time.Time) *Seal {
	cert, key := ca.Person(t, name, organ, now)
	return &Seal{Cert: cert, Chain: []*x509.Certificate{ca.Cert}, Key: key}
}

// signedLetter returns a three-page letter signed visibly by the signer on
// its last page.
func signedLetter(t testing.TB, signer *Seal, filler int) []byte {
	t.Helper()
	return signLetter(t, signingtest.Letter(7, filler, 3), signer)
}

// signLetter signs a Letter visibly where it leaves room for the signer.
func signLetter(t testing.TB, letter []byte, signer *Seal) []byte {
	t.Helper()
	out, err := SignPDF(t.Context(), letter, signer, PDFSignOptions{
		Field: "Signer", Name: signer.Cert.Subject.CommonName, Reason: "Ký ban hành",
		Appearance: &Appearance{Page: -1, Rect: signingtest.SignerRect, Image: signingtest.SignatureImage()},
	}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pdfsig runs poppler's pdfsig on data and returns its report.
func pdfsig(t *testing.T, data []byte) string {
	t.Helper()
	path := testtool.Path(t, "pdfsig", "poppler-utils")
	dir := t.TempDir()
	writeFile(t, dir, "doc.pdf", data)
	out, err := exec.Command(path, "-nocert", filepath.Join(dir, "doc.pdf")).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfsig: %v\n%s", err, out)
	}
	return string(out)
}

// qpdfCheck runs qpdf --check on data and fails the test unless it finds
// the file sound.
func qpdfCheck(t *testing.T, data []byte) {
	t.Helper()
	path := testtool.Path(t, "qpdf", "qpdf")
	dir := t.TempDir()
	writeFile(t, dir, "doc.pdf", data)
	out, err := exec.Command(path, "--check", filepath.Join(dir, "doc.pdf")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors found") {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
}

func TestSignPDFTwice(t *testing.T) {
	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Nguyễn Văn An", agencyA.OrganName, testNow)
	a := newPKI(t, agencyA, testNow, testNow)
	one := signedLetter(t, signer, 2000)
	two, err := SignPDF(t.Context(), one, a.seal, PDFSignOptions{Field: "Seal", Name: agencyA.OrganName}, testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if string(two[:len(one)]) != string(one) {
		t.Fatal("the update changed the signed revision")
	}
	qpdfCheck(t, two)
	out := pdfsig(t, two)
	t.Log(out)
	if n := strings.Count(out, "Signature Validation: Signature is Valid."); n != 2 {
		t.Errorf("pdfsig: %d valid signatures, want 2\n%s", n, out)
	}
	if !strings.Contains(out, "Total document signed") {
		t.Errorf("pdfsig: the last signature does not cover the document\n%s", out)
	}
}

// TestSignPDFXrefStream signs a file whose cross-reference is a stream and
// whose objects sit in object streams, as qpdf and modern exporters write.
func TestSignPDFXrefStream(t *testing.T) {
	path := testtool.Path(t, "qpdf", "qpdf")
	dir := t.TempDir()
	writeFile(t, dir, "in.pdf", signingtest.Letter(3, 500, 3))
	if out, err := exec.Command(path, "--object-streams=generate", filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")).CombinedOutput(); err != nil {
		t.Fatalf("qpdf: %v\n%s", err, out)
	}
	in := readFile(t, filepath.Join(dir, "out.pdf"))
	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Trần Thị Bình", agencyA.OrganName, testNow)
	one, err := SignPDF(t.Context(), in, signer, PDFSignOptions{Field: "Signer",
		Appearance: &Appearance{Page: -1, Rect: [4]float64{330, 110, 480, 170}, Image: signingtest.SignatureImage()}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	a := newPKI(t, agencyA, testNow, testNow)
	two, err := SignPDF(t.Context(), one, a.seal, PDFSignOptions{Field: "Signer", Profile: ProfilePAdES}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	qpdfCheck(t, two)
	out := pdfsig(t, two)
	if n := strings.Count(out, "Signature Validation: Signature is Valid."); n != 2 || !strings.Contains(out, "ETSI.CAdES.detached") ||
		!strings.Contains(out, "Signer 2") {
		t.Errorf("pdfsig:\n%s", out)
	}
}

// checkOK fails unless every check of every signature passed or was
// skipped for want of data.
func reportOK(t *testing.T, rep *PDFReport, n int) {
	t.Helper()
	if len(rep.Signatures) != n {
		t.Fatalf("%d signatures, want %d: %+v", len(rep.Signatures), n, rep)
	}
	for _, s := range rep.Signatures {
		if !s.OK {
			t.Errorf("signature %q: %+v", s.Field, s.Checks)
		}
	}
}

// wantPDFFailure asserts that the i-th signature failed check with reason.
func wantPDFFailure(t *testing.T, rep *PDFReport, i int, check string, reason Reason) {
	t.Helper()
	if i >= len(rep.Signatures) {
		t.Fatalf("no signature %d: %+v", i, rep)
	}
	c := rep.Signatures[i].Check(check)
	if c == nil || c.Status != Fail || c.Reason != reason || rep.Signatures[i].OK {
		t.Errorf("signature %d %s: %+v, want failure %s", i, check, c, reason)
	}
}

func TestVerifyPDF(t *testing.T) {
	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Nguyễn Văn An", agencyA.OrganName, testNow)
	a := newPKI(t, agencyA, testNow, testNow)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	roots.AddCert(a.ca)
	opts := VerifyOptions{Now: testNow.Add(time.Hour)}
	one := signedLetter(t, signer, 1000)
	two, err := SignPDF(t.Context(), one, a.seal, PDFSignOptions{Field: "Seal"}, testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("two signatures", func(t *testing.T) {
		rep, err := VerifyPDF(two, roots, opts)
		if err != nil {
			t.Fatal(err)
		}
		reportOK(t, rep, 2)
		s, g := rep.Signatures[0], rep.Signatures[1]
		if s.Whole || !g.Whole || s.Signer != "Nguyễn Văn An" || s.Organization != agencyA.OrganName || g.Signer != agencyA.OrganName {
			t.Errorf("report: %+v", rep)
		}
		if c := s.Check(CheckModification); c.Status != Pass || !strings.Contains(c.Detail, "only signatures") {
			t.Errorf("signer's modification check: %+v", c)
		}
	})
	t.Run("changed after signing", func(t *testing.T) {
		// A later revision replaces page 1's content stream, as an editor would.
		f, err := pdfpkg.Parse(one)
		if err != nil {
			t.Fatal(err)
		}
		u, err := pdfpkg.NewUpdate(f)
		if err != nil {
			t.Fatal(err)
		}
		u.Set(pdfpkg.Ref{Num: 6}, &pdfpkg.Stream{Dict: pdfpkg.Dict{}, Data: []byte("BT /F1 12 Tf 72 770 Td (So: 99/STTTT-VP) Tj ET")})
		w, err := u.Write()
		if err != nil {
			t.Fatal(err)
		}
		qpdfCheck(t, w.Data)
		rep, err := VerifyPDF(w.Data, roots, opts)
		if err != nil {
			t.Fatal(err)
		}
		wantPDFFailure(t, rep, 0, CheckModification, ReasonModified)
		if c := rep.Signatures[0].Check(CheckSignature); c.Status != Pass {
			t.Errorf("the signed revision itself is intact: %+v", c)
		}
		// Bytes appended that are no revision at all.
		rep, _ = VerifyPDF(append(slices.Clip(one), "\n1 0 obj\n<< >>\nendobj\n"...), roots, opts)
		wantPDFFailure(t, rep, 0, CheckModification, ReasonModified)
	})
	t.Run("broken signature", func(t *testing.T) {
		bad := slices.Clone(one)
		i := strings.Index(string(bad), "(Noi dung trang 2.)")
		bad[i+1] = 'M'
		rep, err := VerifyPDF(bad, roots, opts)
		if err != nil {
			t.Fatal(err)
		}
		wantPDFFailure(t, rep, 0, CheckSignature, ReasonDigestMismatch)
	})
	t.Run("untrusted", func(t *testing.T) {
		other := newNationalCA(t, testNow)
		rep, err := VerifyPDF(signedLetter(t, other.person(t, "Lê Văn Giả", "Không rõ", testNow), 10), roots, opts)
		if err != nil {
			t.Fatal(err)
		}
		wantPDFFailure(t, rep, 0, CheckChain, ReasonUntrusted)
	})
	t.Run("revoked", func(t *testing.T) {
		crl := ca.CRL(t, testNow, testNow.Add(-time.Minute), signer.Cert)
		list, err := x509.ParseRevocationList(crl)
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.CRLs = []*x509.RevocationList{list}
		rep, err := VerifyPDF(two, roots, o)
		if err != nil {
			t.Fatal(err)
		}
		wantPDFFailure(t, rep, 0, CheckRevocation, ReasonRevoked)
	})
	t.Run("not a PDF", func(t *testing.T) {
		if _, err := VerifyPDF([]byte("%PDF-1.4\ngarbage"), roots, opts); err == nil {
			t.Error("garbage verified")
		}
	})
}

// TestStampPDFs: a document whose main PDF the signer signed, with a PDF
// attachment, is stamped; both files carry the agency's signature over the
// whole file, the signer's stays valid, pdfsig and qpdf agree, and the
// recipient's Verify checks all of it.
func TestStampPDFs(t *testing.T) {
	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Nguyễn Văn An", agencyA.OrganName, testNow)
	a := newPKI(t, agencyA, testNow, testNow)
	main := signedLetter(t, signer, 1000)
	annex := signingtest.Doc(9, 0, "PHU LUC\nDanh sach don vi trien khai", "Trang 2 cua phu luc")
	msg := buildMessage(t, agencyA.OfficialAddress, testSubject,
		file{"Công văn 123.pdf", "application/pdf", main}, file{"Phụ lục I.pdf", "application/pdf", annex})
	if _, err := CheckSigner(msg, SignerPolicy{Roots: poolOf(ca.Cert), Verify: VerifyOptions{Now: testNow}}); err != nil {
		t.Fatalf("CheckSigner: %v", err)
	}
	sealImg, err := ParseSealImage(signingtest.SealPNG(400))
	if err != nil {
		t.Fatal(err)
	}
	doc := testDocument(agencyA)
	doc.PDF = &PDFStamp{SealImage: sealImg}
	out, err := Stamp(t.Context(), msg, a.seal, doc, testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	opts := options(testNow.Add(time.Hour), map[Agency]*pki{agencyA: a})
	opts.PDF = &PDFPolicy{TrustRoots: []*x509.Certificate{ca.Cert}, RequireSigner: true}
	res, err := Verify(out, opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if len(res.PDFs) != 2 || len(res.PDFs[0].Signatures) != 2 || len(res.PDFs[1].Signatures) != 1 {
		t.Fatalf("PDF reports: %+v", res.PDFs)
	}
	if c := res.Check(CheckPDF); !strings.Contains(c.Detail, "ký bởi Nguyễn Văn An") {
		t.Errorf("pdf check: %+v", c)
	}
	files := attachedFiles(t, out)
	for name, data := range files {
		qpdfCheck(t, data)
		rep := pdfsig(t, data)
		want := 1
		if name == "Công văn 123.pdf" {
			want = 2
		}
		if n := strings.Count(rep, "Signature is Valid."); n != want || !strings.Contains(rep, "Total document signed") {
			t.Errorf("%s: pdfsig:\n%s", name, rep)
		}
	}
	if dir := os.Getenv("SEALMAIL_RENDER_DIR"); dir != "" {
		// go test ./signing -run TestStampPDFs with this set renders the
		// first page of each file, as docs/ shows them.
		// The main document is a one-page letter here, so that its first
		// page shows the seal over the signature.
		msg := buildMessage(t, agencyA.OfficialAddress, testSubject,
			file{"Công văn 123.pdf", "application/pdf", signLetter(t, signingtest.Letter(7, 0, 1), signer)})
		out, err := Stamp(t.Context(), msg, a.seal, doc, testNow.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		render(t, attachedFiles(t, out)["Công văn 123.pdf"], 1, filepath.Join(dir, "pdf-main-document"))
		render(t, files["Phụ lục I.pdf"], 1, filepath.Join(dir, "pdf-attachment"))
	}

	t.Run("without a signer's signature", func(t *testing.T) {
		msg := buildMessage(t, agencyA.OfficialAddress, testSubject, file{"cv.pdf", "application/pdf", annex})
		_, err := CheckSigner(msg, SignerPolicy{Roots: poolOf(ca.Cert), Verify: VerifyOptions{Now: testNow}})
		if !errors.As(err, new(*problem)) || !strings.Contains(err.Error(), "chưa có chữ ký số") {
			t.Errorf("CheckSigner: %v", err)
		}
		doc := testDocument(agencyA)
		doc.PDF = &PDFStamp{}
		out, err := Stamp(t.Context(), msg, a.seal, doc, testNow)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Verify(out, opts)
		if err == nil || res.Check(CheckPDF).Reason != ReasonNoSignerSig {
			t.Errorf("Verify: %v\n%s", err, res)
		}
	})
	t.Run("not sealed inside", func(t *testing.T) {
		doc := testDocument(agencyA)
		out, err := Stamp(t.Context(), msg, a.seal, doc, testNow)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Verify(out, opts)
		if err == nil || res.Check(CheckPDF).Reason != ReasonNoAgencySig {
			t.Errorf("Verify: %v\n%s", err, res)
		}
	})
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// attachedFiles returns the decoded PDF attachments of a stamped message by name.
func attachedFiles(t testing.TB, msg []byte) map[string][]byte {
	t.Helper()
	root, err := parsePart(signedPart(t, msg), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range attachments(root.kids) {
		if !p.isPDF() {
			continue
		}
		var b bytes.Buffer
		if err := decodeBody(p.cte(), p.body, &b); err != nil {
			t.Fatal(err)
		}
		out[p.filename()] = b.Bytes()
	}
	return out
}

// render writes page of data as prefix.png with pdftoppm.
func render(t *testing.T, data []byte, page int, prefix string) {
	t.Helper()
	path := testtool.Path(t, "pdftoppm", "poppler-utils")
	dir := t.TempDir()
	writeFile(t, dir, "doc.pdf", data)
	p := strconv.Itoa(page)
	if out, err := exec.Command(path, "-png", "-r", "110", "-f", p, "-l", p, "-singlefile", filepath.Join(dir, "doc.pdf"), prefix).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
}
