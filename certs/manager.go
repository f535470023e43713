package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"sealmail/config"
)

// Manager serves the configured certificate to every listener, reloads it when
// asked (SIGHUP) and renews it before it expires when the local CA issued it.
type Manager struct {
	CertFile, KeyFile string // the served pair
	CAFile, CAKeyFile string // the local CA; need not exist
	Logger            *slog.Logger
	Now               func() time.Time // nil: time.Now
	// Names, when set, returns names a locally issued certificate must carry
	// (such as a domain added since): one that lacks any is reissued.
	Names func() ([]string, error)

	mu  sync.Mutex // one Load at a time
	cur atomic.Pointer[tls.Certificate]
	ca  atomic.Pointer[CA] // the local CA when it issued the served certificate
}

// Load reads the certificate files, first renewing a locally issued
// certificate that expires within RenewBefore, and serves the result to new
// handshakes; connections already open keep theirs.
func (m *Manager) Load() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.upgrade(); err != nil {
		return fmt.Errorf("tls: turning the old self-signed certificate into a local CA: %w", err)
	}
	ca, err := m.loadCA()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
	if err != nil && ca != nil {
		// A crash while renewing can leave a key that does not match its
		// certificate; the local CA can simply issue a new pair.
		m.Logger.Warn("the TLS certificate could not be loaded; issuing a new one from the local CA", "err", err)
		pair, err = m.renew(ca, m.CertFile)
	}
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("tls: %s: %w", m.CertFile, err)
	}
	pair.Leaf = leaf
	if ca != nil && !issuedBy(leaf, ca.Cert) {
		ca = nil // the administrator installed a certificate of their own
	}
	missing := m.missing(leaf)
	if ca != nil && (m.now().Add(RenewBefore).After(leaf.NotAfter) || len(missing) > 0) {
		if pair, err = m.renew(ca, m.CertFile, missing...); err != nil {
			return fmt.Errorf("tls: renewing the certificate: %w", err)
		}
		m.Logger.Info("renewed the TLS certificate from the local CA", "names", names(pair.Leaf), "expires", pair.Leaf.NotAfter.Format(time.DateOnly))
	} else if m.now().After(leaf.NotAfter) {
		m.Logger.Error("the TLS certificate has expired: clients will refuse to connect; install a new one and send SIGHUP",
			"file", m.CertFile, "expired", leaf.NotAfter.Format(time.DateOnly))
	}
	m.cur.Store(&pair)
	m.ca.Store(ca)
	return nil
}

// missing returns the names Names wants that leaf does not carry.
func (m *Manager) missing(leaf *x509.Certificate) []string {
	if m.Names == nil {
		return nil
	}
	want, err := m.Names()
	if err != nil {
		m.Logger.Warn("listing the names the TLS certificate must carry", "err", err)
		return nil
	}
	have := names(leaf)
	var miss []string
	for _, n := range want {
		if !slices.Contains(have, n) {
			miss = append(miss, n)
		}
	}
	return miss
}

// renew issues a new pair for the names in the certificate file and extra,
// and installs it.
func (m *Manager) renew(ca *CA, certFile string, extra ...string) (tls.Certificate, error) {
	ns, err := fileNames(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, keyPEM, err := ca.Issue(append(ns, extra...))
	if err != nil {
		return tls.Certificate{}, err
	}
	// The key first: a crash between the two leaves a mismatch, which Load repairs.
	if err := replace(m.KeyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := replace(m.CertFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
	return pair, err
}

// fileNames returns the names of the first certificate in a PEM file.
func fileNames(path string) ([]string, error) {
	c, err := firstCert(path)
	if err != nil {
		return nil, err
	}
	return names(c), nil
}

func (m *Manager) loadCA() (*CA, error) {
	if m.CAFile == "" {
		return nil, nil
	}
	ca, err := LoadCA(m.CAFile, m.CAKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tls: local CA: %w", err)
	}
	return ca, nil
}

// upgrade turns the one self-signed certificate of a data directory made by an
// earlier version into the local CA, and issues a server certificate from it.
// The CA keeps the old certificate and key, so peers that pinned it with
// 'peer add --tls-ca' still verify this server.
func (m *Manager) upgrade() error {
	if m.CAFile == "" {
		return nil
	}
	if _, err := os.Stat(m.CAFile); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	certPEM, err := os.ReadFile(m.CertFile)
	if err != nil {
		return nil // Load reports it
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return nil
	}
	old, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !old.IsCA || len(old.Subject.Organization) != 1 || old.Subject.Organization[0] != oldOrganization {
		return nil
	}
	keyPEM, err := os.ReadFile(m.KeyFile)
	if err != nil {
		return err
	}
	if err := config.WriteNewFile(m.CAKeyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := config.WriteNewFile(m.CAFile, pemBlock("CERTIFICATE", old.Raw), 0o644); err != nil {
		return err
	}
	ca, err := LoadCA(m.CAFile, m.CAKeyFile)
	if err != nil {
		return err
	}
	if _, err := m.renew(ca, m.CertFile); err != nil {
		return err
	}
	m.Logger.Info("the self-signed TLS certificate is now a local CA that issued a new server certificate; "+
		"peers that pinned the old certificate keep working", "ca", m.CAFile)
	return nil
}

// SetFiles changes the served pair's files; the next Load reads them.
func (m *Manager) SetFiles(certFile, keyFile string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.CertFile, m.KeyFile = certFile, keyFile
}

// Subject describes the served certificate for logs: its subject, issuer and expiry.
func (m *Manager) Subject() string {
	c := m.cur.Load()
	if c == nil || c.Leaf == nil {
		return ""
	}
	return fmt.Sprintf("%s (issuer %s, expires %s)", c.Leaf.Subject.CommonName, c.Leaf.Issuer.CommonName, c.Leaf.NotAfter.Format(time.DateOnly))
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load(), nil
}

// TLSConfig returns the servers' TLS configuration: TLS 1.2 or newer, the
// certificate as Load last read it.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: m.GetCertificate, MinVersion: tls.VersionTLS12}
}

// CAPEM returns the local CA certificate when it issued the served
// certificate: what staff import so that clients trust the server.
func (m *Manager) CAPEM() ([]byte, bool) {
	ca := m.ca.Load()
	if ca == nil {
		return nil, false
	}
	return ca.PEM(), true
}

// Run reloads the certificate twice a day until ctx is done, renewing it when due.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(12 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Load(); err != nil {
				m.Logger.Error("reloading the TLS certificate failed; still serving the previous one", "err", err)
			}
		}
	}
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
