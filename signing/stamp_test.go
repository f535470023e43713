package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

// sevenBit asserts that msg survives 7-bit SMTP unchanged, which its
// signature depends on: ASCII only, CRLF only, lines of at most 998 octets.
func sevenBit(t *testing.T, msg []byte) {
	t.Helper()
	for i, l := range bytes.Split(msg, []byte("\r\n")) {
		if len(l) > 998 {
			t.Errorf("line %d has %d octets", i+1, len(l))
		}
		if j := bytes.IndexFunc(l, func(r rune) bool { return r >= 0x80 || r == '\n' || r == '\r' || r == 0 }); j >= 0 {
			t.Fatalf("line %d has byte %#x at %d", i+1, l[j], j)
		}
	}
}

func TestStampMessage(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	in := buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...)
	out := stamped(t, a.seal, testNow)
	sevenBit(t, out)

	// Read it back with go-message, as an ordinary client would.
	r, err := mail.CreateReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Header.Subject(); s != "[123/STTTT-VP] "+testSubject {
		t.Errorf("Subject %q", s)
	}
	if id, _ := r.Header.MessageID(); id != "cv123.20261128@stttt.hanoi.gov.vn" {
		t.Errorf("Message-ID %q", id)
	}
	if d, _ := r.Header.Date(); !d.Equal(testNow) {
		t.Errorf("Date %v", d)
	}
	if got := r.Header.Get("Official-Document-Id"); got != "000.00.12.H10,2026/11/28,123/STTTT-VP" {
		t.Errorf("Official-Document-Id %q", got)
	}
	ct, params, _ := r.Header.ContentType()
	if ct != "multipart/signed" || params["protocol"] != "application/pkcs7-signature" || params["micalg"] != "sha-256" {
		t.Errorf("Content-Type %s %v", ct, params)
	}
	// The original To: and From: lines are kept byte for byte.
	for _, field := range []string{"To", "From", "Date"} {
		h, _, _ := bytes.Cut(in, []byte("\r\n\r\n"))
		line := field + ": " + mustField(t, h, field)
		if !bytes.Contains(out, []byte(line)) {
			t.Errorf("%s field changed", field)
		}
	}
	// Attachments already in base64 are copied, not re-encoded.
	firstLine := base64.StdEncoding.EncodeToString(testFiles[0].data[:57])
	if !bytes.Contains(out, []byte("\r\n"+firstLine+"\r\n")) {
		t.Error("attachment body was re-encoded")
	}

	var names, texts []string
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			names = append(names, name)
		case *mail.InlineHeader:
			texts = append(texts, string(body))
		}
	}
	wantNames := []string{testFiles[0].name, testFiles[1].name, "manifest.xml", "smime.p7s"}
	if strings.Join(names, "|") != strings.Join(wantNames, "|") {
		t.Errorf("attachments %q, want %q", names, wantNames)
	}
	if len(texts) != 2 || !strings.Contains(texts[0], "Kính gửi") {
		t.Fatalf("text parts %q", texts)
	}
	for _, want := range []string{"Văn bản số 123/STTTT-VP ngày 28/11/2026 của Sở Thông tin và Truyền thông Hà Nội",
		"Official document No. 123/STTTT-VP dated 2026-11-28", "09:30:00", "UTC+07:00", testSubject} {
		if !strings.Contains(texts[1], want) {
			t.Errorf("stamp text lacks %q:\n%s", want, texts[1])
		}
	}
}

func mustField(t *testing.T, header []byte, field string) string {
	t.Helper()
	for _, l := range strings.Split(string(header), "\r\n") {
		if v, ok := strings.CutPrefix(l, field+": "); ok {
			return v
		}
	}
	t.Fatalf("no %s field", field)
	return ""
}

