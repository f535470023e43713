package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Seal is an agency's signing identity: its certificate, the intermediates
// up to (not necessarily including) the root, and the private key.
type Seal struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate
	Key   crypto.Signer
	// Timestamper, if set, timestamps every signature (RFC 3161); signing
	// fails with ErrTimestamp when it cannot.
	Timestamper Timestamper
}

// Agency is an issuing organ (cơ quan) as the seal and manifest name it.
type Agency struct {
	Domain          string // mail domain, e.g. "stttt.hanoi.gov.vn"
	OrganID         string // Decree 30 OrganId, e.g. "000.00.12.H10"
	OrganName       string // e.g. "Sở Thông tin và Truyền thông"
	Code            string // default ký hiệu, e.g. "STTTT-VP"
	OfficialAddress string // official mailbox, the only From: the seal signs for
}

// Lifetimes of pilot certificates. Backdating absorbs clock skew between
// the issuing host and verifiers.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	sealLifetime = 2 * 365 * 24 * time.Hour
	backdate     = time.Hour
)

// NewLocalCA creates a self-signed ECDSA P-256 CA for a pilot, valid ten
// years from now. Production seals come from the national CA instead; its
// certificates load with LoadPEM or LoadPKCS12.
func NewLocalCA(organName, organID string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               organSubject(organName+" CA", organName, organID),
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // issues seals only
	}
	cert, err := create(tmpl, nil, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: CA certificate: %w", err)
	}
	return cert, key, nil
}

// IssueSeal issues a seal certificate for a, valid two years from now: ECDSA
// P-256, digitalSignature and nonRepudiation, emailProtection, the official
// address as its only e-mail address and the OrganId as subject
// serialNumber, which Verify matches against the manifest.
func IssueSeal(ca *x509.Certificate, caKey crypto.Signer, a Agency, now time.Time) (*Seal, error) {
	if a.OrganID == "" || a.OrganName == "" {
		return nil, errors.New("signing: agency needs OrganID and OrganName")
	}
	if !strings.HasSuffix(strings.ToLower(a.OfficialAddress), "@"+strings.ToLower(a.Domain)) {
		return nil, fmt.Errorf("signing: official address %q is not in domain %q", a.OfficialAddress, a.Domain)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signing: seal key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:        organSubject(a.OrganName, a.OrganName, a.OrganID),
		EmailAddresses: []string{a.OfficialAddress},
		NotBefore:      now.Add(-backdate),
		NotAfter:       now.Add(sealLifetime),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	cert, err := create(tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("signing: seal certificate: %w", err)
	}
	return &Seal{Cert: cert, Chain: []*x509.Certificate{ca}, Key: key}, nil
}

func organSubject(cn, organName, organID string) pkix.Name {
	return pkix.Name{Country: []string{"VN"}, Organization: []string{organName}, CommonName: cn, SerialNumber: organID}
}

// create signs tmpl with a random 128-bit serial; parent nil means self-signed.
func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// organID returns the OrganId a seal certificate carries, or "".
func organID(c *x509.Certificate) string {
	return c.Subject.SerialNumber
}

// hasEmail reports whether c certifies addr. Comparison ignores case, as
// mail systems in practice treat mailboxes.
func hasEmail(c *x509.Certificate, addr string) bool {
	for _, e := range c.EmailAddresses {
		if strings.EqualFold(e, addr) {
			return true
		}
	}
	return false
}
