package signing

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"sealmail/internal/testtool"
	"sealmail/signing/signingtest"
)

// testNow is the pilot's clock: 28 Nov 2026, 09:30 in Hanoi.
var testNow = time.Date(2026, 11, 28, 9, 30, 0, 0, time.FixedZone("ICT", 7*60*60))

var (
	agencyA = Agency{Domain: "stttt.hanoi.gov.vn", OrganID: "000.00.12.H10", OrganName: "Sở Thông tin và Truyền thông Hà Nội",
		Code: "STTTT-VP", OfficialAddress: "vanthu@stttt.hanoi.gov.vn"}
	agencyB = Agency{Domain: "stc.hanoi.gov.vn", OrganID: "000.00.13.H10", OrganName: "Sở Tài chính Hà Nội",
		Code: "STC-VP", OfficialAddress: "vanthu@stc.hanoi.gov.vn"}
	agencyC = Agency{Domain: "sgd.hanoi.gov.vn", OrganID: "000.00.14.H10", OrganName: "Sở Giáo dục và Đào tạo Hà Nội",
		Code: "SGD-VP", OfficialAddress: "vanthu@sgd.hanoi.gov.vn"}
)

// pki is one agency's pilot CA and seal.
type pki struct {
	ca    *x509.Certificate
	caKey crypto.Signer
	seal  *Seal
}

// newPKI creates a CA at caTime and a seal for a issued at sealTime.
func newPKI(t testing.TB, a Agency, caTime, sealTime time.Time) *pki {
	t.Helper()
	ca, key, err := NewLocalCA(a.OrganName, a.OrganID, caTime)
	if err != nil {
		t.Fatal(err)
	}
	seal, err := IssueSeal(ca, key, a, sealTime)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, caKey: key, seal: seal}
}

// options trusts each agency's CA for its own domain only.
func options(now time.Time, ps map[Agency]*pki) VerifyOptions {
	roots := map[string]*x509.CertPool{}
	for a, p := range ps {
		pool := x509.NewCertPool()
		pool.AddCert(p.ca)
		roots[a.Domain] = pool
	}
	return VerifyOptions{Roots: roots, Now: now}
}

type file struct {
	name, ctype string
	data        []byte
}

// buildMessage writes a message as a mail client would, with go-message:
// a text body and base64 attachments, names encoded per RFC 2047/2231.
func buildMessage(t testing.TB, from, subject string, files ...file) []byte {
	t.Helper()
	var h mail.Header
	h.SetDate(testNow)
	h.SetAddressList("From", []*mail.Address{{Name: "Văn thư Sở", Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: agencyB.OfficialAddress}})
	h.SetSubject(subject)
	h.SetMessageID("cv123.20261128@stttt.hanoi.gov.vn")
	var fs []signingtest.File
	for _, f := range files {
		fs = append(fs, signingtest.File{Name: f.name, Type: f.ctype, Data: f.data})
	}
	return signingtest.Message(t, h, "Kính gửi Sở Tài chính,\nSở TTTT gửi kèm công văn số 123/STTTT-VP.\n", fs...)
}

// pdf returns n pseudo-random bytes posing as a PDF.
func testPDF(n int) []byte { return signingtest.PDF(1, n) }

const testSubject = "Về việc triển khai hệ thống thư điện tử công vụ năm 2026"

func testDocument(a Agency) Document {
	return Document{
		Number:  123,
		Agency:  a,
		To:      []Organ{{OrganID: agencyB.OrganID, OrganName: agencyB.OrganName, Email: agencyB.OfficialAddress}},
		Subject: testSubject,
		Signer:  SignerInfo{Position: "Giám đốc", FullName: "Nguyễn Văn An"},
		Type:    DocumentType{Type: 1, TypeName: "Công văn"},
		Date:    testNow,
		Place:   "Hà Nội",
	}
}

var testFiles = []file{
	{"Công văn số 123 - Kế hoạch triển khai.pdf", "application/pdf", testPDF(40 << 10)},
	{"Phụ lục.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", testPDF(3000)},
}

// stamped returns a document from agency A stamped with s.
func stamped(t testing.TB, s *Seal, now time.Time) []byte {
	t.Helper()
	msg := buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...)
	out, err := Stamp(t.Context(), msg, s, testDocument(agencyA), now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// openssl runs openssl in dir. It skips the test when openssl is missing,
// except in CI, where a missing openssl must not pass silently.
func openssl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	path := testtool.Path(t, "openssl", "openssl")
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// opensslVerifies checks that both openssl smime and openssl cms accept
// dir/stamped.eml against dir/ca.pem.
func opensslVerifies(t *testing.T, dir string) {
	t.Helper()
	for _, cmd := range [][]string{
		{"smime", "-verify", "-CAfile", "ca.pem", "-in", "stamped.eml", "-out", "smime.out"},
		{"cms", "-verify", "-CAfile", "ca.pem", "-in", "stamped.eml", "-out", "cms.out"},
	} {
		out, err := openssl(t, dir, cmd...)
		if err != nil || !strings.Contains(out, "Verification successful") {
			t.Errorf("openssl %s: %v\n%s", cmd[0], err, out)
		}
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signedPart returns the first part of a stamped message: the signed entity.
func signedPart(t testing.TB, msg []byte) []byte {
	t.Helper()
	env, err := openSigned(msg)
	if err != nil {
		t.Fatal(err)
	}
	return env.entity
}

// wantChecks asserts each named check's status and reason.
func wantChecks(t *testing.T, res *Result, want map[string]Reason) {
	t.Helper()
	for name, reason := range want {
		c := res.Check(name)
		if c == nil {
			t.Errorf("no %s check in\n%s", name, res)
			continue
		}
		if c.Reason != reason || (reason == "") != (c.Status == Pass) {
			t.Errorf("%s: got %s [%s] %s, want reason %q\n%s", name, c.Status, c.Reason, c.Detail, reason, res)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func replaceOnce(t testing.TB, s []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(s, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times", old, bytes.Count(s, []byte(old)))
	}
	return bytes.Replace(s, []byte(old), []byte(new), 1)
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
