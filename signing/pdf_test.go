package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"image"
	"image/color"
	"math/big"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/internal/testtool"
	pdfpkg "sealmail/signing/pdf"
	"sealmail/signing/signingtest"
)

// nationalCA is a stand-in for the national CA that issues the personal
// certificates of people with signing authority: RSA, as the government
// CA's are.
type nationalCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newNationalCA(t testing.TB, now time.Time) *nationalCA {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject:               organSubject("Cục Chứng thực số và Bảo mật thông tin (thử nghiệm)", "Ban Cơ yếu Chính phủ", ""),
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := create(tmpl, nil, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &nationalCA{cert: cert, key: key}
}

// person issues a personal signing certificate (RSA 2048) for a signer.
func (ca *nationalCA) person(t testing.TB, name, organ string, now time.Time) *Seal {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject:   organSubject(name, organ, ""),
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(365 * 24 * time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	cert, err := create(tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &Seal{Cert: cert, Chain: []*x509.Certificate{ca.cert}, Key: key}
}

// signatureImage is a blue scribble on a transparent background, as a
// signer's signature image looks.
func signatureImage() image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 300, 120))
	for x := 20; x < 280; x++ {
		y := 60 + int(30*sinApprox(float64(x)/25))
		for d := -2; d <= 2; d++ {
			img.SetNRGBA(x, y+d, color.NRGBA{0, 40, 200, 255})
		}
	}
	return img
}

func sinApprox(x float64) float64 {
	// A triangle wave is scribble enough.
	x -= 4 * float64(int(x/4))
	if x < 2 {
		return x - 1
	}
	return 3 - x
}

// signedLetter returns a three-page letter signed visibly by the signer on
// its last page.
func signedLetter(t testing.TB, signer *Seal, filler int) []byte {
	t.Helper()
	out, err := SignPDF(t.Context(), signingtest.Letter(7, filler), signer, PDFSignOptions{
		Field: "Signer", Name: signer.Cert.Subject.CommonName, Reason: "Ký ban hành",
		Appearance: &Appearance{Page: -1, Rect: [4]float64{330, 110, 480, 170}, Image: signatureImage()},
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
	writeFile(t, dir, "in.pdf", signingtest.Letter(3, 500))
	if out, err := exec.Command(path, "--object-streams=generate", filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")).CombinedOutput(); err != nil {
		t.Fatalf("qpdf: %v\n%s", err, out)
	}
	in := readFile(t, filepath.Join(dir, "out.pdf"))
	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Trần Thị Bình", agencyA.OrganName, testNow)
	one, err := SignPDF(t.Context(), in, signer, PDFSignOptions{Field: "Signer",
		Appearance: &Appearance{Page: -1, Rect: [4]float64{330, 110, 480, 170}, Image: signatureImage()}}, testNow)
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
	roots.AddCert(ca.cert)
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
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: testNow, NextUpdate: testNow.Add(7 * 24 * time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: signer.Cert.SerialNumber, RevocationTime: testNow.Add(-time.Minute)}},
		}, ca.cert, ca.key)
		if err != nil {
			t.Fatal(err)
		}
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
