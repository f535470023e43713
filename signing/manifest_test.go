package signing

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
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

func TestManifestXML(t *testing.T) {
	m := Manifest{
		From:             Organ{OrganID: agencyA.OrganID, OrganName: agencyA.OrganName, Email: agencyA.OfficialAddress},
		To:               []Organ{{OrganID: agencyB.OrganID, OrganName: agencyB.OrganName}},
		DocumentID:       "000.00.12.H10,2026/11/28,123/STTTT-VP",
		Code:             Code{CodeNumber: "123", CodeNotation: "STTTT-VP"},
		PromulgationInfo: PromulgationInfo{Place: "Hà Nội", PromulgationDate: "2026-11-28"},
		Subject:          testSubject,
		SignerInfo:       SignerInfo{Position: "Giám đốc", FullName: "Nguyễn Văn An"},
		Attachments:      []Attachment{{FileName: "Công văn.pdf", ContentType: "application/pdf", Size: 10, SHA256: strings.Repeat("0f", 32)}},
	}
	data, err := xml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"<From><OrganId>000.00.12.H10</OrganId>", "<DocumentId>", "<Code><CodeNumber>123</CodeNumber><CodeNotation>",
		"<PromulgationInfo><Place>", "<PromulgationDate>", "<SignerInfo><Position>", "<Attachments><Attachment><FileName>Công văn.pdf"} {
		if !strings.Contains(string(data), tag) {
			t.Errorf("manifest lacks %s:\n%s", tag, data)
		}
	}
	var back Manifest
	if err := xml.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	back.XMLName = m.XMLName
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n%+v\n%+v", back, m)
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
