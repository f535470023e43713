package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/internal/testtool"
	"sealmail/registry"
	"sealmail/signing"
	"sealmail/signing/signingtest"
)

// TestSealPKCS11: 'seal import --pkcs11' installs a seal whose RSA key stays
// on a SoftHSM2 token; a document released with it carries the agency's
// signature inside the PDF (pdfsig: valid, covering the whole file) and the
// S/MIME seal, both made on the token. Wrong PINs, tokens and objects are
// refused by name.
func TestSealPKCS11(t *testing.T) {
	tok := signingtest.SoftHSM(t, "VanThu")
	t.Cleanup(signing.CloseTokens)
	data := agencyData(t)
	gov := signingtest.NewCA(t, time.Now())
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(78), Subject: pkix.Name{CommonName: "Sở Thông tin và Truyền thông", Organization: []string{"Sở Thông tin và Truyền thông"}, SerialNumber: "000.00.12.H10"},
		EmailAddresses: []string{"vanthu@agency.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, gov.Cert, key.Public(), gov.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	tok.ImportKey(t, key, "seal", []byte{1})
	tmp := t.TempDir()
	certFile := filepath.Join(tmp, "seal.pem")
	if err := os.WriteFile(certFile, signing.EncodeCertsPEM(cert, gov.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongPIN := filepath.Join(tmp, "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=VanThu;object=seal"
	mod := signingtest.SoftHSMModule
	imp := func(args ...string) []string {
		return append([]string{"seal", "import", "agency.example", "--data", data}, args...)
	}
	fails(t, "", imp("--pkcs11", uri, "--module", mod, "--cert", certFile), "missing --pin-file")
	fails(t, "", imp("--pkcs11", uri, "--pin-file", tok.PINFile, "--cert", certFile), "missing --module")
	fails(t, "", imp("--pkcs11", uri, "--module", mod, "--pin-file", wrongPIN, "--cert", certFile), "wrong PIN", `token "VanThu"`)
	fails(t, "", imp("--pkcs11", "pkcs11:token=Missing;object=seal", "--module", mod, "--pin-file", tok.PINFile, "--cert", certFile),
		"no such token", `token "Missing"`)
	fails(t, "", imp("--pkcs11", "pkcs11:token=VanThu;object=nothing", "--module", mod, "--pin-file", tok.PINFile, "--cert", certFile),
		`no private key with object "nothing"`)
	fails(t, "", imp("--pkcs11", uri, "--module", mod, "--pin-file", tok.PINFile), "no certificate", "--cert")
	fails(t, "", imp("--pkcs11", uri+";pin-value=1"), "unknown attribute")
	fails(t, "", imp("--pkcs11", uri, "--key", certFile), "no --key")
	if err := os.Chmod(tok.PINFile, 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, "", imp("--pkcs11", uri, "--module", mod, "--pin-file", tok.PINFile, "--cert", certFile), "readable by others")
	if err := os.Chmod(tok.PINFile, 0o600); err != nil {
		t.Fatal(err)
	}

	out := ok(t, "", imp("--pkcs11", uri, "--module", mod, "--pin-file", tok.PINFile, "--cert", certFile)...)
	if !strings.Contains(out, "stays on the token") || strings.Contains(out, tok.PIN) {
		t.Errorf("seal import --pkcs11:\n%s", out)
	}
	dir := registry.SealDir(data, "agency.example")
	if _, err := os.Stat(filepath.Join(dir, registry.SealKeyFile)); !os.IsNotExist(err) {
		t.Errorf("the pilot's file key is still there: %v", err)
	}
	stored, err := os.ReadFile(filepath.Join(dir, registry.SealTokenFile))
	if err != nil || strings.Contains(string(stored), tok.PIN) || !strings.Contains(string(stored), "pin-source=file:"+tok.PINFile) {
		t.Errorf("%s: %q, %v", registry.SealTokenFile, stored, err)
	}

	// A release signs on the token, inside the PDF and around the message.
	doc := sendDocument(t, data, 1)
	caFile := filepath.Join(tmp, "gov.pem")
	if err := os.WriteFile(caFile, signing.EncodeCertsPEM(gov.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(tmp, "doc.eml")
	if err := os.WriteFile(eml, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "doc", "verify", eml, "--ca", caFile, "--data", data)
	pdf := filepath.Join(tmp, "cv.pdf")
	if err := os.WriteFile(pdf, attachmentOf(t, doc, "cv.pdf"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := exec.Command(testtool.Path(t, "pdfsig", "poppler-utils"), "-nocert", pdf).CombinedOutput()
	if err != nil || strings.Count(string(rep), "Signature is Valid.") != 2 ||
		!strings.Contains(string(rep), "Signer Certificate Common Name: Sở Thông tin và Truyền thông") ||
		!strings.HasSuffix(strings.TrimSpace(string(rep)), "Total document signed\n  - Signature Validation: Signature is Valid.") {
		t.Errorf("pdfsig: %v\n%s", err, rep)
	}

	// The certificate may come from the token instead of a file.
	tok.ImportCert(t, cert, "seal", []byte{1})
	ok(t, "", imp("--pkcs11", "pkcs11:token=VanThu;id=%01", "--module", mod, "--pin-file", tok.PINFile)...)
	if s, err := registry.LoadSeal(data, "agency.example"); err != nil || !s.Cert.Equal(cert) {
		t.Errorf("seal with the token's certificate: %v", err)
	}
}

// attachmentOf returns the decoded attachment called name in msg.
func attachmentOf(t *testing.T, msg []byte, name string) []byte {
	t.Helper()
	r, err := mail.CreateReader(strings.NewReader(string(msg)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no attachment %s: %v", name, err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			if fn, _ := h.Filename(); fn == name {
				b, err := io.ReadAll(p.Body)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
}
