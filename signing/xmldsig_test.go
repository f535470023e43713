package signing

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sealmail/edxml"
	"sealmail/internal/testtool"
)

// testPackage is an edXML package from agency A.
func testPackage(t testing.TB) []byte {
	t.Helper()
	p := &edxml.Package{Envelope: edxml.Envelope{Header: edxml.EnvelopeHeader{
		MessageHeader: &edxml.MessageHeader{
			From:             Organ{OrganID: agencyA.OrganID, OrganName: agencyA.OrganName, Email: agencyA.OfficialAddress},
			To:               []Organ{{OrganID: agencyB.OrganID, OrganName: agencyB.OrganName}},
			Code:             Code{CodeNumber: "123", CodeNotation: "STTTT-VP"},
			PromulgationInfo: PromulgationInfo{Place: "Hà Nội", PromulgationDate: "2026/11/28"},
			DocumentType:     DocumentType{Type: 1, TypeName: "Công văn"},
			Subject:          testSubject,
			SignerInfo:       SignerInfo{Position: "Giám đốc", FullName: "Nguyễn Văn An"},
			ToPlaces:         []string{agencyB.OrganName},
			DocumentID:       "000.00.12.H10,2026/11/28,123/STTTT-VP",
		},
		Trace: &edxml.TraceHeaderList{Bussiness: edxml.Bussiness{DocumentID: "000.00.12.H10,2026/11/28,123/STTTT-VP"}},
	}}, Attachments: []edxml.Attachment{{ContentType: "application/pdf", ContentID: "1.cv", AttachmentName: "Công văn.pdf", Data: testPDF(3000)}}}
	data, err := edxml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEdXMLSignature: a package signed with an RSA or an ECDSA seal
// verifies here and with xmlsec1 (libxml2's XML-DSig, an independent
// implementation), still parses as edXML, and a changed byte, an
// untrusted seal, another organ's seal and a missing signature are each
// caught with their reason.
func TestEdXMLSignature(t *testing.T) {
	xmlsec := testtool.Path(t, "xmlsec1", "xmlsec1")
	a := newPKI(t, agencyA, testNow, testNow)
	other := newPKI(t, agencyA, testNow, testNow) // a CA A's domain does not trust
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSeal := &Seal{Cert: reissue(t, a, a.seal.Cert, rsaKey.Public()), Chain: a.seal.Chain, Key: rsaKey}
	opts := options(testNow, map[Agency]*pki{agencyA: a})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	xmlsec1 := func(data []byte) (string, error) {
		f := filepath.Join(dir, "goi-tin.edxml")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmlsec, "--verify", "--trusted-pem", caFile,
			"--verification-gmt-time", testNow.UTC().Format("2006-01-02 15:04:05"), f).CombinedOutput()
		return string(out), err
	}
	pkg := testPackage(t)

	for name, seal := range map[string]*Seal{"RSA": rsaSeal, "ECDSA": a.seal} {
		t.Run(name, func(t *testing.T) {
			signed, err := SignEdXML(pkg, seal)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">`, `<Reference URI="">`,
				"#enveloped-signature", "xml-exc-c14n#", "xmlenc#sha256", "<X509Certificate>"} {
				if !bytes.Contains(signed, []byte(want)) {
					t.Errorf("signed package lacks %s", want)
				}
			}
			if i, j := bytes.Index(signed, []byte("<Signature ")), bytes.Index(signed, []byte("</edXMLHeader>")); i < 0 || i > j {
				t.Error("the signature is not in edXMLHeader")
			}
			c, content := VerifyEdXML(signed, agencyA.OfficialAddress, agencyA.OrganID, opts, true)
			if c.Status != Pass || content == nil {
				t.Fatalf("VerifyEdXML: %+v", c)
			}
			for _, data := range [][]byte{signed, content} {
				p, err := edxml.Parse(data)
				if err != nil || p.Envelope.Header.MessageHeader.Subject != testSubject || !bytes.Equal(p.Attachments[0].Data, testPDF(3000)) {
					t.Errorf("signed package does not read back: %v", err)
				}
			}
			if bytes.Contains(content, []byte("Signature")) {
				t.Error("the signed content still holds the signature")
			}
			if out, err := xmlsec1(signed); err != nil || !strings.Contains(out, "OK") {
				t.Errorf("xmlsec1 --verify: %v\n%s", err, out)
			}

			// One byte of the subject changed after signing.
			tampered := bytes.Replace(signed, []byte("triển khai"), []byte("triển khaj"), 1)
			if c, content := VerifyEdXML(tampered, agencyA.OfficialAddress, agencyA.OrganID, opts, true); c.Status != Fail || c.Reason != ReasonBadSignature || content != nil {
				t.Errorf("tampered package: %+v", c)
			}
			if out, err := xmlsec1(tampered); err == nil {
				t.Errorf("xmlsec1 accepted the tampered package:\n%s", out)
			}
			if _, err := SignEdXML(signed, seal); err == nil {
				t.Error("a signed package was signed again")
			}
		})
	}

	signed, err := SignEdXML(pkg, other.seal)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := VerifyEdXML(signed, agencyA.OfficialAddress, agencyA.OrganID, opts, false); c.Status != Fail || c.Reason != ReasonUntrusted {
		t.Errorf("untrusted seal: %+v", c)
	}
	signed, err = SignEdXML(pkg, a.seal)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := VerifyEdXML(signed, agencyA.OfficialAddress, agencyB.OrganID, opts, false); c.Status != Fail || c.Reason != ReasonOrganMismatch {
		t.Errorf("another organ's package: %+v", c)
	}
	if c, _ := VerifyEdXML(signed, agencyA.OfficialAddress, agencyA.OrganID, options(testNow.AddDate(3, 0, 0), map[Agency]*pki{agencyA: a}), false); c.Status != Fail || c.Reason != ReasonExpired {
		t.Errorf("seal expired before the import: %+v", c)
	}
	sha1 := bytes.Replace(signed, []byte("http://www.w3.org/2001/04/xmlenc#sha256"), []byte("http://www.w3.org/2000/09/xmldsig#sha1"), 1)
	if c, _ := VerifyEdXML(sha1, agencyA.OfficialAddress, agencyA.OrganID, opts, false); c.Status != Fail || c.Reason != ReasonAlgorithm {
		t.Errorf("SHA-1 digest: %+v", c)
	}
	twice := bytes.Replace(signed, []byte("</edXMLHeader>"), append(signed[bytes.Index(signed, []byte("<Signature ")):bytes.Index(signed, []byte("</Signature>"))+len("</Signature>")], "</edXMLHeader>"...), 1)
	if c, _ := VerifyEdXML(twice, agencyA.OfficialAddress, agencyA.OrganID, opts, false); c.Status != Fail || c.Reason != ReasonSignerCount {
		t.Errorf("two signatures: %+v", c)
	}

	// Unsigned: accepted as a skipped check unless the policy requires one.
	if c, content := VerifyEdXML(pkg, agencyA.OfficialAddress, agencyA.OrganID, opts, false); c.Status != Skip || c.Reason != ReasonNotSigned || content != nil {
		t.Errorf("unsigned, allowed: %+v", c)
	}
	if c, _ := VerifyEdXML(pkg, agencyA.OfficialAddress, agencyA.OrganID, opts, true); c.Status != Fail || c.Reason != ReasonNotSigned {
		t.Errorf("unsigned, required: %+v", c)
	}
	if _, err := SignEdXML(nil, a.seal); err == nil {
		t.Error("an empty package was signed")
	}
	res := &Result{OK: true}
	if err := res.Add(Check{Name: CheckXMLSignature, Status: Fail, Reason: ReasonNotSigned}); err == nil || res.OK {
		t.Errorf("Result.Add of a failure: %v, OK %v", err, res.OK)
	}
}

