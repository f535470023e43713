// Package certs keeps the server's TLS certificate. A fresh data directory gets
// a local certificate authority (kept in the data directory, never served) and a
// server certificate it issued, renewed before it expires: staff import the CA
// once (from the portal or the Apple profile) and every client then trusts the
// server by name, which a single self-signed certificate cannot give
// (Thunderbird refuses a CA certificate used as a server certificate). An
// administrator who configures a certificate from a real CA replaces both: a
// certificate this package did not issue is loaded as it is and never renewed.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"sealmail/config"
	"sealmail/internal/durable"
)

// The local CA's files, relative to the data directory.
const (
	CAFile    = "tls/ca.pem"
	CAKeyFile = "tls/ca-key.pem"
)

// Lifetimes. Apple platforms refuse server certificates valid for more than
// 825 days even under a locally trusted root, and browsers 398: stay under.
const (
	caLifetime   = 20 * 365 * 24 * time.Hour
	leafLifetime = 397 * 24 * time.Hour
	// RenewBefore is how long before expiry a locally issued certificate is replaced.
	RenewBefore = 30 * 24 * time.Hour
)

// organization marks certificates this package made, so that a certificate an
// administrator installed is never touched.
const organization = "sealmail"

// oldOrganization marks the single self-signed certificate (also a CA) that
// earlier versions' init made; Load turns it into the local CA.
const oldOrganization = "sealmail self-signed"

// DomainNames are the names under a hosted domain that point at the server
// for the web listener: autoconfig (Thunderbird), autodiscover (Outlook) and
// mta-sts (other servers fetching the MTA-STS policy).
func DomainNames(domain string) []string {
	return []string{"autoconfig." + domain, "autodiscover." + domain, "mta-sts." + domain}
}

// CA is a certificate authority: a certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a local CA for the server host.
func NewCA(host string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sealmail CA for " + host, Organization: []string{organization}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue makes a server certificate for names (DNS names or IP addresses; the
// first is the subject) and its key, as PEM.
func (ca *CA) Issue(names []string) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("a server certificate needs at least one name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	notAfter := time.Now().Add(leafLifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{organization}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// clientAuth too: the relay presents this certificate to peers.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	// The chain includes the CA: a client that was given only the CA's
	// fingerprint, or an intermediate-hungry one, still builds the path.
	certPEM = append(pemBlock("CERTIFICATE", der), pemBlock("CERTIFICATE", ca.Cert.Raw)...)
	return certPEM, pemBlock("PRIVATE KEY", kder), nil
}

// PEM returns the CA certificate as PEM: what clients and peers import.
func (ca *CA) PEM() []byte { return pemBlock("CERTIFICATE", ca.Cert.Raw) }

// Write stores the CA in certPath and keyPath (mode 0600), refusing to overwrite.
func (ca *CA) Write(certPath, keyPath string) error {
	kder, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return err
	}
	if err := config.WriteNewFile(keyPath, pemBlock("PRIVATE KEY", kder), 0o600); err != nil {
		return err
	}
	return config.WriteNewFile(certPath, ca.PEM(), 0o644)
}

// LoadCA reads a CA written by Write.
func LoadCA(certPath, keyPath string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type", keyPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Create sets up a data directory's TLS files: a new local CA in caPath and
// caKeyPath, and a server certificate for names in certPath and keyPath.
func Create(caPath, caKeyPath, certPath, keyPath string, names []string) error {
	ca, err := NewCA(names[0])
	if err != nil {
		return err
	}
	if err := ca.Write(caPath, caKeyPath); err != nil {
		return fmt.Errorf("writing the local CA: %w", err)
	}
	certPEM, keyPEM, err := ca.Issue(names)
	if err != nil {
		return err
	}
	if err := config.WriteNewFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return config.WriteNewFile(certPath, certPEM, 0o644)
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// names returns the DNS names and addresses a certificate is for, subject first.
func names(c *x509.Certificate) []string {
	var ns []string
	add := func(n string) {
		for _, o := range ns {
			if o == n {
				return
			}
		}
		ns = append(ns, n)
	}
	if c.Subject.CommonName != "" {
		add(c.Subject.CommonName)
	}
	for _, n := range c.DNSNames {
		add(n)
	}
	for _, ip := range c.IPAddresses {
		add(ip.String())
	}
	return ns
}

// issuedBy tells whether leaf was signed by ca.
func issuedBy(leaf *x509.Certificate, ca *x509.Certificate) bool {
	return bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil
}

// replace writes data to path atomically (temporary file, sync, rename, sync
// of the directory): a crash leaves the old file or the new one, never half.
func replace(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

// IssuedLocally tells whether the certificate in certFile was issued by the
// local CA in caFile (false when there is no local CA): then clients trust it
// only once they import the CA, and MTA-STS senders would not.
func IssuedLocally(certFile, caFile string) (bool, error) {
	leaf, err := firstCert(certFile)
	if err != nil {
		return false, err
	}
	ca, err := firstCert(caFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return issuedBy(leaf, ca), nil
}

// firstCert reads the first certificate of a PEM file.
func firstCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
