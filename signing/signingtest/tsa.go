// Package signingtest runs an RFC 3161 time-stamping authority on
// 127.0.0.1 for tests of code that seals documents.
package signingtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
)

// TSA is a time-stamping authority answering over HTTP.
type TSA struct {
	URL   string
	CA    *x509.Certificate // root of Cert
	Cert  *x509.Certificate // signs the tokens: timeStamping, critical
	Roots *x509.CertPool    // holds CA

	key    crypto.Signer
	mu     sync.Mutex
	clock  time.Time
	replay bool
	last   []byte // the last reply made
}

var (
	oidExtKeyUsage   = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidTimeStamping  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidTestTSAPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1} // private arc, tests only
)

// NewTSA starts a TSA whose clock reads now until SetTime, with a CA and
// TSA certificate valid a year either side. It stops when the test ends.
func NewTSA(t testing.TB, now time.Time) *TSA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Test TSA CA"},
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, caKey.Public(), caKey, now)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 3161 §2.3 wants the timeStamping usage alone and critical, which
	// x509.Certificate.ExtKeyUsage cannot mark.
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
	if err != nil {
		t.Fatal(err)
	}
	cert := issue(t, &x509.Certificate{
		Subject:         pkix.Name{CommonName: "Test TSA"},
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
	}, ca, key.Public(), caKey, now)
	ts := &TSA{CA: ca, Cert: cert, Roots: x509.NewCertPool(), key: key, clock: now}
	ts.Roots.AddCert(ca)
	srv := httptest.NewServer(ts)
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

// SetTime sets the time the TSA puts in its tokens.
func (ts *TSA) SetTime(t time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.clock = t
}

// Replay makes the TSA answer every later request with the reply it made
// last, as an attacker replaying an old token would.
func (ts *TSA) Replay() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.replay = true
}

// ServeHTTP answers a DER time-stamp query (RFC 3161 §3.4).
func (ts *TSA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
		http.Error(w, "want POST application/timestamp-query", http.StatusBadRequest)
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var reply []byte
	if ts.replay && ts.last != nil {
		reply = ts.last
	} else if req, err := timestamp.ParseRequest(body); err != nil {
		reply, err = timestamp.CreateErrorResponse(timestamp.Rejection, timestamp.BadDataFormat)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	} else {
		serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
		tok := timestamp.Timestamp{
			HashAlgorithm:     req.HashAlgorithm,
			HashedMessage:     req.HashedMessage,
			Time:              ts.clock.UTC(), // GeneralizedTime in UTC, RFC 3161 §2.4.2
			Accuracy:          time.Second,
			SerialNumber:      serial,
			Policy:            oidTestTSAPolicy,
			Nonce:             req.Nonce,
			AddTSACertificate: req.Certificates,
		}
		if reply, err = tok.CreateResponseWithOpts(ts.Cert, ts.key, crypto.SHA256); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ts.last = reply
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(reply)
}

func issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer, now time.Time) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
