package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sealmail/config"
)

func newManager(t *testing.T) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	m := &Manager{
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		CAFile: filepath.Join(dir, "ca.pem"), CAKeyFile: filepath.Join(dir, "ca-key.pem"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return m, dir
}

func roots(t *testing.T, pemFile []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemFile) {
		t.Fatal("no certificate in PEM")
	}
	return pool
}

// handshake connects a client trusting only pool to a server using m, by name.
func handshake(t *testing.T, m *Manager, pool *x509.CertPool, name string) error {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
	if err == nil {
		c.Close()
	}
	return err
}

func TestCreateServesLeafTrustedByCA(t *testing.T) {
	m, _ := newManager(t)
	if err := Create(m.CAFile, m.CAKeyFile, m.CertFile, m.KeyFile, []string{"mail.example.test", "localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	caPEM, ok := m.CAPEM()
	if !ok {
		t.Fatal("CAPEM: the local CA issued the certificate but is not offered")
	}
	leaf := m.cur.Load().Leaf
	if leaf.IsCA {
		t.Error("the served certificate is a CA: Thunderbird refuses it (CA_CERT_USED_AS_END_ENTITY)")
	}
	pool := roots(t, caPEM)
	for _, name := range []string{"mail.example.test", "127.0.0.1", "localhost"} {
		if err := handshake(t, m, pool, name); err != nil {
			t.Errorf("client trusting only the CA, by %s: %v", name, err)
		}
	}
	if err := handshake(t, m, pool, "other.example.test"); err == nil {
		t.Error("a name the certificate does not carry was accepted")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serverAuth: %v", err)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 398*24*time.Hour {
		t.Errorf("server certificate valid %v: clients refuse more than 398 days", d)
	}
}

func TestRenewBeforeExpiry(t *testing.T) {
	m, _ := newManager(t)
	if err := Create(m.CAFile, m.CAKeyFile, m.CertFile, m.KeyFile, []string{"mail.example.test", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	first := m.cur.Load().Leaf
	before, _ := os.ReadFile(m.CertFile)

	// Not yet due: nothing changes.
	m.Now = func() time.Time { return first.NotAfter.Add(-RenewBefore - time.Hour) }
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(m.CertFile); !bytes.Equal(got, before) {
		t.Fatal("renewed a certificate that was not due")
	}

	m.Now = func() time.Time { return first.NotAfter.Add(-RenewBefore + time.Hour) }
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	renewed := m.cur.Load().Leaf
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("a certificate due for renewal was kept")
	}
	if got, _ := os.ReadFile(m.CertFile); bytes.Equal(got, before) {
		t.Fatal("the renewed certificate was not written to the file")
	}
	if len(renewed.DNSNames) != 1 || renewed.DNSNames[0] != "mail.example.test" || len(renewed.IPAddresses) != 1 || !renewed.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("renewed names: %v %v", renewed.DNSNames, renewed.IPAddresses)
	}
	caPEM, _ := m.CAPEM()
	if err := handshake(t, m, roots(t, caPEM), "mail.example.test"); err != nil {
		t.Errorf("renewed certificate: %v", err)
	}
}

// A data directory from an earlier version has one self-signed certificate that
// peers pinned: it becomes the CA, so their pins still verify the server.
func TestUpgradeOldSelfSigned(t *testing.T) {
	m, _ := newManager(t)
	if err := config.WriteSelfSigned(m.CertFile, m.KeyFile, []string{"mail.example.test", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	pinned, _ := os.ReadFile(m.CertFile)
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	caPEM, ok := m.CAPEM()
	if !ok || !bytes.Equal(caPEM, pinned) {
		t.Fatal("the old certificate did not become the local CA")
	}
	if m.cur.Load().Leaf.IsCA {
		t.Fatal("still serving a CA certificate")
	}
	if err := handshake(t, m, roots(t, pinned), "mail.example.test"); err != nil {
		t.Errorf("a peer that pinned the old certificate: %v", err)
	}
	// Idempotent: a second start changes nothing.
	served, _ := os.ReadFile(m.CertFile)
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(m.CertFile); !bytes.Equal(again, served) {
		t.Error("a second start issued another certificate")
	}
}

// A certificate the administrator installed is served as it is: never renewed,
// and the local CA is not offered for it.
func TestAdminCertificateKept(t *testing.T) {
	m, dir := newManager(t)
	if err := Create(m.CAFile, m.CAKeyFile, m.CertFile, m.KeyFile, []string{"mail.example.test"}); err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("real-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.Issue([]string{"mail.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(m.CertFile)
	os.Remove(m.KeyFile)
	os.WriteFile(m.CertFile, certPEM, 0o644)
	os.WriteFile(m.KeyFile, keyPEM, 0o600)
	m.Now = func() time.Time { return time.Now().Add(leafLifetime) } // expired
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cert.pem")); !bytes.Equal(got, certPEM) {
		t.Error("the administrator's certificate was replaced")
	}
	if _, ok := m.CAPEM(); ok {
		t.Error("the local CA is offered although it did not issue the served certificate")
	}
}

// A crash between writing the renewed key and certificate leaves a mismatch;
// the next start issues a matching pair.
func TestMismatchedPairRepaired(t *testing.T) {
	m, _ := newManager(t)
	if err := Create(m.CAFile, m.CAKeyFile, m.CertFile, m.KeyFile, []string{"mail.example.test"}); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(m.CAFile, m.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, keyPEM, _ := ca.Issue([]string{"mail.example.test"})
	if err := replace(m.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(); err != nil {
		t.Fatalf("Load after a torn renewal: %v", err)
	}
	caPEM, _ := m.CAPEM()
	if err := handshake(t, m, roots(t, caPEM), "mail.example.test"); err != nil {
		t.Error(err)
	}
}
