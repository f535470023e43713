package signing

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"sealmail/signing/signingtest"
)

// stampedAt is when the test TSA dates its tokens: after the seal signed
// at testNow, as a real TSA would.
var stampedAt = testNow.Add(2 * time.Second)

// withTSA returns a copy of p's seal that timestamps with tsa.
func withTSA(p *pki, tsa Timestamper) *Seal {
	s := *p.seal
	s.Timestamper = tsa
	return &s
}

func TestTimestamp(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	tsa := signingtest.NewTSA(t, stampedAt)
	seal := withTSA(a, &TSAClient{URL: tsa.URL, Roots: tsa.Roots})
	msg := stamped(t, seal, testNow)
	opts := options(testNow, map[Agency]*pki{agencyA: a})
	opts.TSARoots = tsa.Roots
	res, err := Verify(msg, opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	wantChecks(t, res, map[string]Reason{CheckTimestamp: "", CheckValidity: ""})
	if !res.Timestamp.Equal(stampedAt) || !strings.Contains(res.Check(CheckValidity).Detail, stampedAt.UTC().Format(time.RFC3339)) {
		t.Errorf("timestamp %v, validity %q; want %v", res.Timestamp, res.Check(CheckValidity).Detail, stampedAt)
	}

	// A verifier that trusts no TSA ignores the token.
	opts.TSARoots = nil
	res, err = Verify(msg, opts)
	if err != nil || res.Check(CheckTimestamp).Status != Skip || !res.Timestamp.IsZero() {
		t.Errorf("without TSA roots: %v\n%s", err, res)
	}

	// Receipts are timestamped too.
	rcpt, err := Receipt(t.Context(), seal, testEvidence(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	opts.TSARoots = tsa.Roots
	if _, res, err := ParseReceipt(rcpt, opts); err != nil || res.Check(CheckTimestamp).Status != Pass {
		t.Errorf("receipt: %v\n%s", err, res)
	}
}

// A timestamp proves the signature predates a revocation; the signer's own
// signingTime does not.
func TestTimestampRevocation(t *testing.T) {
	a := newPKI(t, agencyA, testNow.AddDate(0, -1, 0), testNow.AddDate(0, -1, 0))
	tsa := signingtest.NewTSA(t, stampedAt)
	msg := stamped(t, withTSA(a, &TSAClient{URL: tsa.URL}), testNow)
	revoked := func(at time.Time) []*x509.RevocationList {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: testNow.Add(time.Hour), NextUpdate: testNow.AddDate(0, 0, 7),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: a.seal.Cert.SerialNumber, RevocationTime: at}},
		}, a.ca, a.caKey)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.RevocationList{crl}
	}
	for _, tc := range []struct {
		name     string
		tsaRoots *x509.CertPool
		revoked  time.Time
		want     Reason
	}{
		{"revoked after the timestamp", tsa.Roots, stampedAt.Add(time.Minute), ""},
		{"revoked before the timestamp", tsa.Roots, stampedAt.Add(-time.Second), ReasonRevoked},
		{"revoked after signingTime, TSA not trusted", nil, stampedAt.Add(time.Minute), ReasonRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := options(testNow.Add(2*time.Hour), map[Agency]*pki{agencyA: a})
			opts.TSARoots, opts.CRLs = tc.tsaRoots, revoked(tc.revoked)
			res, _ := Verify(msg, opts)
			wantChecks(t, res, map[string]Reason{CheckRevocation: tc.want})
		})
	}
}

// timestamperFunc adapts a function to Timestamper.
type timestamperFunc func(ctx context.Context, digest []byte) ([]byte, error)

func (f timestamperFunc) Timestamp(ctx context.Context, digest []byte) ([]byte, error) {
	return f(ctx, digest)
}

