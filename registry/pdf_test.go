package registry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
	"sealmail/signing/pdf"
	"sealmail/signing/signingtest"
)

// TestSignerSignatureRequired: the agency signs only a main PDF that the
// person with authority signed validly (Decree 30 Art. 14, 32.2.d); anything
// else is refused at submission with its reason, and takes no number.
func TestSignerSignatureRequired(t *testing.T) {
	x := newExchange(t)
	a, b := x.a, x.b
	signed := signedPDF(t, 1, 2000)
	changed := func() []byte {
		// An editor's revision after the signature, replacing page 1's text.
		f, err := pdf.Parse(signed)
		if err != nil {
			t.Fatal(err)
		}
		u, err := pdf.NewUpdate(f)
		if err != nil {
			t.Fatal(err)
		}
		u.Set(pdf.Ref{Num: 6}, &pdf.Stream{Dict: pdf.Dict{}, Data: []byte("BT /F1 12 Tf 72 770 Td (Noi dung khac) Tj ET")})
		w, err := u.Write()
		if err != nil {
			t.Fatal(err)
		}
		return w.Data
	}()
	broken := slices.Clone(signed)
	i := strings.Index(string(broken), "(Noi dung trang 2.)")
	broken[i+1] = 'X'
	stranger := signingtest.NewCA(t, t0)
	cert, key := stranger.Person(t, "Lê Văn Giả", "Không rõ", t0)
	untrusted, err := signing.SignPDF(context.Background(), signingtest.Letter(3, 100, 1), &signing.Seal{Cert: cert, Key: key}, signing.PDFSignOptions{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pdf  []byte
		want string
	}{
		{"unsigned", signingtest.Letter(2, 100, 1), "chưa có chữ ký số"},
		{"changed after signing", changed, string(signing.ReasonModified)},
		{"broken signature", broken, string(signing.ReasonDigestMismatch)},
		{"untrusted signer", untrusted, string(signing.ReasonUntrusted)},
		{"not a PDF", signingtest.PDF(1, 500), string(signing.ReasonMalformedPDF)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"cv.pdf", tc.pdf})
			_, err := x.outgoing(a, a.clerk, []string{b.staff.Address}, msg)
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/") {
				t.Errorf("Outgoing: %v, want a rejection naming %q", err, tc.want)
			}
		})
	}
	if es := docs(t, a, mailstore.DocOut); len(es) != 0 {
		t.Errorf("refused releases took numbers: %+v", es)
	}

	// With the policy off, an unsigned PDF is released, sealed inside, and
	// accepted by a receiver whose policy is off too.
	a.reg.PDF.AllowUnsigned, b.reg.PDF.AllowUnsigned = true, true
	x.submit(t, a, a.clerk, []string{b.staff.Address}, docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"cv.pdf", signingtest.Letter(2, 100, 1)}))
	in := docs(t, b, mailstore.DocIn)
	if len(in) != 1 || !strings.Contains(in[0].Notes, "Chữ ký số trong tệp PDF: cv.pdf: ký bởi Sở Thông tin và Truyền thông") {
		t.Errorf("B's incoming register: %+v", in)
	}
}

// TestIncomingPDFNotes: the incoming register names who signed the PDF.
func TestIncomingPDFNotes(t *testing.T) {
	x := newExchange(t)
	a, b := x.a, x.b
	x.clock.Set(t0.Add(time.Minute))
	x.submit(t, a, a.clerk, []string{b.staff.Address}, docMessage(t, a.domain.OfficialAddress, b.staff.Address, subject, file{"cv.pdf", signedPDF(t, 1, 100)}))
	in := docs(t, b, mailstore.DocIn)
	if len(in) != 1 || !strings.Contains(in[0].Notes, "ký bởi Nguyễn Văn An (Sở Thông tin và Truyền thông) lúc 2026-11-28T08:30:00+07:00, ký bởi Sở Thông tin và Truyền thông") {
		t.Errorf("B's incoming register: %+v", in)
	}
}
