package edxml

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sealmail/internal/testtool"
)

func sample() *Package {
	return &Package{
		Envelope: Envelope{Header: EnvelopeHeader{
			MessageHeader: &MessageHeader{
				From:             Organ{OrganID: "000.00.12.H10", OrganName: "Sở Thông tin và Truyền thông", Email: "vanthu@a.test"},
				To:               []Organ{{OrganID: "000.00.13.H10", OrganName: "Sở Tài chính", Email: "vanthu@b.test"}},
				Code:             Code{CodeNumber: "01", CodeNotation: "STTTT-VP"},
				PromulgationInfo: PromulgationInfo{Place: "Hà Nội", PromulgationDate: "2026/11/28"},
				DocumentType:     DocumentType{Type: 1, TypeName: "Công văn"},
				Subject:          "V/v triển khai hệ thống thư điện tử đặc biệt: ĐƯỜNG & <dấu>",
				SignerInfo:       SignerInfo{Position: "Giám đốc", FullName: "Nguyễn Văn An"},
				ToPlaces:         []string{"Sở Tài chính", "Lưu: VT"},
				OtherInfo:        OtherInfo{PromulgationAmount: 1, PageAmount: 2},
				DocumentID:       "000.00.12.H10,2026/11/28,01/STTTT-VP",
			},
			Trace: &TraceHeaderList{TraceHeaders: []TraceHeader{{OrganID: "000.00.12.H10", Timestamp: "2026/11/28 09:30:00"}},
				Bussiness: Bussiness{BussinessDocType: DocNew, DocumentID: "000.00.12.H10,2026/11/28,01/STTTT-VP"}},
		}},
		Attachments: []Attachment{
			{ContentType: "application/pdf", ContentID: "1", AttachmentName: "Công văn 01.pdf", Data: []byte("%PDF-1.7\n\x00\xff binary")},
			{ContentType: "application/pdf", ContentID: "2", AttachmentName: "Phụ lục.pdf", Data: bytes.Repeat([]byte("x"), 5000)},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	p := sample()
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`xmlns="`+Namespace+`"`)) {
		t.Errorf("no edXML namespace:\n%.400s", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	h, want := got.Envelope.Header.MessageHeader, p.Envelope.Header.MessageHeader
	if h.Subject != want.Subject || h.From != want.From || h.DocumentID != want.DocumentID || h.SignerInfo != want.SignerInfo ||
		len(h.ToPlaces) != 2 || h.ToPlaces[1] != "Lưu: VT" || h.PromulgationInfo != want.PromulgationInfo {
		t.Errorf("header after the round trip: %+v", h)
	}
	if got.Bussiness().BussinessDocType != DocNew || got.Bussiness().DocumentID != want.DocumentID {
		t.Errorf("Bussiness: %+v", got.Bussiness())
	}
	if len(got.Attachments) != 2 {
		t.Fatalf("%d attachments", len(got.Attachments))
	}
	for i, a := range got.Attachments {
		if a.AttachmentName != p.Attachments[i].AttachmentName || !bytes.Equal(a.Data, p.Attachments[i].Data) {
			t.Errorf("attachment %d: %q, %d bytes", i, a.AttachmentName, len(a.Data))
		}
	}
}

// TestIndependentParser reads the package with Python's XML parser, by
// namespace and path as another system would.
func TestIndependentParser(t *testing.T) {
	py := testtool.Path(t, "python3", "python3")
	b, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "doc.edxml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, base64, xml.etree.ElementTree as ET
ns = {'e': 'http://www.mic.gov.vn/TBT/QCVN_102_2016', 'x': 'http://www.w3.org/1999/xlink'}
r = ET.parse(sys.argv[1]).getroot()
assert r.tag == '{%s}edXML' % ns['e'], r.tag
h = r.find('e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader', ns)
print(h.find('e:From/e:OrganId', ns).text)
print(h.find('e:Code/e:CodeNumber', ns).text + '/' + h.find('e:Code/e:CodeNotation', ns).text)
print(h.find('e:Subject', ns).text)
print(h.find('e:DocumentId', ns).text)
print(r.find('e:edXMLEnvelope/e:edXMLHeader/e:TraceHeaderList/e:Bussiness/e:BussinessDocType', ns).text)
for ref in r.findall('e:edXMLEnvelope/e:edXMLBody/e:edXMLManifest/e:Reference', ns):
    cid = ref.get('{%s}href' % ns['x'])
    att = [a for a in r.findall('e:AttachmentEncoded/e:Attachment', ns) if 'cid:' + a.find('e:ContentId', ns).text == cid][0]
    print(ref.find('e:AttachmentName', ns).text, len(base64.b64decode(att.find('e:ContentTransferEncoded', ns).text)))
`
	out, err := exec.Command(py, "-c", script, f).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "000.00.12.H10\n01/STTTT-VP\nV/v triển khai hệ thống thư điện tử đặc biệt: ĐƯỜNG & <dấu>\n" +
		"000.00.12.H10,2026/11/28,01/STTTT-VP\n0\nCông văn 01.pdf 18\nPhụ lục.pdf 5000\n"
	if string(out) != want {
		t.Errorf("python read:\n%s\nwant:\n%s", out, want)
	}
}

func TestParseRefuses(t *testing.T) {
	good, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(string) string{
		"not XML":         func(s string) string { return s[:len(s)/2] },
		"other namespace": func(s string) string { return strings.Replace(s, Namespace, "urn:other", 1) },
		"no subject": func(s string) string {
			return strings.Replace(s, "<Subject>V/v triển khai hệ thống thư điện tử đặc biệt: ĐƯỜNG &amp; &lt;dấu&gt;</Subject>", "<Subject></Subject>", 1)
		},
		"missing attachment": func(s string) string {
			return strings.Replace(s, "<ContentId>2</ContentId>\n      <ContentTransferEncoded>", "<ContentId>3</ContentId>\n      <ContentTransferEncoded>", 1)
		},
		"bad base64": func(s string) string {
			return strings.Replace(s, "<ContentTransferEncoded>", "<ContentTransferEncoded>*", 1)
		},
		"bad date": func(s string) string {
			return strings.Replace(s, "2026/11/28</PromulgationDate>", "28-11-2026</PromulgationDate>", 1)
		},
		"bad business type": func(s string) string { return strings.Replace(s, "<BussinessDocType>0<", "<BussinessDocType>7<", 1) },
	} {
		bad := edit(string(good))
		if bad == string(good) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestStatusRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	p := NewStatus(Status{ResponseFor: ResponseFor{OrganID: "000.00.12.H10", Code: "01/STTTT-VP", PromulgationDate: "2026/11/28",
		DocumentID: "000.00.12.H10,2026/11/28,01/STTTT-VP"}, From: Organ{OrganID: "000.00.13.H10", OrganName: "Sở Tài chính"},
		StatusCode: StatusRefused, Description: "Gửi sai nơi nhận"}, at)
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Envelope.Header.Status
	if s == nil || s.StatusCode != "02" || s.Description != "Gửi sai nơi nhận" || s.Timestamp != "2026/11/28 10:00:00" ||
		s.ResponseFor.DocumentID != "000.00.12.H10,2026/11/28,01/STTTT-VP" {
		t.Errorf("status after the round trip: %+v", s)
	}
	p.Envelope.Header.Status.StatusCode = "07"
	if _, err := Marshal(p); err == nil {
		t.Error("status 07 marshalled")
	}
}
