package signingtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"image"
	"image/color"
	"math/big"
	"testing"
	"time"
)

// CA is a stand-in for the national CA that issues the personal
// certificates of people with signing authority: RSA, as the government
// CA's are.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a CA valid a year either side of now.
func NewCA(t testing.TB, now time.Time) *CA {
	t.Helper()
	key := rsaKey(t)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"VN"}, Organization: []string{"Ban Cơ yếu Chính phủ"}, CommonName: "Cục Chứng thực số (thử nghiệm)"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return &CA{Cert: issue(t, tmpl, nil, key.Public(), key, now), Key: key}
}

// Person issues a personal signing certificate (RSA 2048) for name of
// organ, valid a year either side of now.
func (ca *CA) Person(t testing.TB, name, organ string, now time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := rsaKey(t)
	tmpl := &x509.Certificate{
		Subject:  pkix.Name{Country: []string{"VN"}, Organization: []string{organ}, CommonName: name},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	return issue(t, tmpl, ca.Cert, key.Public(), ca.Key, now), key
}

// CRL returns a DER CRL of ca revoking certs at revoked.
func (ca *CA) CRL(t testing.TB, now, revoked time.Time, certs ...*x509.Certificate) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: revoked})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(now.Unix()), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(7 * 24 * time.Hour), RevokedCertificateEntries: entries}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// SignatureImage is a blue scribble on a transparent background, as a
// signer's signature image looks.
func SignatureImage() image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 300, 120))
	for x := 20; x < 280; x++ {
		// A triangle wave is scribble enough.
		p := float64(x) / 25
		p -= 4 * float64(int(p/4))
		tri := p - 1
		if p >= 2 {
			tri = 3 - p
		}
		y := 60 + int(30*tri)
		for d := -2; d <= 2; d++ {
			img.SetNRGBA(x, y+d, color.NRGBA{0, 40, 200, 255})
		}
	}
	return img
}
