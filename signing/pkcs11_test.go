package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/signing/signingtest"
)

func TestParsePKCS11URI(t *testing.T) {
	u, err := ParsePKCS11URI("pkcs11:token=V%C4%83n%20th%C6%B0;object=seal;id=%01%02;type=private;manufacturer=SoftHSM%20project" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sealmail/pin")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "Văn thư" || u.Object != "seal" || !bytes.Equal(u.ID, []byte{1, 2}) ||
		u.Module != "/usr/lib/softhsm/libsofthsm2.so" || u.PINFile != "/etc/sealmail/pin" {
		t.Errorf("parsed %+v", u)
	}
	again, err := ParsePKCS11URI(u.String())
	if err != nil || again.String() != u.String() || again.Token != u.Token || !bytes.Equal(again.ID, u.ID) {
		t.Errorf("round trip: %q → %+v, %v", u.String(), again, err)
	}
	for _, bad := range []string{
		"token=x;object=y",                   // no scheme
		"pkcs11:object=seal",                 // no token
		"pkcs11:token=x",                     // no key
		"pkcs11:token=x;object=y;type=cert",  // not a private key
		"pkcs11:token=x;object=y;colour=red", // unknown
		"pkcs11:token=x;object=y?pin-value=1234",
		"pkcs11:token=x;object=y;slot-id=one",
		"pkcs11:token=x;object=%zz",
	} {
		if _, err := ParsePKCS11URI(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// sealCertFor issues a seal certificate for a with pub from the agency's
// pilot CA, as the national CA would for a key generated on a token.
func sealCertFor(t testing.TB, p *pki, a Agency, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	c, err := create(&x509.Certificate{
		Subject:        organSubject(a.OrganName, a.OrganName, a.OrganID),
		EmailAddresses: []string{a.OfficialAddress},
		NotBefore:      testNow.Add(-backdate),
		NotAfter:       testNow.Add(sealLifetime),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, p.ca, pub, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPKCS11Seal: a seal whose RSA key lives on a SoftHSM2 token signs the
// PDF inside and the S/MIME seal around a document; pdfsig, openssl and
// Verify accept both, and each mistake an admin can make gets its own error.
func TestPKCS11Seal(t *testing.T) {
	tok := signingtest.SoftHSM(t, "VanThu")
	t.Cleanup(CloseTokens)
	a := newPKI(t, agencyA, testNow, testNow)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cert := sealCertFor(t, a, agencyA, key.Public())
	id := []byte{0x5e, 0xa1}
	tok.ImportKey(t, key, "seal", id)
	uri := &PKCS11URI{Token: tok.Label, Object: "seal", Module: signingtest.SoftHSMModule, PINFile: tok.PINFile}
	seal, err := LoadPKCS11(uri, []*x509.Certificate{cert, a.ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := seal.Key.(*tokenSigner); !ok {
		t.Fatalf("seal key is %T, want the token's", seal.Key)
	}

	ca := newNationalCA(t, testNow)
	signer := ca.person(t, "Nguyễn Văn An", agencyA.OrganName, testNow)
	msg := buildMessage(t, agencyA.OfficialAddress, testSubject, file{"Công văn 123.pdf", "application/pdf", signedLetter(t, signer, 1000)})
	doc := testDocument(agencyA)
	doc.PDF = &PDFStamp{}
	out, err := Stamp(t.Context(), msg, seal, doc, testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	opts := options(testNow.Add(time.Hour), map[Agency]*pki{agencyA: a})
	opts.PDF = &PDFPolicy{TrustRoots: []*x509.Certificate{ca.Cert}, RequireSigner: true}
	if res, err := Verify(out, opts); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	dir := t.TempDir()
	writeFile(t, dir, "stamped.eml", out)
	writeFile(t, dir, "ca.pem", EncodeCertsPEM(a.ca))
	opensslVerifies(t, dir)
	rep := pdfsig(t, attachedFiles(t, out)["Công văn 123.pdf"])
	if n := strings.Count(rep, "Signature is Valid."); n != 2 || !strings.Contains(rep, "Signer Certificate Common Name: "+agencyA.OrganName) ||
		!strings.HasSuffix(strings.TrimSpace(rep), "Total document signed\n  - Signature Validation: Signature is Valid.") {
		t.Errorf("pdfsig:\n%s", rep)
	}

	t.Run("certificate from the token", func(t *testing.T) {
		tok.ImportCert(t, cert, "seal", id)
		byID := *uri
		byID.Object, byID.ID = "", id
		s, err := LoadPKCS11(&byID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Cert.Equal(cert) {
			t.Errorf("certificate read from the token: %s", s.Cert.Subject)
		}
	})

	t.Run("mistakes", func(t *testing.T) {
		// A token checks the PIN only at the first login of a process:
		// log out, as a fresh 'sealmail seal import' would be.
		CloseTokens()
		wrongPIN := filepath.Join(t.TempDir(), "pin")
		if err := os.WriteFile(wrongPIN, []byte("000000\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for _, tc := range []struct {
			name string
			edit func(u *PKCS11URI)
			cert *x509.Certificate
			want string
		}{
			{"wrong PIN", func(u *PKCS11URI) { u.PINFile = wrongPIN }, cert, "wrong PIN"},
			{"no PIN file", func(u *PKCS11URI) { u.PINFile = filepath.Join(t.TempDir(), "none") }, cert, "PIN file"},
			{"no such token", func(u *PKCS11URI) { u.Token = "Missing" }, cert, "no such token"},
			{"no such key", func(u *PKCS11URI) { u.Object = "other" }, cert, `no private key with object "other"`},
			{"no module", func(u *PKCS11URI) { u.Module = "/nonexistent/lib.so" }, cert, "module"},
			{"another certificate", func(u *PKCS11URI) {}, sealCertFor(t, a, agencyA, other.Public()), "does not match the seal certificate"},
		} {
			u := *uri
			tc.edit(&u)
			_, err := LoadPKCS11(&u, []*x509.Certificate{tc.cert})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
			}
		}
	})
}
