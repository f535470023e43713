package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/registry"
	"sealmail/signing"
	"sealmail/signing/signingtest"

	"software.sslmate.com/src/go-pkcs12"
)

// agencyData sets up a data directory whose domain agency.example is an
// agency with a seal, a clerk and a staff member.
func agencyData(t *testing.T) string {
	t.Helper()
	data := setupData(t)
	ok(t, "", "domain", "update", "agency.example", "--data", data, "--organ-id", "000.00.12.H10",
		"--organ-name", "Sở Thông tin và Truyền thông", "--code", "STTTT-VP", "--official-address", "vanthu@agency.example")
	ok(t, "", "user", "add", "clerk@agency.example", "--role", "clerk", "--data", data)
	ok(t, "", "user", "add", "nam@agency.example", "--data", data)
	ok(t, "", "alias", "add", "vanthu@agency.example", "clerk@agency.example", "--data", data)
	ok(t, "", "seal", "init", "agency.example", "--data", data)
	return data
}

func TestDomainUpdate(t *testing.T) {
	data := setupData(t)
	ok(t, "", "domain", "update", "agency.example", "--data", data, "--code", "STTTT-VP", "--official-address", "VanThu@agency.example")
	ok(t, "", "domain", "update", "agency.example", "--organ-name", "Sở TTTT", "--data", data)
	ds := decode[[]domainJSON](t, ok(t, "", "domain", "list", "--json", "--data", data))
	if d := ds[0]; d.Code != "STTTT-VP" || d.OfficialAddress != "vanthu@agency.example" || d.OrganName != "Sở TTTT" {
		t.Errorf("after update: %+v", d)
	}
	fails(t, "", []string{"domain", "update", "agency.example", "--data", data}, "nothing to update")
	fails(t, "", []string{"domain", "update", "agency.example", "--official-address", "vanthu@other.example", "--data", data},
		"not an address of agency.example")
	fails(t, "", []string{"domain", "update", "nowhere.example", "--code", "X", "--data", data}, "not hosted here")
}