func TestTimestampRejected(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	tsa := signingtest.NewTSA(t, stampedAt)
	other := signingtest.NewTSA(t, stampedAt)
	good := &TSAClient{URL: tsa.URL}
	for _, tc := range []struct {
		name  string
		tsa   Timestamper
		roots *x509.CertPool
		want  Reason
	}{
		{"token altered", timestamperFunc(func(ctx context.Context, d []byte) ([]byte, error) {
			tok, err := good.Timestamp(ctx, d)
			if err == nil {
				tok[len(tok)-1] ^= 1 // in the TSA's signature, which ends the token
			}
			return tok, err
		}), tsa.Roots, ReasonBadTimestamp},
		{"token for other data", timestamperFunc(func(ctx context.Context, _ []byte) ([]byte, error) {
			d := sha256.Sum256([]byte("another signature"))
			return good.Timestamp(ctx, d[:])
		}), tsa.Roots, ReasonTimestampMismatch},
		{"unknown TSA", good, other.Roots, ReasonUntrustedTSA},
		{"token by the seal itself", timestamperFunc(func(_ context.Context, d []byte) ([]byte, error) {
			tok := timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: d, Time: stampedAt,
				SerialNumber: big.NewInt(1), Policy: asn1.ObjectIdentifier{1, 2, 3}, AddTSACertificate: true}
			reply, err := tok.CreateResponseWithOpts(a.seal.Cert, a.seal.Key, crypto.SHA256)
			if err != nil {
				return nil, err
			}
			ts, err := timestamp.ParseResponse(reply)
			if err != nil {
				return nil, err
			}
			return ts.RawToken, nil
		}), options(testNow, map[Agency]*pki{agencyA: a}).Roots[agencyA.Domain], ReasonUntrustedTSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := stamped(t, withTSA(a, tc.tsa), testNow)
			opts := options(testNow, map[Agency]*pki{agencyA: a})
			opts.TSARoots = tc.roots
			res, err := Verify(msg, opts)
			if err == nil {
				t.Fatalf("verified:\n%s", res)
			}
			wantChecks(t, res, map[string]Reason{CheckTimestamp: tc.want, CheckSignature: ""})
		})
	}
}

func TestTSAClientFails(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	tsa := signingtest.NewTSA(t, stampedAt)
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	replayed := signingtest.NewTSA(t, stampedAt)
	if _, err := (&TSAClient{URL: replayed.URL}).Timestamp(t.Context(), make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	replayed.Replay()
	for _, tc := range []struct {
		name, url string
		roots     *x509.CertPool
		want      string
	}{
		{"unreachable", downURL, nil, "connection refused"},
		{"not a TSA", web.URL, nil, "404"},
		{"untrusted", tsa.URL, signingtest.NewTSA(t, stampedAt).Roots, string(ReasonUntrustedTSA)},
		{"replayed", replayed.URL, nil, "nonce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...)
			_, err := Stamp(t.Context(), msg, withTSA(a, &TSAClient{URL: tc.url, Roots: tc.roots}), testDocument(agencyA), testNow)
			if !errors.Is(err, ErrTimestamp) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrTimestamp mentioning %q", err, tc.want)
			}
		})
	}
}

func TestTimestampOpenSSL(t *testing.T) {
	now := time.Now() // openssl checks chains at its own clock
	a := newPKI(t, agencyA, now, now)
	tsa := signingtest.NewTSA(t, now)
	msg := stamped(t, withTSA(a, &TSAClient{URL: tsa.URL, Roots: tsa.Roots}), now)
	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", EncodeCertsPEM(a.ca))
	writeFile(t, dir, "tsa.pem", EncodeCertsPEM(tsa.CA))
	writeFile(t, dir, "stamped.eml", msg)
	opensslVerifies(t, dir)
	env, err := openSigned(msg)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := parseSignature(env.sig)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "smime.p7s", env.sig)
	writeFile(t, dir, "token.der", sig.token)
	out, err := openssl(t, dir, "cms", "-cmsout", "-print", "-inform", "DER", "-in", "smime.p7s")
	if err != nil || !strings.Contains(out, "id-smime-aa-timeStampToken") {
		t.Errorf("openssl cms -print: %v\n%s", err, out)
	}
	// OpenSSL's own TSA verifier accepts the token as one over the
	// signature value.
	h := sha256.Sum256(sig.value)
	out, err = openssl(t, dir, "ts", "-verify", "-token_in", "-in", "token.der", "-digest", hex.EncodeToString(h[:]), "-CAfile", "tsa.pem")
	if err != nil || !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl ts -verify: %v\n%s", err, out)
	}
}