// FuzzEdXMLSignature feeds arbitrary bytes to the XML-DSig check of an
// edXML package, which parses them with etree and canonicalizes them with
// goxmldsig: it must answer with a reasoned check, never panic, and pass
// only with the signed content to read. Signed (RSA, ECDSA), changed and
// unsigned packages are seeds. Search with 'go test -run XXX -fuzz
// FuzzEdXMLSignature -fuzztime 5m -parallel 1 ./signing'.
func FuzzEdXMLSignature(f *testing.F) {
	a := newPKI(f, agencyA, testNow, testNow)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	rsaSeal := &Seal{Cert: reissue(f, a, a.seal.Cert, rsaKey.Public()), Chain: a.seal.Chain, Key: rsaKey}
	pkg := testPackage(f)
	f.Add(pkg)
	for _, s := range []*Seal{a.seal, rsaSeal} {
		signed, err := SignEdXML(pkg, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(signed)
		f.Add(bytes.Replace(signed, []byte("<Subject>"), []byte("<Subject>x"), 1))
	}
	f.Add([]byte(`<edXML><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/><SignatureValue/></Signature></edXML>`))
	opts := options(testNow, map[Agency]*pki{agencyA: a})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, content := VerifyEdXML(data, agencyA.OfficialAddress, agencyA.OrganID, opts, false)
		switch {
		case c.Name != CheckXMLSignature || (c.Status != Pass && c.Reason == ""):
			t.Fatalf("check without a reason: %+v", c)
		case (c.Status == Pass) != (content != nil):
			t.Fatalf("check %s with %d bytes of signed content", c.Status, len(content))
		}
	})
}
