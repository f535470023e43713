package registry

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
)

// Files of a domain's seal directory. Keys are mode 0600 and never logged.
const (
	CACertFile   = "ca.pem"   // the CA peers must trust for this domain's seals
	CAKeyFile    = "ca.key"   // only for a pilot CA made by InitSeal
	SealCertFile = "seal.pem" // the seal certificate, then its chain
	SealKeyFile  = "seal.key"
	// SealTokenFile holds the PKCS#11 URI of a seal whose key is on a token
	// or HSM; it takes the place of seal.key.
	SealTokenFile = "seal.pkcs11"
	SealImageFile = "seal.png" // the red seal shown on documents (Appendix I)
)

// SealDir returns the directory of a hosted domain's seal: DATA/seal/DOMAIN.
func SealDir(dataDir, domain string) string {
	return filepath.Join(dataDir, "seal", strings.ToLower(domain))
}

// CRLDir returns the directory whose files (PEM or DER CRLs) apply to every
// verification: DATA/seal/crl.
func CRLDir(dataDir string) string {
	return filepath.Join(dataDir, "seal", "crl")
}

// LoadSeal loads a hosted domain's seal: its key from seal.key, or from
// the token seal.pkcs11 names.
func LoadSeal(dataDir, domain string) (*signing.Seal, error) {
	dir := SealDir(dataDir, domain)
	uri, err := os.ReadFile(filepath.Join(dir, SealTokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return signing.LoadPEM(filepath.Join(dir, SealCertFile), filepath.Join(dir, SealKeyFile))
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	u, err := signing.ParsePKCS11URI(strings.TrimSpace(string(uri)))
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", filepath.Join(dir, SealTokenFile), err)
	}
	certs, err := os.ReadFile(filepath.Join(dir, SealCertFile))
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	chain, err := signing.ParseCertsPEM(certs)
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", filepath.Join(dir, SealCertFile), err)
	}
	return signing.LoadPKCS11(u, chain)
}

// Agency describes a hosted domain as the seal and manifests name it.
func Agency(d mailstore.Domain) signing.Agency {
	return signing.Agency{Domain: d.Name, OrganID: d.OrganID, OrganName: d.OrganName, Code: d.Code, OfficialAddress: d.OfficialAddress}
}

// InitSeal creates a pilot CA and a seal for d, issued at now, in its seal
// directory. It fails with fs.ErrExist if the domain has a seal already.
func InitSeal(dataDir string, d mailstore.Domain, now time.Time) (*signing.Seal, error) {
	dir := SealDir(dataDir, d.Name)
	if _, err := os.Stat(filepath.Join(dir, SealCertFile)); err == nil {
		return nil, fmt.Errorf("registry: seal of %s: %w", d.Name, fs.ErrExist)
	}
	ca, caKey, err := signing.NewLocalCA(d.OrganName, d.OrganID, now)
	if err != nil {
		return nil, err
	}
	seal, err := signing.IssueSeal(ca, caKey, Agency(d), now)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := signing.WriteKeyFile(filepath.Join(dir, CAKeyFile), caKey); err != nil {
		return nil, err
	}
	return seal, InstallSeal(dataDir, d.Name, seal)
}

// InstallSeal writes seal as the domain's seal, replacing any earlier one,
// and its chain's last certificate as the CA peers must trust. A seal whose
// chain is empty leaves ca.pem as it is: that CA has to be given separately.
func InstallSeal(dataDir, domain string, seal *signing.Seal) error {
	dir := SealDir(dataDir, domain)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := signing.WriteKeyFile(filepath.Join(dir, SealKeyFile), seal.Key); err != nil {
		return err
	}
	if err := writeCerts(dir, seal); err != nil {
		return err
	}
	// The file key replaces a token's.
	if err := os.Remove(filepath.Join(dir, SealTokenFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry: %w", err)
	}
	return writeCA(dir, seal)
}

// InstallTokenSeal installs seal, whose key is on the token uri names, as
// the domain's seal: the URI (with the PIN file's path, never the PIN) in
// seal.pkcs11, the certificates as InstallSeal writes them. A file key
// installed before is removed: the seal now signs on the token only.
func InstallTokenSeal(dataDir, domain string, uri *signing.PKCS11URI, seal *signing.Seal) error {
	dir := SealDir(dataDir, domain)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := writeFile(filepath.Join(dir, SealTokenFile), []byte(uri.String()+"\n")); err != nil {
		return err
	}
	if err := writeCerts(dir, seal); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, SealKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry: %w", err)
	}
	return writeCA(dir, seal)
}

func writeCerts(dir string, seal *signing.Seal) error {
	certs := append([]*x509.Certificate{seal.Cert}, seal.Chain...)
	return writeFile(filepath.Join(dir, SealCertFile), signing.EncodeCertsPEM(certs...))
}

