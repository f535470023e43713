package signing

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"sealmail/signing/signingtest"
)

// TestPAdESBT: with a TSA, the agency's PAdES signature carries an RFC 3161
// token over its signature value (PAdES B-T); verification reports the
// token's time and judges revocation at it, not at the signer's claim or
// at the time of checking; pdfsig reads the file as a CAdES signature.
func TestPAdESBT(t *testing.T) {
	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Nguyễn Văn An", agencyA.OrganName, testNow)
	a := newPKI(t, agencyA, testNow, testNow)
	stampedAt := testNow.Add(2 * time.Minute)
	tsa := signingtest.NewTSA(t, stampedAt)
	seal := *a.seal
	seal.Timestamper = &TSAClient{URL: tsa.URL, Roots: tsa.Roots}
	one := signedLetter(t, signer, 1000)
	// The seal claims a signing time a minute before the TSA's.
	two, err := SignPDF(t.Context(), one, &seal, PDFSignOptions{Profile: ProfilePAdES, Field: "Seal"}, testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	roots := poolOf(ca.Cert, a.ca)
	opts := VerifyOptions{Now: testNow.Add(24 * time.Hour), TSARoots: tsa.Roots}
	rep, err := VerifyPDF(two, roots, opts)
	if err != nil {
		t.Fatal(err)
	}
	reportOK(t, rep, 2)
	g := rep.Signatures[1]
	if g.SubFilter != ProfilePAdES || !g.Timestamp.Equal(stampedAt) || !g.SigningTime.Equal(testNow.Add(time.Minute)) {
		t.Errorf("agency's signature: subFilter %s, timestamp %v, /M %v", g.SubFilter, g.Timestamp, g.SigningTime)
	}
	if c := g.Check(CheckTimestamp); c.Status != Pass || !strings.Contains(c.Detail, stampedAt.UTC().Format(time.RFC3339)) {
		t.Errorf("timestamp check: %+v", c)
	}
	if s := rep.summary(); !strings.Contains(s, "lúc "+ISOTime(stampedAt)+" (dấu thời gian)") {
		t.Errorf("summary: %s", s)
	}
	rep2 := pdfsig(t, two)
	if strings.Count(rep2, "Signature is Valid.") != 2 || !strings.Contains(rep2, "Signature Type: ETSI.CAdES.detached") {
		t.Errorf("pdfsig:\n%s", rep2)
	}
	qpdfCheck(t, two)

	// The seal is revoked a minute after the token: the signature stands.
	// Revoked a minute before it, the signature falls, although the seal's
	// own claim (/M) is earlier still: only the token's time counts.
	crlAt := func(revoked time.Time) *x509.RevocationList {
		der := (&signingtest.CA{Cert: a.ca, Key: a.caKey}).CRL(t, testNow.Add(time.Hour), revoked, a.seal.Cert)
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	after := opts
	after.CRLs = []*x509.RevocationList{crlAt(stampedAt.Add(time.Minute))}
	if rep, err := VerifyPDF(two, roots, after); err != nil || !rep.Signatures[1].OK {
		t.Errorf("revoked after the timestamp: %v\n%+v", err, rep.Signatures[1].Checks)
	}
	before := opts
	before.CRLs = []*x509.RevocationList{crlAt(stampedAt.Add(-30 * time.Second))}
	rep, err = VerifyPDF(two, roots, before)
	if err != nil {
		t.Fatal(err)
	}
	wantPDFFailure(t, rep, 1, CheckRevocation, ReasonRevoked)

	// Without the TSA trusted, the token is not taken for a time.
	rep, err = VerifyPDF(two, roots, VerifyOptions{Now: opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	if g := rep.Signatures[1]; !g.Timestamp.IsZero() || g.Check(CheckTimestamp).Status != Skip {
		t.Errorf("untrusted TSA: %+v", g)
	}
}
