package signing

import (
	"bytes"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"sealmail/edxml"
)

func TestDocumentID(t *testing.T) {
	hanoi := time.FixedZone("ICT", 7*60*60)
	for _, tc := range []struct {
		date   time.Time
		number int
		code   string
		want   string
	}{
		{testNow, 123, "STTTT-VP", "000.00.12.H10,2026/11/28,123/STTTT-VP"},
		{testNow, 5, "STTTT-VP", "000.00.12.H10,2026/11/28,05/STTTT-VP"},
		// 00:30 on 1 January in Hanoi is still 31 December in UTC.
		{time.Date(2027, 1, 1, 0, 30, 0, 0, hanoi), 1, "QĐ-UBND", "000.00.12.H10,2027/01/01,01/QĐ-UBND"},
	} {
		if got := DocumentID(agencyA.OrganID, tc.date, tc.number, tc.code); got != tc.want {
			t.Errorf("DocumentID = %q, want %q", got, tc.want)
		}
	}
}

// TestManifestXML: the manifest is written with the edXML names, as a
// MessageHeader an edXML package can carry as it is, and reads back.
func TestManifestXML(t *testing.T) {
	m := Manifest{Version: ManifestVersion, MessageHeader: edxml.MessageHeader{
		From:             Organ{OrganID: agencyA.OrganID, OrganName: agencyA.OrganName, Email: agencyA.OfficialAddress},
		To:               []Organ{{OrganID: agencyB.OrganID, OrganName: agencyB.OrganName}},
		Code:             Code{CodeNumber: "123", CodeNotation: "STTTT-VP"},
		PromulgationInfo: PromulgationInfo{Place: "Hà Nội", PromulgationDate: "2026/11/28"},
		DocumentType:     DocumentType{Type: 1, TypeName: "Công văn"},
		Subject:          testSubject,
		SignerInfo:       SignerInfo{Position: "Giám đốc", FullName: "Nguyễn Văn An"},
		ToPlaces:         []string{agencyB.OrganName},
		OtherInfo:        OtherInfo{PromulgationAmount: 1, Appendixes: []string{"Phụ lục.pdf"}},
		DocumentID:       "000.00.12.H10,2026/11/28,123/STTTT-VP",
	}, Attachments: []Attachment{{FileName: "Công văn.pdf", ContentType: "application/pdf", Size: 10, SHA256: strings.Repeat("0f", 32)}}}
	data, err := xml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{`<Manifest xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016" version="2"><MessageHeader><From><OrganId>000.00.12.H10</OrganId>`,
		"<Code><CodeNumber>123</CodeNumber><CodeNotation>", "<PromulgationInfo><Place>", "<PromulgationDate>2026/11/28<",
		"<DocumentType><Type>1</Type><TypeName>Công văn</TypeName></DocumentType><Subject>", "<SignerInfo><Position>",
		"<ToPlaces><Place>Sở Tài chính Hà Nội</Place></ToPlaces><OtherInfo>", "<Appendixes><Appendix>Phụ lục.pdf</Appendix></Appendixes>",
		"</OtherInfo><SteeringType>0</SteeringType><DocumentId>000.00.12.H10,2026/11/28,123/STTTT-VP</DocumentId></MessageHeader>",
		`<edXMLManifest version="1.0"><Reference><AttachmentName>Công văn.pdf</AttachmentName><ContentType>application/pdf</ContentType><Size>10</Size><SHA256>`} {
		if !strings.Contains(string(data), tag) {
			t.Errorf("manifest lacks %s:\n%s", tag, data)
		}
	}
	// The header is an edXML MessageHeader: the edxml package reads it.
	var h struct {
		Header edxml.MessageHeader `xml:"MessageHeader"`
	}
	if err := xml.Unmarshal(data, &h); err != nil || !reflect.DeepEqual(h.Header, m.MessageHeader) {
		t.Errorf("MessageHeader as edxml reads it: %v\n%+v", err, h.Header)
	}
	var back Manifest
	if err := xml.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n%+v\n%+v", back, m)
	}
	if err := xml.Unmarshal([]byte(`<Manifest version="3"><MessageHeader/></Manifest>`), &back); err == nil || !strings.Contains(err.Error(), `version "3"`) {
		t.Errorf("version 3: %v", err)
	}
}