func writeCA(dir string, seal *signing.Seal) error {
	if len(seal.Chain) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, CACertFile), signing.EncodeCertsPEM(seal.Chain[len(seal.Chain)-1]))
}

// writeFile replaces path with data so that a crash leaves the old file or
// the new one, never a part.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, data, 0o644)
	if err == nil {
		var f *os.File
		if f, err = os.Open(tmp); err == nil {
			err = errors.Join(f.Sync(), f.Close())
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("registry: write %s: %w", path, err)
	}
	return nil
}

// InstallSealImage checks data as a seal picture (signing.ParseSealImage)
// and installs it as the domain's.
func InstallSealImage(dataDir, domain string, data []byte) error {
	if _, err := signing.ParseSealImage(data); err != nil {
		return err
	}
	dir := SealDir(dataDir, domain)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return writeFile(filepath.Join(dir, SealImageFile), data)
}

// sealImage loads a domain's seal picture; nil when it has none.
func sealImage(dataDir, domain string) (image.Image, error) {
	data, err := os.ReadFile(filepath.Join(SealDir(dataDir, domain), SealImageFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return signing.ParseSealImage(data)
}

// SealCA returns the PEM CA certificate peers must trust for a hosted
// domain's seals.
func SealCA(dataDir, domain string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(SealDir(dataDir, domain), CACertFile))
	if err != nil {
		return nil, fmt.Errorf("registry: seal CA of %s: %w", domain, err)
	}
	return b, nil
}

// VerifyOptions returns the policy for documents and receipts From domain:
// that domain's anchors only (a hosted domain's own seal CA, or the CA given
// with 'sealmail peer add --seal-ca'), so no other agency's CA can vouch for
// it, every CRL configured, and TSARoots. Now is left zero. With no anchor
// the options hold no roots and verification fails with
// signing.ReasonNoAnchor.
func (r *Registry) VerifyOptions(ctx context.Context, domain string) (signing.VerifyOptions, error) {
	domain = strings.ToLower(domain)
	opts := signing.VerifyOptions{TSARoots: r.TSARoots, OCSP: r.OCSP,
		PDF: &signing.PDFPolicy{TrustRoots: r.PDF.TrustRoots, RequireSigner: !r.PDF.AllowUnsigned}}
	var caPEM []byte
	var crlFiles []string
	hosted, err := r.Store.IsLocalDomain(ctx, domain)
	if err != nil {
		return opts, err
	}
	if hosted {
		caPEM, err = SealCA(r.DataDir, domain)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return opts, err
		}
	} else {
		p, err := r.Store.PeerSeal(ctx, domain)
		switch {
		case err == nil:
			caPEM = []byte(p.CA)
			if p.CRLFile != "" {
				crlFiles = append(crlFiles, p.CRLFile)
			}
		case !errors.Is(err, mailstore.ErrNotFound):
			return opts, err
		}
	}
	if len(caPEM) > 0 {
		certs, err := signing.ParseCertsPEM(caPEM)
		if err != nil {
			return opts, fmt.Errorf("registry: seal CA of %s: %w", domain, err)
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		opts.Roots = map[string]*x509.CertPool{domain: pool}
	}
	entries, err := os.ReadDir(CRLDir(r.DataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return opts, fmt.Errorf("registry: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			crlFiles = append(crlFiles, filepath.Join(CRLDir(r.DataDir), e.Name()))
		}
	}
	for _, f := range crlFiles {
		crls, err := ReadCRLs(f)
		if err != nil {
			// A revocation list that cannot be read must not pass as "no
			// revocation": fail, and let the sender retry once it is fixed.
			return opts, err
		}
		opts.CRLs = append(opts.CRLs, crls...)
	}
	return opts, nil
}

// ReadCRLs reads a file of CRLs: PEM "X509 CRL" blocks, or one DER CRL.
func ReadCRLs(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: CRL: %w", err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("registry: CRL %s: %w", path, err)
		}
		return []*x509.RevocationList{crl}, nil
	}
	var out []*x509.RevocationList
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("registry: CRL %s: %w", path, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("registry: CRL %s: no X509 CRL block", path)
	}
	return out, nil
}

// knownAgency reports whether receipts may be sent to domain: it is hosted
// here or a peer whose seals are trusted. Anyone else may be forged, and a
// receipt to them would be backscatter.
func (r *Registry) knownAgency(ctx context.Context, domain string) (bool, error) {
	if hosted, err := r.Store.IsLocalDomain(ctx, domain); err != nil || hosted {
		return hosted, err
	}
	_, err := r.Store.PeerSeal(ctx, domain)
	if errors.Is(err, mailstore.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