func TestSeal(t *testing.T) {
	data := setupData(t)
	fails(t, "", []string{"seal", "init", "agency.example", "--data", data}, "lacks agency details", "sealmail domain update")
	data = agencyData(t)
	dir := filepath.Join(data, "seal", "agency.example")
	for _, f := range []string{"ca.key", "seal.key"} {
		checkMode(t, filepath.Join(dir, f), 0o600)
	}
	fails(t, "", []string{"seal", "init", "agency.example", "--data", data}, "has a seal already", "seal import")
	ca := ok(t, "", "seal", "export-ca", "agency.example", "--data", data)
	certs, err := signing.ParseCertsPEM([]byte(ca))
	if err != nil || len(certs) != 1 || !certs[0].IsCA || certs[0].Subject.SerialNumber != "000.00.12.H10" {
		t.Fatalf("export-ca: %v\n%s", err, ca)
	}
	seal, err := registry.LoadSeal(data, "agency.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := seal.Cert.CheckSignatureFrom(certs[0]); err != nil {
		t.Errorf("the exported CA did not issue the seal: %v", err)
	}
	fails(t, "", []string{"seal", "export-ca", "other.example", "--data", data}, "has no seal CA")

	// Import a seal issued by another CA for the same agency, from PEM files.
	newCA, newKey, err := signing.NewLocalCA("CA quốc gia", "000.00.00.000", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := signing.Agency{Domain: "agency.example", OrganID: "000.00.12.H10", OrganName: "Sở", OfficialAddress: "vanthu@agency.example"}
	issued, err := signing.IssueSeal(newCA, newKey, a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	certFile, keyFile := filepath.Join(tmp, "seal.pem"), filepath.Join(tmp, "seal.key")
	writeSeal(t, issued, certFile, keyFile)
	fails(t, "", []string{"seal", "import", "agency.example", "--cert", certFile, "--data", data}, "--cert and --key go together")
	fails(t, "", []string{"seal", "import", "agency.example", "--cert", certFile, "--key", keyFile, "--p12", "x.p12", "--data", data}, "either")
	out := ok(t, "", "seal", "import", "agency.example", "--cert", certFile, "--key", keyFile, "--data", data)
	if strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("import printed the key:\n%s", out)
	}
	if got := ok(t, "", "seal", "export-ca", "agency.example", "--data", data); got != string(signing.EncodeCertsPEM(newCA)) {
		t.Errorf("export-ca after import:\n%s", got)
	}
	// A seal for another address is refused.
	a.OfficialAddress, a.Domain = "vanthu@other.example", "other.example"
	wrong, err := signing.IssueSeal(newCA, newKey, a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeSeal(t, wrong, certFile, keyFile)
	fails(t, "", []string{"seal", "import", "agency.example", "--cert", certFile, "--key", keyFile, "--data", data},
		"not agency.example's official address vanthu@agency.example")

	// An RSA seal from the government CA, as a .p12 with its chain.
	gov := signingtest.NewCA(t, time.Now())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "Sở Thông tin và Truyền thông", SerialNumber: "000.00.12.H10"},
		EmailAddresses: []string{"vanthu@agency.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, gov.Cert, rsaKey.Public(), gov.Key)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, _ := x509.ParseCertificate(der)
	p12, err := pkcs12.Modern.Encode(rsaKey, rsaCert, []*x509.Certificate{gov.Cert}, "mật khẩu")
	if err != nil {
		t.Fatal(err)
	}
	p12File := filepath.Join(tmp, "seal.p12")
	if err := os.WriteFile(p12File, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "mật khẩu\n", "seal", "import", "agency.example", "--p12", p12File, "--password-stdin", "--data", data)
	if seal, err := registry.LoadSeal(data, "agency.example"); err != nil || !seal.Cert.Equal(rsaCert) {
		t.Errorf("the RSA seal was not installed: %v", err)
	}
	// The seal picture: red on a transparent background, nothing else.
	png := filepath.Join(tmp, "seal.png")
	if err := os.WriteFile(png, signingtest.SealPNG(300), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "seal", "image", "agency.example", png, "--data", data)
	if err := os.WriteFile(png, []byte("not a picture"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"seal", "image", "agency.example", png, "--data", data}, "seal image")
}

func writeSeal(t *testing.T, s *signing.Seal, certFile, keyFile string) {
	t.Helper()
	key, err := signing.EncodeKeyPEM(s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, signing.EncodeCertsPEM(append(append(s.Chain[:0:0], s.Cert), s.Chain...)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signedPDF is letter n signed by a person whose CA nobody configured: no
// documents.trust-roots means the signer's issuer goes unchecked.
func signedPDF(t *testing.T, n int) []byte {
	t.Helper()
	ca := signingtest.NewCA(t, time.Now())
	cert, key := ca.Person(t, "Nguyễn Văn An", "Sở Thông tin và Truyền thông", time.Now())
	signed, err := signing.SignPDF(t.Context(), signingtest.Letter(byte(n), 0, 1), &signing.Seal{Cert: cert, Key: key}, signing.PDFSignOptions{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// sendDocument has the clerk send a document to nam@ through the registry,
// as the SMTP server does, and returns the stamped message.
func sendDocument(t *testing.T, data string, n int) []byte {
	t.Helper()
	return sendDocumentTo(t, data, n, "nam@agency.example")
}

// sendDocumentTo is sendDocument to the address to, hosted here or not (then
// the document waits in the queue).
func sendDocumentTo(t *testing.T, data string, n int, to string) []byte {
	t.Helper()
	ctx := context.Background()
	s := openStore(t, data)
	clerk, err := s.Account(ctx, "clerk@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	r := &registry.Registry{Store: s, DataDir: data, Hostname: "mail.agency.example"}
	// Local recipients get it through their own register, in the same step.
	local, remote := []string{to}, []string(nil)
	if !strings.HasSuffix(to, "@agency.example") {
		local, remote = nil, local
	}
	out, err := r.Outgoing(ctx, clerk, "vanthu@agency.example", local, remote, documentMessage(t, n, to))
	if err != nil || out == nil {
		t.Fatalf("outgoing: %q, %v", out, err)
	}
	return out
}

// documentMessage is document n from vanthu@agency.example to the address
// to, as the clerk's mail client submits it: a signed PDF attached.
func documentMessage(t *testing.T, n int, to string) []byte {
	t.Helper()
	pdf := base64.StdEncoding.EncodeToString(signedPDF(t, n))
	var wrapped strings.Builder
	for len(pdf) > 76 {
		wrapped.WriteString(pdf[:76] + "\r\n")
		pdf = pdf[76:]
	}
	wrapped.WriteString(pdf)
	return fmt.Appendf(nil, "From: vanthu@agency.example\r\nTo: %s\r\nSubject: Công văn %d\r\n"+
		"Message-ID: <%d.%d@agency.example>\r\nDate: %s\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nKính gửi anh Nam.\r\n"+
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=cv.pdf\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b--\r\n", to, n, n, time.Now().UnixNano(), time.Now().Format(time.RFC1123Z), wrapped.String())
}

func TestDocVerify(t *testing.T) {
	data := agencyData(t)
	doc := sendDocument(t, data, 1)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.eml")
	if err := os.WriteFile(good, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out := ok(t, "", "doc", "verify", good, "--data", data)
	if !strings.HasPrefix(out, "VERIFIED from=vanthu@agency.example") || !strings.Contains(out, "PASS manifest") {
		t.Errorf("doc verify:\n%s", out)
	}
	res := decode[signing.Result](t, ok(t, "", "doc", "verify", "--json", good, "--data", data))
	if !res.OK || res.Manifest == nil || res.Manifest.Code.CodeNotation != "STTTT-VP" {
		t.Errorf("doc verify --json: %+v", res)
	}
	// Offline, with the CA given and no data directory at all.
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte(ok(t, "", "seal", "export-ca", "agency.example", "--data", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "doc", "verify", good, "--ca", caFile, "--data", filepath.Join(dir, "nothing"))

	// A flipped byte in the attachment.
	bad := filepath.Join(dir, "bad.eml")
	flipped := bytes.Clone(doc)
	i := bytes.Index(flipped, []byte("JVBERi0xLjcK")) + 200 // inside the PDF's base64
	flipped[i] = map[bool]byte{true: 'B', false: 'A'}[flipped[i] == 'A']
	if err := os.WriteFile(bad, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	r := sealmail(t, "", "doc", "verify", bad, "--data", data)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL signature  [digest-mismatch]") || !strings.Contains(r.stderr, "does not verify") {
		t.Errorf("tampered document: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The right document against the wrong CA.
	other, _, err := signing.NewLocalCA("Khác", "000.00.99.H10", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, signing.EncodeCertsPEM(other), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"doc", "verify", good, "--ca", caFile}, "chain check failed", "untrusted-issuer")
}

func TestDocRegister(t *testing.T) {
	data := agencyData(t)
	sendDocument(t, data, 1)
	sendDocument(t, data, 2)
	year := fmt.Sprint(time.Now().In(registry.ICT).Year())

	out := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--outgoing", "--json", "--data", data))
	if len(out) != 2 || out[0].Number != 1 || out[0].Notation != "01/STTTT-VP" || out[1].Notation != "02/STTTT-VP" ||
		out[0].Status != registry.StatusSent || out[0].Sender != "clerk@agency.example" || len(out[0].Files) != 1 ||
		out[0].Subject != "Công văn 1" ||
		// The receiving agency is hosted here too, so its receipt came back at once.
		len(out[0].Acks) != 1 || out[0].Acks[0].StatusCode != "03" {
		t.Errorf("outgoing --json: %+v", out)
	}
	in := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--year", year, "--domain", "agency.example", "--data", data))
	if len(in) != 2 || in[1].Number != 2 || in[1].Organ != "Sở Thông tin và Truyền thông" || in[0].DocumentID != out[0].DocumentID ||
		len(in[0].Acks) != 1 || in[0].Acks[0].Party != "vanthu@agency.example" || in[0].Acks[0].StatusCode != "03" {
		t.Errorf("incoming --json: %+v", in)
	}
	if got := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--year", "2001", "--data", data)); len(got) != 0 {
		t.Errorf("another year: %+v", got)
	}

	rows, err := csv.NewReader(strings.NewReader(ok(t, "", "doc", "register", "list", "--outgoing", "--csv", "--data", data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(docCSVHeader, ",") || rows[1][4] != "01/STTTT-VP" ||
		!strings.HasPrefix(rows[1][18], "cv.pdf sha256:") || rows[2][3] != "2" {
		t.Errorf("outgoing --csv:\n%q", rows)
	}
	if txt := ok(t, "", "doc", "register", "list", "--incoming", "--data", data); !strings.Contains(txt, "SỐ ĐẾN") || !strings.Contains(txt, "02/STTTT-VP") {
		t.Errorf("incoming table:\n%s", txt)
	}
	fails(t, "", []string{"doc", "register", "list", "--data", data}, "one of --outgoing and --incoming")
	fails(t, "", []string{"doc", "register", "list", "--outgoing", "--incoming", "--data", data}, "one of --outgoing and --incoming")

	// doc status: both registers and the evidence of one document.
	id := out[0].DocumentID
	st := decode[statusJSON](t, ok(t, "", "doc", "status", id, "--json", "--data", data))
	// Evidence: acceptance issued; consignment receipt issued by the receiving
	// side and received back by the sending side (both hosted here).
	if len(st.Entries) != 2 || len(st.Evidence) != 3 || !st.Chain.OK || st.Chain.Rows != 6 ||
		st.Evidence[0].Event != "SubmissionAcceptance" || st.Evidence[1].Event != "ContentConsignment" || st.Evidence[2].Event != "ContentConsignment" {
		t.Errorf("doc status --json: %+v", st)
	}
	// The receiving side's line (first: "in" sorts before "out") lists the
	// status it sent, the sending side's the one it received.
	for i, received := range []bool{false, true} {
		if sts := st.Entries[i].Statuses; len(sts) != 1 || sts[0].Code != "03" || sts[0].Received != received || sts[0].Agency != "vanthu@agency.example" {
			t.Errorf("doc status --json: entry %d statuses %+v", i, sts)
		}
	}
	txt := ok(t, "", "doc", "status", id, "--data", data)
	for _, w := range []string{"sent (sổ đi)", "received (sổ đến)", "acknowledged 03 by vanthu@agency.example", "Đã tiếp nhận, vào sổ", "evidence chain intact: 6 rows"} {
		if !strings.Contains(txt, w) {
			t.Errorf("doc status lacks %q:\n%s", w, txt)
		}
	}
	fails(t, "", []string{"doc", "status", "000.00.12.H10,2001/01/01,99/X", "--data", data}, "no document")
}

func TestPeerSeal(t *testing.T) {
	a := agencyData(t)
	doc := filepath.Join(t.TempDir(), "doc.eml")
	if err := os.WriteFile(doc, sendDocument(t, a, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "agency-ca.pem")
	if err := os.WriteFile(caFile, []byte(ok(t, "", "seal", "export-ca", "agency.example", "--data", a)), 0o600); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(t.TempDir(), "data")
	ok(t, "", "init", "--data", b, "--domain", "so.example")
	fails(t, "", []string{"doc", "verify", doc, "--data", b}, "no-trust-anchor")
	fails(t, "", []string{"peer", "add", "agency.example", "--seal-crl", caFile, "--data", b}, "seal trust failed", "give --seal-ca too")
	ok(t, "", "peer", "remove", "agency.example", "--data", b)
	ok(t, "", "peer", "add", "agency.example", "--seal-ca", caFile, "--data", b)
	ok(t, "", "doc", "verify", doc, "--data", b)

	// A CRL from the peer's CA that revokes its seal.
	seal, err := registry.LoadSeal(a, "agency.example")
	if err != nil {
		t.Fatal(err)
	}
	sealDir := registry.SealDir(a, "agency.example")
	ca, err := signing.ParseCertsPEM(readAll(t, filepath.Join(sealDir, registry.CACertFile)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParseKeyPEM(readAll(t, filepath.Join(sealDir, registry.CAKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(24 * time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: seal.Cert.SerialNumber, RevocationTime: now}}},
		ca[0], key)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "agency.crl")
	if err := os.WriteFile(crlFile, der, 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "peer", "update", "agency.example", "--seal-crl", crlFile, "--data", b)
	fails(t, "", []string{"doc", "verify", doc, "--data", b}, "revocation check failed", "revoked")

	// Another CA in place of the peer's: the document is no longer trusted.
	other, _, err := signing.NewLocalCA("Khác", "000.00.99.H10", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, signing.EncodeCertsPEM(other), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "peer", "update", "agency.example", "--seal-ca", caFile, "--data", b)
	fails(t, "", []string{"doc", "verify", doc, "--data", b}, "untrusted-issuer")
	fails(t, "", []string{"peer", "update", "agency.example", "--data", b}, "nothing to update")
	fails(t, "", []string{"peer", "update", "nowhere.example", "--seal-ca", caFile, "--data", b}, "not a peer")

	// Removing the peer removes the trust.
	ok(t, "", "peer", "remove", "agency.example", "--data", b)
	fails(t, "", []string{"doc", "verify", doc, "--data", b}, "no-trust-anchor")
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
