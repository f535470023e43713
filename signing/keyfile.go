package signing

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"software.sslmate.com/src/go-pkcs12"

	"sealmail/internal/pemcert"
)

// EncodeCertsPEM returns certs as concatenated CERTIFICATE blocks.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writes to memory: cannot fail
	}
	return b.Bytes()
}

// EncodeKeyPEM returns key as a PKCS#8 PRIVATE KEY block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("signing: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCertsPEM parses every CERTIFICATE block in data, in order.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	certs, err := pemcert.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return certs, nil
}

// ParseKeyPEM parses the first private key block: PKCS#8, SEC 1 or PKCS#1.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("signing: no private key block")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("signing: private key: %w", err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("signing: private key %T cannot sign", key)
		}
		return s, nil
	}
}

// WriteKeyFile writes key to path as PKCS#8 PEM, mode 0600. It writes a
// temporary file, syncs it and renames it over path, then syncs the
// directory, so a crash leaves either the old key or the new one.
func WriteKeyFile(path string, key crypto.Signer) (err error) {
	data, err := EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".key-*") // created 0600
	if err != nil {
		return fmt.Errorf("signing: write key: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil { // in case of an unusual umask or platform default
		return fmt.Errorf("signing: write key: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("signing: write key: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("signing: write key: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("signing: write key: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("signing: write key: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("signing: sync key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("signing: sync key directory: %w", err)
	}
	return nil
}

// LoadPEM loads a seal from a certificate file (seal certificate first, then
// its chain) and a private key file.
func LoadPEM(certFile, keyFile string) (*Seal, error) {
	cdata, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	certs, err := ParseCertsPEM(cdata)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, certFile)
	}
	kdata, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	key, err := ParseKeyPEM(kdata)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, keyFile)
	}
	return newSeal(certs[0], certs[1:], key)
}

// LoadPKCS12 loads a seal from a PKCS#12 (.p12, .pfx) file, the format in
// which certificate authorities and Windows hand out keys.
func LoadPKCS12(file, password string) (*Seal, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	key, cert, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, fmt.Errorf("signing: %s: %w", file, err)
	}
	return newSeal(cert, chain, key)
}

// newSeal checks that key belongs to cert: a mismatch would only show up
// as "bad-signature" at every recipient.
func newSeal(cert *x509.Certificate, chain []*x509.Certificate, key any) (*Seal, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: private key %T cannot sign", key)
	}
	pub, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("signing: private key does not match the seal certificate")
	}
	if _, err := signatureAlgorithm(s.Public()); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if k, ok := s.Public().(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("signing: RSA key of %d bits; seals need 2048 or more", k.N.BitLen())
	}
	return &Seal{Cert: cert, Chain: chain, Key: s}, nil
}
