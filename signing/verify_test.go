package signing

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerifyRoundTrip(t *testing.T) {
	a, b := newPKI(t, agencyA, testNow, testNow), newPKI(t, agencyB, testNow, testNow)
	msg := stamped(t, a.seal, testNow)
	res, err := Verify(msg, options(testNow.Add(time.Hour), map[Agency]*pki{agencyA: a, agencyB: b}))
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	wantChecks(t, res, map[string]Reason{
		CheckStructure: "", CheckSignature: "", CheckChain: "", CheckValidity: "", CheckEmail: "", CheckManifest: "",
	})
	if c := res.Check(CheckRevocation); c.Status != Skip || c.Reason != ReasonNoRevocationInfo {
		t.Errorf("revocation without CRLs: %+v", c)
	}
	m := res.Manifest
	if m.DocumentID != "000.00.12.H10,2026/11/28,123/STTTT-VP" || m.Code != (Code{CodeNumber: "123", CodeNotation: "STTTT-VP"}) ||
		m.From.OrganID != agencyA.OrganID || m.Subject != testSubject || m.PromulgationInfo.PromulgationDate != "2026/11/28" ||
		m.Version != ManifestVersion || m.DocumentType.TypeName != "Công văn" || len(m.ToPlaces) != 1 || len(m.OtherInfo.Appendixes) != 1 {
		t.Errorf("manifest: %+v", m)
	}
	if len(m.Attachments) != len(testFiles) {
		t.Fatalf("manifest lists %d attachments, want %d", len(m.Attachments), len(testFiles))
	}
	for i, f := range testFiles {
		sum := sha256.Sum256(f.data)
		want := Attachment{FileName: f.name, ContentType: f.ctype, Size: int64(len(f.data)), SHA256: hex.EncodeToString(sum[:])}
		if m.Attachments[i] != want {
			t.Errorf("attachment %d = %+v, want %+v", i, m.Attachments[i], want)
		}
	}
	if !res.SigningTime.Equal(testNow) || res.SignerCert == nil || !res.SignerCert.Equal(a.seal.Cert) {
		t.Errorf("signing time %v, signer %v", res.SigningTime, res.Signer)
	}
	if res.Domain != agencyA.Domain || res.From != agencyA.OfficialAddress {
		t.Errorf("from %s domain %s", res.From, res.Domain)
	}
}

// A mail store that keeps LF line ends must not break the signature.
func TestVerifyLFStored(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	msg := bytes.ReplaceAll(stamped(t, a.seal, testNow), []byte("\r\n"), []byte("\n"))
	if res, err := Verify(msg, options(testNow, map[Agency]*pki{agencyA: a})); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
}

func TestVerifyOpenSSLAccepts(t *testing.T) {
	a := newPKI(t, agencyA, time.Now(), time.Now()) // openssl checks the chain at its own clock
	msg := stamped(t, a.seal, time.Now())
	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", EncodeCertsPEM(a.ca))
	writeFile(t, dir, "stamped.eml", msg)
	opensslVerifies(t, dir)
	// Ask OpenSSL which signed attributes it sees.
	env, err := openSigned(msg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "smime.p7s", env.sig)
	out, err := openssl(t, dir, "cms", "-cmsout", "-print", "-inform", "DER", "-in", "smime.p7s")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"signingTime", "id-smime-aa-signingCertificateV2", "messageDigest", "sha256", "ecdsa-with-SHA256"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl cms -print lacks %s", want)
		}
	}
}