// TestManifestV1: a document sealed by the previous version, whose
// manifest has names of our own (testdata/manifest-v1, made with that
// version's Stamp), still verifies, and reads as version 2 would say it.
func TestManifestV1(t *testing.T) {
	msg, err := os.ReadFile("testdata/manifest-v1/stamped.eml")
	if err != nil {
		t.Fatal(err)
	}
	pemCA, err := os.ReadFile("testdata/manifest-v1/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCA) {
		t.Fatal("ca.pem: no certificate")
	}
	if !bytes.Contains(msg, []byte("manifest.xml")) || bytes.Contains(msg, []byte("QCVN_102_2016")) {
		t.Fatal("stamped.eml is not a version 1 document")
	}
	res, err := Verify(msg, VerifyOptions{Roots: map[string]*x509.CertPool{agencyA.Domain: pool}, Now: testNow})
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	m := res.Manifest
	if m.Version != 1 || m.DocumentID != "000.00.12.H10,2026/11/28,123/STTTT-VP" || m.Code != (Code{CodeNumber: "123", CodeNotation: "STTTT-VP"}) ||
		m.From.Email != agencyA.OfficialAddress || m.PromulgationInfo.PromulgationDate != "2026/11/28" || m.Subject != testSubject ||
		m.SignerInfo.FullName != "Nguyễn Văn An" || len(m.To) != 1 || m.To[0].OrganID != agencyB.OrganID ||
		len(m.Attachments) != 2 || m.Attachments[1].FileName != "Phụ lục.docx" || m.Attachments[1].Size != 700 {
		t.Errorf("version 1 manifest read as %+v", m)
	}
	m2, files, err := Contents(msg)
	if err != nil || m2.DocumentID != m.DocumentID || len(files) != 2 {
		t.Errorf("Contents: %v, %+v", err, m2)
	}
	// Written again, it is version 2.
	data, err := xml.Marshal(m)
	if err != nil || !bytes.Contains(data, []byte(`version="2"><MessageHeader>`)) {
		t.Errorf("version 1 written again: %v\n%s", err, data)
	}
}

func TestCheckAttachments(t *testing.T) {
	a := Attachment{FileName: "a.pdf", Size: 3, SHA256: "aa"}
	b := Attachment{FileName: "b.pdf", Size: 4, SHA256: "bb"}
	b2 := Attachment{FileName: "b.pdf", Size: 5, SHA256: "cc"}
	resized, rehashed := a, a
	resized.Size, rehashed.SHA256 = 4, "AB"
	for _, tc := range []struct {
		name        string
		listed, got []Attachment
		want        Reason
	}{
		{"match", []Attachment{a, b}, []Attachment{a, b}, ""},
		{"order and hex case", []Attachment{b, {FileName: "a.pdf", Size: 3, SHA256: "AA"}}, []Attachment{a, b}, ""},
		{"repeated names", []Attachment{b, b2}, []Attachment{b, b2}, ""},
		{"missing", []Attachment{a, b}, []Attachment{a}, ReasonAttachmentMissing},
		{"extra", []Attachment{a}, []Attachment{a, b}, ReasonAttachmentExtra},
		{"size", []Attachment{a}, []Attachment{resized}, ReasonSizeMismatch},
		{"hash", []Attachment{a}, []Attachment{rehashed}, ReasonHashMismatch},
	} {
		err := checkAttachments(tc.listed, tc.got)
		var p *problem
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &p) || p.reason != tc.want):
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
		}
	}
}
