package signing

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

func TestWriteKeyFile(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	writeFile(t, dir, "seal.key", []byte("old"))
	os.Chmod(path, 0o644)
	if err := WriteKeyFile(path, a.seal.Key); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files; temporary file left behind?", len(entries))
	}
	key, err := ParseKeyPEM(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSeal(a.seal.Cert, nil, key); err != nil {
		t.Errorf("key read back does not match: %v", err)
	}
	if err := WriteKeyFile(filepath.Join(dir, "missing", "seal.key"), a.seal.Key); err == nil {
		t.Error("wrote into a missing directory")
	}
}

func TestLoadPEM(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	other := newPKI(t, agencyA, testNow, testNow)
	dir := t.TempDir()
	writeFile(t, dir, "seal.pem", EncodeCertsPEM(a.seal.Cert, a.ca))
	if err := WriteKeyFile(filepath.Join(dir, "seal.key"), a.seal.Key); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(filepath.Join(dir, "other.key"), other.seal.Key); err != nil {
		t.Fatal(err)
	}
	s, err := LoadPEM(filepath.Join(dir, "seal.pem"), filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Cert.Equal(a.seal.Cert) || len(s.Chain) != 1 || !s.Chain[0].Equal(a.ca) {
		t.Errorf("loaded %v with chain %d", s.Cert.Subject, len(s.Chain))
	}
	if _, err := Verify(stamped(t, s, testNow), options(testNow, map[Agency]*pki{agencyA: a})); err != nil {
		t.Errorf("loaded seal: %v", err)
	}
	if _, err := LoadPEM(filepath.Join(dir, "seal.pem"), filepath.Join(dir, "other.key")); err == nil {
		t.Error("loaded a key that does not match the certificate")
	}
}

func TestLoadPKCS12(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	dir := t.TempDir()
	pfx, err := pkcs12.Modern.Encode(a.seal.Key, a.seal.Cert, []*x509.Certificate{a.ca}, "mật khẩu")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "go.p12", pfx)

	// A PKCS#12 file as OpenSSL 3 writes it (AES-256, PBKDF2, SHA-256 MAC).
	key, err := EncodeKeyPEM(a.seal.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "seal.pem", EncodeCertsPEM(a.seal.Cert))
	writeFile(t, dir, "ca.pem", EncodeCertsPEM(a.ca))
	writeFile(t, dir, "seal.key", key)
	if out, err := openssl(t, dir, "pkcs12", "-export", "-inkey", "seal.key", "-in", "seal.pem", "-certfile", "ca.pem",
		"-passout", "pass:mật khẩu", "-out", "openssl.p12"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, name := range []string{"go.p12", "openssl.p12"} {
		s, err := LoadPKCS12(filepath.Join(dir, name), "mật khẩu")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !s.Cert.Equal(a.seal.Cert) || len(s.Chain) != 1 || !s.Chain[0].Equal(a.ca) {
			t.Errorf("%s: loaded %v with chain %d", name, s.Cert.Subject, len(s.Chain))
		}
	}
	if _, err := LoadPKCS12(filepath.Join(dir, "go.p12"), "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
}
