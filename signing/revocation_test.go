package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// newCRL issues a CRL from ca, valid a week from now, revoking serials.
func newCRL(t *testing.T, ca *x509.Certificate, key crypto.Signer, now time.Time, serials ...*big.Int) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(now.Unix()), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.AddDate(0, 0, 7)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// ocspFunc answers OCSP requests in tests, without a network.
type ocspFunc func(url string, req []byte) ([]byte, error)

func (f ocspFunc) FetchOCSP(url string, req []byte) ([]byte, error) { return f(url, req) }

// responder answers for p's CA with status, signed by signer (the CA when nil).
func responder(t *testing.T, p *pki, signer *x509.Certificate, signerKey crypto.Signer, status int, nextUpdate time.Time) ocspFunc {
	if signer == nil {
		signer, signerKey = p.ca, p.caKey
	}
	return func(url string, raw []byte) ([]byte, error) {
		if url != "http://ocsp.stttt.hanoi.gov.vn" {
			t.Errorf("OCSP asked at %s", url)
		}
		req, err := ocsp.ParseRequest(raw)
		if err != nil {
			return nil, err
		}
		return ocsp.CreateResponse(p.ca, signer, ocsp.Response{
			Status: status, SerialNumber: req.SerialNumber, ThisUpdate: testNow.Add(-time.Hour), NextUpdate: nextUpdate,
			RevokedAt: testNow.Add(-time.Minute), Certificate: signer,
		}, signerKey)
	}
}

func TestCheckRevocation(t *testing.T) {
	a := newPKI(t, agencyA, testNow.AddDate(0, -1, 0), testNow.AddDate(0, -1, 0))
	impostor := newPKI(t, agencyA, testNow, testNow) // a CA with the same name but another key
	withOCSP := *a.seal.Cert
	withOCSP.OCSPServer = []string{"http://ocsp.stttt.hanoi.gov.vn"}
	seal := reissue(t, a, &withOCSP, a.seal.Key.Public())
	chain := []*x509.Certificate{seal, a.ca}
	delegate := *a.seal.Cert // a responder certificate without id-kp-OCSPSigning
	delegated := reissue(t, a, &delegate, a.seal.Key.Public())
	week := testNow.AddDate(0, 0, 7)
	down := ocspFunc(func(string, []byte) ([]byte, error) { return nil, errors.New("connection refused") })

	for _, tc := range []struct {
		name    string
		opts    VerifyOptions
		sources int
		want    Reason
	}{
		{"nothing known", VerifyOptions{}, 0, ""},
		{"nothing known, required", VerifyOptions{RequireRevocation: true}, 0, ReasonNoRevocationInfo},
		{"CRL lists others", VerifyOptions{CRLs: []*x509.RevocationList{newCRL(t, a.ca, a.caKey, testNow, big.NewInt(7))}}, 1, ""},
		{"CRL of another CA is ignored", VerifyOptions{CRLs: []*x509.RevocationList{newCRL(t, newPKI(t, agencyB, testNow, testNow).ca, a.caKey, testNow, seal.SerialNumber)}}, 0, ""},
		{"CRL revokes", VerifyOptions{CRLs: []*x509.RevocationList{newCRL(t, a.ca, a.caKey, testNow, seal.SerialNumber)}}, 0, ReasonRevoked},
		{"CRL forged", VerifyOptions{CRLs: []*x509.RevocationList{newCRL(t, impostor.ca, impostor.caKey, testNow)}}, 0, ReasonBadCRL},
		{"CRL stale", VerifyOptions{CRLs: []*x509.RevocationList{newCRL(t, a.ca, a.caKey, testNow.AddDate(0, 0, -8))}}, 0, ReasonStaleCRL},
		{"OCSP good", VerifyOptions{OCSP: responder(t, a, nil, nil, ocsp.Good, week)}, 1, ""},
		{"OCSP and CRL", VerifyOptions{OCSP: responder(t, a, nil, nil, ocsp.Good, week), CRLs: []*x509.RevocationList{newCRL(t, a.ca, a.caKey, testNow)}}, 2, ""},
		{"OCSP revoked", VerifyOptions{OCSP: responder(t, a, nil, nil, ocsp.Revoked, week)}, 0, ReasonRevoked},
		{"OCSP unknown", VerifyOptions{OCSP: responder(t, a, nil, nil, ocsp.Unknown, week)}, 0, ReasonOCSPUnknown},
		{"OCSP stale", VerifyOptions{OCSP: responder(t, a, nil, nil, ocsp.Good, testNow.Add(-time.Minute))}, 0, ReasonStaleOCSP},
		{"OCSP unreachable", VerifyOptions{OCSP: down}, 0, ReasonOCSPFailed},
		{"OCSP by unauthorised responder", VerifyOptions{OCSP: responder(t, a, delegated, a.seal.Key, ocsp.Good, week)}, 0, ReasonOCSPFailed},
		{"OCSP by another CA", VerifyOptions{OCSP: responder(t, impostor, nil, nil, ocsp.Good, week)}, 0, ReasonOCSPFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sources, err := checkRevocation(chain, tc.opts, testNow, time.Time{})
			var p *problem
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected %v", err)
			case tc.want != "" && (!errors.As(err, &p) || p.reason != tc.want):
				t.Errorf("got %v, want %s", err, tc.want)
			case len(sources) != tc.sources:
				t.Errorf("sources %v, want %d", sources, tc.sources)
			}
		})
	}
}

// OCSP is used only when the seal names a responder.
func TestCheckRevocationNoResponderURL(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	asked := false
	f := ocspFunc(func(string, []byte) ([]byte, error) { asked = true; return nil, errors.New("no") })
	sources, err := checkRevocation([]*x509.Certificate{a.seal.Cert, a.ca}, VerifyOptions{OCSP: f}, testNow, time.Time{})
	if err != nil || len(sources) != 0 || asked {
		t.Errorf("sources %v, err %v, asked %v", sources, err, asked)
	}
}