// OpenSSL's own signatures over our signed part (no signing-certificate-v2,
// other attributes; as S/MIME, and as BER with indefinite lengths) verify.
func TestVerifyOpenSSLSigned(t *testing.T) {
	a := newPKI(t, agencyA, time.Now(), time.Now())
	entity := signedPart(t, stamped(t, a.seal, time.Now()))
	dir := t.TempDir()
	key, err := EncodeKeyPEM(a.seal.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "seal.pem", EncodeCertsPEM(a.seal.Cert))
	writeFile(t, dir, "seal.key", key)
	writeFile(t, dir, "entity", entity)
	sign := func(args ...string) {
		t.Helper()
		args = append([]string{"cms", "-sign", "-binary", "-md", "sha256", "-signer", "seal.pem", "-inkey", "seal.key", "-in", "entity"}, args...)
		if out, err := openssl(t, dir, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	opts := options(time.Now(), map[Agency]*pki{agencyA: a})

	sign("-from", agencyA.OfficialAddress, "-to", agencyB.OfficialAddress, "-subject", "signed by openssl", "-out", "signed.eml")
	if res, err := Verify(readFile(t, filepath.Join(dir, "signed.eml")), opts); err != nil {
		t.Errorf("S/MIME from openssl: %v\n%s", err, res)
	}

	sign("-stream", "-outform", "DER", "-out", "sig.ber")
	ber := readFile(t, filepath.Join(dir, "sig.ber"))
	if ber[1] != 0x80 {
		t.Fatalf("openssl wrote definite lengths (% x), the BER path is untested", ber[:4])
	}
	var msg bytes.Buffer
	msg.WriteString("From: " + agencyA.OfficialAddress + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=X\r\n\r\n--X\r\n")
	msg.Write(entity)
	msg.WriteString("\r\n--X\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	writeBase64(&msg, ber)
	msg.WriteString("\r\n--X--\r\n")
	if res, err := Verify(msg.Bytes(), opts); err != nil {
		t.Errorf("BER signature from openssl: %v\n%s", err, res)
	}
}

func TestVerifyTamperedAttachment(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	msg := stamped(t, a.seal, testNow)
	// Flip one base64 character of the PDF to another valid one: the
	// message still decodes, but one byte of the file changes.
	enc := base64.StdEncoding.EncodeToString(testFiles[0].data[3000:3003])
	flipped := "A" + enc[1:]
	if enc[0] == 'A' {
		flipped = "B" + enc[1:]
	}
	msg = replaceOnce(t, msg, enc, flipped)
	res, err := Verify(msg, options(testNow, map[Agency]*pki{agencyA: a}))
	if err == nil {
		t.Fatalf("tampered attachment verified\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{
		CheckSignature: ReasonDigestMismatch,
		CheckManifest:  ReasonHashMismatch,
		CheckChain:     "",
	})

	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", EncodeCertsPEM(a.ca))
	writeFile(t, dir, "tampered.eml", msg)
	if out, err := openssl(t, dir, "smime", "-verify", "-CAfile", "ca.pem", "-attime", strconv.FormatInt(testNow.Unix(), 10), "-in", "tampered.eml", "-out", "x"); err == nil {
		t.Errorf("openssl accepted a tampered message\n%s", out)
	}
}

// Peer B's CA may vouch for B's seals only: a seal it issued for domain C
// must not pass as C's.
func TestVerifyPeerCannotSealForOtherDomain(t *testing.T) {
	a, b, c := newPKI(t, agencyA, testNow, testNow), newPKI(t, agencyB, testNow, testNow), newPKI(t, agencyC, testNow, testNow)
	forged, err := IssueSeal(b.ca, b.caKey, agencyC, testNow)
	if err != nil {
		t.Fatal(err)
	}
	msg := buildMessage(t, agencyC.OfficialAddress, testSubject, testFiles...)
	out, err := Stamp(t.Context(), msg, forged, testDocument(agencyC), testNow)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(out, options(testNow, map[Agency]*pki{agencyA: a, agencyB: b, agencyC: c}))
	if err == nil {
		t.Fatalf("seal from B's CA accepted for C\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckChain: ReasonUntrusted, CheckEmail: "", CheckManifest: ""})

	res, _ = Verify(out, options(testNow, map[Agency]*pki{agencyA: a}))
	wantChecks(t, res, map[string]Reason{CheckChain: ReasonNoAnchor})
}

func TestVerifyExpiredSeal(t *testing.T) {
	// The seal was issued three years ago and expired a year ago.
	old := testNow.AddDate(-3, 0, 0)
	a := newPKI(t, agencyA, old.AddDate(-1, 0, 0), old)
	msg := stamped(t, a.seal, testNow)
	res, err := Verify(msg, options(testNow, map[Agency]*pki{agencyA: a}))
	if err == nil {
		t.Fatalf("expired seal accepted\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{CheckValidity: ReasonExpired, CheckSignature: "", CheckChain: ""})
}

func TestVerifySigningTime(t *testing.T) {
	a := newPKI(t, agencyA, testNow.AddDate(0, -1, 0), testNow.AddDate(0, -1, 0))
	for _, tc := range []struct {
		name   string
		signed time.Time
		want   Reason
	}{
		{"within skew", testNow.Add(DefaultSkew - time.Second), ""},
		{"in the future", testNow.Add(time.Hour), ReasonFutureSigningTime},
		{"before the seal", testNow.AddDate(0, -2, 0), ReasonNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := Verify(stamped(t, a.seal, tc.signed), options(testNow, map[Agency]*pki{agencyA: a}))
			wantChecks(t, res, map[string]Reason{CheckValidity: tc.want})
		})
	}
}

func TestVerifyRevokedSeal(t *testing.T) {
	a := newPKI(t, agencyA, testNow.AddDate(0, -1, 0), testNow.AddDate(0, -1, 0))
	msg := stamped(t, a.seal, testNow)
	opts := options(testNow, map[Agency]*pki{agencyA: a})
	opts.CRLs = []*x509.RevocationList{newCRL(t, a.ca, a.caKey, testNow, a.seal.Cert.SerialNumber)}
	res, err := Verify(msg, opts)
	if err == nil {
		t.Fatalf("revoked seal accepted\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{CheckRevocation: ReasonRevoked, CheckSignature: "", CheckChain: ""})

	opts.CRLs = []*x509.RevocationList{newCRL(t, a.ca, a.caKey, testNow, big.NewInt(42))}
	if res, err := Verify(msg, opts); err != nil {
		t.Fatalf("seal on a CRL that lists another serial: %v\n%s", err, res)
	} else if c := res.Check(CheckRevocation); c.Status != Pass || !strings.Contains(c.Detail, "CRL") {
		t.Errorf("revocation: %+v", c)
	}
}

// A document altered and re-sealed with a key the recipient does not trust
// has a consistent manifest but no trusted chain.
func TestVerifyResealedByUntrustedKey(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	attacker := newPKI(t, agencyA, testNow, testNow) // same names, different CA key
	files := append([]file{}, testFiles...)
	files[0].data = bytes.Clone(files[0].data)
	files[0].data[100] ^= 1
	msg := buildMessage(t, agencyA.OfficialAddress, testSubject, files...)
	forged, err := Stamp(t.Context(), msg, attacker.seal, testDocument(agencyA), testNow)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(forged, options(testNow, map[Agency]*pki{agencyA: a}))
	if err == nil {
		t.Fatalf("re-sealed document accepted\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckManifest: "", CheckChain: ReasonUntrusted})
}

// Editing the manifest's digest without re-signing breaks both the
// signature and the manifest's match with the attachment.
func TestVerifyEditedManifest(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	msg := stamped(t, a.seal, testNow)
	res, err := Verify(msg, options(testNow, map[Agency]*pki{agencyA: a}))
	if err != nil {
		t.Fatal(err)
	}
	oldXML, newXML := manifestXML(t, res.Manifest), ""
	{
		m := *res.Manifest
		m.Attachments = append([]Attachment{}, m.Attachments...)
		m.Attachments[0].SHA256 = strings.Repeat("ab", 32)
		newXML = manifestXML(t, &m)
	}
	msg = replaceOnce(t, msg, oldXML, newXML)
	res, err = Verify(msg, options(testNow, map[Agency]*pki{agencyA: a}))
	if err == nil {
		t.Fatalf("edited manifest accepted\n%s", res)
	}
	wantChecks(t, res, map[string]Reason{CheckSignature: ReasonDigestMismatch, CheckManifest: ReasonHashMismatch})
}

// manifestXML returns the base64 body Stamp writes for m.
func manifestXML(t *testing.T, m *Manifest) string {
	var b bytes.Buffer
	if err := writeXMLPart(&b, manifestName, m); err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(b.Bytes(), []byte("\r\n\r\n"))
	return string(body)
}

func TestVerifyHeaderChecks(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	msg := stamped(t, a.seal, testNow)
	opts := options(testNow, map[Agency]*pki{agencyA: a})
	for _, tc := range []struct {
		name     string
		old, new string
		want     map[string]Reason
	}{
		{"From changed", "<vanthu@stttt.hanoi.gov.vn>", "<giamdoc@stttt.hanoi.gov.vn>",
			map[string]Reason{CheckEmail: ReasonEmailMismatch, CheckManifest: ReasonOrganMismatch, CheckSignature: ""}},
		{"From upper case", "<vanthu@stttt.hanoi.gov.vn>", "<VanThu@STTTT.Hanoi.gov.vn>",
			map[string]Reason{CheckEmail: "", CheckManifest: "", CheckChain: ""}},
		{"document id changed", "Official-Document-Id: 000.00.12.H10,2026/11/28,123/STTTT-VP", "Official-Document-Id: 000.00.12.H10,2026/11/28,124/STTTT-VP",
			map[string]Reason{CheckManifest: ReasonDocumentIDMismatch, CheckSignature: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := Verify(replaceOnce(t, msg, tc.old, tc.new), opts)
			wantChecks(t, res, tc.want)
		})
	}
}

// A seal certificate fit for TLS but not for e-mail is refused.
func TestVerifyWrongKeyUsage(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	tmpl := *a.seal.Cert
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tls := &Seal{Cert: reissue(t, a, &tmpl, a.seal.Key.Public()), Chain: a.seal.Chain, Key: a.seal.Key}
	res, _ := Verify(stamped(t, tls, testNow), options(testNow, map[Agency]*pki{agencyA: a}))
	wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckChain: ReasonKeyUsage})
}

// S/MIME mail that is not a stamped document: no manifest, or a broken one.
func TestVerifyManifestMissing(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	text := func(w io.Writer) error { return writeTextPart(w, "Xin chào") }
	for _, tc := range []struct {
		name  string
		parts []func(io.Writer) error
		want  Reason
	}{
		{"no manifest", []func(io.Writer) error{text}, ReasonNoManifest},
		{"broken manifest", []func(io.Writer) error{text, func(w io.Writer) error {
			return writeXMLPart(w, manifestName, struct {
				XMLName xml.Name `xml:"Manifest"`
				Size    string   `xml:"Attachments>Attachment>Size"`
			}{Size: "many"})
		}}, ReasonBadManifest},
		{"unknown version", []func(io.Writer) error{text, func(w io.Writer) error {
			return writeXMLPart(w, manifestName, struct {
				XMLName xml.Name `xml:"Manifest"`
				Version string   `xml:"version,attr"`
				ID      string   `xml:"MessageHeader>DocumentId"`
			}{Version: "9", ID: "x"})
		}}, ReasonBadManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			b.WriteString("From: " + agencyA.OfficialAddress + "\r\n")
			if err := writeSigned(t.Context(), &b, a.seal, testNow, tc.parts...); err != nil {
				t.Fatal(err)
			}
			res, _ := Verify(b.Bytes(), options(testNow, map[Agency]*pki{agencyA: a}))
			wantChecks(t, res, map[string]Reason{CheckSignature: "", CheckChain: "", CheckManifest: tc.want})
		})
	}
}

func TestCheckEmail(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	var p *problem
	if err := checkEmail(a.ca, agencyA.OfficialAddress); !errors.As(err, &p) || p.reason != ReasonNoCertEmail {
		t.Errorf("certificate without e-mail: %v", err)
	}
}

func TestVerifyNotSigned(t *testing.T) {
	msg := buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...)
	res, err := Verify(msg, VerifyOptions{Now: testNow})
	if err == nil || res.OK {
		t.Fatal("plain message verified")
	}
	wantChecks(t, res, map[string]Reason{CheckStructure: ReasonNotSigned})
	for _, c := range res.Checks[1:] {
		if c.Status != Skip {
			t.Errorf("%s ran after a structure failure", c.Name)
		}
	}
}

func BenchmarkVerify10MB(b *testing.B) {
	a := newPKI(b, agencyA, testNow, testNow)
	msg := buildMessage(b, agencyA.OfficialAddress, testSubject, file{"big.pdf", "application/pdf", testPDF(10 << 20)})
	out, err := Stamp(b.Context(), msg, a.seal, testDocument(agencyA), testNow)
	if err != nil {
		b.Fatal(err)
	}
	opts := options(testNow, map[Agency]*pki{agencyA: a})
	b.SetBytes(10 << 20)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := Verify(out, opts); err != nil {
			b.Fatal(err)
		}
	}
}