// Messages as mail stores and other clients write them: LF line ends, 8bit
// text, nested alternatives, quoted-printable and RFC 2231 file names,
// base64 in 64-character lines, and a body that is itself the attachment.
func TestStampOtherInputs(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	// Text in an LF-only message gets CRLF line ends, the canonical form;
	// the line break before a delimiter belongs to the delimiter.
	note := "Dòng một\r\nDòng hai, có dấu ="
	data := testPDF(1000)
	var b64 strings.Builder
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 64 {
		b64.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b64.WriteString(enc)
	head := "From: Van thu <VanThu@stttt.hanoi.gov.vn>\nTo: vanthu@stc.hanoi.gov.vn\nMessage-ID: <lf@stttt.hanoi.gov.vn>\n" +
		"Subject: =?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(testSubject)) + "?=\nMIME-Version: 1.0\n"
	for _, tc := range []struct {
		name  string
		msg   string
		files []file
	}{
		{"nested and LF", head + "Content-Type: multipart/mixed; boundary=\"b1\"\n\npreamble\n" +
			"--b1\nContent-Type: multipart/alternative; boundary=b2\n\n" +
			"--b2\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nKính gửi Sở Tài chính\n" +
			"--b2\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n<p>Kính gửi</p>\n--b2--\n" +
			"--b1\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename*=utf-8''Ghi%20ch%C3%BA.txt\n" +
			"Content-Transfer-Encoding: quoted-printable\n\nD=C3=B2ng m=E1=BB=99t\nD=C3=B2ng hai, c=C3=B3 d=E1=BA=A5u =3D\n" +
			"--b1\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=utf-8''C%C3%B4ng%20v%C4%83n.pdf\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64.String() + "\n--b1--\nepilogue\n",
			[]file{{"Ghi chú.txt", "text/plain", []byte(note)}, {"Công văn.pdf", "application/pdf", data}}},
		{"forwarded message", head + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain; charset=us-ascii\n\nSee the attached message.  \n" +
			"--b\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=fwd.eml\n\n" +
			"From: a@b.vn\nSubject: hello\n\nforwarded\n--b--\n",
			[]file{{"fwd.eml", "message/rfc822", []byte("From: a@b.vn\r\nSubject: hello\r\n\r\nforwarded")}}},
		{"single part", head + "Content-Type: application/pdf; name=\"cv.pdf\"\nContent-Transfer-Encoding: base64\n\n" + b64.String() + "\n",
			[]file{{"cv.pdf", "application/pdf", data}}},
		{"binary attachment", strings.ReplaceAll(head, "\n", "\r\n") + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=raw.bin\r\n" +
			"Content-Transfer-Encoding: binary\r\n\r\n\x00\xff\r\nraw\x01\r\n--b--\r\n",
			[]file{{"raw.bin", "application/octet-stream", []byte("\x00\xff\r\nraw\x01")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Stamp(t.Context(), []byte(tc.msg), a.seal, testDocument(agencyA), testNow)
			if err != nil {
				t.Fatal(err)
			}
			sevenBit(t, out)
			if strings.Contains(tc.msg, "message/rfc822") &&
				!bytes.Contains(out, []byte("filename=fwd.eml\r\n\r\nFrom: a@b.vn\r\nSubject: hello\r\n\r\nforwarded\r\n")) {
				t.Errorf("message/rfc822 was re-encoded (RFC 2046 allows only 7bit, 8bit, binary):\n%s", out)
			}
			res, err := Verify(out, options(testNow, map[Agency]*pki{agencyA: a}))
			if err != nil {
				t.Fatalf("%v\n%s", err, res)
			}
			if len(res.Manifest.Attachments) != len(tc.files) {
				t.Fatalf("manifest %+v", res.Manifest.Attachments)
			}
			for i, f := range tc.files {
				got := res.Manifest.Attachments[i]
				sum := sha256.Sum256(f.data)
				if got.FileName != f.name || got.ContentType != f.ctype || got.SHA256 != hex.EncodeToString(sum[:]) || got.Size != int64(len(f.data)) {
					t.Errorf("attachment %d = %+v, want %s %s %d bytes", i, got, f.name, f.ctype, len(f.data))
				}
			}
		})
	}
}

func TestStampRejects(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	good := buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...)
	doc := testDocument(agencyA)
	for _, tc := range []struct {
		name string
		msg  []byte
		doc  func(*Document)
		want string
	}{
		{"no attachment", buildMessage(t, agencyA.OfficialAddress, testSubject), nil, "no attachment"},
		{"From not the seal's", buildMessage(t, "giamdoc@stttt.hanoi.gov.vn", testSubject, testFiles...), nil, "not From:"},
		{"no Message-ID", bytes.Replace(good, []byte("Message-Id:"), []byte("X-Old-Id:"), 1), nil, "Message-ID"},
		{"already signed", stamped(t, a.seal, testNow), nil, "already signed"},
		{"number 0", good, func(d *Document) { d.Number = 0 }, "numbers start at 1"},
		{"no code", good, func(d *Document) { d.Agency.Code = "" }, "code notation"},
		{"other organ", good, func(d *Document) { d.Agency.OrganID = "000.00.99.H10" }, "belongs to organ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := doc
			if tc.doc != nil {
				tc.doc(&d)
			}
			_, err := Stamp(t.Context(), tc.msg, a.seal, d, testNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// Numbers below 10 are written with a leading zero everywhere.
func TestStampSmallNumber(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	doc := testDocument(agencyA)
	doc.Number, doc.Code = 7, "QĐ-STTTT"
	out, err := Stamp(t.Context(), buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...), a.seal, doc, testNow)
	if err != nil {
		t.Fatal(err)
	}
	sevenBit(t, out)
	res, err := Verify(out, options(testNow, map[Agency]*pki{agencyA: a}))
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if res.Manifest.DocumentID != "000.00.12.H10,2026/11/28,07/QĐ-STTTT" || res.Manifest.Code.CodeNumber != "07" {
		t.Errorf("manifest %+v", res.Manifest)
	}
	r, err := mail.CreateReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Header.Subject(); !strings.HasPrefix(s, "[07/QĐ-STTTT] ") {
		t.Errorf("Subject %q", s)
	}
}

func benchMessage(b *testing.B) (*pki, []byte) {
	a := newPKI(b, agencyA, testNow, testNow)
	return a, buildMessage(b, agencyA.OfficialAddress, testSubject, file{"big.pdf", "application/pdf", testPDF(10 << 20)})
}

// reportCPU reports, once the caller's b.Loop ends, the CPU time per
// operation of all goroutines: on a shared machine it varies less than
// wall time, and it shows what running on two cores costs.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/1e6/float64(b.N), "cpu-ms/op") }
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSHA256_10MB is the yardstick for the other benchmarks.
func BenchmarkSHA256_10MB(b *testing.B) {
	data := testPDF(10 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		sha256.Sum256(data)
	}
}

// BenchmarkDecodeBase64_10MB measures the one step beyond hashing that the
// manifest cannot avoid: decoding the attachment to hash its content.
func BenchmarkDecodeBase64_10MB(b *testing.B) {
	_, msg := benchMessage(b)
	root, err := parsePart(msg, 0)
	if err != nil {
		b.Fatal(err)
	}
	body := attachments(root.kids)[0].body
	b.SetBytes(10 << 20)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if err := decodeBase64(io.Discard, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeBase64_10MB measures what Stamp spends on a signed PDF
// whose clerk's base64 lines it cannot copy: encoding it (encoding/base64).
func BenchmarkEncodeBase64_10MB(b *testing.B) {
	data := testPDF(10 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		writeBase64(io.Discard, data)
	}
}

// BenchmarkCopyNew_14MB measures the least a stamped message costs beyond
// its digests: the 14 MB of base64 copied into a new buffer.
func BenchmarkCopyNew_14MB(b *testing.B) {
	data := testPDF(14 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		out := bytes.NewBuffer(make([]byte, 0, len(data)))
		out.Write(data)
	}
}

func BenchmarkStamp10MB(b *testing.B) {
	a, msg := benchMessage(b)
	doc := testDocument(agencyA)
	b.SetBytes(10 << 20)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := Stamp(b.Context(), msg, a.seal, doc, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStampNoSubject(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	msg := replaceOnce(t, buildMessage(t, agencyA.OfficialAddress, testSubject, testFiles...), "Subject:", "X-Subject:")
	out, err := Stamp(t.Context(), msg, a.seal, testDocument(agencyA), testNow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Header.Subject(); s != "[123/STTTT-VP] "+testSubject {
		t.Errorf("Subject %q", s)
	}
}
