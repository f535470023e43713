package pemcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func cert(t *testing.T, name string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParse(t *testing.T) {
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not read")})
	data := append(append(cert(t, "Sở Nội vụ"), key...), cert(t, "UBND tỉnh")...)
	certs, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || certs[0].Subject.CommonName != "Sở Nội vụ" || certs[1].Subject.CommonName != "UBND tỉnh" {
		t.Fatalf("got %d certificates", len(certs))
	}
	if _, err := Parse(key); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("no certificate: %v", err)
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})
	if _, err := Parse(append(cert(t, "a"), bad...)); err == nil || !strings.Contains(err.Error(), "certificate 2") {
		t.Errorf("broken second certificate: %v", err)
	}
}
